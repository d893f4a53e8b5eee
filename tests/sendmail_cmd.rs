//! The `sendmail` command, black-box: submission through a running `mailtool serve`, the
//! client spool when the daemon is down (and its import), -t/Bcc, unknown users, the link,
//! bsd-mailx, -bv, -bp, -bs. Loopback only, temp roots, bounded timeouts.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::dns::TestDns;
use common::server::{Server, add_user, seed_root};
use common::*;
use mailtool::queue::client_spool;
use mailtool::queue::{QueuedMessage, Spool};

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).unwrap();
    seed_root(d.path());
    add_user(d.path(), "example", "pw");
    d
}

/// A port nobody listens on right now (the config must name it: sendmail reads it there).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(port: u16, dns: &TestDns) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:{port}\"]\nsubmission = []\nshutdown_grace = \"2s\"\n\
         [dns]\n{}\ntimeout = \"300ms\"\n",
        dns.config_servers()
    )
}

fn sendmail(root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(
        mailtool()
            .arg("--root")
            .arg(root)
            .arg("sendmail")
            .args(args),
        stdin,
    )
}

fn spool_messages(root: &Path) -> Vec<(QueuedMessage, String)> {
    let spool = Spool::attach(&root.join("var/spool/mqueue")).unwrap();
    spool
        .list()
        .unwrap()
        .into_iter()
        .map(|m| {
            let data = fs::read_to_string(spool.data_path(&m.id)).unwrap();
            (m, data)
        })
        .collect()
}

/// The one queued message whose data contains `marker`.
fn find(root: &Path, marker: &str) -> (QueuedMessage, String) {
    let mut hits: Vec<_> = spool_messages(root)
        .into_iter()
        .filter(|(_, d)| d.contains(marker))
        .collect();
    assert_eq!(hits.len(), 1, "messages with {marker:?}");
    hits.pop().unwrap()
}

fn rcpts(m: &QueuedMessage) -> Vec<String> {
    m.envelope
        .recipients
        .iter()
        .map(|r| r.address.clone())
        .collect()
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn submission_through_the_daemon() {
    let dns = TestDns::start(&[]);
    let r = root();
    let port = free_port();
    let srv = Server::start(r.path(), &config(port, &dns));

    // Plain submission with -oi and -F: the headers sendmail adds, the dot kept by -oi.
    let out = sendmail(
        r.path(),
        &["-oi", "-F", "Test User", "user1@example1.com"],
        b"Subject: plain-1\n\nbody line\n.\nafter the dot\n",
    );
    ok(&out);
    let (m, data) = find(r.path(), "plain-1");
    assert_eq!(rcpts(&m), vec!["user1@example1.com"]);
    assert_eq!(m.envelope.sender, "root@mail.example1.com");
    assert!(
        data.contains("From: Test User <root@mail.example1.com>\n"),
        "{data}"
    );
    assert!(data.contains("\nDate: "), "{data}");
    assert!(data.contains("\nMessage-ID: <"), "{data}");
    assert!(
        data.contains("Received: (from root@localhost)\n\tby mail.example1.com (mailtool/Submit)"),
        "{data}"
    );
    assert!(data.ends_with("\nbody line\n.\nafter the dot\n"), "{data}");

    // Without -i a lone dot ends the message; -f sets the envelope sender (and From:).
    let out = sendmail(
        r.path(),
        &["-f", "bounce@example1.com", "user2@example1.com"],
        b"Subject: dot-2\n\nkept\n.\ndropped\n",
    );
    ok(&out);
    let (m, data) = find(r.path(), "dot-2");
    assert_eq!(m.envelope.sender, "bounce@example1.com");
    assert!(data.contains("From: bounce@example1.com\n"), "{data}");
    assert!(data.ends_with("\nkept\n"), "{data}");

    // -t: To/Cc/Bcc become recipients, Bcc leaves the message, command-line ones are added.
    let out = sendmail(
        r.path(),
        &["-t", "-i", "extra@example1.com"],
        b"To: a@example1.com\nCc: B <b@example1.com>\nBcc: hidden@example1.com\nSubject: t-3\n\nhi\n",
    );
    ok(&out);
    let (m, data) = find(r.path(), "t-3");
    assert_eq!(
        rcpts(&m),
        vec![
            "a@example1.com",
            "b@example1.com",
            "hidden@example1.com",
            "extra@example1.com"
        ]
    );
    assert!(!data.contains("hidden"), "{data}");
    assert!(!data.contains("Bcc:"), "{data}");

    // An unknown user: sendmail's line on stderr and 67; the known one still gets it.
    let out = sendmail(
        r.path(),
        &["-oi", "nobody@mail.example1.com", "user3@example1.com"],
        b"Subject: unknown-4\n\nx\n",
    );
    assert_eq!(out.status.code(), Some(67), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "nobody@mail.example1.com... User unknown\n"
    );
    let (m, _) = find(r.path(), "unknown-4");
    assert_eq!(rcpts(&m), vec!["user3@example1.com"]);
    let out = sendmail(r.path(), &["-oi", "nobody"], b"Subject: unknown-5\n\nx\n");
    assert_eq!(out.status.code(), Some(67));
    assert_eq!(
        text(&out.stderr),
        "nobody@mail.example1.com... User unknown\n"
    );
    assert!(
        spool_messages(r.path())
            .iter()
            .all(|(_, d)| !d.contains("unknown-5"))
    );

    // Through a link named sendmail, the root from the environment, as cron calls it.
    let bin_dir = tempfile::tempdir().unwrap();
    let l = link(bin_dir.path(), "sendmail");
    let out = run(
        Command::new(&l)
            .env_remove("MAILTOOL_CONFIG")
            .env("MAILTOOL_ROOT", r.path())
            .args(["-oi", "-t"]),
        b"To: cron@example1.com\nSubject: link-6\n\nfrom cron\n",
    );
    ok(&out);
    let (m, _) = find(r.path(), "link-6");
    assert_eq!(rcpts(&m), vec!["cron@example1.com"]);

    // -bp is mailq.
    let bp = sendmail(r.path(), &["-bp"], b"");
    let mq = run(mailtool().arg("--root").arg(r.path()).arg("mailq"), b"");
    ok(&bp);
    assert!(
        text(&bp.stdout).contains("Total requests: 5"),
        "{}",
        text(&bp.stdout)
    );
    assert_eq!(text(&bp.stdout), text(&mq.stdout));

    // -bs relays an SMTP conversation on stdin/stdout to the daemon.
    // (one command at a time: the daemon refuses unsynchronized pipelining)
    let o = smtp_dialogue(
        r.path(),
        &[
            "EHLO me",
            "MAIL FROM:<s@example1.com>",
            "RCPT TO:<bs@example1.com>",
            "DATA",
            "Subject: bs-7\r\n\r\nx\r\n.",
            "QUIT",
        ],
    );
    assert!(o.starts_with("220 mail.example1.com ESMTP"), "{o}");
    assert!(o.contains("250 2.0.0 "), "{o}");
    assert!(o.trim_end().ends_with("closing connection"), "{o}");
    let (m, _) = find(r.path(), "bs-7");
    assert_eq!(rcpts(&m), vec!["bs@example1.com"]);

    // Nothing went to the client spool while the daemon was up.
    let cs = r.path().join("var/spool/clientmqueue");
    assert!(!cs.exists() || fs::read_dir(&cs).unwrap().next().is_none());
    srv.stop();
}

#[test]
fn bsd_mailx_reaches_the_spool() {
    if !Path::new("/usr/bin/mail").exists() {
        common::skip::skip("bsd-mailx is not installed");
        return;
    }
    let dns = TestDns::start(&[]);
    let r = root();
    let port = free_port();
    let srv = Server::start(r.path(), &config(port, &dns));
    let home = tempfile::tempdir().unwrap();
    let bin_dir = tempfile::tempdir().unwrap();
    let l = link(bin_dir.path(), "sendmail");
    let rc = home.path().join("mailrc");
    fs::write(&rc, format!("set sendmail={}\n", l.display())).unwrap();
    let out = run(
        Command::new("/usr/bin/mail")
            .env("HOME", home.path())
            .env("MAILRC", &rc)
            .env("MAILTOOL_ROOT", r.path())
            .env_remove("MAILTOOL_CONFIG")
            .args(["-s", "mailx-test", "user1@example1.com"]),
        b"hi\n",
    );
    ok(&out);
    let (m, data) = find(r.path(), "Subject: mailx-test");
    assert_eq!(rcpts(&m), vec!["user1@example1.com"]);
    assert!(data.contains("\nhi\n"), "{data}");
    srv.stop();
}

/// Runs `sendmail -bs`, sends each command after the previous reply, returns all it printed.
fn smtp_dialogue(root: &Path, commands: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = mailtool()
        .arg("--root")
        .arg(root)
        .args(["sendmail", "-bs"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut all = String::new();
    let mut reply = |all: &mut String| loop {
        let mut line = String::new();
        if output.read_line(&mut line).unwrap() == 0 {
            return;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    };
    reply(&mut all);
    for c in commands {
        input.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        reply(&mut all);
    }
    drop(input);
    assert_eq!(child.wait().unwrap().code(), Some(0), "{all}");
    all
}

fn client_spool_dir(root: &Path) -> PathBuf {
    root.join("var/spool/clientmqueue")
}

#[test]
fn daemon_down_queues_in_the_client_spool() {
    let r = root();
    let port = free_port();
    let etc = r.path().join("etc/mail");
    fs::write(
        etc.join("mailtool.toml"),
        format!("hostname = \"mail.example1.com\"\n[smtp]\nlisten = [\"127.0.0.1:{port}\"]\n"),
    )
    .unwrap();
    let out = sendmail(
        r.path(),
        &[
            "-oi",
            "-f",
            "cron@example1.com",
            "user1@example1.com",
            "far@remote.test",
        ],
        b"Subject: queued-1\n\nwhile down\n",
    );
    ok(&out);
    assert_eq!(text(&out.stderr), "", "silent without -v");
    let dir = client_spool_dir(r.path());
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("qf")));
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
        client_spool::DIR_MODE
    );

    // The daemon's import moves it into the main spool, once.
    let spool = Spool::open(&r.path().join("var/spool/mqueue")).unwrap();
    let first = client_spool::import(
        &dir,
        &spool,
        &mailtool::stage::Stage::plain("mail.example1.com"),
    )
    .unwrap();
    assert_eq!(first.imported.len(), 1, "{first:?}");
    let again = client_spool::import(
        &dir,
        &spool,
        &mailtool::stage::Stage::plain("mail.example1.com"),
    )
    .unwrap();
    assert!(again.imported.is_empty() && again.already_imported.is_empty());
    let list = spool.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, first.imported[0]);
    assert_eq!(list[0].envelope.sender, "cron@example1.com");
    assert_eq!(
        rcpts(&list[0]),
        vec!["user1@example1.com", "far@remote.test"]
    );
    let data = fs::read_to_string(spool.data_path(&list[0].id)).unwrap();
    assert!(data.starts_with("Received: by mail.example1.com (mailtool, from userid "));
    assert!(data.contains("Subject: queued-1\n"));
    assert!(data.ends_with("\nwhile down\n"));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);

    // An unprivileged user can drop into the directory but not list it; the daemon imports it.
    let mut cmd = mailtool();
    if as_nobody(&mut cmd) {
        let out = run(
            cmd.arg("--root")
                .arg(r.path())
                .args(["sendmail", "-oi", "user1@example1.com"]),
            b"Subject: nobody-2\n\nx\n",
        );
        ok(&out);
        let listing = Command::new("ls")
            .arg(&dir)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(!listing.status.success(), "the drop box is not listable");
        let r2 = client_spool::import(
            &dir,
            &spool,
            &mailtool::stage::Stage::plain("mail.example1.com"),
        )
        .unwrap();
        assert_eq!(r2.imported.len(), 1, "{r2:?}");
        let data = fs::read_to_string(spool.data_path(&r2.imported[0])).unwrap();
        assert!(data.contains("(mailtool, from userid 65534)"), "{data}");
        assert!(data.contains("Received: (from nobody@localhost)"), "{data}");
    }

    // -bs without a daemon: a 421 and 75, nothing queued.
    let out = sendmail(r.path(), &["-bs"], b"QUIT\r\n");
    assert_eq!(out.status.code(), Some(75));
    assert!(text(&out.stdout).starts_with("421 4.3.0 "));
}

#[test]
fn verify_shows_routes() {
    let r = root();
    fs::write(
        r.path().join("etc/mail/mailtool.toml"),
        "hostname = \"mail.example1.com\"\n",
    )
    .unwrap();
    let out = sendmail(
        r.path(),
        &[
            "-bv",
            "anyone@example1.com",
            "staff",
            "x@remote.test",
            "nobody@mail.example1.com",
            "someone@example2.com",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(67), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "anyone@example1.com... deliverable: mailer local, user example\n\
         who@example1.com... deliverable: mailer esmtp, host overthere.com., user who@overthere.com\n\
         example... deliverable: mailer local, user example\n\
         x@remote.test... deliverable: mailer esmtp, host remote.test., user x@remote.test\n\
         nobody@mail.example1.com... User unknown\n\
         someone@example2.com... error-message\n"
    );
    let out = sendmail(r.path(), &["-bv", "example"], b"");
    ok(&out);
}

#[test]
fn usage_errors() {
    let r = tempfile::tempdir().unwrap();
    for (args, msg) in [
        (&["-x"][..], "sendmail: invalid option -- 'x'\n"),
        (
            &["-oi"][..],
            "sendmail: Recipient names must be specified\n",
        ),
        (
            &["-oQ/tmp", "a"][..],
            "sendmail: QueueDirectory cannot be set here: use [paths] spool in mailtool.toml\n",
        ),
    ] {
        let out = sendmail(r.path(), args, b"");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert_eq!(text(&out.stderr), msg, "{args:?}");
    }
    // -t with no recipient anywhere.
    let out = sendmail(r.path(), &["-t"], b"Subject: x\n\nbody\n");
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        text(&out.stderr),
        "sendmail: No recipient addresses found in header\n"
    );
}

#[test]
fn bs_accepts_a_whole_session_written_ahead() {
    // Issue 12 #15: a pipe writes the whole session at once, as sendmail -bs allows; the
    // relay must not trip the daemon's synchronization check (RFC 2920 §3), and the exit
    // status must say whether it worked.
    let dns = TestDns::start(&[]);
    let r = root();
    let port = free_port();
    let srv = Server::start(r.path(), &config(port, &dns));
    let session = b"HELO me\nMAIL FROM:<s@example1.com>\nRCPT TO:<bs@example1.com>\nDATA\n\
Subject: bs-ahead\n\nline one\n..dot\n.\nQUIT\n";
    let out = sendmail(r.path(), &["-bs"], session);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}");
    assert!(!o.contains("synchronization"), "{o}");
    assert!(o.contains("354 "), "{o}");
    assert!(o.contains("250 2.0.0 "), "{o}");
    assert!(o.trim_end().ends_with("closing connection"), "{o}");
    let (m, data) = find(r.path(), "Subject: bs-ahead");
    assert_eq!(rcpts(&m), vec!["bs@example1.com"]);
    // Dot-stuffing undone by the daemon, not by the relay.
    assert!(
        data.contains("\n.dot\n") || data.contains("\r\n.dot\r\n"),
        "{data}"
    );

    // A refused recipient and the DATA after it: non-zero, nothing queued.
    let session = b"EHLO me\r\nMAIL FROM:<s@example1.com>\r\nRCPT TO:<x@example2.com>\r\n\
DATA\r\nSubject: bs-refused\r\n\r\nx\r\n.\r\nQUIT\r\n";
    let out = sendmail(r.path(), &["-bs"], session);
    let o = text(&out.stdout);
    assert!(o.contains("550 5.0.0 <x@example2.com>"), "{o}");
    // 5.0.0 is a policy refusal: EX_UNAVAILABLE, as `sendmail` without -bs.
    assert_eq!(out.status.code(), Some(69), "{o}");
    assert!(
        spool_messages(r.path())
            .iter()
            .all(|(_, d)| !d.contains("bs-refused"))
    );
    srv.stop();
}
