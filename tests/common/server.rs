//! Runs the real `mailtool serve` under a temp root and talks SMTP to it over loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{bin, fixtures};

pub struct Server {
    pub child: Child,
    pub root: PathBuf,
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub smtps: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
    pub log: Arc<Mutex<String>>,
}

/// The seed's /etc/mail under `root`, maps built with the binary as the guide does.
pub fn seed_root(root: &Path) {
    let etc = root.join("etc/mail");
    std::fs::create_dir_all(&etc).unwrap();
    for f in [
        "access",
        "virtusertable",
        "localip",
        "popip",
        "relay-domains",
        "local-host-names",
        "aliases",
    ] {
        std::fs::copy(fixtures().join("seed-etc-mail").join(f), etc.join(f)).unwrap();
    }
    for (f, flags) in [
        ("access", ""),
        ("virtusertable", ""),
        ("localip", "-e"),
        ("popip", ""),
    ] {
        build_map(root, f, flags, &std::fs::read(etc.join(f)).unwrap());
    }
    let out = std::process::Command::new(bin())
        .arg("--root")
        .arg(root)
        .arg("newaliases")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "newaliases: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mailtool makemap [flags] hash ROOT/etc/mail/NAME < text`
pub fn build_map(root: &Path, name: &str, flags: &str, text: &[u8]) {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("makemap");
    if !flags.is_empty() {
        cmd.arg(flags);
    }
    let out = super::run(cmd.arg("hash").arg(root.join("etc/mail").join(name)), text);
    assert!(
        out.status.success(),
        "makemap {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds a virtual user with a password (argon2id) to the users map.
pub fn add_user(root: &Path, user: &str, password: &str) {
    let hash = mailtool::users::hash_password(password.as_bytes()).unwrap();
    let map = root.join("etc/mail/users");
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("makemap").arg("-o").arg("-r").arg("hash").arg(&map);
    let out = super::run(&mut cmd, format!("{user} {hash}\n").as_bytes());
    assert!(
        out.status.success(),
        "users: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The server drops root to nobody in these tests: let it read what root built.
pub fn readable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for d in [root.to_path_buf(), root.join("etc"), root.join("etc/mail")] {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755));
    }
    if let Ok(rd) = std::fs::read_dir(root.join("etc/mail")) {
        // Directories (etc/mail/dkim, 0750 in the server's group) and what is in them keep
        // the modes they were given.
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644));
            }
        }
    }
}

impl Server {
    /// Writes `config` as ROOT/etc/mail/mailtool.toml (listeners on port 0 unless given) and
    /// starts the server; returns once it printed its listening addresses.
    pub fn start(root: &Path, config: &str) -> Server {
        let etc = root.join("etc/mail");
        std::fs::create_dir_all(&etc).unwrap();
        // Tests that look into the spool keep messages there: queue-only, no periodic runs.
        // A test that wants delivery says so with its own [queue] section.
        let mut config = config.to_string();
        if !config.contains("[queue]") {
            config.push_str("\n[queue]\ndelivery_mode = \"queue\"\ninterval = \"0s\"\n");
        }
        // POP3 listens on 110 (1100 unprivileged) by default: tests that don't ask for it must
        // not take a shared port.
        if !config.contains("[pop3]") {
            config.push_str("\n[pop3]\nlisten = []\n");
        }
        let pop3_section = config
            .split_once("[pop3]")
            .map(|(_, rest)| rest.split("\n[").next().unwrap_or("").to_string())
            .unwrap_or_default();
        let config = config.as_str();
        std::fs::write(etc.join("mailtool.toml"), config).unwrap();
        readable(root);
        let mut child = std::process::Command::new(bin())
            .arg("--root")
            .arg(root)
            .arg("serve")
            .env_remove("MAILTOOL_CONFIG")
            .env_remove("MAILTOOL_ROOT")
            .env("MAILTOOL_LOG", "mailtool=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log2.lock().unwrap().push_str(&line);
                log2.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let mut s = Server {
            child,
            root: root.to_path_buf(),
            smtp: None,
            submission: None,
            smtps: None,
            pop3: None,
            pop3s: None,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let want = |c: &str, key: &str| c.contains(key);
        let expect_sub = want(config, "submission = [\"");
        let expect_smtps = want(config, "smtps = [\"");
        let expect_pop3 = want(&pop3_section, "listen = [\"");
        let expect_pop3s = want(&pop3_section, "pop3s = [\"");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => panic!("server did not start; log:\n{}", s.log.lock().unwrap()),
            };
            // With `[log] format = "json"` the line is the msg of a JSON object.
            let line = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v["msg"].as_str().map(str::to_string))
                .unwrap_or(line);
            if let Some(rest) = line.strip_prefix("mailtool: listening for ") {
                let (kind, addr) = rest.split_once(" on ").unwrap();
                let addr: SocketAddr = addr.trim().parse().unwrap();
                match kind {
                    "SMTP" => s.smtp = Some(addr),
                    "submission" => s.submission = Some(addr),
                    "SMTPS" => s.smtps = Some(addr),
                    "POP3" => s.pop3 = Some(addr),
                    "POP3S" => s.pop3s = Some(addr),
                    _ => {}
                }
            }
            if s.smtp.is_some()
                && (!expect_sub || s.submission.is_some())
                && (!expect_smtps || s.smtps.is_some())
                && (!expect_pop3 || s.pop3.is_some())
                && (!expect_pop3s || s.pop3s.is_some())
            {
                return s;
            }
        }
    }

    pub fn root_path(&self) -> &Path {
        &self.root
    }

    pub fn smtp(&self) -> SocketAddr {
        self.smtp.expect("SMTP listener")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// SIGTERM and wait (bounded); returns the exit status code.
    pub fn stop(mut self) -> Option<i32> {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("server did not stop on SIGTERM; log:\n{}", self.log());
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn spool(&self) -> PathBuf {
        self.root.join("var/spool/mqueue")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw SMTP client, bound to a chosen loopback source address.
pub struct Smtp {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Smtp {
    pub fn connect(addr: SocketAddr, source: Option<IpAddr>) -> Smtp {
        let stream = connect_from(addr, source);
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Smtp { stream, reader }
    }

    /// Connects and reads the greeting.
    pub fn open(addr: SocketAddr, source: Option<IpAddr>) -> (Smtp, String) {
        let mut c = Smtp::connect(addr, source);
        let g = c.reply();
        (c, g)
    }

    /// Reads one (multi-line) reply; returns all its lines joined by "\n".
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return if all.is_empty() { "EOF".into() } else { all },
                Ok(_) => {}
                Err(e) => return format!("{all}ERR {e}"),
            }
            let line = line.trim_end_matches(['\r', '\n']).to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            all.push_str(&line);
            if !more {
                return all;
            }
            all.push('\n');
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Whether the server closed the connection (reads EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }

    /// A whole transaction; returns the reply to the final dot.
    pub fn mail(&mut self, from: &str, to: &[&str], body: &str) -> String {
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(r.starts_with("250"), "MAIL: {r}");
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            assert!(r.starts_with("250"), "RCPT {t}: {r}");
        }
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        self.send(body.as_bytes());
        self.cmd(".")
    }
}

pub fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(ip) = source {
        sock.bind(&SocketAddr::new(ip, 0).into()).unwrap();
    }
    sock.connect_timeout(&addr.into(), Duration::from_secs(10))
        .unwrap();
    sock.into()
}

pub fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

impl Smtp {
    /// DATA with `body` (CRLF lines, no final dot) after MAIL/RCPT were accepted.
    pub fn mail_body(&mut self, body: &str) -> String {
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "DATA: {r}");
        self.send(body.as_bytes());
        self.cmd(".")
    }
}

/// A temp root readable by the unprivileged user the server drops to.
pub fn temp_root() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A port nothing listens on right now at `ip` (for configs that need a fixed port).
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The receiving side: far.test's MX on 127.0.0.2, keeping what it accepts in its spool.
pub fn far_server(port: u16) -> (tempfile::TempDir, Server) {
    let r = temp_root();
    let etc = r.path().join("etc/mail");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("local-host-names"), "far.test\n").unwrap();
    add_user(r.path(), "bob", "pw");
    add_user(r.path(), "alice", "pw");
    let s = Server::start(
        r.path(),
        &format!(
            "hostname = \"mx.far.test\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.2:{port}\"]\nsubmission = []\nshutdown_grace = \"1s\"\n"
        ),
    );
    (r, s)
}
