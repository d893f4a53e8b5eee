//! README.md's walk-through ("The first hour", between `<!-- walkthrough:begin -->` and
//! `<!-- walkthrough:end -->`) runs as written: its ```sh blocks are joined into one bash
//! script (`set -euo pipefail`) and run under a temp directory, with only ROOT, SMTP_PORT,
//! POP3_PORT and a PATH that finds this build's `mailtool` set by the test. Then the effects are
//! checked: the maps were built, the message landed in the virtual user's mailbox, relaycheck
//! found no relay, the queue is empty and the server stopped.

mod common;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;
use common::server::{free_port, temp_root};

/// The ```sh blocks of the walk-through, in order.
fn sh_blocks(readme: &str) -> Vec<String> {
    sh_blocks_in(readme, "walkthrough")
}

/// The ```sh blocks between `<!-- NAME:begin -->` and `<!-- NAME:end -->`, in order.
fn sh_blocks_in(readme: &str, name: &str) -> Vec<String> {
    let (begin, end_marker) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README.md has no {begin} marker"));
    let end = readme
        .find(&end_marker)
        .unwrap_or_else(|| panic!("README.md has no {end_marker} marker"));
    assert!(start < end, "{name} markers out of order");
    let section = &readme[start + begin.len()..end];
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match &mut current {
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_end() == "```" => blocks.push(current.take().unwrap()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    assert!(
        current.is_none(),
        "an unterminated ```sh block in the walkthrough"
    );
    blocks
}

/// Kills the script's process group (the script and the `serve` it started in the background)
/// if the test ends while they still run.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this test created (pgid = the child's pid).
        unsafe { libc::killpg(self.0, libc::SIGKILL) };
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

#[test]
fn readme_walkthrough_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 5, "only {} sh blocks found", blocks.len());
    let script = format!("set -euo pipefail\n{}", blocks.concat());

    let tmp = temp_root();
    let root = tmp.path().join("root");
    let bindir = tmp.path().join("bin");
    std::fs::create_dir(&bindir).unwrap();
    std::os::unix::fs::symlink(bin(), bindir.join("mailtool")).unwrap();
    let script_path = tmp.path().join("walkthrough.sh");
    std::fs::write(&script_path, &script).unwrap();
    let smtp_port = free_port("127.0.0.1");
    let pop3_port = loop {
        let p = free_port("127.0.0.1");
        if p != smtp_port {
            break p;
        }
    };
    let path = format!(
        "{}:{}",
        bindir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );

    let mut child = Command::new("bash")
        .arg(&script_path)
        .current_dir(tmp.path())
        .env("ROOT", &root)
        .env("SMTP_PORT", smtp_port.to_string())
        .env("POP3_PORT", pop3_port.to_string())
        .env("PATH", path)
        .env_remove("MAILTOOL_ROOT")
        .env_remove("MAILTOOL_CONFIG")
        .env_remove("MAILTOOL_PASSWORD")
        .env_remove("MAILTOOL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run bash");
    let _group = Group(child.id() as i32);
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());

    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // A script that failed (or hung) may have left `serve` running, holding stdout open: end
    // whatever is left of the group before reading the pipes to their end.
    // SAFETY: as in Group::drop.
    unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
    let serve_log = || std::fs::read_to_string(root.join("serve.log")).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "the walkthrough did not finish in 180 s\nstdout:\n{}\nstderr:\n{}\nserve.log:\n{}",
            out.join().unwrap(),
            err.join().unwrap(),
            serve_log()
        );
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let report = format!(
        "script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserve.log:\n{}",
        serve_log()
    );
    assert!(
        status.success(),
        "the walkthrough failed ({status})\n{report}"
    );

    // The maps were built (makemap, newaliases, passwd).
    let etc = root.join("etc/mail");
    for map in [
        "virtusertable",
        "access",
        "localip",
        "popip",
        "aliases",
        "users",
    ] {
        assert!(
            etc.join(format!("{map}.db")).is_file(),
            "{map}.db was not built\n{report}"
        );
    }
    assert!(
        stdout.lines().any(|l| l.trim() == "RELAY"),
        "makemap -q Connect:relay.com\n{report}"
    );

    // The message for info@example1.com went through @example1.com to example's mbox.
    let mbox = std::fs::read_to_string(root.join("var/mail/example"))
        .unwrap_or_else(|e| panic!("no mailbox for example: {e}\n{report}"));
    assert!(mbox.starts_with("From who@example1.com "), "{mbox}");
    assert!(mbox.contains("\nSubject: The first hour\n"), "{mbox}");
    assert!(mbox.contains("Hello from the walk-through."), "{mbox}");
    assert_eq!(
        mbox.matches("\nFrom ").count(),
        0,
        "one message only: {mbox}"
    );
    // example2.com refused its recipient.
    assert!(
        stderr.contains("550 5.0.0 <anyone@example2.com>... error-message"),
        "{report}"
    );

    // The POP3 check, when the walkthrough has it (it always should; commented out only to
    // try the rest on a build without the POP3 server).
    if script
        .lines()
        .any(|l| l.trim_start().starts_with("MAILTOOL_PASSWORD=") && l.contains("pop-login"))
    {
        assert!(
            stdout.contains("example has 1 visible message (0 hidden) in "),
            "pop-login\n{report}"
        );
    }

    // relaycheck found nothing open, in both forms.
    assert!(
        stdout.contains("Server doesn't seem to be an open relay"),
        "{report}"
    );
    assert!(
        stdout.contains(&format!("127.0.0.1:{smtp_port} relay Deny")),
        "{report}"
    );
    // Everything was delivered, and the server stopped when told.
    assert!(stdout.contains("is empty"), "mailq\n{report}");
    let log = serve_log();
    assert!(log.contains("listening for SMTP"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn blocks_are_found_between_the_markers_only() {
    let text = "```sh\nno\n```\n<!-- walkthrough:begin -->\ntext\n```sh\na\nb\n```\n\
                ```toml\nx = 1\n```\n```sh\nc\n```\n<!-- walkthrough:end -->\n```sh\nno\n```\n";
    assert_eq!(sh_blocks(text), ["a\nb\n", "c\n"]);
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md")
}

/// Issue 12 (8): the Quick start's three lines (passwd, smtp-send, pop-login) work as written
/// against `mailtool serve` started with no configuration by a normal user. The fixed ports of
/// the Quick start (2525, 1100) are taken in a private network namespace, so nothing else on
/// the machine can hold them; the user is nobody with a fresh home.
#[test]
fn readme_quick_start_runs_as_written() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let netns = root
        && Command::new("unshare")
            .args(["-n", "sh", "-c", "ip link set lo up"])
            .status()
            .is_ok_and(|s| s.success());
    if !netns {
        common::skip::skip("needs root, unshare(1) and ip(8) for a private network namespace");
        return;
    }
    let readme = readme();
    let lines = sh_blocks_in(&readme, "quickstart").concat();
    assert_eq!(lines.lines().count(), 3, "three lines:\n{lines}");
    for cmd in [
        "mailtool passwd",
        "mailtool smtp-send",
        "mailtool pop-login",
    ] {
        assert!(lines.contains(cmd), "{cmd} missing:\n{lines}");
    }
    let tmp = temp_root();
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let bindir = tmp.path().join("bin");
    std::fs::create_dir(&bindir).unwrap();
    std::os::unix::fs::symlink(bin(), bindir.join("mailtool")).unwrap();
    let script = format!(
        "set -euo pipefail\n\
         mailtool serve 2> \"$HOME/serve.log\" &\n\
         for i in $(seq 100); do grep -qs 'listening for POP3' \"$HOME/serve.log\" && break; sleep 0.2; done\n\
         {lines}\
         kill %1\nwait %1\n"
    );
    let script_path = tmp.path().join("quickstart.sh");
    std::fs::write(&script_path, &script).unwrap();
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c"])
        .arg(r#"ip link set lo up && exec setpriv --reuid=65534 --regid=65534 --clear-groups bash "$0""#)
        .arg(&script_path)
        .current_dir(&home)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bindir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run the quick start");
    let _group = Group(child.id() as i32);
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // SAFETY: as in Group::drop.
    unsafe { libc::killpg(child.id() as i32, libc::SIGKILL) };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let log = std::fs::read_to_string(home.join("serve.log")).unwrap_or_default();
    let report =
        format!("script:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}\nserve.log:\n{log}");
    assert!(status.is_some_and(|s| s.success()), "{report}");
    assert!(
        log.contains("listening for SMTP on 127.0.0.1:2525"),
        "{report}"
    );
    // pop-login's summary (stderr with --retr) and the message itself on stdout.
    assert!(
        stderr.contains("me has 1 visible message (0 hidden)"),
        "{report}"
    );
    assert!(stdout.contains("\nHello"), "{report}");
    assert!(
        stdout.contains("To: <me@localhost>") || stdout.contains("To: me@localhost"),
        "{report}"
    );
    assert!(
        home.join(".local/share/mailtool/var/mail/me").is_file(),
        "{report}"
    );
}

/// Issue 12 (8): the install steps fit a stock Debian: `cargo install --locked` into the
/// directory the systemd units start the binary from, man directories created before the
/// copies, `/usr/sbin/sendmail` diverted when another MTA owns it; no dead DNSBL in examples.
#[test]
fn readme_install_steps_fit_the_units() {
    let readme = readme();
    let start = readme.find("\n## Install\n").expect("an Install section");
    let section = &readme[start..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |e| e + 1)];
    let install = section
        .lines()
        .find(|l| l.starts_with("cargo install"))
        .expect("a cargo install line");
    assert!(install.contains("--locked"), "{install}");
    let words: Vec<&str> = install.split_whitespace().collect();
    let prefix = words
        .iter()
        .position(|w| *w == "--root")
        .map(|i| words[i + 1])
        .expect("cargo install --root PREFIX");
    let binary = format!("{prefix}/bin/mailtool");
    for unit in [
        "mailtool.service",
        "mailtool-simple.service",
        "mailtool-activated.service",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("contrib/systemd")
                .join(unit),
        )
        .unwrap();
        for l in text.lines().filter(|l| l.starts_with("ExecStart")) {
            let exe = l
                .split_once('=')
                .unwrap()
                .1
                .split_whitespace()
                .next()
                .unwrap();
            assert_eq!(exe, binary, "{unit}: {l}");
        }
    }
    let mkdir = section
        .find("mkdir -p")
        .expect("the man directories are created");
    let copy = section.find("cp man/*.1").expect("man pages copied");
    assert!(mkdir < copy);
    let mkdir_line = section[mkdir..].lines().next().unwrap();
    for dir in ["/usr/local/share/man/man1", "/usr/local/share/man/man5"] {
        assert!(mkdir_line.contains(dir), "{mkdir_line}");
    }
    assert!(
        section.contains("dpkg-divert --local --rename --add"),
        "{section}"
    );
    assert!(!readme.contains("zone = \"relays.ordb.org\""));
    // The exit-status list names every status the commands use.
    let exits = &readme[readme.find("### Exit statuses").expect("exit statuses")..];
    let exits = &exits[..exits[4..].find("\n#").unwrap_or(exits.len())];
    for code in [
        "64", "65", "66", "67", "69", "70", "71", "73", "74", "75", "78",
    ] {
        assert!(
            exits.split_whitespace().any(|w| w == code),
            "exit {code} missing:\n{exits}"
        );
    }
}
