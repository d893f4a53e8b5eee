//! POP3 test targets and the `pop-login` runner, independent of which server is tested: a
//! real Dovecot (`dovecot.rs`) now, mailtool's own POP3 server later. A server fixture only
//! has to fill in a [`PopEndpoint`] with a mailbox it serves.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{mailtool, run};

/// A user and the messages in the maildrop (LF line ends, as stored on disk).
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub user: String,
    pub password: String,
    pub messages: Vec<String>,
}

impl Mailbox {
    /// Two messages; the first has a line starting with "." to exercise byte-stuffing.
    pub fn standard() -> Mailbox {
        Mailbox {
            user: "UserID".into(),
            password: "pw-Zq81-never-shown".into(),
            messages: vec![
                "From: alice@example1.com\nTo: UserID@example1.com\nSubject: first\n\nhello\n.dot line\nlast line\n".into(),
                "From: bob@example2.com\nTo: UserID@example1.com\nSubject: second\n\nbody two\n".into(),
            ],
        }
    }

    /// The seed's telnet check: one message.
    pub fn single() -> Mailbox {
        let mut m = Mailbox::standard();
        m.messages.truncate(1);
        m
    }

    /// A message as POP3 sends it (CRLF line ends, RFC 1939's "exact size").
    pub fn wire(&self, n: usize) -> String {
        self.messages[n - 1].replace('\n', "\r\n")
    }

    pub fn octets(&self, n: usize) -> usize {
        self.wire(n).len()
    }

    pub fn total_octets(&self) -> usize {
        (1..=self.messages.len()).map(|n| self.octets(n)).sum()
    }

    /// The summary line `pop-login` must print.
    pub fn summary_line(&self) -> String {
        let n = self.messages.len();
        format!(
            "{} has {n} visible message{} (0 hidden) in {} octets",
            self.user,
            if n == 1 { "" } else { "s" },
            self.total_octets()
        )
    }
}

/// Where a POP3 server listens and what it serves.
#[derive(Debug, Clone)]
pub struct PopEndpoint {
    /// Plain POP3 with STLS.
    pub plain: SocketAddr,
    /// Implicit TLS (POP3S).
    pub tls: SocketAddr,
    /// The server's self-signed certificate, to pass as --ca-file.
    pub ca_file: PathBuf,
    pub mailbox: Mailbox,
}

impl PopEndpoint {
    /// `mailtool pop-login ADDR --user USER ARGS…`, the password in MAILTOOL_PASSWORD.
    pub fn login(&self, addr: SocketAddr, args: &[&str]) -> Output {
        self.login_with(addr, args, |c| {
            c.env("MAILTOOL_PASSWORD", &self.mailbox.password);
        })
    }

    /// Like [`Self::login`], but `setup` decides where the password comes from.
    pub fn login_with(
        &self,
        addr: SocketAddr,
        args: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Output {
        let mut cmd = pop_login_command(addr, &self.mailbox.user, args);
        setup(&mut cmd);
        run(&mut cmd, b"")
    }
}

/// `mailtool pop-login ADDR --user USER ARGS…` with no password source, and a bounded
/// timeout unless ARGS set one.
pub fn pop_login_command(addr: SocketAddr, user: &str, args: &[&str]) -> Command {
    let mut cmd = mailtool();
    cmd.env_remove("MAILTOOL_PASSWORD")
        .arg("pop-login")
        .arg(addr.to_string())
        .args(["--user", user])
        .args(args);
    if !args.contains(&"--timeout") {
        cmd.args(["--timeout", "20s"]);
    }
    cmd
}

/// A loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// Two loopback ports that were free a moment ago, for a server that needs numbers up front.
pub fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// A one-connection scripted server: sends `greeting`, then answers each command line with
/// `reply(line)` until the reply is `None` (which closes). Returns the address and the
/// command lines it received, for assertions on what the client sent.
pub fn scripted(
    greeting: &'static str,
    reply: impl Fn(&str) -> Option<String> + Send + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        serve_script(stream, greeting, &reply, &seen2);
    });
    (addr, seen)
}

fn serve_script(
    mut stream: TcpStream,
    greeting: &str,
    reply: &dyn Fn(&str) -> Option<String>,
    seen: &Mutex<Vec<String>>,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    if stream.write_all(greeting.as_bytes()).is_err() {
        return;
    }
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        seen.lock().unwrap().push(line.clone());
        match reply(&line) {
            Some(r) => {
                if stream.write_all(r.as_bytes()).is_err() {
                    return;
                }
            }
            None => return,
        }
    }
}
