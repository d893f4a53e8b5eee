//! Local delivery read back by other programs: Python's `mailbox` module (mbox and Maildir)
//! and BSD mailx in batch mode, plus concurrent deliveries and lock interplay with Python's
//! own mbox locking (lockf + dotlock).
//!
//! python3 and mailx are installed by `.ci/run`. Without them a test is skipped when `CI` is
//! unset and fails when it is set.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use mailtool::config::MailboxFormat;
use mailtool::mailbox::{
    LocalError, LocalMessage, LocalOptions, MboxLock, deliver_to_user, maildir, mbox,
};

/// Whether `tool` can be run; skip (false) or fail, depending on `CI`.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        common::skip::skip(&format!("{tool} is not installed"));
    }
    ok
}

/// Reads a mailbox with Python's `mailbox` module and prints one JSON object per message:
/// the From_ line (mbox), Subject, Return-Path and the body bytes in hex.
const PY_READ: &str = r#"
import json, mailbox, sys
kind, path = sys.argv[1], sys.argv[2]
box = mailbox.mbox(path, create=False) if kind == "mbox" else mailbox.Maildir(path, factory=None, create=False)
out = []
for key in sorted(box.keys(), key=str):
    m = box[key]
    body = m.get_payload(decode=True)
    if body is None:
        body = m.get_payload().encode("utf-8", "surrogateescape")
    out.append({
        "from": m.get_from() if kind == "mbox" else "",
        "subject": str(m["Subject"]),
        "return_path": str(m["Return-Path"]),
        "body": body.hex(),
    })
print(json.dumps(out))
"#;

#[derive(Debug)]
struct PyMsg {
    from: String,
    subject: String,
    return_path: String,
    body: Vec<u8>,
}

fn python_read(kind: &str, path: &Path) -> Vec<PyMsg> {
    let out = Command::new("python3")
        .args(["-c", PY_READ, kind])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("python JSON");
    v.as_array()
        .expect("array")
        .iter()
        .map(|m| PyMsg {
            from: m["from"].as_str().unwrap().to_string(),
            subject: m["subject"].as_str().unwrap().to_string(),
            return_path: m["return_path"].as_str().unwrap().to_string(),
            body: hex(m["body"].as_str().unwrap()),
        })
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A test message: what is delivered and what a reader should see as its body.
struct Case {
    sender: &'static str,
    subject: &'static str,
    data: Vec<u8>,
    /// Body as read back from mbox (mboxo: `From ` lines stay quoted, a newline is added).
    mbox_body: Vec<u8>,
    /// Body as read back from Maildir (CRLF → LF, a newline is added, no quoting).
    maildir_body: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    let mut add =
        |sender, subject: &'static str, head: &str, body: &[u8], mbox: &[u8], md: &[u8]| {
            let mut data = format!("Subject: {subject}\n{head}\n").into_bytes();
            data.extend_from_slice(body);
            v.push(Case {
                sender,
                subject,
                data,
                mbox_body: mbox.to_vec(),
                maildir_body: md.to_vec(),
            });
        };
    add(
        "joe@example.org",
        "plain",
        "",
        b"hello\n",
        b"hello\n",
        b"hello\n",
    );
    add(
        "joe@example.org",
        "from lines",
        "",
        b"From the start\n>From already quoted\nFromage\n From indented\nend\n",
        b">From the start\n>From already quoted\nFromage\n From indented\nend\n",
        b"From the start\n>From already quoted\nFromage\n From indented\nend\n",
    );
    add(
        "ann@example.org",
        "eight bit",
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n",
        "café ☃\n".as_bytes(),
        "café ☃\n".as_bytes(),
        "café ☃\n".as_bytes(),
    );
    add(
        "",
        "bounce",
        "",
        b"null sender\n",
        b"null sender\n",
        b"null sender\n",
    );
    add(
        "joe@example.org",
        "no newline",
        "",
        b"last line",
        b"last line\n",
        b"last line\n",
    );
    add("joe@example.org", "empty", "", b"", b"", b"");
    // The spool stores LF, but CRLF input must come out the same.
    v.push(Case {
        sender: "crlf@example.org",
        subject: "crlf",
        data: b"Subject: crlf\r\n\r\nline 1\r\nFrom line 2\r\n".to_vec(),
        mbox_body: b"line 1\n>From line 2\n".to_vec(),
        maildir_body: b"line 1\nFrom line 2\n".to_vec(),
    });
    v
}

fn return_path(sender: &str) -> Vec<u8> {
    format!("Return-Path: <{sender}>\n").into_bytes()
}

fn deliver_cases(kind: MailboxFormat, dir: &Path) {
    for c in cases() {
        let prepend = return_path(c.sender);
        let m = LocalMessage {
            envelope_sender: c.sender,
            arrival: SystemTime::now(),
            data: (&c.data).into(),
            prepend: &prepend,
        };
        deliver_to_user(dir, kind, "joe", &m, &LocalOptions::default()).expect("deliver");
    }
}

#[test]
fn mbox_reads_back_with_python() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    deliver_cases(MailboxFormat::Mbox, dir.path());
    let got = python_read("mbox", &dir.path().join("joe"));
    let want = cases();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.subject, w.subject);
        let shown = if w.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            w.sender
        };
        assert!(g.from.starts_with(&format!("{shown} ")), "{g:?}");
        assert_eq!(g.return_path, format!("<{}>", w.sender));
        assert_eq!(
            String::from_utf8_lossy(&g.body),
            String::from_utf8_lossy(&w.mbox_body),
            "{}",
            w.subject
        );
        assert_eq!(g.body, w.mbox_body, "{}", w.subject);
    }
}

#[test]
fn maildir_reads_back_with_python() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    deliver_cases(MailboxFormat::Maildir, dir.path());
    let md = dir.path().join("joe");
    assert_eq!(maildir::list_new(&md).unwrap().len(), cases().len());
    let got = python_read("maildir", &md);
    // Python's keys are the unique part of the names; sort by subject on both sides.
    let got: BTreeMap<&str, &PyMsg> = got.iter().map(|m| (m.subject.as_str(), m)).collect();
    let want = cases();
    assert_eq!(got.len(), want.len());
    for w in &want {
        let g = got[w.subject];
        assert_eq!(g.return_path, format!("<{}>", w.sender));
        assert_eq!(g.body, w.maildir_body, "{}", w.subject);
    }
}

#[test]
fn mbox_reads_back_with_mailx() {
    if !have("mailx") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    deliver_cases(MailboxFormat::Mbox, dir.path());
    let mbox = dir.path().join("joe");
    let before = std::fs::read(&mbox).unwrap();
    // `from *` lists every header line, `p 2` prints one message, `x` quits without touching
    // the mailbox; MAILRC and HOME keep the user's settings out.
    let mut child = Command::new("mailx")
        .arg("-N")
        .arg("-f")
        .arg(&mbox)
        .env("MAILRC", "/dev/null")
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailx");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from *\np 2\nx\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = cases().len();
    assert!(text.contains(&format!(": {n} messages")), "{text}");
    let headers: Vec<&str> = text.lines().filter(|l| is_header_line(l)).collect();
    assert_eq!(headers.len(), n, "{text}");
    for (h, c) in headers.iter().zip(cases()) {
        assert!(h.ends_with(c.subject), "{h:?} vs {}", c.subject);
    }
    assert!(text.contains("Message 2:\n"), "{text}");
    assert!(text.contains("\n>From the start\n"), "{text}");
    assert_eq!(
        std::fs::read(&mbox).unwrap(),
        before,
        "mailx changed the mailbox"
    );
}

/// mailx's header summary line: `>N  1 sender  date  lines/bytes  subject`.
fn is_header_line(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 3
        && matches!(b[0], b'>' | b' ')
        && matches!(b[1], b'N' | b'U' | b'O' | b' ')
        && l[2..]
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit())
}

/// 8 threads deliver 50 messages each to one mbox while another thread holds the mailbox
/// lock for a while; all 400 must come out whole and distinct.
#[test]
fn concurrent_deliveries_stay_whole() {
    if !have("python3") {
        return;
    }
    const THREADS: usize = 8;
    const EACH: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("joe"));
    let done = Arc::new(AtomicUsize::new(0));
    let body = |t: usize, i: usize| -> Vec<u8> {
        // Sizes vary so that interleaved writes would show; `From ` lines test quoting.
        let mut b = Vec::new();
        for k in 0..(1 + (t * 7 + i) % 40) {
            b.extend_from_slice(format!("t{t} i{i} line {k} ..........\n").as_bytes());
        }
        b.extend_from_slice(format!("From thread {t}\n").as_bytes());
        b
    };
    let mut handles = Vec::new();
    for t in 0..THREADS {
        let path = Arc::clone(&path);
        let done = Arc::clone(&done);
        handles.push(std::thread::spawn(move || {
            let opts = LocalOptions {
                lock_timeout: Duration::from_secs(120),
                ..LocalOptions::default()
            };
            for i in 0..EACH {
                let mut data = format!("Subject: m-{t}-{i}\n\n").into_bytes();
                data.extend_from_slice(&body(t, i));
                let prepend = return_path("joe@example.org");
                let m = LocalMessage {
                    envelope_sender: "joe@example.org",
                    arrival: SystemTime::now(),
                    data: (&data).into(),
                    prepend: &prepend,
                };
                mbox::deliver(&path, &m, &opts).expect("deliver");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Hold the lock once some deliveries are in; nothing may be appended meanwhile.
    for _ in 0..20_000 {
        if done.load(Ordering::SeqCst) >= 40 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    {
        let lock = MboxLock::acquire(&path, Duration::from_secs(60)).expect("lock");
        let held = std::fs::metadata(&*path).unwrap().len();
        std::thread::sleep(Duration::from_millis(300));
        lock.touch().unwrap();
        assert_eq!(std::fs::metadata(&*path).unwrap().len(), held);
    }
    for h in handles {
        h.join().unwrap();
    }
    let got = python_read("mbox", &path);
    assert_eq!(got.len(), THREADS * EACH);
    let mut seen = BTreeMap::new();
    for g in &got {
        let (t, i) = g
            .subject
            .strip_prefix("m-")
            .and_then(|s| s.split_once('-'))
            .map(|(t, i)| (t.parse::<usize>().unwrap(), i.parse::<usize>().unwrap()))
            .unwrap_or_else(|| panic!("bad subject {:?}", g.subject));
        let mut want = body(t, i);
        let at = want.len() - format!("From thread {t}\n").len();
        want.insert(at, b'>');
        assert_eq!(g.body, want, "{}", g.subject);
        assert!(seen.insert((t, i), ()).is_none(), "duplicate {}", g.subject);
    }
    assert_eq!(seen.len(), THREADS * EACH);
}

/// Python's `mailbox.mbox.lock()` (lockf + dotlock) and ours exclude each other.
#[test]
fn locks_interoperate_with_python() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("joe");
    let m = LocalMessage {
        envelope_sender: "joe@example.org",
        arrival: SystemTime::now(),
        data: b"Subject: x\n\nbody\n".into(),
        prepend: b"",
    };
    mbox::deliver(&path, &m, &LocalOptions::default()).unwrap();

    // Python holds its lock until its stdin closes.
    let mut py = Command::new("python3")
        .args([
            "-c",
            "import mailbox,sys\nb=mailbox.mbox(sys.argv[1])\nb.lock()\nprint('locked',flush=True)\nsys.stdin.read()\nb.unlock()",
        ])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    let quick = LocalOptions {
        lock_timeout: Duration::from_millis(100),
        ..LocalOptions::default()
    };
    let e = mbox::deliver(&path, &m, &quick).unwrap_err();
    assert!(matches!(e, LocalError::LockTimeout { .. }), "{e}");
    assert!(e.is_temporary());
    drop(py.stdin.take());
    assert!(py.wait().unwrap().success());
    mbox::deliver(&path, &m, &quick).expect("deliver after python unlocked");

    // And the other way round: while we hold MboxLock, Python cannot lock.
    let held = MboxLock::acquire(&path, Duration::from_secs(5)).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import mailbox,sys\ntry:\n mailbox.mbox(sys.argv[1]).lock()\n print('locked')\nexcept mailbox.ExternalClashError:\n print('clash')",
        ])
        .arg(&path)
        .output()
        .unwrap();
    drop(held);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "clash");
    assert_eq!(python_read("mbox", &path).len(), 2);
}
