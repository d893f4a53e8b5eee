//! A private Postfix instance for interop tests: its own config directory, queue, log file
//! and loopback ports, a discard transport (nothing leaves the machine), optional TLS with
//! an rcgen certificate. Postfix's master must start as root; elsewhere the tests skip,
//! except in CI, where a missing peer is a failure.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PostfixOptions {
    /// Trust 127.0.0.0/8 (`mynetworks`), so every loopback client may relay anything.
    pub open_relay: bool,
    /// STARTTLS on the SMTP port, plus an implicit-TLS (wrappermode) listener.
    pub tls: bool,
}

pub struct Postfix {
    pub smtp: SocketAddr,
    pub smtps: Option<SocketAddr>,
    /// The self-signed certificate to trust (`--ca-file`), when `tls`.
    pub ca_file: PathBuf,
    /// Postfix's own log (`maillog_file`).
    pub log: PathBuf,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

/// Postfix's domain in these tests; user `sink` (any local part is accepted and discarded).
pub const DOMAIN: &str = "postfix.test";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a Postfix peer can run here: installed, and we are root.
pub fn available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/usr/sbin/postfix").exists()
}

impl Postfix {
    /// Starts an instance; `None` (skip) when Postfix can't run here, but only outside CI.
    pub fn start(opts: PostfixOptions) -> Option<Postfix> {
        Postfix::start_with(opts, "")
    }

    /// [`Postfix::start`] with more `main.cf` lines (say `smtpd_discard_ehlo_keywords = dsn`).
    pub fn start_with(opts: PostfixOptions, extra_main_cf: &str) -> Option<Postfix> {
        if !available() {
            super::skip::skip("Postfix is not installed or we are not root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        let (conf, queue, data) = (base.join("conf"), base.join("queue"), base.join("data"));
        for d in [&conf, &queue, &data] {
            std::fs::create_dir_all(d).unwrap();
        }
        let postfix_uid = users_uid("postfix");
        std::os::unix::fs::chown(&data, postfix_uid, None).unwrap();
        let smtp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let smtps: Option<SocketAddr> = opts
            .tls
            .then(|| format!("127.0.0.1:{}", free_port()).parse().unwrap());
        let ca_file = base.join("cert.pem");
        let mut tls_conf = String::new();
        if opts.tls {
            let ck = rcgen::generate_simple_self_signed(vec![
                DOMAIN.to_string(),
                "127.0.0.1".to_string(),
            ])
            .unwrap();
            let key = base.join("key.pem");
            std::fs::write(&ca_file, ck.cert.pem()).unwrap();
            std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
            tls_conf = format!(
                "smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\n",
                ca_file.display(),
                key.display()
            );
        }
        let mynetworks = if opts.open_relay {
            "127.0.0.0/8"
        } else {
            // TEST-NET-1: no test client is ever trusted.
            "192.0.2.1/32"
        };
        let log = base.join("maillog");
        std::fs::write(
            conf.join("main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = {DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination = {DOMAIN}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = {mynetworks}
default_transport = discard
local_transport = discard
relay_transport = discard
virtual_transport = discard
local_recipient_maps =
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = {log}
maillog_file_prefixes = {base}
biff = no
# Refusals are the point of these tests: no tarpit, no hang-up after 20 of them.
smtpd_error_sleep_time = 0s
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
{tls_conf}{extra_main_cf}
",
                queue = queue.display(),
                data = data.display(),
                log = log.display(),
                base = base.display(),
            ),
        )
        .unwrap();
        let mut master = format!("{smtp} inet n - n - - smtpd\n");
        if let Some(s) = smtps {
            master.push_str(&format!(
                "{s} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt\n"
            ));
        }
        master.push_str(
            "pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
tlsmgr unix - - n 1000? 1 tlsmgr
postlog unix-dgram n - n - 1 postlogd
",
        );
        std::fs::write(conf.join("master.cf"), master).unwrap();
        let pf = Postfix {
            smtp,
            smtps,
            ca_file,
            log,
            conf,
            _dir: dir,
        };
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&pf.conf)
            .arg("start")
            .output()
            .expect("running postfix");
        assert!(
            out.status.success(),
            "postfix start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pf.wait_listening(smtp);
        if let Some(s) = smtps {
            pf.wait_listening(s);
        }
        Some(pf)
    }

    fn wait_listening(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "Postfix is not listening on {addr}; log: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The instance's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.conf)
            .arg("stop")
            .output();
    }
}

fn users_uid(name: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
    })
}
