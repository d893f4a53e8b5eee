//! Milters, as sendmail's INPUT_MAIL_FILTER calls them: `serve` with `[[milter]]` entries
//! against a libmilter-based test milter (Debian's python3-milter, which links sendmail's
//! libmilter; tests/fixtures/milter/testmilter.py), against milters that are down or never
//! answer, and against OpenDKIM and rspamd (the README's recipes).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::milter::TestMilter;
use common::server::{Server, Smtp, add_user, ip, seed_root, temp_root};

/// A message kept in the spool (the tests run queue-only): its control and data files.
struct Queued {
    qf: String,
    df: String,
}

impl Queued {
    /// The message as delivery writes it: the `H` records, then the data.
    fn message(&self) -> String {
        let mut out = String::new();
        let mut in_h = false;
        for line in self.qf.lines() {
            if let Some(h) = line.strip_prefix('H') {
                in_h = true;
                out.push_str(h);
                out.push('\n');
            } else if in_h && line.starts_with([' ', '\t']) {
                out.push_str(line);
                out.push('\n');
            } else {
                in_h = false;
            }
        }
        out + &self.df
    }

    fn recipients(&self) -> Vec<String> {
        self.qf
            .lines()
            .filter(|l| l.starts_with('R'))
            .filter_map(|l| {
                l.rsplit_once(":<")
                    .map(|(_, a)| a.trim_end_matches('>').to_string())
            })
            .collect()
    }

    fn header(&self, name: &str) -> Vec<String> {
        let msg = self.message();
        let mut out: Vec<String> = Vec::new();
        let mut current: Option<usize> = None;
        for line in msg.lines() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(i) = current {
                    out[i].push(' ');
                    out[i].push_str(line.trim());
                }
                continue;
            }
            current = None;
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                out.push(v.trim().to_string());
                current = Some(out.len() - 1);
            }
        }
        out
    }

    fn body(&self) -> String {
        self.df
            .split_once("\n\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

fn queued(s: &Server) -> Vec<Queued> {
    let dir = s.spool();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_prefix("qf") {
            let qf = std::fs::read_to_string(e.path()).unwrap();
            let df = std::fs::read_to_string(dir.join(format!("df{id}"))).unwrap_or_default();
            out.push(Queued { qf, df });
        }
    }
    out
}

/// The seed's setup (mail for example1.com goes to the local user `example`) with one
/// `[[milter]]` at `socket`.
fn server_with(root: &Path, socket: &str, on_failure: &str, timeouts: &str) -> Server {
    seed_root(root);
    add_user(root, "example", "pw");
    Server::start(
        root,
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
             [[milter]]\nname = \"test\"\nsocket = \"{socket}\"\non_failure = \"{on_failure}\"\n\
             timeouts = {timeouts}\n"
        ),
    )
}

const FAST: &str = "{ connect = \"2s\", send = \"2s\", receive = \"2s\", end = \"3s\" }";

const MSG: &str = "From: someone@example1.com\r\nTo: someone@example1.com\r\nSubject: hello\r\nX-Delete-Me: yes\r\n\r\nThe body.\r\n";

fn with_milter(mode: &str, extra: &[&str]) -> Option<(TestMilter, tempfile::TempDir, Server)> {
    let m = TestMilter::start(mode, extra)?;
    let r = temp_root();
    let s = server_with(r.path(), &m.socket(), "tempfail", FAST);
    Some((m, r, s))
}

/// One message from `from_ip` to `rcpts`; the replies to each RCPT and to the dot.
fn send(s: &Server, from_ip: &str, rcpts: &[&str], msg: &str) -> (Vec<String>, String) {
    let (mut c, g) = Smtp::open(s.smtp(), ip(from_ip));
    assert!(g.starts_with("220"), "{g}");
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let r = c.cmd("MAIL FROM:<sender@example1.com>");
    assert!(r.starts_with("250"), "{r}");
    let mut replies = Vec::new();
    for to in rcpts {
        replies.push(c.cmd(&format!("RCPT TO:<{to}>")));
    }
    if !replies.iter().any(|r| r.starts_with("250")) {
        c.cmd("QUIT");
        return (replies, String::new());
    }
    let data = c.cmd("DATA");
    if !data.starts_with("354") {
        c.cmd("QUIT");
        return (replies, data);
    }
    c.send(msg.as_bytes());
    let dot = c.cmd(".");
    c.cmd("QUIT");
    (replies, dot)
}

fn cbs(log: &[serde_json::Value], cb: &str) -> Vec<serde_json::Value> {
    log.iter().filter(|l| l["cb"] == cb).cloned().collect()
}

#[test]
fn a_header_is_added_and_the_milter_sees_the_session_and_its_macros() {
    let Some((m, _r, s)) = with_milter("addheader", &[]) else {
        return;
    };
    // Two messages in one session over AUTH: one milter connection for both.
    let (mut c, g) = Smtp::open(s.smtp(), ip("127.0.0.1"));
    assert!(g.starts_with("220"), "{g}");
    assert!(c.cmd("EHLO client.example").starts_with("250"));
    let r = c.cmd("AUTH PLAIN AGV4YW1wbGUAcHc="); // \0example\0pw
    assert!(r.starts_with("235"), "{r}");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = c.mail("sender@example1.com", &["someone@example1.com"], MSG);
        assert!(r.starts_with("250 2.0.0 "), "{r}");
        ids.push(r.split_whitespace().nth(2).unwrap().to_string());
    }
    c.cmd("QUIT");
    let q = queued(&s);
    assert_eq!(q.len(), 2, "{}", s.log());
    for msg in &q {
        assert_eq!(
            msg.header("X-Test-Milter"),
            ["added by testmilter"],
            "{}",
            msg.message()
        );
        assert_eq!(msg.header("Subject"), ["hello"]);
    }
    let log = common::wait_for("the milter's close callback", || {
        let l = m.log();
        (!cbs(&l, "close").is_empty()).then_some(l)
    });
    assert_eq!(
        cbs(&log, "connect").len(),
        1,
        "one connection per session: {log:?}"
    );
    assert_eq!(cbs(&log, "eom").len(), 2);
    let connect = &cbs(&log, "connect")[0];
    let text = connect.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    let macros = |cb: &str| -> serde_json::Value {
        cbs(&log, cb)
            .into_iter()
            .rev()
            .find_map(|v| v.get("macros").cloned())
            .unwrap_or_default()
    };
    assert_eq!(macros("connect")["j"], "mail.example1.com", "{log:?}");
    assert_eq!(macros("connect")["{daemon_name}"], "MTA");
    assert_eq!(macros("connect")["{client_addr}"], "127.0.0.1");
    assert_eq!(macros("envfrom")["{auth_authen}"], "example");
    assert_eq!(macros("envfrom")["{auth_type}"], "PLAIN");
    assert_eq!(macros("envfrom")["{mail_addr}"], "sender@example1.com");
    assert_eq!(macros("envrcpt")["{rcpt_addr}"], "someone@example1.com");
    // The queue id the milter saw at the end of message is the one the client was given.
    let eom_ids: Vec<String> = cbs(&log, "eom")
        .iter()
        .filter_map(|v| v["macros"]["i"].as_str().map(str::to_string))
        .collect();
    assert_eq!(eom_ids, ids);
    let headers: Vec<String> = cbs(&log, "header")
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    assert!(headers.contains(&"Received".to_string()), "{headers:?}");
    assert!(headers.contains(&"Subject".to_string()), "{headers:?}");
    assert!(!cbs(&log, "body").is_empty());
}

#[test]
fn a_refusal_reaches_the_client_in_the_milters_own_words() {
    let Some((_m, _r, s)) = with_milter("reject", &[]) else {
        return;
    };
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
    assert_eq!(
        dot.trim_end(),
        "550 5.7.1 testmilter says no to this message"
    );
    assert!(queued(&s).is_empty());
    assert!(
        s.log()
            .contains("Milter (test): data, reject=550 5.7.1 testmilter says no"),
        "{}",
        s.log()
    );
}

#[test]
fn a_recipient_refused_by_the_milter_is_left_out() {
    let Some((_m, _r, s)) = with_milter("reject-rcpt", &[]) else {
        return;
    };
    let (rcpt, dot) = send(
        &s,
        "127.0.0.9",
        &["blocked@example1.com", "someone@example1.com"],
        MSG,
    );
    assert_eq!(
        rcpt[0].trim_end(),
        "550 5.7.1 testmilter refuses this recipient"
    );
    assert!(rcpt[1].starts_with("250"), "{rcpt:?}");
    assert!(dot.starts_with("250"), "{dot}");
    let q = queued(&s);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients(), ["someone@example1.com"]);
}

#[test]
fn a_tempfail_is_sendmails_451() {
    let Some((_m, _r, s)) = with_milter("tempfail", &[]) else {
        return;
    };
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
    assert_eq!(dot.trim_end(), "451 4.3.2 Please try again later");
    assert!(queued(&s).is_empty());
}

#[test]
fn the_body_is_replaced() {
    let Some((_m, _r, s)) = with_milter("replacebody", &[]) else {
        return;
    };
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
    assert!(dot.starts_with("250"), "{dot}");
    let q = queued(&s);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].body(), "This body was replaced by testmilter.\n");
    assert_eq!(q[0].header("Subject"), ["hello"]);
    // The size the qf records is the new data's.
    let size: u64 = q[0]
        .qf
        .lines()
        .find_map(|l| l.strip_prefix('I'))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size, q[0].df.len() as u64);
}

#[test]
fn a_large_body_goes_to_the_milter_in_chunks_and_is_replaced_on_disk() {
    let Some((m, _r, s)) = with_milter("replacebody", &[]) else {
        return;
    };
    let line = "x".repeat(998);
    let mut msg = String::from(MSG.split("\r\n\r\n").next().unwrap());
    msg.push_str("\r\n\r\n");
    for _ in 0..600 {
        msg.push_str(&line);
        msg.push_str("\r\n");
    }
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], &msg);
    assert!(dot.starts_with("250"), "{dot}");
    let q = queued(&s);
    assert_eq!(q[0].body(), "This body was replaced by testmilter.\n");
    let sizes: Vec<u64> = cbs(&m.log(), "body")
        .iter()
        .filter_map(|v| v["len"].as_u64())
        .collect();
    assert!(sizes.len() > 1, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 65535), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<u64>(), 600 * 1000);
}

#[test]
fn recipients_are_added_and_deleted() {
    let Some((_m, _r, s)) = with_milter(
        "rcpts",
        &[
            "--add-rcpt",
            "<added@example1.com>",
            "--del-rcpt",
            "<dropped@example1.com>",
        ],
    ) else {
        return;
    };
    let (_, dot) = send(
        &s,
        "127.0.0.9",
        &["someone@example1.com", "dropped@example1.com"],
        MSG,
    );
    assert!(dot.starts_with("250"), "{dot}");
    let q = queued(&s);
    assert_eq!(
        q[0].recipients(),
        ["someone@example1.com", "added@example1.com"]
    );
}

#[test]
fn headers_are_changed_and_deleted() {
    let Some((_m, _r, s)) = with_milter("chgheader", &[]) else {
        return;
    };
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
    assert!(dot.starts_with("250"), "{dot}");
    let q = queued(&s);
    assert_eq!(
        q[0].header("Subject"),
        ["[milter] hello"],
        "{}",
        q[0].message()
    );
    assert!(q[0].header("X-Delete-Me").is_empty(), "{}", q[0].message());
    assert_eq!(q[0].body(), "The body.\n");
}

#[test]
fn a_quarantined_message_is_held_shown_and_released() {
    let Some((_m, r, s)) = with_milter("quarantine", &[]) else {
        return;
    };
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
    assert!(dot.starts_with("250"), "{dot}");
    let id = dot.split_whitespace().nth(2).unwrap().to_string();
    let mailq = common::run(
        common::mailtool().arg("--root").arg(r.path()).arg("mailq"),
        b"",
    );
    let text = String::from_utf8_lossy(&mailq.stdout);
    assert!(text.contains(&format!("{id}-")), "held: {text}");
    assert!(text.contains("QUARANTINE: testmilter quarantine"), "{text}");
    let json = common::run(
        common::mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["mailq", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["quarantine"], "testmilter quarantine");
    assert_eq!(v[0]["held"], true);
    let out = common::run(
        common::mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["queue", "release", &id]),
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = common::run(
        common::mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["mailq", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["quarantine"], serde_json::Value::Null);
    assert_eq!(v[0]["held"], false);
}

#[test]
fn a_discarded_message_is_answered_250_and_not_kept() {
    let Some((_m, _r, s)) = with_milter("discard", &[]) else {
        return;
    };
    let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
    assert!(dot.starts_with("250"), "{dot}");
    assert!(queued(&s).is_empty());
    assert!(s.log().contains("discarded (milter)"), "{}", s.log());
}

/// A milter that takes connections and never says a word.
fn silent_milter() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let h = std::thread::spawn(move || {
        let mut held = Vec::new();
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            match l.accept() {
                Ok((c, _)) => held.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            if held.len() > 8 {
                break;
            }
        }
    });
    (port, h)
}

/// A milter speaking the protocol by hand that answers everything with "continue" and then
/// goes quiet at the end of the message.
fn quiet_at_eom() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut c, _)) = l.accept() else { return };
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        loop {
            let mut len = [0u8; 4];
            if c.read_exact(&mut len).is_err() {
                return;
            }
            let mut data = vec![0u8; u32::from_be_bytes(len) as usize];
            if c.read_exact(&mut data).is_err() {
                return;
            }
            let reply: Vec<u8> = match data[0] {
                // Version 6, no actions, every step answered.
                b'O' => [&[0, 0, 0, 13, b'O'][..], &6u32.to_be_bytes(), &[0; 8]].concat(),
                b'D' | b'A' => continue,
                b'E' => {
                    std::thread::sleep(Duration::from_secs(30));
                    return;
                }
                b'Q' => return,
                _ => vec![0, 0, 0, 1, b'c'],
            };
            if c.write_all(&reply).is_err() {
                return;
            }
        }
    });
    port
}

/// The three failure modes, with the milter `socket` failing at connect (down or silent).
fn failure_modes(socket: &str) {
    for (mode, want) in [
        ("accept", "250"),
        ("tempfail", "451 4.3.2 Please try again later"),
        ("reject", "550 5.7.1 Command rejected"),
    ] {
        let r = temp_root();
        let s = server_with(r.path(), socket, mode, FAST);
        let start = Instant::now();
        let (mut c, g) = Smtp::open(s.smtp(), ip("127.0.0.9"));
        assert!(g.starts_with("220"), "{g}");
        assert!(c.cmd("EHLO client.example").starts_with("250"));
        let mail = c.cmd("MAIL FROM:<sender@example1.com>");
        if mode == "accept" {
            assert!(mail.starts_with("250"), "{mode}: {mail}");
            assert!(c.cmd("RCPT TO:<someone@example1.com>").starts_with("250"));
            let dot = c.mail_body(MSG);
            assert!(dot.starts_with("250"), "{mode}: {dot}");
            assert_eq!(queued(&s).len(), 1, "nothing accepted is lost");
        } else {
            assert_eq!(mail.trim_end(), want, "{mode}");
            assert!(queued(&s).is_empty());
        }
        assert!(c.cmd("QUIT").starts_with("221"));
        // connect (2 s) + one reply (2 s), with room for a slow machine.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{mode}: {:?}",
            start.elapsed()
        );
        assert!(s.log().contains("Milter (test)"), "{}", s.log());
    }
}

#[test]
fn a_milter_that_is_down_fails_as_configured() {
    let port = common::server::free_port("127.0.0.1");
    failure_modes(&format!("inet:{port}@127.0.0.1"));
}

#[test]
fn a_milter_that_never_answers_fails_as_configured() {
    let (port, _h) = silent_milter();
    failure_modes(&format!("inet:{port}@127.0.0.1"));
}

#[test]
fn a_milter_silent_at_the_end_of_message_times_out_without_losing_mail() {
    for (mode, want) in [
        ("accept", "250"),
        ("tempfail", "451 4.3.2"),
        ("reject", "554 5.7.1"),
    ] {
        let port = quiet_at_eom();
        let r = temp_root();
        let s = server_with(r.path(), &format!("inet:{port}@127.0.0.1"), mode, FAST);
        let start = Instant::now();
        let (_, dot) = send(&s, "127.0.0.9", &["someone@example1.com"], MSG);
        assert!(dot.starts_with(want), "{mode}: {dot}");
        assert_eq!(queued(&s).len(), usize::from(mode == "accept"), "{mode}");
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{mode}: {:?}",
            start.elapsed()
        );
    }
}
