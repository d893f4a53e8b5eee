//! A private Dovecot (Debian's dovecot-pop3d) for black-box POP3 tests: everything under a
//! temp dir, listening on 127.0.0.1 (POP3 with STLS, and POP3S) with a self-signed
//! certificate, one passwd-file user with a `{PLAIN}` password and a Maildir. Works as root
//! (CI: the login and mail processes run as nobody) and as an ordinary user (everything runs
//! as that user).
#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pop3::{Mailbox, PopEndpoint, free_ports};

pub struct Dovecot {
    child: Child,
    pub dir: tempfile::TempDir,
    pub endpoint: PopEndpoint,
}

/// Whether the Dovecot tests can run. Outside CI a machine without Dovecot skips them; in CI
/// (`CI` set) a missing Dovecot is a failure, so the tests cannot silently vanish.
pub fn available() -> bool {
    let ok = Command::new("dovecot")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        super::skip::skip("dovecot is not installed (apt-get install dovecot-pop3d)");
    }
    ok
}

/// The account Dovecot's unprivileged processes and the mail user run as.
struct Account {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
}

fn account() -> Account {
    // SAFETY: geteuid/getpwnam/getpwuid/getgrgid have no preconditions; the returned pointers
    // are read before any other call that could reuse their static buffers.
    unsafe {
        let pw = if libc::geteuid() == 0 {
            let name = CString::new("nobody").unwrap();
            libc::getpwnam(name.as_ptr())
        } else {
            libc::getpwuid(libc::geteuid())
        };
        assert!(!pw.is_null(), "no passwd entry for the Dovecot account");
        let user = CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        let gr = libc::getgrgid(gid);
        assert!(!gr.is_null(), "no group entry for gid {gid}");
        let group = CStr::from_ptr((*gr).gr_name).to_string_lossy().into_owned();
        Account {
            user,
            group,
            uid,
            gid,
        }
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: chown on a path we created.
    let rc = unsafe { libc::chown(c.as_ptr(), uid, gid) };
    assert_eq!(rc, 0, "chown {}", path.display());
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    chown(path, uid, gid);
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

impl Dovecot {
    /// Starts Dovecot serving `mailbox`; returns once both listeners answer.
    pub fn start(mailbox: Mailbox) -> Dovecot {
        let mut last = String::new();
        // Ports are picked free, then handed to Dovecot; another process may take one in
        // between, so a start that fails to bind is retried on new ports.
        for _ in 0..5 {
            match Dovecot::try_start(&mailbox) {
                Ok(d) => return d,
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("dovecot did not start; log:\n{log}"),
            }
        }
        panic!("dovecot did not start; last log:\n{last}");
    }

    fn try_start(mailbox: &Mailbox) -> Result<Dovecot, String> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        use std::os::unix::fs::PermissionsExt;
        // Dovecot's unprivileged processes must reach their sockets and the mail under here.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let acct = account();

        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let cert = root.join("cert.pem");
        let key = root.join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();

        let home = root.join("home");
        let maildir = home.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        for (i, m) in mailbox.messages.iter().enumerate() {
            // Dovecot numbers new messages in file-name order; the names sort as the list does.
            let name = format!("{}.M{i}P1.test", 1_700_000_000 + i);
            std::fs::write(maildir.join("new").join(name), m).unwrap();
        }
        chown_tree(&home, acct.uid, acct.gid);

        let passwd = root.join("passwd");
        std::fs::write(
            &passwd,
            format!(
                "{}:{{PLAIN}}{}:{}:{}::{}\n",
                mailbox.user,
                mailbox.password,
                acct.uid,
                acct.gid,
                home.display()
            ),
        )
        .unwrap();

        let (pop3, pop3s) = free_ports();
        let log = root.join("dovecot.log");
        let conf = root.join("dovecot.conf");
        let r = root.display();
        std::fs::write(
            &conf,
            format!(
                "base_dir = {r}/run
state_dir = {r}/state
log_path = {log}
listen = 127.0.0.1
protocols = pop3
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain apop
# The test's user name is mixed case, as in the seed; do not lowercase it.
auth_username_format = %u
auth_failure_delay = 0
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = {passwd}
}}
userdb {{
  driver = passwd-file
  args = {passwd}
}}
# No chroot: an ordinary user cannot chroot, and as root it only hardens what a test does not need.
service anvil {{
  chroot =
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
",
                log = log.display(),
                user = acct.user,
                group = acct.group,
                cert = cert.display(),
                key = key.display(),
                passwd = passwd.display(),
            ),
        )
        .unwrap();

        let child = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dovecot");
        let mut d = Dovecot {
            child,
            endpoint: PopEndpoint {
                plain: SocketAddr::from(([127, 0, 0, 1], pop3)),
                tls: SocketAddr::from(([127, 0, 0, 1], pop3s)),
                ca_file: cert,
                mailbox: mailbox.clone(),
            },
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = d.child.try_wait() {
                return Err(d.log());
            }
            if greets(d.endpoint.plain) && TcpStream::connect(d.endpoint.tls).is_ok() {
                return Ok(d);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("no greeting within 30 s\n{}", d.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }
}

/// Whether a POP3 greeting comes from `addr` (the server is up, not just its socket).
fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).is_ok() && &buf == b"+OK"
}

impl Drop for Dovecot {
    /// SIGTERM lets the master stop its children; SIGKILL only if it does not exit.
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a file in the Dovecot's temp dir.
pub fn path_in(d: &Dovecot, name: &str) -> PathBuf {
    d.dir.path().join(name)
}
