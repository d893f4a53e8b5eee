//! Hostile clients (issue 16), black-box over loopback: trickling clients meet deadlines,
//! slowloris floods do not keep real clients out, unknown-recipient probes are tarpitted per
//! address across reconnects, password guessing neither succeeds nor locks the real user out,
//! and POP3 hangs up on a stream of bogus commands.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::dns::TestDns;
use common::server::{Server, Smtp, add_user, connect_from, ip, seed_root, temp_root as root};

const PASSWORD: &str = "example-pw";

/// The timing test and the 6,000-connection flood never run at once: the flood's load would
/// stretch the timings the other one measures.
static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// The seed's maps, the user `example`, SMTP and POP3 on loopback; `smtp` and `pop3` are
/// extra lines for those sections.
fn start(smtp: &str, pop3: &str) -> (tempfile::TempDir, Server, TestDns) {
    let dns = TestDns::start(&[]);
    let r = root();
    seed_root(r.path());
    add_user(r.path(), "example", PASSWORD);
    let srv = Server::start(
        r.path(),
        &format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n{smtp}\n\
             [pop3]\nlisten = [\"127.0.0.1:0\"]\nauth_failure_delay = \"50ms\"\n{pop3}\n\
             [dns]\n{}\ntimeout = \"300ms\"\n",
            dns.config_servers()
        ),
    );
    (r, srv, dns)
}

fn read_line(r: &mut impl BufRead) -> String {
    let mut l = String::new();
    match r.read_line(&mut l) {
        Ok(0) => "EOF".into(),
        Ok(_) => l.trim_end().to_string(),
        Err(e) => format!("ERR {e}"),
    }
}

/// Sends `bytes` one per `every` from another thread until told to stop or the write fails;
/// the caller reads. Returns the stop flag.
fn trickle(stream: &TcpStream, bytes: &'static [u8], every: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = stream.try_clone().unwrap();
    let s = stop.clone();
    std::thread::spawn(move || {
        for b in bytes.iter().cycle() {
            if s.load(Ordering::SeqCst) || w.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(every);
        }
    });
    stop
}

/// How long after `t0` the deadline of `limit` must have hit: not before it, and within 10%.
fn assert_within(what: &str, t0: Instant, limit: Duration, reply: &str, want: &str) {
    let took = t0.elapsed();
    assert!(reply.contains(want), "{what}: {reply}");
    assert!(
        took >= limit,
        "{what}: closed after {took:?}, before its deadline {limit:?}"
    );
    assert!(
        took <= limit + limit / 10,
        "{what}: closed after {took:?}, deadline {limit:?}"
    );
}

#[test]
fn trickling_clients_are_closed_at_their_deadlines() {
    let _alone = exclusive();
    let (_r, srv, _dns) = start(
        "command_timeout = \"4s\"\ndata_min_rate = 1024\ndata_rate_grace = \"4s\"",
        "idle_timeout = \"4s\"",
    );
    let limit = Duration::from_secs(4);
    let every = Duration::from_millis(700);
    // A command line that never ends: one byte every 0.7 s.
    let s = connect_from(srv.smtp(), ip("127.0.0.40"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    assert!(read_line(&mut r).starts_with("220"));
    let t0 = Instant::now();
    let stop = trickle(&s, b"EHLO slow.example", every);
    let reply = read_line(&mut r);
    stop.store(true, Ordering::SeqCst);
    assert_within("SMTP command", t0, limit, &reply, "421 4.4.2");

    // DATA at a byte every 0.7 s: under the minimum rate once the grace is over.
    let mut c = Smtp::connect(srv.smtp(), ip("127.0.0.41"));
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO slow.example");
    assert!(c.cmd("MAIL FROM:<a@far.test>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<anyone@example1.com>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let t0 = Instant::now();
    let stop = trickle(&c.stream, b"Subject: slow\r\n\r\nbody", every);
    let reply = c.reply();
    stop.store(true, Ordering::SeqCst);
    assert_within("SMTP DATA", t0, limit, &reply, "421 4.4.2");
    assert!(reply.contains("too slow"), "{reply}");

    // POP3: one command line, trickled.
    let p = connect_from(srv.pop3.expect("POP3"), ip("127.0.0.42"));
    p.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(p.try_clone().unwrap());
    assert!(read_line(&mut r).starts_with("+OK"));
    let t0 = Instant::now();
    let stop = trickle(&p, b"USER example", every);
    let reply = read_line(&mut r);
    stop.store(true, Ordering::SeqCst);
    assert_within("POP3 command", t0, limit, &reply, "-ERR Autologout");
    srv.stop();
}

/// One SMTP transaction from `from`; true if the message was accepted.
fn one_message(addr: SocketAddr, from: &str, n: usize) -> bool {
    let Some(stream) = try_connect(addr, from) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    if !read_line(&mut r).starts_with("220") {
        return false;
    }
    let mut step = |line: &str, want: &str| -> bool {
        if w.write_all(format!("{line}\r\n").as_bytes()).is_err() {
            return false;
        }
        let mut reply = read_line(&mut r);
        while reply.len() > 3 && reply.as_bytes()[3] == b'-' {
            reply = read_line(&mut r);
        }
        reply.starts_with(want)
    };
    step("EHLO real.example", "250")
        && step("MAIL FROM:<real@far.test>", "250")
        && step("RCPT TO:<anyone@example1.com>", "250")
        && step("DATA", "354")
        && step(&format!("Subject: real {n}\r\n\r\nhello\r\n."), "250")
        && step("QUIT", "221")
}

/// One POP3 login from `from`; true if it got in.
fn one_login(addr: SocketAddr, from: &str, password: &str) -> bool {
    let Some(stream) = try_connect(addr, from) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    if !read_line(&mut r).starts_with("+OK") {
        return false;
    }
    let ok = ["USER example".to_string(), format!("PASS {password}")]
        .iter()
        .all(|l| {
            w.write_all(format!("{l}\r\n").as_bytes()).is_ok()
                && read_line(&mut r).starts_with("+OK")
        });
    let _ = w.write_all(b"QUIT\r\n");
    let _ = read_line(&mut r);
    ok
}

fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on our own process with a struct we own.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// `n` idle connections to `addr` from 127.0.1.x, at most 20 per address; those refused are
/// dropped. Returns the open ones.
fn flood(addr: SocketAddr, n: usize, first_host: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|i| try_connect(addr, &format!("127.0.1.{}", first_host + i / 20)))
        .collect()
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

/// A connection from `from`, or None (no panic: floods make many).
fn try_connect(addr: SocketAddr, from: &str) -> Option<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let src: std::net::IpAddr = from.parse().ok()?;
    sock.bind(&SocketAddr::new(src, 0).into()).ok()?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .ok()?;
    Some(sock.into())
}

/// A slowloris attack that keeps going: `n` connections from 127.0.`net`.x (20 per address),
/// each reopened as soon as the server closes it, never sending a byte.
struct Slowloris {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<usize>>,
}

impl Slowloris {
    fn start(addr: SocketAddr, n: usize, net: u8) -> Slowloris {
        assert!(n / 20 < 255, "at most 254 addresses in 127.0.{net}.0/24");
        let stop = Arc::new(AtomicBool::new(false));
        let per_thread = 100;
        let threads = (0..n.div_ceil(per_thread))
            .map(|t| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let from = |i: usize| format!("127.0.{net}.{}", 1 + (t * per_thread + i) / 20);
                    let open = |i: usize| -> Option<TcpStream> {
                        let s = try_connect(addr, &from(i))?;
                        s.set_nonblocking(true).ok()?;
                        Some(s)
                    };
                    let mut conns: Vec<Option<TcpStream>> = (0..per_thread).map(open).collect();
                    let mut reopened = 0;
                    let mut buf = [0u8; 512];
                    while !stop.load(Ordering::SeqCst) {
                        for (i, c) in conns.iter_mut().enumerate() {
                            let gone = match c.as_mut().map(|s| s.read(&mut buf)) {
                                None | Some(Ok(0)) => true,
                                // A greeting, or the 421/-ERR before a close: keep reading.
                                Some(Ok(_)) => false,
                                Some(Err(e)) => e.kind() != std::io::ErrorKind::WouldBlock,
                            };
                            if gone {
                                *c = open(i);
                                reopened += 1;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    reopened
                })
            })
            .collect();
        Slowloris { stop, threads }
    }

    /// Stops the attack; returns how many connections it reopened.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.threads.into_iter().map(|t| t.join().unwrap()).sum()
    }
}

#[test]
fn slowloris_floods_do_not_keep_real_clients_out() {
    let _alone = exclusive();
    raise_fd_limit();
    let (_r, srv, _dns) = start(
        "max_connections = 1000\nmax_connections_per_ip = 20\nstress_timeout = \"3s\"",
        "max_connections = 1000\nmax_connections_per_ip = 20\nstress_timeout = \"3s\"",
    );
    let smtp = srv.smtp();
    let pop3 = srv.pop3.expect("POP3");
    // 3,000 slow connections to each service from 150 addresses each, reopened as soon as
    // they are closed; they never say a word.
    let attack_smtp = Slowloris::start(smtp, 3000, 1);
    let attack_pop3 = Slowloris::start(pop3, 3000, 2);
    // Let them fill the services and age past the eviction threshold.
    std::thread::sleep(Duration::from_millis(2500));
    let mut sent = 0;
    let mut logins = 0;
    let mut peak_rss = 0;
    for n in 0..100 {
        if one_message(smtp, "127.0.0.70", n) {
            sent += 1;
        }
        if one_login(pop3, "127.0.0.71", PASSWORD) {
            logins += 1;
        }
        peak_rss = peak_rss.max(vm_rss_kib(srv.child.id()));
    }
    let reopened = attack_smtp.stop() + attack_pop3.stop();
    assert!(reopened > 0, "the attack never had to reconnect");
    assert!(
        sent >= 95,
        "{sent} of 100 messages got through\n{}",
        srv.log()
    );
    assert!(logins >= 95, "{logins} of 100 POP3 logins got through");
    assert!(
        peak_rss < 256 * 1024,
        "server RSS {peak_rss} KiB during the flood"
    );
    // Nothing accepted was lost: every 250 is a message in the spool (delivery is off here).
    let spool = srv.spool();
    let queued = std::fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("qf"))
        .count();
    assert_eq!(queued, sent);
    srv.stop();
}

#[test]
fn cross_protocol_floods_leave_the_other_service_alone() {
    let (_r, srv, _dns) = start(
        "max_connections = 30\nmax_connections_per_ip = 30\nstress_threshold = 0",
        "max_connections = 30\nmax_connections_per_ip = 30\nstress_threshold = 0",
    );
    let pop3 = srv.pop3.expect("POP3");
    let full_pop3 = flood(pop3, 30, 1);
    // Every one of them admitted before the next client comes.
    for s in &full_pop3 {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(read_line(&mut BufReader::new(s.try_clone().unwrap())).starts_with("+OK"));
    }
    // POP3 is full (no eviction here: stress mode is off)...
    let s = connect_from(pop3, ip("127.0.0.72"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(read_line(&mut BufReader::new(s)).starts_with("-ERR [SYS/TEMP] Too many"));
    // ...and SMTP takes mail all the same; then the other way round.
    assert!(one_message(srv.smtp(), "127.0.0.73", 0));
    drop(full_pop3);
    let full_smtp = flood(srv.smtp(), 30, 3);
    for s in &full_smtp {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(read_line(&mut BufReader::new(s.try_clone().unwrap())).starts_with("220"));
    }
    let s = connect_from(srv.smtp(), ip("127.0.0.75"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(read_line(&mut BufReader::new(s)).starts_with("421 4.3.2"));
    assert!(one_login(pop3, "127.0.0.74", PASSWORD));
    drop(full_smtp);
    srv.stop();
}

#[test]
fn unknown_recipient_probes_are_tarpitted_across_reconnects() {
    // error_sleep 0: the per-address pace alone, which is what reconnecting cannot reset.
    let (_r, srv, _dns) = start("error_sleep = \"0s\"", "");
    let addr = srv.smtp();
    let done = Arc::new(AtomicBool::new(false));
    // A known recipient from another address, all along: never slowed.
    let d2 = done.clone();
    let known = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        while !d2.load(Ordering::SeqCst) {
            let (mut c, _) = Smtp::open(addr, ip("127.0.0.81"));
            c.cmd("EHLO known.example");
            c.cmd("MAIL FROM:<a@far.test>");
            let t = Instant::now();
            assert!(c.cmd("RCPT TO:<anyone@example1.com>").starts_with("250"));
            worst = worst.max(t.elapsed());
            c.cmd("QUIT");
            std::thread::sleep(Duration::from_millis(200));
        }
        worst
    });
    let t0 = Instant::now();
    let mut probes = 0;
    let mut sessions = 0;
    while probes < 100 {
        let (mut c, g) = Smtp::open(addr, ip("127.0.0.80"));
        assert!(g.starts_with("220"), "{g}");
        sessions += 1;
        c.cmd("EHLO prober.example");
        c.cmd("MAIL FROM:<probe@far.test>");
        while probes < 100 {
            // The seed's virtusertable refuses every user of example2.com.
            let r = c.cmd(&format!("RCPT TO:<user{probes}@example2.com>"));
            if !r.starts_with("550") {
                break; // 421: the session's hard limit; reconnect
            }
            probes += 1;
        }
    }
    let took = t0.elapsed();
    done.store(true, Ordering::SeqCst);
    let worst = known.join().unwrap();
    assert!(sessions > 1, "the probes needed several sessions");
    assert!(
        took >= Duration::from_secs(20),
        "100 probes in {took:?}: more than 5 a second"
    );
    assert!(
        worst < Duration::from_millis(500),
        "a known recipient waited {worst:?}"
    );
    srv.stop();
}

#[test]
fn error_replies_past_the_soft_limit_sleep_longer_and_longer() {
    let (_r, srv, _dns) = start(
        "error_rate = 0\nsoft_error_limit = 2\nerror_sleep = \"300ms\"",
        "",
    );
    let (mut c, _) = Smtp::open(srv.smtp(), ip("127.0.0.82"));
    c.cmd("EHLO x.example");
    c.cmd("MAIL FROM:<a@far.test>");
    let mut took = Vec::new();
    for i in 0..4 {
        let t = Instant::now();
        assert!(
            c.cmd(&format!("RCPT TO:<u{i}@example2.com>"))
                .starts_with("550")
        );
        took.push(t.elapsed());
    }
    assert!(
        took[0] < Duration::from_millis(250) && took[1] < Duration::from_millis(250),
        "{took:?}"
    );
    assert!(took[2] >= Duration::from_millis(300), "{took:?}");
    assert!(took[3] >= Duration::from_millis(300), "{took:?}");
    // Five errors past the limit, the sleep doubles.
    for i in 4..8 {
        let t = Instant::now();
        assert!(
            c.cmd(&format!("RCPT TO:<u{i}@example2.com>"))
                .starts_with("550")
        );
        took.push(t.elapsed());
    }
    assert!(took[7] >= Duration::from_millis(600), "{took:?}");
    assert!(took[6] < Duration::from_millis(550), "{took:?}");
    // A known recipient in the same session is answered at once.
    let t = Instant::now();
    assert!(c.cmd("RCPT TO:<anyone@example1.com>").starts_with("250"));
    assert!(t.elapsed() < Duration::from_millis(250));
    srv.stop();
}

const WORDS: [&str; 20] = [
    "123456",
    "password",
    "12345678",
    "qwerty",
    "123456789",
    "12345",
    "1234",
    "111111",
    "1234567",
    "dragon",
    "123123",
    "baseball",
    "abc123",
    "football",
    "monkey",
    "letmein",
    "shadow",
    "master",
    "666666",
    "qwertyuiop",
];

#[test]
fn password_guessing_neither_succeeds_nor_locks_the_user_out() {
    let (_r, srv, _dns) = start("", "max_auth_failures = 10");
    let pop3 = srv.pop3.expect("POP3");
    // The user's phone logged in from 127.0.0.51 last week.
    assert!(one_login(pop3, "127.0.0.51", PASSWORD));
    // Four parallel guessers from 127.0.0.50, five words each.
    let t0 = Instant::now();
    let guessers: Vec<_> = WORDS
        .chunks(5)
        .map(|words| {
            let words: Vec<&'static str> = words.to_vec();
            std::thread::spawn(move || {
                words
                    .iter()
                    .filter(|w| one_login(pop3, "127.0.0.50", w))
                    .count()
            })
        })
        .collect();
    let found: usize = guessers.into_iter().map(|g| g.join().unwrap()).sum();
    let took = t0.elapsed();
    assert_eq!(found, 0);
    // Serialised and doubling from 50 ms: nowhere near the 50 ms burst of an unthrottled server.
    assert!(took >= Duration::from_secs(2), "20 guesses in {took:?}");
    // The real user gets in at once from this host, from the phone's address, and (if a
    // little later) from an address never seen.
    for from in ["127.0.0.1", "127.0.0.51"] {
        let t = Instant::now();
        assert!(one_login(pop3, from, PASSWORD), "from {from}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "from {from}: {:?}",
            t.elapsed()
        );
    }
    assert!(
        one_login(pop3, "127.0.0.52", PASSWORD),
        "from a new address"
    );

    // SMTP AUTH shares the throttle: the guesser's address is refused, the user is not.
    let auth = |from: &str, password: &str| -> String {
        let (mut c, _) = Smtp::open(srv.smtp(), ip(from));
        c.cmd("EHLO x.example");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD
            .encode(format!("\0example\0{password}").as_bytes());
        c.cmd(&format!("AUTH PLAIN {b64}"))
    };
    for w in &WORDS[..3] {
        let r = auth("127.0.0.50", w);
        assert!(r.starts_with("535") || r.starts_with("454"), "{r}");
    }
    assert!(auth("127.0.0.1", PASSWORD).starts_with("235"));
    assert!(auth("127.0.0.51", PASSWORD).starts_with("235"));
    srv.stop();
}

#[test]
fn nmap_pop3_brute_finds_nothing_and_the_user_still_logs_in() {
    if std::process::Command::new("nmap")
        .arg("--version")
        .output()
        .is_err()
    {
        common::skip::skip("nmap is not installed (apt-get install nmap)");
        return;
    }
    let (r, srv, _dns) = start("", "");
    let pop3 = srv.pop3.expect("POP3");
    let users = r.path().join("users.txt");
    let words = r.path().join("words.txt");
    std::fs::write(&users, "example\n").unwrap();
    std::fs::write(&words, WORDS.join("\n") + "\n").unwrap();
    let out = std::process::Command::new("nmap")
        .args([
            "-Pn",
            "-n",
            "-p",
            &pop3.port().to_string(),
            "--script",
            "+pop3-brute",
        ])
        .arg("--script-args")
        .arg(format!(
            "userdb={},passdb={},unpwdb.timelimit=60s",
            users.display(),
            words.display()
        ))
        .args(["-S", "127.0.0.50", "-e", "lo", "127.0.0.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nmap: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Valid credentials"), "{text}");
    assert!(text.contains("pop3-brute"), "{text}");
    // It really guessed, from its own address.
    assert!(
        srv.log()
            .contains("POP3 login failure for user \"example\" from [127.0.0.50]"),
        "{text}\n{}",
        srv.log()
    );
    let t = Instant::now();
    assert!(one_login(pop3, "127.0.0.1", PASSWORD));
    assert!(t.elapsed() < Duration::from_secs(2));
    srv.stop();
}

#[test]
fn pop3_hangs_up_on_bogus_commands() {
    let (_r, srv, _dns) = start("", "");
    let s = connect_from(srv.pop3.expect("POP3"), ip("127.0.0.90"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    assert!(read_line(&mut r).starts_with("+OK"));
    let mut answered = 0;
    for i in 0..100 {
        if w.write_all(format!("BOGUS{i}\r\n").as_bytes()).is_err() {
            break;
        }
        let l = read_line(&mut r);
        if l == "EOF" || l.starts_with("ERR") {
            break;
        }
        answered += 1;
        if l.contains("Too many bad commands") {
            assert_eq!(read_line(&mut r), "EOF");
            break;
        }
    }
    assert!(answered <= 21, "{answered} bogus commands answered");
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    srv.stop();
}
