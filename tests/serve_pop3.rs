//! The POP3 server inside `mailtool serve`, black-box: real clients (Python's poplib, curl,
//! fetchmail, mailtool pop-login) and raw sockets against the binary on loopback ports, with
//! the mailbox files read back from disk. docs/sendmail-compat.md §9 (poprelayd) and §10 (Qpopper, POP3
//! RFCs); docs/security.md §4 (STLS injection).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::dns::TestDns;
use common::server::{Server, Smtp, connect_from, ip};
use common::{mailtool, run, text};

const USER: &str = "who";
const PASSWORD: &str = "pw-Zq81 with space";

struct Pop {
    srv: Server,
    root: tempfile::TempDir,
    cert: PathBuf,
    _dns: TestDns,
}

/// The server's user in these tests (the binary drops root to nobody).
fn as_server_user(path: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let _ = std::os::unix::fs::chown(path, Some(65534), Some(65534));
    }
}

fn tool(root: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(mailtool().arg("--root").arg(root).args(args), stdin)
}

/// A server with SMTP, POP3 (STLS) and POP3S on loopback, a certificate for
/// mail.example1.com and 127.0.0.1, and the user `who`. `extra` goes into `[pop3]`;
/// `top` before the first table.
fn start(top: &str, extra: &str) -> Pop {
    let root = common::server::temp_root();
    fs::create_dir_all(root.path().join("etc/mail")).unwrap();
    let out = tool(
        root.path(),
        &["passwd", USER],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ck =
        rcgen::generate_simple_self_signed(vec!["mail.example1.com".into(), "127.0.0.1".into()])
            .unwrap();
    let tls = root.path().join("tls");
    fs::create_dir_all(&tls).unwrap();
    let cert = tls.join("cert.pem");
    fs::write(&cert, ck.cert.pem()).unwrap();
    fs::write(tls.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    as_server_user(&tls.join("key.pem"));
    let dns = TestDns::start(&[]);
    let config = format!(
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n{top}\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"2s\"\n\
         [pop3]\nlisten = [\"127.0.0.1:0\"]\npop3s = [\"127.0.0.1:0\"]\n\
         auth_failure_delay = \"50ms\"\n{extra}\n\
         [tls]\ncert = \"/tls/cert.pem\"\nkey = \"/tls/key.pem\"\n\
         [dns]\n{}\ntimeout = \"300ms\"\n",
        dns.config_servers()
    );
    let srv = Server::start(root.path(), &config);
    Pop {
        srv,
        root,
        cert,
        _dns: dns,
    }
}

impl Pop {
    fn pop3(&self) -> SocketAddr {
        self.srv.pop3.expect("POP3 listener")
    }
    fn pop3s(&self) -> SocketAddr {
        self.srv.pop3s.expect("POP3S listener")
    }
    fn mailbox(&self) -> PathBuf {
        self.root.path().join("var/mail").join(USER)
    }
    /// Writes the mbox as delivery would have (owned by the server's user).
    fn write_mbox(&self, messages: &[&str]) {
        let mut s = String::new();
        for (i, m) in messages.iter().enumerate() {
            s.push_str(&format!(
                "From sender{i}@example2.com Sat Nov 28 10:00:0{i} 2026\n"
            ));
            s.push_str(m);
            s.push('\n');
        }
        fs::write(self.mailbox(), s).unwrap();
        as_server_user(&self.mailbox());
    }
    fn python(&self, script: &str) -> Output {
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("POP_HOST", "127.0.0.1")
            .env("POP_PORT", self.pop3().port().to_string())
            .env("POP_SPORT", self.pop3s().port().to_string())
            .env("POP_CA", &self.cert)
            .env("POP_USER", USER)
            .env("POP_PASS", PASSWORD)
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "python failed:\n{}\n{}\nserver log:\n{}",
            text(&out.stdout),
            text(&out.stderr),
            self.srv.log()
        );
        out
    }
}

/// The server's log once it has `n` lines containing `needle` (it reaches us through a pipe,
/// possibly a moment after the reply), or after 10 s.
fn log_with(srv: &Server, needle: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = srv.log();
        if log.matches(needle).count() >= n || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const M1: &str = "From: alice@example1.com\nTo: who@example1.com\nSubject: first\n\nhello\n.dot line\n>From quoted\nlast line\n";
const M2: &str = "From: bob@example2.com\nTo: who@example1.com\nSubject: second\n\nbody two\n";

fn crlf(m: &str) -> String {
    m.replace('\n', "\r\n")
}

/// A raw POP3 connection from a chosen loopback address.
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn open(addr: SocketAddr, from: &str) -> (Raw, String) {
        let s = connect_from(addr, ip(from));
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        let g = r.line();
        (r, g)
    }
    fn line(&mut self) -> String {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) | Err(_) => "EOF".into(),
            Ok(_) => l.trim_end_matches(['\r', '\n']).to_string(),
        }
    }
    fn cmd(&mut self, c: &str) -> String {
        self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
        self.line()
    }
    /// The body of a multi-line reply, unstuffed, with CRLF line ends.
    fn body(&mut self) -> String {
        let mut out = String::new();
        loop {
            let l = self.line();
            if l == "." || l == "EOF" {
                return out;
            }
            out.push_str(l.strip_prefix('.').unwrap_or(&l));
            out.push_str("\r\n");
        }
    }
    fn login(addr: SocketAddr, from: &str) -> (Raw, String) {
        let (mut r, _) = Raw::open(addr, from);
        assert!(r.cmd(&format!("USER {USER}")).starts_with("+OK"));
        let reply = r.cmd(&format!("PASS {PASSWORD}"));
        (r, reply)
    }
}

#[test]
fn qpopper_texts_stat_list_retr_top_uidl_and_dele_at_quit() {
    let p = start("", "");
    p.write_mbox(&[M1, M2]);
    let (mut r, greeting) = Raw::open(p.pop3(), "127.0.0.1");
    // docs/sendmail-compat.md §10.1: "... at HOST starting.  <stamp>" (two spaces before the stamp).
    assert!(greeting.starts_with("+OK "), "{greeting}");
    assert!(
        greeting.contains(" at mail.example1.com starting.  <"),
        "{greeting}"
    );
    r.cmd(&format!("USER {USER}"));
    let total = crlf(M1).len() + crlf(M2).len();
    assert_eq!(
        r.cmd(&format!("PASS {PASSWORD}")),
        format!("+OK who has 2 visible messages (0 hidden) in {total} octets.")
    );
    assert_eq!(r.cmd("STAT"), format!("+OK 2 {total}"));
    assert!(r.cmd("LIST").starts_with("+OK"));
    assert_eq!(
        r.body(),
        format!("1 {}\r\n2 {}\r\n", crlf(M1).len(), crlf(M2).len())
    );
    assert!(r.cmd("RETR 1").starts_with("+OK"));
    assert_eq!(r.body(), crlf(M1), "dot-unstuffed body is the message");
    assert!(r.cmd("TOP 1 1").starts_with("+OK"));
    assert_eq!(
        r.body(),
        "From: alice@example1.com\r\nTo: who@example1.com\r\nSubject: first\r\n\r\nhello\r\n"
    );
    assert!(r.cmd("UIDL").starts_with("+OK"));
    let uidl = r.body();
    assert_eq!(r.cmd("DELE 1"), "+OK Message 1 has been deleted.");
    assert_eq!(r.cmd("RETR 1"), "-ERR Message 1 has been deleted.");
    assert_eq!(r.cmd("STAT"), format!("+OK 1 {}", crlf(M2).len()));
    // Nothing is removed before QUIT.
    assert!(
        fs::read_to_string(p.mailbox())
            .unwrap()
            .contains("Subject: first")
    );
    assert_eq!(
        r.cmd("QUIT"),
        "+OK Pop server at mail.example1.com signing off."
    );
    let left = fs::read_to_string(p.mailbox()).unwrap();
    assert!(!left.contains("Subject: first") && left.contains("Subject: second"));
    assert!(left.starts_with("From sender1@example2.com"), "{left}");

    // UIDs stay the same in the next session.
    let (mut r, reply) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(
        reply.starts_with("+OK who has 1 visible message (0 hidden)"),
        "{reply}"
    );
    r.cmd("UIDL");
    let again = r.body();
    let uid2 = uidl.lines().nth(1).unwrap().split(' ').nth(1).unwrap();
    assert_eq!(again, format!("1 {uid2}\r\n"));
    r.cmd("QUIT");
    // qpopper's login line, for log scanners (docs/sendmail-compat.md §10.1).
    let log = log_with(
        &p.srv,
        "POP login by user \"who\" at (127.0.0.1) 127.0.0.1",
        1,
    );
    assert!(
        log.contains("POP login by user \"who\" at (127.0.0.1) 127.0.0.1"),
        "{log}"
    );
}

#[test]
fn second_session_is_in_use_and_a_dropped_connection_deletes_nothing() {
    let p = start("", "");
    p.write_mbox(&[M1, M2]);
    let (mut a, ok) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(ok.starts_with("+OK"), "{ok}");
    let (mut b, reply) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(reply.starts_with("-ERR [IN-USE]"), "{reply}");
    // RFC 1939 §7: still in AUTHORIZATION; the session can QUIT politely.
    assert!(b.cmd("QUIT").starts_with("+OK"));
    assert_eq!(a.cmd("DELE 1"), "+OK Message 1 has been deleted.");
    assert_eq!(a.cmd("DELE 2"), "+OK Message 2 has been deleted.");
    drop(a);
    // The lock goes with the connection; the messages stay.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        let (c, reply) = Raw::login(p.pop3(), "127.0.0.1");
        if reply.starts_with("+OK") {
            assert!(reply.contains("2 visible messages"), "{reply}");
            break c;
        }
        assert!(Instant::now() < deadline, "still in use: {reply}");
        std::thread::sleep(Duration::from_millis(100));
    };
    c.cmd("QUIT");
    let mbox = fs::read_to_string(p.mailbox()).unwrap();
    assert!(mbox.contains("Subject: first") && mbox.contains("Subject: second"));
    let log = log_with(&p.srv, "ended without QUIT", 1);
    assert!(log.contains("ended without QUIT"), "{log}");
}

#[test]
fn mail_delivered_during_a_session_survives_its_update() {
    let p = start(
        "[queue]\ndelivery_mode = \"background\"\ninterval = \"0s\"\n",
        "",
    );
    p.write_mbox(&[M1, M2]);
    let (mut s, ok) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(ok.starts_with("+OK"), "{ok}");
    assert!(s.cmd("RETR 1").starts_with("+OK"));
    s.body();
    s.cmd("DELE 1");
    // Deliveries while the session is open, from several connections at once.
    let addr = p.srv.smtp();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let (mut c, _) = Smtp::open(addr, ip("127.0.0.1"));
                c.cmd("EHLO client.test");
                for i in 0..5 {
                    let r = c.mail(
                        "x@client.test",
                        &["who@mail.example1.com"],
                        &format!("Subject: new {t}-{i}\r\n\r\nbody {t}-{i}\r\n"),
                    );
                    assert!(r.starts_with("250"), "{r}");
                }
                c.cmd("QUIT");
            })
        })
        .collect();
    // Interleave reads with the deliveries.
    for _ in 0..20 {
        assert!(s.cmd("RETR 2").starts_with("+OK"));
        assert_eq!(s.body(), crlf(M2));
    }
    for t in senders {
        t.join().unwrap();
    }
    // Wait until all 20 are in the mbox (delivery is in the background).
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::read_to_string(p.mailbox())
        .unwrap()
        .matches("Subject: new ")
        .count()
        < 20
    {
        assert!(Instant::now() < deadline, "deliveries:\n{}", p.srv.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.cmd("QUIT").starts_with("+OK Pop server"));
    let mbox = fs::read_to_string(p.mailbox()).unwrap();
    assert!(!mbox.contains("Subject: first"));
    assert_eq!(mbox.matches("Subject: second").count(), 1);
    for t in 0..4 {
        for i in 0..5 {
            assert_eq!(
                mbox.matches(&format!("Subject: new {t}-{i}\n")).count(),
                1,
                "new {t}-{i}"
            );
        }
    }
    // Python's mailbox module reads the result as 21 well-formed messages.
    let out = Command::new("python3")
        .arg("-c")
        .arg("import mailbox,sys; print(len(mailbox.mbox(sys.argv[1])))")
        .arg(p.mailbox())
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), "21");
    // And a new session sees them all.
    let (mut s, ok) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(ok.starts_with("+OK who has 21 visible messages"), "{ok}");
    s.cmd("QUIT");
}

#[test]
fn poplib_plain_stls_ssl_and_apop() {
    let p = start("", "");
    p.write_mbox(&[M1, M2]);
    let out = p.python(
        r#"
import os, poplib, ssl
h, port, sport = os.environ["POP_HOST"], int(os.environ["POP_PORT"]), int(os.environ["POP_SPORT"])
u, pw = os.environ["POP_USER"], os.environ["POP_PASS"]
ctx = ssl.create_default_context(cafile=os.environ["POP_CA"])
def check(p, how):
    p.user(u); r = p.pass_(pw).decode()
    assert r.startswith("+OK who has 2 visible messages"), r
    n, size = p.stat(); assert n == 2, n
    lines = p.retr(1)[1]
    assert lines[4] == b"hello" and lines[5] == b".dot line", lines
    uids = [l.split()[1] for l in p.uidl()[1]]
    assert len(set(uids)) == 2
    print(how, n, size, uids[0].decode())
    p.quit()
p = poplib.POP3(h, port, timeout=20)
caps = p.capa(); assert "STLS" in caps and "UIDL" in caps and "RESP-CODES" in caps, caps
check(p, "plain")
p = poplib.POP3(h, port, timeout=20); p.stls(ctx)
assert "STLS" not in p.capa()
check(p, "stls")
check(poplib.POP3_SSL(h, sport, context=ctx, timeout=20), "ssl")
"#,
    );
    let o = text(&out.stdout);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(lines.len(), 3, "{o}");
    // The same UID whatever the transport.
    let uid = |l: &str| l.split(' ').nth(3).unwrap().to_string();
    assert_eq!(uid(lines[0]), uid(lines[2]));
    assert!(lines[1].starts_with("stls 2 "));

    // APOP (RFC 1939 §7) for a user given a shared secret with `passwd --apop`.
    let out = tool(p.root.path(), &["passwd", "--apop", "ann"], b"tanstaaf\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = p.python(
        r#"
import os, poplib
p = poplib.POP3(os.environ["POP_HOST"], int(os.environ["POP_PORT"]), timeout=20)
print(p.apop("ann", "tanstaaf").decode())
p.quit()
p = poplib.POP3(os.environ["POP_HOST"], int(os.environ["POP_PORT"]), timeout=20)
try:
    p.apop("ann", "wrong"); print("accepted")
except poplib.error_proto as e:
    print(e)
p = poplib.POP3(os.environ["POP_HOST"], int(os.environ["POP_PORT"]), timeout=20)
p.user("ann"); print(p.pass_("tanstaaf").decode())
"#,
    );
    let o = text(&out.stdout);
    assert!(o.starts_with("+OK ann has 0 visible messages"), "{o}");
    assert!(o.contains("-ERR [AUTH]"), "{o}");
    assert!(
        o.lines().nth(2).unwrap().starts_with("+OK ann has 0"),
        "{o}"
    );
}

#[test]
fn curl_pop3_and_pop3s() {
    let p = start("", "");
    p.write_mbox(&[M1, M2]);
    let curl = |url: String, extra: &[&str]| -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-u"])
            .arg(format!("{USER}:{PASSWORD}"))
            .args(extra)
            .arg(url)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl: {}\n{}",
            text(&out.stderr),
            p.srv.log()
        );
        text(&out.stdout)
    };
    let list = curl(format!("pop3://127.0.0.1:{}/", p.pop3().port()), &[]);
    assert_eq!(
        list,
        format!("1 {}\r\n2 {}\r\n", crlf(M1).len(), crlf(M2).len())
    );
    let ca = p.cert.to_str().unwrap().to_string();
    let m1 = curl(
        format!("pop3s://127.0.0.1:{}/1", p.pop3s().port()),
        &["--cacert", &ca],
    );
    assert_eq!(m1, crlf(M1));
    // STLS on the plain port, required.
    let m2 = curl(
        format!("pop3://127.0.0.1:{}/2", p.pop3().port()),
        &["--ssl-reqd", "--cacert", &ca],
    );
    assert_eq!(m2, crlf(M2));
}

#[test]
fn fetchmail_pulls_into_an_mbox_and_the_server_deletes_at_quit() {
    let p = start("", "");
    p.write_mbox(&[M1, M2]);
    let work = tempfile::tempdir().unwrap();
    let out_mbox = work.path().join("fetched.mbox");
    // The MDA appends each message to an mbox with its From_ line and separator.
    let mda = work.path().join("to-mbox.sh");
    fs::write(
        &mda,
        format!(
            "#!/bin/sh\n(echo 'From fetchmail Sat Nov 28 10:00:00 2026'; cat; echo) >> '{}'\n",
            out_mbox.display()
        ),
    )
    .unwrap();
    let rc = work.path().join("fetchmailrc");
    fs::write(
        &rc,
        format!(
            "set no syslog\npoll 127.0.0.1 service {} protocol pop3 auth password\n  \
             user \"{USER}\" there with password \"{PASSWORD}\" is root here\n  \
             sslproto ''\n  mda \"{}\"\n",
            p.pop3().port(),
            mda.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&mda, fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("fetchmail")
        .arg("-f")
        .arg(&rc)
        .arg("--idfile")
        .arg(work.path().join("ids"))
        // As root fetchmail locks /var/run/fetchmail.pid: parallel tests would collide.
        .arg("--pidfile")
        .arg(work.path().join("fetchmail.pid"))
        .args(["--nodetach", "--timeout", "20"])
        .env("HOME", work.path())
        .output()
        .expect("fetchmail");
    assert_eq!(
        out.status.code(),
        Some(0),
        "fetchmail:\n{}\n{}\nserver:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        p.srv.log()
    );
    let got = fs::read_to_string(&out_mbox).unwrap();
    assert!(
        got.contains("Subject: first") && got.contains("Subject: second"),
        "{got}"
    );
    assert!(got.contains("\n.dot line\n"), "unstuffed: {got}");
    let py = Command::new("python3")
        .arg("-c")
        .arg("import mailbox,sys; print([m['Subject'] for m in mailbox.mbox(sys.argv[1])])")
        .arg(&out_mbox)
        .output()
        .unwrap();
    assert_eq!(text(&py.stdout).trim(), "['first', 'second']");
    // fetchmail deletes what it fetched; the server removed it at QUIT.
    assert_eq!(fs::read_to_string(p.mailbox()).unwrap(), "");
}

#[test]
fn mailtool_pop_login_prints_the_seed_summary() {
    let p = start("", "");
    p.write_mbox(&[M1]);
    let out = run(
        mailtool()
            .arg("pop-login")
            .arg(p.pop3().to_string())
            .args(["--user", USER, "--timeout", "20s"])
            .env("MAILTOOL_PASSWORD", PASSWORD),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "who has 1 visible message (0 hidden) in {} octets",
            crlf(M1).len()
        )
    );
}

#[test]
fn stls_discards_injected_commands_and_forgets_user() {
    let p = start("", "");
    // docs/security.md §4: "STLS\r\nCAPA\r\n" in one segment; nothing may answer CAPA inside TLS.
    let out = p.python(
        r#"
import os, socket, ssl
s = socket.create_connection((os.environ["POP_HOST"], int(os.environ["POP_PORT"])), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"USER who\r\n"); f.readline()
s.sendall(b"STLS\r\nCAPA\r\n")
print(f.readline().decode().strip())
ctx = ssl.create_default_context(cafile=os.environ["POP_CA"])
t = ctx.wrap_socket(s, server_hostname="127.0.0.1")
t.settimeout(1.0)
try:
    print("injected:", t.recv(100))
except socket.timeout:
    print("nothing")
t.settimeout(10)
t.sendall(b"PASS x\r\n")
print(t.recv(200).decode().strip())
"#,
    );
    assert_eq!(
        text(&out.stdout),
        "+OK Begin TLS negotiation.\nnothing\n-ERR No user name given; send USER first.\n"
    );
}

#[test]
fn plaintext_passwords_need_tls_when_configured() {
    let p = start("", "allow_plaintext_auth = \"never\"\n");
    let (mut r, _) = Raw::open(p.pop3(), "127.0.0.1");
    // An over-long command line is refused once, and the session goes on.
    assert_eq!(
        r.cmd(&format!("USER {}", "x".repeat(3000))),
        "-ERR Command line too long."
    );
    assert!(r.cmd("USER who").starts_with("-ERR [AUTH]"));
    assert!(r.cmd("AUTH PLAIN AHdobwB4").starts_with("-ERR [AUTH]"));
    r.cmd("QUIT");
    // Over POP3S the same login works, with AUTH PLAIN (RFC 5034).
    let out = p.python(
        r#"
import os, poplib, ssl, base64
ctx = ssl.create_default_context(cafile=os.environ["POP_CA"])
p = poplib.POP3_SSL(os.environ["POP_HOST"], int(os.environ["POP_SPORT"]), context=ctx, timeout=20)
assert "SASL" in " ".join(p.capa().keys())
cred = base64.b64encode(b"\0" + os.environ["POP_USER"].encode() + b"\0" + os.environ["POP_PASS"].encode())
print(p._shortcmd("AUTH PLAIN " + cred.decode()).decode())
p.quit()
"#,
    );
    assert!(
        text(&out.stdout).starts_with("+OK who has 0 visible messages"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn failed_logins_are_delayed_throttled_and_logged() {
    let p = start("", "max_auth_failures = 3\n");
    let (mut r, _) = Raw::open(p.pop3(), "127.0.0.5");
    for _ in 0..3 {
        let t = Instant::now();
        r.cmd("USER who");
        let reply = r.cmd("PASS wrong");
        assert_eq!(
            reply,
            "-ERR [AUTH] Password supplied for \"who\" is incorrect."
        );
        assert!(t.elapsed() >= Duration::from_millis(50), "delayed");
    }
    // Now even the right password is refused from this address...
    r.cmd("USER who");
    assert!(
        r.cmd(&format!("PASS {PASSWORD}"))
            .starts_with("-ERR [LOGIN-DELAY]")
    );
    // ...but not from another one: a stranger's guesses never lock the user out (issue 16).
    let (_, reply) = Raw::login(p.pop3(), "127.0.0.6");
    assert!(reply.starts_with("+OK"), "{reply}");
    let log = log_with(
        &p.srv,
        "POP3 login failure for user \"who\" from [127.0.0.5]",
        4,
    );
    assert!(
        !log.contains("POP3 login failure for user \"who\" from [127.0.0.6]"),
        "{log}"
    );
    // contrib/fail2ban's filter finds every failure with the client's address.
    let hosts = common::fail2ban_hosts(&log);
    assert_eq!(
        hosts.iter().filter(|h| *h == "127.0.0.5").count(),
        4,
        "{hosts:?}"
    );
    assert!(!hosts.contains(&"127.0.0.6".to_string()), "{hosts:?}");
}

#[test]
fn pop_before_smtp_relays_for_the_login_address_until_the_ttl() {
    // docs/sendmail-compat.md §9: a POP login lets its address relay for pop_before_smtp_ttl.
    let p = start("", "pop_before_smtp_ttl = \"4s\"\n");
    let relay = |from: &str| {
        let (mut c, _) = Smtp::open(p.srv.smtp(), ip(from));
        c.cmd("EHLO x.test");
        c.cmd("MAIL FROM:<a@b.test>");
        c.cmd("RCPT TO:<far@away.test>")
    };
    assert!(relay("127.0.0.3").starts_with("550 5.7.1"), "before login");
    let (mut s, ok) = Raw::login(p.pop3(), "127.0.0.3");
    assert!(ok.starts_with("+OK"), "{ok}");
    s.cmd("QUIT");
    let logged_in = Instant::now();
    // The server notices the new map within about a second.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut r = relay("127.0.0.3");
    while !r.starts_with("250") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        r = relay("127.0.0.3");
    }
    assert_eq!(r, "250 2.1.5 <far@away.test>... Recipient ok");
    assert!(relay("127.0.0.4").starts_with("550 5.7.1"));
    let out = tool(p.root.path(), &["poprelay", "list", "--json"], b"");
    assert!(
        text(&out.stdout).contains("127.0.0.3"),
        "{}",
        text(&out.stdout)
    );
    // After the TTL the entry no longer counts.
    let wait = Duration::from_secs(5).saturating_sub(logged_in.elapsed());
    std::thread::sleep(wait);
    assert!(relay("127.0.0.3").starts_with("550 5.7.1"), "after the TTL");
}

#[test]
fn maildir_mailboxes_are_served_too() {
    let p = start(
        "[paths]\nmailbox_format = \"maildir\"\n[queue]\ndelivery_mode = \"background\"\ninterval = \"0s\"\n",
        "",
    );
    let (mut c, _) = Smtp::open(p.srv.smtp(), ip("127.0.0.1"));
    c.cmd("EHLO client.test");
    for i in 0..2 {
        let r = c.mail(
            "x@client.test",
            &["who@mail.example1.com"],
            &format!("Subject: md {i}\r\n\r\n..leading dot {i}\r\n"),
        );
        assert!(r.starts_with("250"), "{r}");
    }
    c.cmd("QUIT");
    let new = p.mailbox().join("new");
    let deadline = Instant::now() + Duration::from_secs(20);
    while fs::read_dir(&new).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(Instant::now() < deadline, "{}", p.srv.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (mut r, ok) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(ok.starts_with("+OK who has 2 visible messages"), "{ok}");
    r.cmd("UIDL");
    let uidl = r.body();
    let names: Vec<String> = fs::read_dir(&new)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for n in &names {
        assert!(uidl.contains(n.as_str()), "{uidl} vs {names:?}");
    }
    assert!(r.cmd("RETR 1").starts_with("+OK"));
    let m = r.body();
    assert!(
        m.contains("Subject: md 0\r\n") && m.contains("\r\n.leading dot 0\r\n"),
        "{m}"
    );
    r.cmd("DELE 1");
    assert!(r.cmd("QUIT").starts_with("+OK"));
    assert_eq!(fs::read_dir(&new).unwrap().count(), 1);
}

#[test]
fn idle_sessions_are_logged_out() {
    let p = start("", "idle_timeout = \"1s\"\n");
    let (mut r, _) = Raw::open(p.pop3(), "127.0.0.1");
    let mut rest = String::new();
    let _ = r.r.read_to_string(&mut rest);
    assert!(rest.starts_with("-ERR Autologout"), "{rest}");
}

#[test]
fn large_messages_are_sent_whole_and_top_stops_early() {
    let p = start("", "");
    // About 3 MB: read and sent in pieces by the server (over its 256 KB threshold).
    let mut big = String::from("From: big@example2.com\nSubject: big\n\n");
    for i in 0..60_000 {
        match i % 3 {
            0 => big.push_str(&format!(".dotted line {i} with some padding text\n")),
            1 => big.push_str(&format!(
                "plain line {i} with some padding text to make it longer\n"
            )),
            _ => big.push_str(&format!("{}\n", "x".repeat(i % 200))),
        }
    }
    big.push_str("last line without a newline");
    p.write_mbox(&[M1, &big, M2]);
    let (mut r, ok) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(ok.starts_with("+OK who has 3 visible messages"), "{ok}");
    // The stored message ends with the mbox separator's newline; on the wire every line ends
    // in CRLF.
    let wire = crlf(&format!("{big}\n"));
    assert_eq!(r.cmd("LIST 2"), format!("+OK 2 {}", wire.len()));
    assert_eq!(r.cmd("RETR 2"), format!("+OK {} octets", wire.len()));
    let got = r.body();
    assert_eq!(got.len(), wire.len());
    assert!(got == wire, "RETR 2 differs from the stored message");
    assert!(r.cmd("TOP 2 2").starts_with("+OK"));
    assert_eq!(
        r.body(),
        "From: big@example2.com\r\nSubject: big\r\n\r\n.dotted line 0 with some padding text\r\nplain line 1 with some padding text to make it longer\r\n"
    );
    // The session goes on normally after a large reply.
    assert!(r.cmd("RETR 3").starts_with("+OK"));
    assert_eq!(r.body(), crlf(M2));
    r.cmd("QUIT");
}

/// Issue 12 (11): tokio-rustls keeps encrypted bytes in its buffer when the socket would
/// block, until the next write or a flush; an unflushed end of a RETR left fetchmail waiting
/// for the rest of a 7 MB message. The MDA sleeps before reading so the socket fills up and
/// the server's last write of each RETR meets a full socket.
#[test]
fn fetchmail_over_pop3s_gets_a_large_message_whole_every_time() {
    let p = start("", "");
    let mut big = String::from("From: big@example2.com\nSubject: seven megabytes\n\n");
    let mut i = 0;
    while big.len() < 7 * 1024 * 1024 {
        if i % 5 == 0 {
            big.push_str(&format!(".dotted line {i} padded with some text\n"));
        } else {
            big.push_str(&format!("line {i} {}\n", "y".repeat(60)));
        }
        i += 1;
    }
    big.push_str("THE LAST LINE\n");
    p.write_mbox(&[&big]);
    let body = &big[big.find("\n\n").unwrap() + 2..];
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("fetched");
    let mda = work.path().join("slow-mda.sh");
    fs::write(
        &mda,
        format!("#!/bin/sh\nsleep 0.2\ncat > '{}'\n", out.display()),
    )
    .unwrap();
    let rc = work.path().join("fetchmailrc");
    fs::write(
        &rc,
        format!(
            "set no syslog\npoll 127.0.0.1 service {} protocol pop3 auth password\n  \
             user \"{USER}\" there with password \"{PASSWORD}\" is root here\n  \
             ssl no sslcertck keep fetchall\n  mda \"{}\"\n",
            p.pop3s().port(),
            mda.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&rc, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&mda, fs::Permissions::from_mode(0o755)).unwrap();
    let started = Instant::now();
    for run in 0..50 {
        let _ = fs::remove_file(&out);
        let mut child = Command::new("fetchmail")
            .arg("-f")
            .arg(&rc)
            .arg("--idfile")
            .arg(work.path().join("ids"))
            .arg("--pidfile")
            .arg(work.path().join("fetchmail.pid"))
            .args(["--nodetach", "--timeout", "10"])
            .env("HOME", work.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("fetchmail");
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let res = child.wait_with_output().unwrap();
        let got = fs::read_to_string(&out).unwrap_or_default();
        assert!(
            res.status.success() && got.ends_with(body),
            "run {run} after {:?}: fetchmail {:?}, {} of {} body bytes\n{}\n{}\nserver:\n{}",
            started.elapsed(),
            res.status,
            got.len(),
            body.len(),
            text(&res.stdout),
            text(&res.stderr),
            p.srv.log()
        );
    }
    // --keep: the message is still there for the next run, and for this check.
    assert!(
        fs::read_to_string(p.mailbox())
            .unwrap()
            .contains("THE LAST LINE")
    );
}

/// Issue 12 (10): Maildir messages are listed in delivery order, by the seconds, microseconds
/// and counter of their names read as numbers: names written with unpadded microseconds
/// (`M99` before `M100000` in one second) sort wrongly as text.
#[test]
fn maildir_messages_are_listed_in_delivery_order() {
    let p = start(
        "[paths]\nmailbox_format = \"maildir\"\n[queue]\ninterval = \"0s\"\n",
        "",
    );
    let md = p.mailbox();
    for sub in ["", "tmp", "new", "cur"] {
        fs::create_dir_all(md.join(sub)).unwrap();
        as_server_user(&md.join(sub));
    }
    let one_time = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let names = [
        "1700000000.M99P7Q1.host,S=10",
        "1700000000.M100000P7Q2.host,S=10",
        "1700000000.M100000P7Q10.host,S=10",
    ];
    for (i, n) in names.iter().enumerate() {
        let f = md.join("new").join(n);
        fs::write(&f, format!("Subject: md {i}\n\nbody {i}\n")).unwrap();
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(one_time)
            .unwrap();
        as_server_user(&f);
    }
    let (mut r, ok) = Raw::login(p.pop3(), "127.0.0.1");
    assert!(ok.starts_with("+OK who has 3 visible messages"), "{ok}");
    for i in 0..3 {
        assert!(r.cmd(&format!("RETR {}", i + 1)).starts_with("+OK"));
        let m = r.body();
        assert!(
            m.contains(&format!("Subject: md {i}\r\n")),
            "RETR {}: {m}",
            i + 1
        );
    }
    r.cmd("UIDL");
    let uidl = r.body();
    let order: Vec<&str> = uidl.lines().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(order, names, "{uidl}");
    assert!(r.cmd("QUIT").starts_with("+OK"));
}

/// Issue 13: POP3 sessions count against `[pop3] max_connections`, apart from SMTP's: with
/// one of each allowed, an open POP3 session leaves SMTP its connection, and a second POP3
/// session is refused with `-ERR [SYS/TEMP]` while SMTP still answers.
#[test]
fn pop3_and_smtp_have_their_own_connection_limits() {
    let root = common::server::temp_root();
    let srv = Server::start(
        root.path(),
        "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
         [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nmax_connections = 1\n\
         shutdown_grace = \"1s\"\n\
         [pop3]\nlisten = [\"127.0.0.1:0\"]\nmax_connections = 1\n",
    );
    let pop3 = srv.pop3.expect("POP3 listener");
    let greet = |addr: SocketAddr| {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        (s, line)
    };
    let (_first, line) = greet(pop3);
    assert!(line.starts_with("+OK"), "{line}");
    let (_smtp, line) = greet(srv.smtp());
    assert!(line.starts_with("220 "), "{line}");
    let (_second, line) = greet(pop3);
    assert_eq!(line, "-ERR [SYS/TEMP] Too many open connections\r\n");
    // And SMTP's one connection is SMTP's: a second SMTP client is refused.
    let (_smtp2, line) = greet(srv.smtp());
    assert!(line.starts_with("421 4.3.2 "), "{line}");
    srv.stop();
}
