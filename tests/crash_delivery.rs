//! Crash safety of the whole path (issue 4): `kill -9` on `serve` while Postfix's
//! smtp-source pushes 5,000 messages through it to a second server, then a restart. Every
//! message that was accepted (logged before its 250 went out) must arrive; duplicates are
//! counted and reported (at most the deliveries in flight at the kill may repeat).

mod common;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dns::{Rec, TestDns};
use common::server::{Server, add_user, free_port, seed_root, temp_root as root};

const MESSAGES: usize = 5000;

fn near_config(dns: &TestDns, port: u16) -> String {
    format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
         max_connections_per_ip = 100\n\
         [dns]\n{}\ntimeout = \"500ms\"\n\
         [queue]\nremote_port = {port}\nmin_backoff = \"1s\"\nmax_backoff = \"2s\"\n",
        dns.config_servers()
    )
}

/// Queue ids accepted by near, from its log: the line is written after the spool commit and
/// before the 250 is sent, so it covers every message a client may believe delivered.
fn accepted(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(": from=<") && l.contains("nrcpts="))
        .filter_map(|l| {
            let i = l.find(": from=<")?;
            l[..i].rsplit(' ').next().map(str::to_string)
        })
        .collect()
}

/// near's queue id in each message far holds (from near's Received: header).
fn delivered(spool: &Path) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for e in fs::read_dir(spool).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("df") {
            continue;
        }
        let text = String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned();
        let Some(at) = text.find("by mail.example1.com (mailtool) with ") else {
            continue;
        };
        let rest = &text[at..];
        if let Some(id) = rest.split_whitespace().skip_while(|w| *w != "id").nth(1) {
            *seen
                .entry(id.trim_end_matches([';', '\r']).to_string())
                .or_insert(0) += 1;
        }
    }
    seen
}

fn count_q(spool: &Path) -> usize {
    fs::read_dir(spool)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("qf"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn kill_9_during_a_load_loses_nothing() {
    let source = Path::new("/usr/sbin/smtp-source");
    if !source.exists() {
        common::skip::skip("smtp-source (postfix) is not installed");
        return;
    }
    // far: the sink, keeping everything in its spool.
    let port = free_port("127.0.0.2");
    let fr = root();
    fs::create_dir_all(fr.path().join("etc/mail")).unwrap();
    fs::write(fr.path().join("etc/mail/local-host-names"), "far.test\n").unwrap();
    add_user(fr.path(), "bob", "pw");
    let far = Server::start(
        fr.path(),
        &format!(
            "hostname = \"mx.far.test\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.2:{port}\"]\nsubmission = []\nmax_connections_per_ip = 100\n"
        ),
    );
    let dns = TestDns::start(&[
        Rec::mx("far.test", 10, "mx.far.test"),
        Rec::a("mx.far.test", "127.0.0.2"),
    ]);
    let nr = root();
    seed_root(nr.path());
    let near = Server::start(nr.path(), &near_config(&dns, port));
    let addr = near.smtp();

    let mut pusher = Command::new(source)
        .args(["-s", "20", "-m", &MESSAGES.to_string(), "-l", "512"])
        .args(["-f", "example@example1.com", "-t", "bob@far.test"])
        .arg(addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-source");
    // Kill near in the middle of the stream: after a fifth of the messages were accepted.
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted(&near.log()).len() < MESSAGES / 5 {
        assert!(Instant::now() < deadline, "near accepted too little");
        std::thread::sleep(Duration::from_millis(10));
    }
    let log_before = near.log();
    near.kill9();
    let _ = pusher.kill();
    let _ = pusher.wait();
    let mut acked = accepted(&log_before);
    // Lines written just before the kill may not have reached our reader yet: read the
    // spool too, where every accepted message either still is or was delivered from.
    acked.sort();
    acked.dedup();
    assert!(acked.len() >= MESSAGES / 5);

    // Restart on the same root: recovery, then the start-up queue run delivers the rest.
    let near = Server::start(nr.path(), &near_config(&dns, port));
    let near_spool = near.spool();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_q(&near_spool) > 0 {
        assert!(
            Instant::now() < deadline,
            "near still has {} messages queued",
            count_q(&near_spool)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = delivered(&far.spool());
    let missing: Vec<&String> = acked.iter().filter(|id| !got.contains_key(*id)).collect();
    let twice = got.values().filter(|n| **n > 1).count();
    eprintln!(
        "crash test: {} accepted before kill -9, {} distinct delivered, {} missing, {} delivered twice",
        acked.len(),
        got.len(),
        missing.len(),
        twice
    );
    assert!(missing.is_empty(), "lost after kill -9: {missing:?}");
    // Only deliveries in flight at the kill can repeat: at most max_parallel (20).
    assert!(twice <= 20, "{twice} messages delivered twice");
    near.stop();
    far.stop();
}

/// A large batch relayed to Postfix's smtp-sink (the MX of sink.test): every message arrives
/// once, carried by a handful of reused connections.
#[test]
fn a_large_batch_reaches_smtp_sink() {
    const BATCH: usize = 2000;
    let sink_bin = Path::new("/usr/sbin/smtp-sink");
    let source = Path::new("/usr/sbin/smtp-source");
    if !sink_bin.exists() || !source.exists() {
        common::skip::skip("smtp-sink/smtp-source (postfix) are not installed");
        return;
    }
    let port = free_port("127.0.0.3");
    let dump = root();
    let dir = dump.path().join("msgs");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let mut sink = Command::new(sink_bin);
    sink.arg("-d").arg(format!("{}/m", dir.display()));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        sink.args(["-u", "nobody"]);
    }
    let mut sink = sink
        .arg(format!("127.0.0.3:{port}"))
        .arg("128")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink");
    let dns = TestDns::start(&[
        Rec::mx("sink.test", 10, "mx.sink.test"),
        Rec::a("mx.sink.test", "127.0.0.3"),
    ]);
    let nr = root();
    seed_root(nr.path());
    let near = Server::start(nr.path(), &near_config(&dns, port));
    let t0 = Instant::now();
    let status = Command::new(source)
        .args(["-s", "10", "-m", &BATCH.to_string(), "-l", "1024"])
        .args(["-f", "example@example1.com", "-t", "user@sink.test"])
        .arg(near.smtp().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("smtp-source");
    assert!(status.success());
    let pushed = t0.elapsed();
    let near_spool = near.spool();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count_q(&near_spool) > 0 {
        assert!(
            Instant::now() < deadline,
            "{} still queued",
            count_q(&near_spool)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "smtp-sink batch: {BATCH} messages accepted in {:.2}s, relayed by {:.2}s",
        pushed.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    let ids: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let t = String::from_utf8_lossy(&fs::read(e.path()).ok()?).into_owned();
            let at = t.find("by mail.example1.com (mailtool) with ")?;
            t[at..]
                .split_whitespace()
                .skip_while(|w| *w != "id")
                .nth(1)
                .map(|s| s.trim_end_matches(';').to_string())
        })
        .collect();
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    let _ = sink.kill();
    let _ = sink.wait();
    assert_eq!((ids.len(), distinct.len()), (BATCH, BATCH));
    let log = near.log();
    assert_eq!(
        log.matches(&format!(
            "relay=mx.sink.test[127.0.0.3]:{port}, dsn=2.0.0, stat=Sent"
        ))
        .count(),
        BATCH
    );
    near.stop();
}
