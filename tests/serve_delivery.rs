//! Delivery out of the spool (issue 4): a first `mailtool serve` relays to a second one found
//! through MX records served by the in-process test DNS; refusals bounce as RFC 3464 DSNs,
//! unreachable hosts defer with backoff, a null MX fails at once, and nothing is lost.

mod common;

use common::wait_for;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::dns::{Rec, TestDns};
use common::postfix::{Postfix, PostfixOptions};
use common::server::{Server, Smtp, add_user, far_server, free_port, seed_root, temp_root as root};
use mailtool::queue::{RcptState, Spool};

/// The sending side: the seed's setup, delivering at once, MX hosts on `port`.
fn near_server(dns: &TestDns, port: u16, extra_queue: &str) -> (tempfile::TempDir, Server) {
    let r = root();
    seed_root(r.path());
    add_user(r.path(), "example", "pw");
    let s = Server::start(
        r.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
             [dns]\n{}\ntimeout = \"500ms\"\n\
             [queue]\nremote_port = {port}\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\n{extra_queue}\n",
            dns.config_servers()
        ),
    );
    (r, s)
}

fn spool_ids(spool: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(spool)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("qf"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn read_df(spool: &Path, id: &str) -> String {
    String::from_utf8_lossy(&fs::read(spool.join(format!("df{id}"))).unwrap()).into_owned()
}

fn mx_records(port_host_ip: &str) -> Vec<Rec> {
    vec![
        Rec::mx("far.test", 10, "mx.far.test"),
        Rec::a("mx.far.test", port_host_ip),
        Rec::mx("null.test", 0, "."),
    ]
}

#[test]
fn relays_to_the_mx_and_bounces_what_it_refuses() {
    let port = free_port("127.0.0.2");
    let (_fr, far) = far_server(port);
    let dns = TestDns::start(&mx_records("127.0.0.2"));
    let (_nr, near) = near_server(&dns, port, "");

    // Loopback may relay: one message for far.test's known user, one for an unknown one.
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let r = c.mail(
        "alice@far.test",
        &["bob@far.test"],
        "Subject: relayed\r\n\r\nhello far\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let r = c.mail(
        "alice@far.test",
        &["nobody@far.test"],
        "Subject: refused\r\n\r\nnot for you\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT");

    // far received the first message, through SMTP from near (its Received: header).
    let far_spool = far.spool();
    let got = wait_for("the relayed message at far", || {
        spool_ids(&far_spool)
            .into_iter()
            .map(|id| read_df(&far_spool, &id))
            .find(|d| d.contains("Subject: relayed"))
    });
    assert!(got.contains("hello far"), "{got}");
    assert!(got.contains("by mx.far.test"), "{got}");

    // The refused one came back as a DSN from <> to the sender, also delivered to far.
    let bounce = wait_for("the bounce at far", || {
        spool_ids(&far_spool)
            .into_iter()
            .map(|id| read_df(&far_spool, &id))
            .find(|d| d.contains("report-type=delivery-status"))
    });
    assert!(bounce.contains("To: <alice@far.test>"), "{bounce}");
    assert!(bounce.contains("Action: failed"), "{bounce}");
    assert!(bounce.contains("Status: 5.1.1"), "{bounce}");
    assert!(
        bounce.contains("Final-Recipient: RFC822; nobody@far.test"),
        "{bounce}"
    );
    assert!(bounce.contains("Subject: refused"), "{bounce}");

    // Nothing is left in near's queue, and the log has sendmail-style delivery lines.
    let near_spool = near.spool();
    wait_for("near's queue to empty", || {
        spool_ids(&near_spool).is_empty().then_some(())
    });
    let log = near.log();
    assert!(
        log.contains("to=<bob@far.test>")
            && log.contains(&format!(
                "mailer=esmtp, relay=mx.far.test[127.0.0.2]:{port}, "
            )),
        "{log}"
    );
    assert!(log.contains("stat=Sent ("), "{log}");
    assert!(log.contains("dsn=5.1.1, stat=550 5.1.1"), "{log}");
    near.stop();
    far.stop();
}

#[test]
fn unreachable_hosts_defer_and_a_null_mx_fails_at_once() {
    // Nothing listens on this port on 127.0.0.2 at first.
    let port = free_port("127.0.0.2");
    let dns = TestDns::start(&mx_records("127.0.0.2"));
    let (_nr, near) = near_server(&dns, port, "");
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let r = c.mail(
        "example@example1.com",
        &["bob@far.test"],
        "Subject: later\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let r = c.mail(
        "example@example1.com",
        &["x@null.test"],
        "Subject: never\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT");

    // The far.test message waits, with the reason recorded for mailq.
    let spool_dir = near.spool();
    let (id, status) = wait_for("a deferral", || {
        let spool = Spool::attach(&spool_dir).ok()?;
        spool.list().ok()?.into_iter().find_map(|m| {
            let r = m.envelope.recipients.first()?;
            (r.address == "bob@far.test" && m.envelope.tries > 0)
                .then(|| (m.id.to_string(), m.envelope.status_message.clone()))
        })
    });
    let status = status.unwrap_or_default();
    assert!(status.starts_with("Deferred: "), "{status}");
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(near.root_path())
            .arg("mailq"),
        b"",
    );
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains(&id) && listing.contains("(Deferred: "),
        "{listing}"
    );

    // The null MX failed permanently; its bounce went to the local sender.
    wait_for("the null MX failure", || {
        near.log()
            .contains("stat=556 5.1.10 null.test: Domain does not accept mail (null MX)")
            .then_some(())
    });

    // Once the MX host comes up, the retry (1 s backoff) delivers it.
    let (_fr, far) = far_server(port);
    let far_spool = far.spool();
    wait_for("the retried message at far", || {
        spool_ids(&far_spool)
            .into_iter()
            .any(|i| read_df(&far_spool, &i).contains("Subject: later"))
            .then_some(())
    });
    wait_for("near's copy to leave the queue", || {
        let spool = Spool::attach(&spool_dir).ok()?;
        let gone = spool.list().ok()?.into_iter().all(|m| {
            m.envelope
                .recipients
                .iter()
                .all(|r| r.address != "bob@far.test" || r.state != RcptState::Pending)
        });
        gone.then_some(())
    });
    near.stop();
    far.stop();
}

fn queue_cmd(root: &Path, args: &[&str]) -> (i32, String) {
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(root)
            .arg("queue")
            .args(args),
        b"",
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn queue_run_hold_release_and_delete_by_hand() {
    let port = free_port("127.0.0.2");
    let (_fr, far) = far_server(port);
    let dns = TestDns::start(&mx_records("127.0.0.2"));
    // Queue-only: nothing moves until a run is asked for.
    let (nr, near) = near_server(&dns, port, "delivery_mode = \"queue\"\ninterval = \"0s\"");
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let mut ids = Vec::new();
    for subject in ["one", "two", "three"] {
        let r = c.mail(
            "example@example1.com",
            &["bob@far.test"],
            &format!("Subject: {subject}\r\n\r\nx\r\n"),
        );
        assert!(r.starts_with("250 2.0.0 "), "{r}");
        ids.push(r.split_whitespace().nth(2).unwrap().to_string());
    }
    c.cmd("QUIT");
    let root = nr.path();
    assert_eq!(
        queue_cmd(root, &["hold", &ids[0]]),
        (0, format!("{}: held\n", ids[0]))
    );
    assert_eq!(
        queue_cmd(root, &["delete", &ids[1]]),
        (0, format!("{}: deleted\n", ids[1]))
    );
    let (code, text) = queue_cmd(root, &["delete", &ids[1]]);
    assert_eq!(code, 66, "{text}");
    assert!(text.contains("no such message"), "{text}");
    let (code, text) = queue_cmd(root, &["hold", "not/an-id"]);
    assert_eq!(code, 64, "{text}");

    // Through the daemon (SIGUSR1): the held message stays, the third goes.
    let (code, text) = queue_cmd(root, &["run"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("requested from the daemon"), "{text}");
    let far_spool = far.spool();
    let subjects = |want: &str| {
        spool_ids(&far_spool)
            .into_iter()
            .any(|i| read_df(&far_spool, &i).contains(&format!("Subject: {want}")))
    };
    wait_for("message three at far", || subjects("three").then_some(()));
    assert!(!subjects("one") && !subjects("two"));
    let near_spool = near.spool();
    wait_for("three to leave near's queue", || {
        (spool_ids(&near_spool) == vec![ids[0].clone()]).then_some(())
    });

    // Released and run directly with a selector: delivered by this process.
    assert_eq!(
        queue_cmd(root, &["release", &ids[0]]),
        (0, format!("{}: released\n", ids[0]))
    );
    let (code, text) = queue_cmd(root, &["run", "-qI", &ids[0]]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, format!("{}: delivered\n", ids[0]));
    assert!(subjects("one") && !subjects("two"));
    assert!(spool_ids(&near_spool).is_empty());
    near.stop();
    far.stop();
}

#[test]
fn one_connection_carries_a_queue_run_to_the_same_server() {
    let port = free_port("127.0.0.2");
    let (_fr, far) = far_server(port);
    let dns = TestDns::start(&mx_records("127.0.0.2"));
    let (nr, near) = near_server(&dns, port, "delivery_mode = \"queue\"\ninterval = \"0s\"");
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    for i in 0..3 {
        let r = c.mail(
            "example@example1.com",
            &["bob@far.test"],
            &format!("Subject: reuse {i}\r\n\r\nx\r\n"),
        );
        assert!(r.starts_with("250 2.0.0 "), "{r}");
    }
    c.cmd("QUIT");
    let (code, text) = queue_cmd(nr.path(), &["run", "--direct"]);
    assert_eq!(
        (code, text.matches(": delivered").count()),
        (0, 3),
        "{text}"
    );
    let far_spool = far.spool();
    assert_eq!(spool_ids(&far_spool).len(), 3);
    let log = far.log();
    assert_eq!(log.matches("INFO connect from").count(), 1, "{log}");
    assert!(log.contains("messages=3"), "{log}");
    near.stop();
    far.stop();
}

#[test]
fn delay_warning_then_return_after_the_time_limits() {
    let port = free_port("127.0.0.2");
    let (_fr, far) = far_server(port);
    let mut recs = mx_records("127.0.0.2");
    // down.test's MX answers nowhere (nothing listens on 127.0.0.5 at that port).
    recs.push(Rec::mx("down.test", 10, "mx.down.test"));
    recs.push(Rec::a("mx.down.test", "127.0.0.5"));
    let dns = TestDns::start(&recs);
    let (_nr, near) = near_server(&dns, port, "warn_after = \"1s\"\nreturn_after = \"6s\"");
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let r = c.mail(
        "alice@far.test",
        &["someone@down.test"],
        "Subject: slow\r\n\r\nwaiting\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT");
    let far_spool = far.spool();
    let find = |what: &str| {
        spool_ids(&far_spool)
            .into_iter()
            .map(|i| read_df(&far_spool, &i))
            .find(|d| d.contains(what))
    };
    let warning = wait_for("the delay warning", || {
        find("Subject: Warning: could not send message for past 1 second")
    });
    assert!(warning.contains("Action: delayed"), "{warning}");
    assert!(
        warning.contains("Final-Recipient: RFC822; someone@down.test"),
        "{warning}"
    );
    assert!(warning.contains("text/rfc822-headers"), "{warning}");
    assert!(
        !warning.contains("\nwaiting\n"),
        "a warning carries headers only: {warning}"
    );
    let bounce = wait_for("the bounce after return_after", || {
        find("Subject: Returned mail: see transcript for details")
    });
    assert!(bounce.contains("Action: failed"), "{bounce}");
    assert!(bounce.contains("Status: 4.4.7"), "{bounce}");
    assert!(
        bounce.contains("could not be delivered for 6 seconds"),
        "{bounce}"
    );
    // The original is returned in full, and only one warning was sent.
    assert!(bounce.contains("waiting"), "{bounce}");
    let warnings = spool_ids(&far_spool)
        .into_iter()
        .filter(|i| read_df(&far_spool, i).contains("Subject: Warning:"))
        .count();
    assert_eq!(warnings, 1);
    let near_spool = near.spool();
    wait_for("near's queue to empty", || {
        spool_ids(&near_spool).is_empty().then_some(())
    });
    near.stop();
    far.stop();
}

/// Runs a Python snippet with the mailbox path as argv[1]; returns its stdout.
fn python(script: &str, arg: &Path) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A local server (the seed's setup) delivering into mailboxes of `format`, with aliases for
/// a program and a file under `drop` (world-writable: the server runs as nobody).
fn local_server(format: &str, drop: &Path) -> (tempfile::TempDir, Server) {
    local_server_with(format, drop, "")
}

/// [`local_server`] with `extra_aliases` lines added to the seed's aliases.
fn local_server_with(
    format: &str,
    drop: &Path,
    extra_aliases: &str,
) -> (tempfile::TempDir, Server) {
    let r = root();
    seed_root(r.path());
    let aliases = r.path().join("etc/mail/aliases");
    let mut text = fs::read_to_string(&aliases).unwrap();
    text.push_str(&format!(
        "archive: \"|/bin/cat >> {0}/prog.txt\", {0}/file.mbox, example\n{extra_aliases}",
        drop.display()
    ));
    fs::write(&aliases, text).unwrap();
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(r.path())
            .arg("newaliases"),
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    add_user(r.path(), "example", "pw");
    // A fixed port: the `sendmail` command finds the daemon through the config.
    let port = free_port("127.0.0.1");
    let s = Server::start(
        r.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [paths]\nmailbox_format = \"{format}\"\n\
             [smtp]\nlisten = [\"127.0.0.1:{port}\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
             [queue]\nmin_backoff = \"1s\"\n"
        ),
    );
    (r, s)
}

fn drop_dir() -> tempfile::TempDir {
    let d = root();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o777)).unwrap();
    d
}

#[test]
fn local_mbox_delivery_reads_back_with_python_and_aliases_reach_programs_and_files() {
    let drop = drop_dir();
    let (r, s) = local_server("mbox", drop.path());
    let (mut c, _) = Smtp::open(s.smtp(), None);
    c.cmd("EHLO client.test");
    // Dot-stuffed on the wire, as a client must: the mailbox gets ".hidden dot".
    let body = "Subject: first\r\n\r\nFrom the start\r\n..hidden dot\r\nbye\r\n";
    assert!(
        c.mail("alice@far.test", &["example@example1.com"], body)
            .starts_with("250 ")
    );
    let body2 = "Subject: to the list\r\n\r\nlist body\r\n";
    assert!(
        c.mail("alice@far.test", &["archive@mail.example1.com"], body2)
            .starts_with("250 ")
    );
    c.cmd("QUIT");
    let mbox = r.path().join("var/mail/example");
    let spool = s.spool();
    wait_for("both deliveries and an empty queue", || {
        let n = fs::read_to_string(&mbox).ok()?.matches("\nFrom ").count() + 1;
        (n >= 2 && spool_ids(&spool).is_empty()).then_some(())
    });
    let got = python(
        "import mailbox,sys\n\
         for m in mailbox.mbox(sys.argv[1]):\n\
         \x20   print(m['Subject'], '|', m['Return-Path'], '|', m.get_from().split()[0], '|', repr(m.get_payload()))",
        &mbox,
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert_eq!(
        lines[0],
        "first | <alice@far.test> | alice@far.test | '>From the start\\n.hidden dot\\nbye\\n'",
        "{got}"
    );
    assert!(
        lines[1].starts_with("to the list | <alice@far.test>"),
        "{got}"
    );
    // The list's program and file members got it too, once each.
    let prog = fs::read_to_string(drop.path().join("prog.txt")).unwrap();
    assert_eq!(prog.matches("Subject: to the list").count(), 1, "{prog}");
    let file = fs::read_to_string(drop.path().join("file.mbox")).unwrap();
    assert!(file.starts_with("From alice@far.test "), "{file}");
    assert_eq!(file.matches("Subject: to the list").count(), 1);
    let log = s.log();
    assert!(
        log.contains("mailer=prog") && log.contains("mailer=*file*"),
        "{log}"
    );
    assert!(log.contains("ctladdr=<archive@mail.example1.com>"), "{log}");
    s.stop();
}

#[test]
fn maildir_delivery_reads_back_with_python() {
    let drop = drop_dir();
    let (r, s) = local_server("maildir", drop.path());
    let (mut c, _) = Smtp::open(s.smtp(), None);
    c.cmd("EHLO client.test");
    for i in 0..3 {
        let body = format!("Subject: md {i}\r\n\r\nFrom here {i}\r\n");
        assert!(
            c.mail("alice@far.test", &["example@example1.com"], &body)
                .starts_with("250 ")
        );
    }
    c.cmd("QUIT");
    let md = r.path().join("var/mail/example");
    wait_for("three messages in new/", || {
        (fs::read_dir(md.join("new")).ok()?.count() == 3).then_some(())
    });
    let got = python(
        "import mailbox,sys\n\
         print(sorted((m['Subject'], m.get_payload()) for m in mailbox.Maildir(sys.argv[1], factory=None)))",
        &md,
    );
    assert_eq!(
        got.trim(),
        "[('md 0', 'From here 0\\n'), ('md 1', 'From here 1\\n'), ('md 2', 'From here 2\\n')]"
    );
    s.stop();
}

fn have(tool: &str) -> bool {
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "CI must provide {tool}"
    );
    ok
}

/// The check: `echo hi | mail -s test user@localhost` reaches the mailbox, through
/// the `sendmail` link and the running daemon; then the same with the daemon down: the
/// message waits in the client spool and is delivered when the daemon starts.
#[test]
fn mailx_and_cron_mail_reach_the_mailbox_even_with_the_daemon_down() {
    if !have("mail") {
        common::skip::skip("bsd-mailx is not installed");
        return;
    }
    let drop = drop_dir();
    let (r, s) = local_server("mbox", drop.path());
    let bin = tempfile::tempdir().unwrap();
    let sendmail = common::link(bin.path(), "sendmail");
    let home = tempfile::tempdir().unwrap();
    let rc = home.path().join("mailrc");
    fs::write(&rc, format!("set sendmail={}\n", sendmail.display())).unwrap();
    let mailx = |subject: &str| {
        common::run(
            std::process::Command::new("mail")
                .env("HOME", home.path())
                .env("MAILRC", &rc)
                .env("MAILTOOL_ROOT", r.path())
                .env_remove("MAILTOOL_CONFIG")
                .args(["-s", subject, "example@localhost"]),
            b"hi\n",
        )
    };
    assert!(mailx("test").status.success());
    let mbox = r.path().join("var/mail/example");
    wait_for("mailx's message in the mbox", || {
        fs::read_to_string(&mbox)
            .ok()?
            .contains("Subject: test")
            .then_some(())
    });
    s.stop();

    // Daemon down: cron's mail goes to the client spool, exit 0, nothing delivered yet.
    let out = mailx("while down");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!fs::read_to_string(&mbox).unwrap().contains("while down"));
    let client = r.path().join("var/spool/clientmqueue");
    assert!(fs::read_dir(&client).unwrap().count() > 0);
    // The daemon imports it at start and delivers it.
    let s = Server::start(
        r.path(),
        &fs::read_to_string(r.path().join("etc/mail/mailtool.toml")).unwrap(),
    );
    wait_for("the client-spool message in the mbox", || {
        fs::read_to_string(&mbox)
            .ok()?
            .contains("Subject: while down")
            .then_some(())
    });
    let got = python(
        "import mailbox,sys\nprint(sorted(m['Subject'] for m in mailbox.mbox(sys.argv[1])))",
        &mbox,
    );
    assert_eq!(got.trim(), "['test', 'while down']");
    assert!(
        s.log().contains("imported from the client spool"),
        "{}",
        s.log()
    );
    s.stop();
}

/// Issue 12 (12): with `interval = "0s"` the daemon still runs the queue at start
/// (mailtool.toml(5): "only at start, on SIGUSR1 and with mailtool queue run"): a message
/// deferred before the restart is retried and the client spool is imported.
#[test]
fn interval_zero_still_runs_the_queue_at_start() {
    // Nothing listens on far.test's MX at first: the message is deferred.
    let port = free_port("127.0.0.2");
    let dns = TestDns::start(&mx_records("127.0.0.2"));
    let (nr, near) = near_server(&dns, port, "interval = \"0s\"");
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let r = c.mail(
        "example@example1.com",
        &["bob@far.test"],
        "Subject: deferred before the restart\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT");
    let spool_dir = near.spool();
    wait_for("a deferral", || {
        let spool = Spool::attach(&spool_dir).ok()?;
        spool
            .list()
            .ok()?
            .into_iter()
            .any(|m| m.envelope.tries > 0)
            .then_some(())
    });
    near.stop();

    // Daemon down: `sendmail` leaves its message in the client spool.
    let out = common::run(
        common::mailtool().arg("--root").arg(nr.path()).args([
            "sendmail",
            "-f",
            "example@example1.com",
            "example",
        ]),
        b"Subject: from the client spool\n\nhi\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = nr.path().join("var/spool/clientmqueue");
    assert!(fs::read_dir(&client).unwrap().count() > 0);

    // The MX comes up; the restarted daemon (no periodic runs) handles both at start.
    let (_fr, far) = far_server(port);
    let near = Server::start(
        nr.path(),
        &fs::read_to_string(nr.path().join("etc/mail/mailtool.toml")).unwrap(),
    );
    let far_spool = far.spool();
    wait_for("the deferred message at far", || {
        spool_ids(&far_spool)
            .into_iter()
            .any(|i| read_df(&far_spool, &i).contains("Subject: deferred before the restart"))
            .then_some(())
    });
    let mbox = nr.path().join("var/mail/example");
    wait_for("the client-spool message in the mbox", || {
        fs::read_to_string(&mbox)
            .ok()?
            .contains("Subject: from the client spool")
            .then_some(())
    });
    assert!(
        near.log().contains("imported from the client spool"),
        "{}",
        near.log()
    );
    wait_for("near's queue to empty", || {
        spool_ids(&spool_dir).is_empty().then_some(())
    });
    near.stop();
    far.stop();
}

/// Issue 12 (24): with a smart host the delivery log's `relay=` names the smart host, as
/// Postfix logs it (`host[ip]:port`), not the recipient's domain.
#[test]
fn the_log_names_the_smart_host_as_the_relay() {
    let port = free_port("127.0.0.2");
    let (_fr, far) = far_server(port);
    // far.test's MX would be 127.0.0.9, where nothing listens: only the smart host works.
    let dns = TestDns::start(&[
        Rec::mx("far.test", 10, "mx.far.test"),
        Rec::a("mx.far.test", "127.0.0.9"),
        Rec::a("smart.test", "127.0.0.2"),
    ]);
    let (_nr, near) = near_server(&dns, port, &format!("smart_host = \"smart.test:{port}\""));
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let r = c.mail(
        "example@example1.com",
        &["bob@far.test"],
        "Subject: via the smart host\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT");
    let far_spool = far.spool();
    wait_for("the message at the smart host", || {
        spool_ids(&far_spool)
            .into_iter()
            .any(|i| read_df(&far_spool, &i).contains("Subject: via the smart host"))
            .then_some(())
    });
    let want = format!("mailer=esmtp, relay=smart.test[127.0.0.2]:{port}, dsn=2.0.0, stat=Sent");
    wait_for("the delivery log line", || {
        near.log().contains(&want).then_some(())
    });
    let log = near.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("to=<bob@far.test>"))
            .all(|l| !l.contains("relay=far.test")),
        "{log}"
    );
    near.stop();
    far.stop();
}

/// The per-recipient blocks of the DSNs in an mbox, read with Python's email package:
/// `Final-Recipient | Action | Status | Remote-MTA | Diagnostic-Code` per line.
fn dsn_fields(mbox: &Path) -> String {
    python(
        "import mailbox,sys\n\
         for m in mailbox.mbox(sys.argv[1]):\n\
         \tfor p in m.walk():\n\
         \t\tif p.get_content_type() == 'message/delivery-status':\n\
         \t\t\tfor b in p.get_payload()[1:]:\n\
         \t\t\t\tprint(' | '.join(str(b[k]) for k in ('Final-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code')))\n",
        mbox,
    )
}

/// Issue 12 (17): a bounce after a remote server's refusal names that server in
/// `Remote-MTA:` (RFC 3464 §2.3.5), as Postfix does. The refusal comes from a real Postfix
/// (not an open relay: 554 5.7.1 Relay access denied).
#[test]
fn a_remote_refusal_bounces_with_the_remote_mta() {
    let Some(pf) = Postfix::start(PostfixOptions {
        open_relay: false,
        tls: false,
    }) else {
        return;
    };
    let dns = TestDns::start(&[
        Rec::mx("elsewhere.test", 10, "mx.elsewhere.test"),
        Rec::a("mx.elsewhere.test", "127.0.0.1"),
    ]);
    let (nr, near) = near_server(&dns, pf.smtp.port(), "");
    let (mut c, _) = Smtp::open(near.smtp(), None);
    c.cmd("EHLO client.test");
    let r = c.mail(
        "example@example1.com",
        &["x@elsewhere.test"],
        "Subject: refused by postfix\r\n\r\nx\r\n",
    );
    assert!(r.starts_with("250 2.0.0"), "{r}");
    c.cmd("QUIT");
    let mbox = nr.path().join("var/mail/example");
    wait_for("the bounce in the sender's mbox", || {
        fs::read_to_string(&mbox)
            .ok()?
            .contains("Subject: refused by postfix")
            .then_some(())
    });
    let fields = dsn_fields(&mbox);
    assert!(
        fields.starts_with(
            "RFC822; x@elsewhere.test | failed | 5.7.1 | dns; mx.elsewhere.test | SMTP; 554 5.7.1"
        ),
        "{fields}\n{}",
        near.log()
    );
    near.stop();
}

/// Issue 12 (13): NOTIFY=SUCCESS relayed to a next hop that offers DSN (a real Postfix) goes
/// on with the recipient and we send no receipt of our own: Postfix sends it (RFC 3461
/// §5.2.1). To a next hop without DSN (the same Postfix, DSN not offered) our receipt says
/// `Action: relayed`.
#[test]
fn success_notices_are_left_to_a_dsn_next_hop_and_say_relayed_otherwise() {
    for offers_dsn in [true, false] {
        let Some(pf) = Postfix::start_with(
            PostfixOptions {
                open_relay: false,
                tls: false,
            },
            if offers_dsn {
                ""
            } else {
                "smtpd_discard_ehlo_keywords = dsn"
            },
        ) else {
            return;
        };
        let dns = TestDns::start(&[
            Rec::mx("postfix.test", 10, "mx.postfix.test"),
            Rec::a("mx.postfix.test", "127.0.0.1"),
        ]);
        let (nr, near) = near_server(&dns, pf.smtp.port(), "");
        let (mut c, _) = Smtp::open(near.smtp(), None);
        c.cmd("EHLO client.test");
        assert!(c.cmd("MAIL FROM:<example@example1.com>").starts_with("250"));
        let r = c.cmd("RCPT TO:<sink@postfix.test> NOTIFY=SUCCESS");
        assert!(r.starts_with("250"), "{r}");
        let r = c.mail_body("Subject: receipt wanted\r\n\r\nx\r\n");
        assert!(r.starts_with("250 2.0.0"), "{r}");
        c.cmd("QUIT");
        wait_for("the relayed delivery", || {
            near.log()
                .lines()
                .any(|l| l.contains("to=<sink@postfix.test>") && l.contains("stat=Sent"))
                .then_some(())
        });
        let spool = near.spool();
        wait_for("near's queue to empty", || {
            spool_ids(&spool).is_empty().then_some(())
        });
        let mbox = nr.path().join("var/mail/example");
        if offers_dsn {
            // Postfix took NOTIFY=SUCCESS over and sends the receipt itself.
            wait_for("Postfix's success notice", || {
                pf.log_text()
                    .contains("sender delivery status notification")
                    .then_some(())
            });
            let log = near.log();
            assert!(!log.contains("DSN: Success notice"), "{log}");
            assert!(
                !fs::read_to_string(&mbox)
                    .unwrap_or_default()
                    .contains("Return receipt"),
                "{log}"
            );
        } else {
            wait_for("our receipt in the sender's mbox", || {
                fs::read_to_string(&mbox)
                    .ok()?
                    .contains("Subject: Return receipt")
                    .then_some(())
            });
            let fields = dsn_fields(&mbox);
            assert_eq!(
                fields.trim(),
                "RFC822; sink@postfix.test | relayed | 2.0.0 | dns; mx.postfix.test | None",
                "{}",
                near.log()
            );
            assert!(
                !pf.log_text()
                    .contains("sender delivery status notification"),
                "{}",
                pf.log_text()
            );
        }
        near.stop();
    }
}

/// Issue 12 (19): a mailbox of the other kind than `mailbox_format` (an mbox file left after
/// switching to Maildir, or a Maildir under mbox) is a local configuration problem: the mail
/// is deferred (4.3.5) with the fix in the log, never bounced, `mailtool doctor` reports it,
/// and once the admin fixes it the retry delivers.
#[test]
fn a_mailbox_of_the_wrong_kind_defers_and_doctor_reports_it() {
    for format in ["maildir", "mbox"] {
        let drop = drop_dir();
        let (r, s) = local_server(format, drop.path());
        let mailbox = r.path().join("var/mail/example");
        if format == "maildir" {
            fs::write(
                &mailbox,
                "From old@x Sat Nov 28 10:00:00 2026\nSubject: old\n\nold\n",
            )
            .unwrap();
        } else {
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(mailbox.join(sub)).unwrap();
            }
        }
        let (mut c, _) = Smtp::open(s.smtp(), None);
        c.cmd("EHLO client.test");
        let r2 = c.mail(
            "alice@far.test",
            &["example@example1.com"],
            "Subject: wrong kind\r\n\r\nx\r\n",
        );
        assert!(r2.starts_with("250 2.0.0"), "{r2}");
        c.cmd("QUIT");
        wait_for("the deferral", || {
            s.log()
                .lines()
                .any(|l| l.contains("to=<example") && l.contains("dsn=4.3.5, stat=Deferred"))
                .then_some(())
        });
        let log = s.log();
        let other = if format == "maildir" {
            "mbox"
        } else {
            "maildir"
        };
        assert!(
            log.contains(&format!("set mailbox_format = \"{other}\"")),
            "{log}"
        );
        assert!(!log.contains("DSN:") && !log.contains("stat=554"), "{log}");
        assert_eq!(spool_ids(&s.spool()).len(), 1, "{log}");

        let out = common::run(
            common::mailtool()
                .arg("--root")
                .arg(r.path())
                .args(["doctor", "--offline", "--json"]),
            b"",
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let check = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "mailbox format")
            .unwrap_or_else(|| panic!("{v:#}"))
            .clone();
        assert_eq!(check["status"], "fail", "{check:#}");
        assert!(
            check["detail"].as_str().unwrap().contains(": example ("),
            "{check:#}"
        );
        assert!(
            check["fix"]
                .as_str()
                .unwrap()
                .contains(&format!("set mailbox_format = \"{other}\"")),
            "{check:#}"
        );
        assert_eq!(out.status.code(), Some(2));

        // Fixed (here: the old mailbox moved away): the next retry delivers.
        if format == "maildir" {
            fs::remove_file(&mailbox).unwrap();
        } else {
            fs::remove_dir_all(&mailbox).unwrap();
        }
        wait_for("the delivery after the fix", || {
            let found = if format == "maildir" {
                fs::read_dir(mailbox.join("new")).ok()?.flatten().any(|e| {
                    fs::read_to_string(e.path()).is_ok_and(|t| t.contains("Subject: wrong kind"))
                })
            } else {
                fs::read_to_string(&mailbox)
                    .ok()?
                    .contains("Subject: wrong kind")
            };
            found.then_some(())
        });
        s.stop();
    }
}

/// Issue 12 (16): recipients that resolve to one mailbox get one copy, as sendmail and Postfix
/// deliver: three RCPTs over SMTP, and To/Cc/Bcc of `sendmail -t`; the mbox is read back with
/// Python's mailbox module.
#[test]
fn recipients_resolving_to_one_mailbox_get_one_copy() {
    let drop = drop_dir();
    let (r, s) = local_server("mbox", drop.path());
    let (mut c, _) = Smtp::open(s.smtp(), None);
    c.cmd("EHLO client.test");
    // All three are user `example`: by name, through the @example1.com catch-all, and at the
    // host name.
    let reply = c.mail(
        "alice@far.test",
        &[
            "example@example1.com",
            "anything@example1.com",
            "example@mail.example1.com",
        ],
        "Subject: three rcpts\r\n\r\nonce\r\n",
    );
    assert!(reply.starts_with("250 "), "{reply}");
    c.cmd("QUIT");
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["sendmail", "-t", "-f", "alice@far.test"]),
        b"To: example@example1.com\nCc: other@example1.com\nBcc: example\nSubject: sendmail -t\n\nonce\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mbox = r.path().join("var/mail/example");
    let spool = s.spool();
    wait_for("both messages delivered and an empty queue", || {
        let t = fs::read_to_string(&mbox).ok()?;
        (t.contains("Subject: three rcpts")
            && t.contains("Subject: sendmail -t")
            && spool_ids(&spool).is_empty())
        .then_some(())
    });
    let got = python(
        "import mailbox,sys\nprint(sorted(m['Subject'] for m in mailbox.mbox(sys.argv[1])))",
        &mbox,
    );
    assert_eq!(got.trim(), "['sendmail -t', 'three rcpts']", "{}", s.log());
    let log = s.log();
    assert_eq!(
        log.matches("duplicate of another recipient").count(),
        4,
        "{log}"
    );
    s.stop();
}

/// `sendmail -bv ADDR` against `root`'s config: (exit code, stdout).
fn verify(root: &Path, addr: &str) -> (i32, String) {
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(root)
            .args(["sendmail", "-bv", addr]),
        b"",
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn root_and_postmaster_route_alike_in_bv_rcpt_and_delivery() {
    // Issue 12 #22: -bv said `root... User unknown` and RCPT refused root, yet mail to
    // <Postmaster> (alias root) went into a new var/mail/root. The seed's aliases have
    // `postmaster: root` and no line for root; both cases are checked.
    for root_alias in [Some("root: example\n"), None] {
        let drop = drop_dir();
        let (r, s) = local_server_with("maildir", drop.path(), root_alias.unwrap_or(""));
        let case = format!("root alias {root_alias:?}");
        let (code_pm, bv_pm) = verify(r.path(), "postmaster");
        let (code_root, bv_root) = verify(r.path(), "root");
        let (mut c, _) = Smtp::open(s.smtp(), None);
        c.cmd("EHLO client.test");
        c.cmd("MAIL FROM:<example@example1.com>");
        let rcpt_root = c.cmd("RCPT TO:<root@mail.example1.com>");
        c.cmd("RSET");
        // RFC 5321 §4.5.1: postmaster is accepted in any case.
        let reply = c.mail(
            "example@example1.com",
            &["Postmaster"],
            "Subject: for the postmaster\r\n\r\nhi\r\n",
        );
        assert!(reply.starts_with("250 2.0.0"), "{case}: {reply}");
        c.cmd("QUIT");
        let new = r.path().join("var/mail/example/new");
        // Either the message (aliased) or its bounce (not) reaches example's Maildir.
        let got = wait_for(&format!("{case}: a message for example"), || {
            let e = fs::read_dir(&new).ok()?.flatten().next()?;
            fs::read_to_string(e.path()).ok()
        });
        wait_for("an empty queue", || {
            spool_ids(&s.spool()).is_empty().then_some(())
        });
        assert!(
            !r.path().join("var/mail/root").exists(),
            "{case}: a mailbox for root"
        );
        if root_alias.is_some() {
            assert_eq!(code_pm, 0, "{case}: {bv_pm}");
            assert_eq!(
                bv_pm,
                "example... deliverable: mailer local, user example\n"
            );
            assert_eq!((code_root, bv_root.as_str()), (0, bv_pm.as_str()));
            assert!(rcpt_root.starts_with("250 2.1.5"), "{case}: {rcpt_root}");
            assert!(got.contains("Subject: for the postmaster"), "{case}: {got}");
        } else {
            assert_eq!(code_pm, 67, "{case}: {bv_pm}");
            assert_eq!(bv_pm, "root... User unknown\n");
            assert_eq!(
                (code_root, bv_root.as_str()),
                (67, "root... User unknown\n")
            );
            assert!(rcpt_root.starts_with("550 5.1.1"), "{case}: {rcpt_root}");
            // Delivery agrees: the message bounces as User unknown.
            assert!(got.contains("User unknown"), "{case}: {got}");
            assert!(
                !got.starts_with("Subject: for the postmaster"),
                "{case}: {got}"
            );
        }
        s.stop();
    }
}
