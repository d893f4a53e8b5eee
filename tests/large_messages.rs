//! Memory bounded whatever the message size (issue 15): messages much larger than any buffer
//! go through SMTP, the spool, local delivery (mbox, a `/file` and a `|program`) and POP3
//! RETR, arrive intact, and the server's peak RSS stays below the size of the messages it
//! handled at once.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::server::{Server, Smtp, add_user, free_port, seed_root, temp_root as root};

/// Each message: about 40 MiB of 78-byte lines.
const LINES: usize = 540_000;

/// Line `i` of message `k`: mostly text, every 1000th begins with "From " (quoted in an mbox)
/// and every 777th with "." (stuffed on the wire).
fn line(k: usize, i: usize) -> String {
    let lead = if i.is_multiple_of(1000) {
        "From "
    } else if i.is_multiple_of(777) {
        "."
    } else {
        "L"
    };
    format!("{lead}{k}-{i:07}-{}", "abcdefghij".repeat(6))
}

/// Sends message `k` to `rcpt`, dot-stuffed, in 64 KiB writes; returns the final reply.
fn send_large(addr: std::net::SocketAddr, k: usize, rcpt: &str) -> String {
    let (mut c, g) = Smtp::open(addr, None);
    assert!(g.starts_with("220"), "{g}");
    c.cmd("EHLO big.test");
    let r = c.cmd("MAIL FROM:<alice@far.test>");
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
    assert!(r.starts_with("250"), "{r}");
    let r = c.cmd("DATA");
    assert!(r.starts_with("354"), "{r}");
    let mut buf = format!("Subject: big {k}\r\n\r\n").into_bytes();
    for i in 0..LINES {
        let l = line(k, i);
        if l.starts_with('.') {
            buf.push(b'.');
        }
        buf.extend_from_slice(l.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if buf.len() >= 64 * 1024 {
            c.send(&buf);
            buf.clear();
        }
    }
    buf.extend_from_slice(format!("END {k}\r\n").as_bytes());
    c.send(&buf);
    let r = c.cmd(".");
    c.cmd("QUIT");
    r
}

/// The body lines of message `k` as a local mailbox or POP3 shows them (`>From ` in an mbox).
fn check_body(text: &str, k: usize, mbox_quoting: bool) {
    let start = text
        .find(&format!("Subject: big {k}\n"))
        .unwrap_or_else(|| panic!("message {k} missing"));
    let body = &text[start..];
    let body = &body[body.find("\n\n").expect("header end") + 2..];
    let mut lines = body.lines();
    for i in 0..LINES {
        let want = line(k, i);
        let got = lines
            .next()
            .unwrap_or_else(|| panic!("message {k}: cut at line {i}"));
        if mbox_quoting && want.starts_with("From ") {
            assert_eq!(got, format!(">{want}"), "message {k} line {i}");
        } else {
            assert_eq!(got, want, "message {k} line {i}");
        }
    }
    assert_eq!(lines.next(), Some(format!("END {k}").as_str()));
}

/// Peak resident set of a process, from /proc (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmHWM");
    kb * 1024
}

#[test]
fn large_messages_stream_through_and_memory_stays_bounded() {
    let r = root();
    seed_root(r.path());
    let drop = root();
    fs::set_permissions(drop.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let aliases = r.path().join("etc/mail/aliases");
    let mut text = fs::read_to_string(&aliases).unwrap();
    text.push_str(&format!(
        "archive: \"|/bin/cat > {0}/prog.txt\", {0}/file.mbox\n",
        drop.path().display()
    ));
    fs::write(&aliases, text).unwrap();
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(r.path())
            .arg("newaliases"),
        b"",
    );
    assert!(out.status.success());
    add_user(r.path(), "example", "pw");
    let pop = free_port("127.0.0.1");
    let srv = Server::start(
        r.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nmax_message_size = 0\n\
             shutdown_grace = \"1s\"\n\
             [pop3]\nlisten = [\"127.0.0.1:{pop}\"]\n\
             [queue]\nmin_backoff = \"1s\"\n"
        ),
    );
    let addr = srv.smtp();
    // Two at once: one to a mailbox, one to a program and a file.
    let senders: Vec<_> = [
        (0, "example@example1.com"),
        (1, "archive@mail.example1.com"),
    ]
    .into_iter()
    .map(|(k, rcpt)| std::thread::spawn(move || send_large(addr, k, rcpt)))
    .collect();
    for s in senders {
        let reply = s.join().unwrap();
        assert!(reply.starts_with("250 2.0.0"), "{reply}");
    }
    let mbox = r.path().join("var/mail/example");
    let prog = drop.path().join("prog.txt");
    let file = drop.path().join("file.mbox");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let queue_empty = fs::read_dir(srv.spool())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with("qf"));
        if queue_empty && mbox.exists() && prog.exists() && file.exists() {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered:\n{}", srv.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    check_body(&fs::read_to_string(&mbox).unwrap(), 0, true);
    check_body(&fs::read_to_string(&file).unwrap(), 1, true);
    check_body(&fs::read_to_string(&prog).unwrap(), 1, false);

    // POP3 RETR of the 40 MiB message, read back and checked.
    let mut p = std::net::TcpStream::connect(("127.0.0.1", pop)).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut rd = BufReader::new(p.try_clone().unwrap());
    let mut l = String::new();
    rd.read_line(&mut l).unwrap();
    for cmd in ["USER example", "PASS pw", "RETR 1"] {
        p.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        l.clear();
        rd.read_line(&mut l).unwrap();
        assert!(l.starts_with("+OK"), "{cmd}: {l}");
    }
    let mut got = String::new();
    loop {
        l.clear();
        assert!(rd.read_line(&mut l).unwrap() > 0, "RETR cut short");
        if l == ".\r\n" {
            break;
        }
        let t = l.trim_end_matches("\r\n");
        got.push_str(t.strip_prefix('.').unwrap_or(t));
        got.push('\n');
    }
    check_body(&got, 0, true);
    p.write_all(b"QUIT\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = rd.read_to_end(&mut rest);

    // 80 MiB went through at once; a server that held whole messages would have peaked far
    // above it (the message, its copy for delivery, the encoded output).
    let peak = peak_rss(srv.child.id());
    eprintln!("server peak RSS: {} KiB", peak / 1024);
    assert!(
        peak < 64 * 1024 * 1024,
        "peak RSS {} MiB for two 40 MiB messages",
        peak / (1024 * 1024)
    );
    srv.stop();
}

/// The spool's files, sorted.
fn spool_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("qf") || n.starts_with("df") || n.starts_with("tf"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// kill -9 while a large message is half received: after the restart the acknowledged large
// message is whole in the spool, and the half one has left nothing behind (its df was already
// on disk: recovery removes a df without a qf).
#[test]
fn kill_9_during_a_large_data_loses_nothing_acknowledged_and_leaves_nothing_half() {
    let r = root();
    seed_root(r.path());
    add_user(r.path(), "example", "pw");
    let config = "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
                  [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nmax_message_size = 0\n";
    let srv = Server::start(r.path(), config);
    let addr = srv.smtp();
    // One whole message of about 8 MiB: spilled to its df, then acknowledged.
    let body: String = (0..100_000)
        .map(|i| format!("line {i:06} of the first message\r\n"))
        .collect();
    let (mut c, _) = Smtp::open(addr, None);
    c.cmd("EHLO big.test");
    let reply = c.mail("alice@far.test", &["example@example1.com"], &body);
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    c.cmd("QUIT");
    // A second one, 4 MiB sent of it, never ended.
    let (mut c, _) = Smtp::open(addr, None);
    c.cmd("EHLO big.test");
    assert!(c.cmd("MAIL FROM:<alice@far.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<example@example1.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    for _ in 0..64 {
        c.send(&[b'x'; 64 * 1024]);
    }
    c.send(b"\r\n");
    // Wait until the half message's df is on disk, then kill.
    let spool = srv.spool();
    let deadline = Instant::now() + Duration::from_secs(20);
    while spool_files(&spool)
        .iter()
        .filter(|n| n.starts_with("df"))
        .count()
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "no df for the message in progress"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    srv.kill9();
    let srv = Server::start(r.path(), config);
    let files = spool_files(&srv.spool());
    assert_eq!(files.len(), 2, "{files:?}\n{}", srv.log());
    assert!(
        files[0].starts_with("df") && files[1].starts_with("qf"),
        "{files:?}"
    );
    let df = fs::read_to_string(srv.spool().join(&files[0])).unwrap();
    assert!(df.contains("line 099999 of the first message\n"));
    assert!(
        srv.log().contains("data file without control file"),
        "{}",
        srv.log()
    );
    srv.stop();
}
