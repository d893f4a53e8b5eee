//! Socket activation, black-box: `serve` handed pre-opened listeners the way systemd does
//! (descriptors from 3 on, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES) serves on them and binds
//! nothing itself; and the same through systemd's own `systemd-socket-activate`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::server::{free_port, seed_root};

fn root(smtp_port: u16, pop3_port: u16) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    seed_root(d.path());
    // Listen addresses that activation must ignore.
    std::fs::write(
        d.path().join("etc/mail/mailtool.toml"),
        format!(
            "hostname = \"mail.example1.com\"\nuser = \"nobody\"\ngroup = \"nogroup\"\n\
             [smtp]\nlisten = [\"127.0.0.1:{smtp_port}\"]\nsubmission = []\n\
             shutdown_grace = \"1s\"\n[pop3]\nlisten = [\"127.0.0.1:{pop3_port}\"]\n\
             [dns]\nservers = []\n[queue]\ndelivery_mode = \"queue\"\ninterval = \"0s\"\n"
        ),
    )
    .unwrap();
    common::server::readable(d.path());
    d
}

/// Lines of the child's stderr as they come.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    rx
}

/// `serve` with `listener` as descriptor 3, named `name`, the way systemd starts a unit.
fn serve_activated(root: &std::path::Path, listener: &TcpListener, name: &str) -> Child {
    let fd = listener.as_raw_fd();
    let mut cmd = Command::new("/bin/sh");
    // The shell's $$ is the pid serve will have after exec, as LISTEN_PID must be.
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ exec \"$0\" \"$@\"")
        .arg(common::bin())
        .arg("--root")
        .arg(root)
        .arg("serve")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", name)
        .env_remove("MAILTOOL_CONFIG")
        .env_remove("MAILTOOL_ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn serve")
}

fn greeting(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let _ = s.write_all(b"QUIT\r\n");
    line.trim_end().to_string()
}

fn refused(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

fn stop(mut child: Child) {
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[test]
fn inherited_listeners_are_served_and_nothing_is_bound() {
    let (smtp_port, pop3_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let r = root(smtp_port, pop3_port);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = serve_activated(r.path(), &listener, "smtp");
    drop(listener);
    let rx = lines(&mut child);
    let want = format!("mailtool: listening for SMTP on {addr}");
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l == want => break,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no {want:?}; stderr: {seen:#?}"),
        }
    }
    let g = greeting(addr);
    assert!(g.starts_with("220 mail.example1.com"), "{g}");
    // The configured ports stay free: the unit's sockets replace them.
    assert!(refused(SocketAddr::from(([127, 0, 0, 1], smtp_port))));
    assert!(refused(SocketAddr::from(([127, 0, 0, 1], pop3_port))));
    stop(child);
}

#[test]
fn a_socket_with_an_unknown_name_stops_serve_with_its_name() {
    let r = root(free_port("127.0.0.1"), free_port("127.0.0.1"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let child = serve_activated(r.path(), &listener, "bogus");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("socket activation: inherited socket 3 is named \"bogus\""),
        "{err}"
    );
}

// An implicit-TLS socket without [tls] is refused at start, as a configured one would be.
#[test]
fn an_smtps_socket_without_a_certificate_is_refused() {
    let r = root(free_port("127.0.0.1"), free_port("127.0.0.1"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = serve_activated(r.path(), &listener, "smtps")
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("socket smtps") && err.contains("[tls] has no cert"),
        "{err}"
    );
}

#[test]
fn systemd_socket_activate_starts_serve_on_its_socket() {
    let tool = std::path::Path::new("/usr/bin/systemd-socket-activate");
    if !tool.exists() {
        common::skip::skip("systemd-socket-activate is not installed (apt-get install systemd)");
        return;
    }
    let r = root(free_port("127.0.0.1"), free_port("127.0.0.1"));
    let port = free_port("127.0.0.1");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = Command::new(tool)
        .arg("-l")
        .arg(addr.to_string())
        .arg("--fdname=smtp")
        .arg(common::bin())
        .arg("--root")
        .arg(r.path())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn systemd-socket-activate");
    let rx = lines(&mut child);
    // It listens first and starts serve on the first connection.
    common::wait_for("systemd-socket-activate to listen", || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            .ok()
            .map(|mut s| {
                let mut line = String::new();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut b = [0u8; 512];
                let n = s.read(&mut b).unwrap_or(0);
                line.push_str(&String::from_utf8_lossy(&b[..n]));
                let _ = s.write_all(b"QUIT\r\n");
                line
            })
    });
    let g = greeting(addr);
    let log: Vec<String> = rx.try_iter().collect();
    assert!(g.starts_with("220 mail.example1.com"), "{g}; {log:#?}");
    // serve itself is the child of systemd-socket-activate: stop both.
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &child.id().to_string()])
        .status();
    stop(child);
}

// contrib/systemd: every socket unit names its descriptor as serve expects and points at the
// activated service, which lists every one of them.
#[test]
fn the_socket_units_match_what_serve_takes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
    let service = std::fs::read_to_string(dir.join("mailtool-activated.service")).unwrap();
    let listed = service
        .lines()
        .find_map(|l| l.strip_prefix("Sockets="))
        .expect("Sockets= in the service");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if !file.ends_with(".socket") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("FileDescriptorName="))
            .unwrap_or_else(|| panic!("{file}: no FileDescriptorName="));
        assert!(
            mailtool::server::activation::NAMES.contains(&name),
            "{file}: {name}"
        );
        assert!(
            text.contains("Service=mailtool-activated.service"),
            "{file}"
        );
        assert!(
            listed.split_whitespace().any(|s| s == file),
            "{file} not in Sockets="
        );
        names.push(name.to_string());
    }
    names.sort();
    assert_eq!(names, ["pop3", "pop3s", "smtp", "smtps", "submission"]);
}
