//! Helpers for the black-box tests: run the real binary, under a temp root.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mailtool"))
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A command for the binary, isolated from the caller's environment and config.
pub fn mailtool() -> Command {
    let mut c = Command::new(bin());
    c.env_remove("MAILTOOL_CONFIG").env_remove("MAILTOOL_ROOT");
    c
}

/// Runs `cmd` with `stdin` as its input and returns everything it did.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailtool");
    {
        let mut i = child.stdin.take().expect("stdin");
        // The child may exit before reading everything (e.g. a usage error).
        let _ = i.write_all(stdin);
    }
    child.wait_with_output().expect("wait")
}

/// Makes `cmd` run as nobody when the tests run as root, so permission checks apply.
pub fn as_nobody(cmd: &mut Command) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(65534).gid(65534);
        true
    } else {
        false
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A link named `name` to the binary, in `dir`.
pub fn link(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::os::unix::fs::symlink(bin(), &p).expect("symlink");
    p
}
pub mod dns;
pub mod dovecot;
pub mod milter;
pub mod pop3;
pub mod postfix;
pub mod postgres;
pub mod redis;
pub mod server;
pub mod skip;

/// The addresses contrib/fail2ban/filter.d/mailtool.conf's failregex finds in `log`, matched
/// by Python's `re` (fail2ban is Python) with <HOST> expanded as fail2ban does for addresses.
pub fn fail2ban_hosts(log: &str) -> Vec<String> {
    let conf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib/fail2ban/filter.d/mailtool.conf"),
    )
    .unwrap();
    let regex = conf
        .lines()
        .find_map(|l| l.strip_prefix("failregex = "))
        .expect("failregex")
        .replace("<HOST>", r"(?:::f{4,6}:)?(?P<host>[\w\-.^_]*\w)");
    let dir = tempfile::tempdir().unwrap();
    let logf = dir.path().join("log");
    std::fs::write(&logf, log).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import re,sys\nr=re.compile(sys.argv[1])\nfor l in open(sys.argv[2]):\n m=r.search(l.rstrip('\\n'))\n if m: print(m.group('host'))")
        .arg(&regex)
        .arg(&logf)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Polls `f` until it returns Some, for at most 20 s.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
