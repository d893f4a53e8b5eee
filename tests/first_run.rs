//! Issue 12, first run: `serve` as root on a machine with no `mailtool` account creates it (in a
//! private mount namespace over a copy of /etc, so the host's accounts are never touched),
//! joins the group of a Debian-style `/var/mail` (root:mail 2775) and delivers there; it refuses
//! to start when it could not write there; `mailtool setup [--dry-run]` prepares the account, a
//! commented mailtool.toml and a certificate that STARTTLS then uses; `config check` is as strict
//! as the start; doctor and relaycheck say what is really the case.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::server::{Server, Smtp, add_user, temp_root};
use common::{bin, mailtool, run, text};

/// Root, `unshare` and a writable /etc copy: what the account tests need.
fn namespaces() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let ok = root
        && Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        common::skip::skip("needs root and unshare(1) for a private mount namespace");
    }
    ok
}

/// A copy of /etc without any `mailtool` account, to bind-mount over /etc.
fn etc_copy(dir: &Path) -> PathBuf {
    let etc = dir.join("etc");
    let st = Command::new("cp")
        .arg("-a")
        .arg("/etc")
        .arg(&etc)
        .status()
        .unwrap();
    assert!(st.success());
    for f in ["passwd", "group", "shadow", "gshadow"] {
        let p = etc.join(f);
        if let Ok(t) = fs::read_to_string(&p) {
            let kept: String = t
                .lines()
                .filter(|l| !l.starts_with("mailtool:"))
                .map(|l| format!("{l}\n"))
                .collect();
            fs::write(&p, kept).unwrap();
        }
    }
    etc
}

/// `mailtool ARGS` with `etc` mounted over /etc in a private mount namespace.
fn in_namespace(etc: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$0" /etc && exec "$@""#)
        .arg(etc)
        .arg(bin())
        .args(args)
        .env_remove("MAILTOOL_CONFIG")
        .env_remove("MAILTOOL_ROOT");
    c
}

/// A `serve` child and everything it wrote on stderr so far.
struct Serving {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Serving {
    fn start(mut cmd: Command) -> Serving {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Serving {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    /// Waits for the SMTP listener's line; panics with the log when the server exits first.
    fn smtp(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.log.push(l.clone());
                    if let Some(a) = l.strip_prefix("mailtool: listening for SMTP on ") {
                        return a.trim().parse().unwrap();
                    }
                }
                Err(_) => panic!("serve did not start:\n{}", self.log.join("\n")),
            }
        }
    }

    /// Everything logged until now.
    fn drain(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(l) = self.lines.try_recv() {
            self.log.push(l);
        }
        self.log.join("\n")
    }

    fn stop(mut self) -> Option<i32> {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("serve did not stop:\n{}", self.drain());
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gid of `name` in an /etc/group file.
fn gid_in(etc: &Path, file: &str, name: &str) -> Option<u32> {
    fs::read_to_string(etc.join(file))
        .ok()?
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| f[2].parse().ok())?
        })
}

/// A root with the seed's local domain, the virtual user bob and a Debian-style /var/mail.
fn debian_root(config_extra: &str) -> tempfile::TempDir {
    let r = temp_root();
    let etc = r.path().join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    fs::write(etc.join("local-host-names"), "example1.com\n").unwrap();
    add_user(r.path(), "bob", "pw");
    fs::write(
        etc.join("mailtool.toml"),
        format!(
            "hostname = \"mail.example1.com\"\n{config_extra}\
             [smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\nshutdown_grace = \"1s\"\n\
             [pop3]\nlisten = []\n"
        ),
    )
    .unwrap();
    common::server::readable(r.path());
    let mail = r.path().join("var/mail");
    fs::create_dir_all(&mail).unwrap();
    let mail_gid = gid_in(Path::new("/etc"), "group", "mail").expect("a mail group");
    std::os::unix::fs::chown(&mail, Some(0), Some(mail_gid)).unwrap();
    fs::set_permissions(&mail, fs::Permissions::from_mode(0o2775)).unwrap();
    fs::set_permissions(r.path().join("var"), fs::Permissions::from_mode(0o755)).unwrap();
    r
}

fn send_to_bob(addr: SocketAddr, subject: &str) {
    let (mut c, g) = Smtp::open(addr, None);
    assert!(g.starts_with("220"), "{g}");
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    let r = c.mail(
        "alice@example.org",
        &["bob@example1.com"],
        &format!("Subject: {subject}\r\n\r\nhello bob\r\n"),
    );
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT");
}

fn wait_for_file(p: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(t) = fs::read_to_string(p)
            && t.contains(needle)
        {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{} never got {needle:?}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 12 (1, 2, 6): the first start as root creates the system user and group, adds the
/// user to the mailbox directory's group, says each in one line, prints every start-up line
/// once, and delivers into a root:mail 2775 /var/mail.
#[test]
fn first_start_as_root_creates_the_account_and_delivers() {
    if !namespaces() {
        return;
    }
    let scratch = temp_root();
    let etc = etc_copy(scratch.path());
    let r = debian_root("");
    let root = r.path().to_str().unwrap();
    let mut s = Serving::start(in_namespace(&etc, &["--root", root, "serve"]));
    let addr = s.smtp();
    let start_log = s.drain();
    let once = |needle: &str| {
        let n = start_log.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(n, 1, "{needle:?} logged {n} times:\n{start_log}");
    };
    once("created system group mailtool");
    once("created system user mailtool (group mailtool, also in mail)");
    once("listening for SMTP on");
    let mut seen = std::collections::HashSet::new();
    for l in start_log.lines() {
        assert!(seen.insert(l), "start-up line twice: {l:?}\n{start_log}");
    }
    let passwd = fs::read_to_string(etc.join("passwd")).unwrap();
    let entry = passwd
        .lines()
        .find(|l| l.starts_with("mailtool:"))
        .expect("mailtool in the copy's passwd");
    assert!(entry.ends_with(":/usr/sbin/nologin"), "{entry}");
    let uid: u32 = entry.split(':').nth(2).unwrap().parse().unwrap();
    let mail_line = fs::read_to_string(etc.join("group"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("mail:"))
        .unwrap()
        .to_string();
    assert!(
        mail_line
            .split(':')
            .nth(3)
            .unwrap()
            .split(',')
            .any(|m| m == "mailtool"),
        "{mail_line}"
    );
    // The host's own accounts are untouched.
    assert!(
        !fs::read_to_string("/etc/passwd")
            .unwrap()
            .contains("\nmailtool:")
    );

    send_to_bob(addr, "first run");
    let mbox = r.path().join("var/mail/bob");
    let t = wait_for_file(&mbox, "hello bob");
    assert!(t.starts_with("From alice@example.org "), "{t}");
    assert_eq!(fs::metadata(&mbox).unwrap().uid(), uid);
    assert_eq!(s.stop(), Some(0));

    // The second start finds the account and creates nothing.
    let mut s = Serving::start(in_namespace(&etc, &["--root", root, "serve"]));
    s.smtp();
    let log = s.drain();
    assert!(!log.contains("created"), "{log}");
    assert_eq!(s.stop(), Some(0));
}

/// Issue 12 (2): an existing run-time user outside the mailbox directory's group gets it as a
/// supplementary group, with one log line, and the mail is delivered.
#[test]
fn debian_var_mail_is_written_through_its_group() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip::skip("serve drops privileges only when started as root");
        return;
    }
    let r = debian_root("user = \"nobody\"\ngroup = \"nogroup\"\n");
    let s = Server::start(
        r.path(),
        // Delivering at once (Server::start otherwise keeps mail in the spool).
        &(fs::read_to_string(r.path().join("etc/mail/mailtool.toml")).unwrap()
            + "[queue]\ninterval = \"1h\"\n"),
    );
    send_to_bob(s.smtp(), "group");
    let t = wait_for_file(&r.path().join("var/mail/bob"), "hello bob");
    assert!(t.contains("Subject: group"));
    let log = s.log();
    let note = format!(
        "{} is group-writable by mail: delivering with mail as a supplementary group",
        r.path().join("var/mail").display()
    );
    assert_eq!(log.matches(&note).count(), 1, "{log}");
    assert!(!log.contains("Permission denied"), "{log}");
    s.stop();
}

/// Issue 12 (2): when the run-time user cannot create files in the mailbox directory, serve
/// refuses to start (73) and names the fix, before it accepts a single message.
#[test]
fn unwritable_mailboxes_stop_the_start() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip::skip("serve drops privileges only when started as root");
        return;
    }
    let r = debian_root("user = \"nobody\"\ngroup = \"nogroup\"\n");
    let mail = r.path().join("var/mail");
    std::os::unix::fs::chown(&mail, Some(0), Some(0)).unwrap();
    fs::set_permissions(&mail, fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(mailtool().arg("--root").arg(r.path()).arg("serve"), b"");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(73), "{err}");
    assert!(
        err.contains(&format!(
            "cannot create files in {} as user nobody",
            mail.display()
        )) && err.contains(&format!("chgrp nobody {}", mail.display())),
        "{err}"
    );
    assert!(!err.contains("listening for"), "{err}");
}

/// Issue 12 (1): `setup --dry-run` says what it would do and does nothing; `setup` creates the
/// account, a commented mailtool.toml and a certificate; `config check` passes it, `serve`
/// offers STARTTLS with that certificate and smtp-send verifies it; a second setup changes
/// nothing.
#[test]
fn setup_as_root_prepares_account_config_and_certificate() {
    if !namespaces() {
        return;
    }
    let scratch = temp_root();
    let etc = etc_copy(scratch.path());
    let r = temp_root();
    let root = r.path().to_str().unwrap();
    let mail = r.path().join("var/mail");
    fs::create_dir_all(&mail).unwrap();
    let mail_gid = gid_in(&etc, "group", "mail").unwrap();
    std::os::unix::fs::chown(&mail, Some(0), Some(mail_gid)).unwrap();
    fs::set_permissions(&mail, fs::Permissions::from_mode(0o2775)).unwrap();
    fs::set_permissions(r.path().join("var"), fs::Permissions::from_mode(0o755)).unwrap();

    let out = in_namespace(&etc, &["--root", root, "setup", "--dry-run"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for line in [
        "mailtool setup: would create system group mailtool",
        "mailtool setup: would create system user mailtool (group mailtool, also in mail)",
        "mailtool setup: would make a self-signed certificate for",
        &format!(
            "mailtool setup: would write {}/etc/mail/mailtool.toml",
            r.path().display()
        ),
    ] {
        assert!(said.contains(line), "missing {line:?} in\n{said}");
    }
    assert!(!r.path().join("etc").exists());
    assert!(
        !fs::read_to_string(etc.join("passwd"))
            .unwrap()
            .contains("mailtool:")
    );

    let out = in_namespace(&etc, &["--root", root, "setup"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        said.contains("mailtool setup: created system user mailtool"),
        "{said}"
    );
    assert!(
        said.contains("next: mailtool config check && mailtool serve"),
        "{said}"
    );
    assert!(
        fs::read_to_string(etc.join("passwd"))
            .unwrap()
            .contains("mailtool:")
    );
    let key = r.path().join("etc/mail/tls/key.pem");
    let cert = r.path().join("etc/mail/tls/cert.pem");
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let conf_file = r.path().join("etc/mail/mailtool.toml");
    let conf = fs::read_to_string(&conf_file).unwrap();
    assert!(conf.contains("cert = \"/etc/mail/tls/cert.pem\""), "{conf}");
    assert!(
        conf.lines().filter(|l| l.starts_with("# ")).count() > 10,
        "{conf}"
    );

    // Loopback ports for the test, as an admin would edit the commented defaults.
    let conf = conf
        .replace(
            "# listen      = [\"0.0.0.0:25\"]",
            "listen = [\"127.0.0.1:0\"]",
        )
        .replace("# submission  = [\"0.0.0.0:587\"]", "submission = []")
        .replace("# listen = [\"0.0.0.0:110\"]", "listen = []")
        .replace("hostname = ", "# was: ");
    let conf = format!("hostname = \"mail.example1.com\"\n{conf}");
    fs::write(&conf_file, &conf).unwrap();
    // The certificate names the host setup saw; regenerate for the test's name.
    fs::remove_file(&key).unwrap();
    fs::remove_file(&cert).unwrap();
    let out = in_namespace(&etc, &["--root", root, "setup"])
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(
        said.contains("user mailtool and group mailtool exist"),
        "{said}"
    );
    assert!(said.contains("mailtool.toml exists"), "{said}");
    assert!(said.contains("for mail.example1.com, localhost"), "{said}");
    assert!(!said.contains("wrote"), "{said}");

    let out = in_namespace(&etc, &["--root", root, "config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let mut s = Serving::start(in_namespace(&etc, &["--root", root, "serve"]));
    let addr = s.smtp();
    let (mut c, _) = Smtp::open(addr, None);
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    c.cmd("QUIT");
    let out = run(
        mailtool()
            .args([
                "smtp-send",
                "--server",
                &format!("localhost:{}", addr.port()),
            ])
            .args(["--helo", "client.test"])
            .args(["--starttls", "always", "--ca-file"])
            .arg(&cert)
            .args([
                "--from",
                "alice@example.org",
                "--to",
                "postmaster@mail.example1.com",
            ]),
        b"",
    );
    // The certificate names localhost too, so smtp-send verifies it against the CA file.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(s.stop(), Some(0));
}

/// Issue 12 (1): as a normal user, setup works under the user's root with the loopback
/// defaults, and serve offers STARTTLS from its first start.
#[test]
fn setup_as_a_normal_user() {
    let r = temp_root();
    let mut cmd = mailtool();
    let as_nobody = common::as_nobody(&mut cmd);
    if as_nobody {
        std::os::unix::fs::chown(r.path(), Some(65534), Some(65534)).unwrap();
    }
    let out = run(cmd.arg("--root").arg(r.path()).arg("setup"), b"");
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!said.contains("system user"), "{said}");
    let conf_file = r.path().join("etc/mail/mailtool.toml");
    let conf = fs::read_to_string(&conf_file).unwrap();
    assert!(
        conf.contains("# listen      = [\"127.0.0.1:2525\"]"),
        "{conf}"
    );
    let mut cmd = mailtool();
    common::as_nobody(&mut cmd);
    let out = run(
        cmd.arg("--root").arg(r.path()).args(["config", "check"]),
        b"",
    );
    // 2525 may be taken on a busy machine; anything else is a defect.
    let err = text(&out.stderr);
    assert!(
        out.status.code() == Some(0) || err.contains("cannot listen on 127.0.0.1:25"),
        "{err}"
    );
    let conf = conf
        .replace(
            "# listen      = [\"127.0.0.1:2525\"]",
            "listen = [\"127.0.0.1:0\"]",
        )
        .replace("# submission  = [\"127.0.0.1:2587\"]", "submission = []")
        .replace("# listen = [\"127.0.0.1:1100\"]", "listen = []");
    fs::write(&conf_file, conf).unwrap();
    let mut cmd = mailtool();
    common::as_nobody(&mut cmd);
    cmd.arg("--root").arg(r.path()).arg("serve");
    let mut s = Serving::start(cmd);
    let (mut c, _) = Smtp::open(s.smtp(), None);
    let ehlo = c.cmd("EHLO client.test");
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert!(c.cmd("STARTTLS").starts_with("220"));
    drop(c);
    assert_eq!(s.stop(), Some(0));
}

/// Issue 12 (3): `config check` refuses what `serve` would refuse: a missing certificate (78)
/// and a port another program holds (69), naming the file.
#[test]
fn config_check_is_as_strict_as_the_start() {
    let r = temp_root();
    let etc = r.path().join("etc/mail");
    fs::create_dir_all(&etc).unwrap();
    let file = etc.join("mailtool.toml");
    fs::write(
        &file,
        "user = \"nobody\"\ngroup = \"nogroup\"\n[smtp]\nlisten = [\"127.0.0.1:0\"]\nsubmission = []\n\
         [pop3]\nlisten = []\n[tls]\ncert = \"/etc/mail/no-cert.pem\"\nkey = \"/etc/mail/no-key.pem\"\n",
    )
    .unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["config", "check"]),
        b"",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains("no-cert.pem"),
        "{err}"
    );
    // serve agrees.
    let out = run(mailtool().arg("--root").arg(r.path()).arg("serve"), b"");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    fs::write(
        &file,
        format!(
            "user = \"nobody\"\ngroup = \"nogroup\"\n[smtp]\nlisten = [\"127.0.0.1:{port}\"]\nsubmission = []\n\
             [pop3]\nlisten = []\n"
        ),
    )
    .unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["config", "check"]),
        b"",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{err}");
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port} (SMTP)")),
        "{err}"
    );
    drop(taken);
    let out = run(
        mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["config", "check"]),
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}: OK\n", file.display()));
}

/// Issue 12 (4): doctor does not call a missing file valid.
#[test]
fn doctor_says_the_config_file_is_missing() {
    let r = temp_root();
    fs::create_dir_all(r.path().join("etc/mail")).unwrap();
    let out = run(
        mailtool()
            .arg("--root")
            .arg(r.path())
            .args(["doctor", "--json"]),
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    let file = r.path().join("etc/mail/mailtool.toml");
    let checks = v["checks"].as_array().or(v.as_array()).expect("checks");
    let config = checks
        .iter()
        .find(|c| c.to_string().contains(&file.display().to_string()))
        .unwrap_or_else(|| panic!("no check names {}: {v}", file.display()));
    let s = config.to_string();
    assert!(s.contains("does not exist; using the defaults"), "{s}");
    assert!(s.contains("mailtool setup"), "{s}");
    assert!(!s.contains("is valid"), "{s}");
    assert!(s.contains("warn"), "{s}");
}

/// Issue 9: a skip is visible: outside CI it is recorded for the run's summary (and written
/// to the real stderr); with CI set it is a failure.
#[test]
fn a_skip_is_recorded_or_fails_in_ci() {
    let ci = std::env::var_os("CI").is_some();
    let reason = format!("the skip helper's own test {}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("skipped.txt");
    let r = std::panic::catch_unwind(|| common::skip::skip_to(&reason, &file));
    if ci {
        assert!(r.is_err(), "a skip in CI must fail");
        assert!(!file.exists());
    } else {
        assert!(r.is_ok());
        let t = fs::read_to_string(&file).unwrap();
        assert!(
            t.contains(&format!(
                "SKIPPED first_run::a_skip_is_recorded_or_fails_in_ci: {reason}\n"
            )),
            "{t}"
        );
    }
}
