//! `pop-login`: the seed guide's telnet check of the POP3 server, as a command. It logs in,
//! prints `USER has N visible messages (H hidden) in B octets`, optionally lists or fetches
//! messages, and always ends with QUIT. Exit statuses are the issue's, not sysexits: 0 logged
//! in, 1 authentication failed, 2 anything else (connection, TLS, protocol, timeout).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use comfy_table::Table;

use super::{Fail, GlobalOpts, stdout_error};
use crate::pop3::client::conn::{Direction, Secret, Transcript};
use crate::tls::Verify;
use crate::tools::pop_login::{self, AuthMethod, CheckOptions, FailureKind, Report, TlsMode};

/// Logged in (and every requested listing worked).
pub const LOGGED_IN: i32 = 0;
/// The server rejected the user name or password.
pub const AUTH_FAILED: i32 = 1;
/// Connection, TLS, protocol or local error; also a refused password source.
pub const FAILED: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    /// USER and PASS
    User,
    /// APOP: MD5 of the greeting's timestamp and the password
    Apop,
    /// AUTH PLAIN (SASL)
    Plain,
}

/// The long help, set on the subcommand in `cli/mod.rs` (a variant's doc comment would
/// otherwise replace it).
pub const LONG_ABOUT: &str = "Connects to a POP3 server, logs in, and prints the line the seed guide's telnet \
check showed: `USER has N visible messages (H hidden) in B octets`. Qpopper's reply to PASS is \
used as it is; for other servers the numbers come from STAT. --list, --uidl, --top and --retr \
run those commands after the login; the session always ends with QUIT and never deletes \
anything.\n\nThe password comes from --password-file (its first line), else from the \
MAILTOOL_PASSWORD environment variable, else from a prompt when standard input is a terminal. \
It is never taken from the command line, and never shown: -v prints `PASS ********`.\n\nWithout \
TLS, a password is only sent to a loopback address unless --allow-plaintext is given; APOP, \
which never sends the password itself, is always allowed.";

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit status: 0 logged in; 1 authentication failed (the server refused the \
user name or password); 2 connection, TLS or protocol error, timeout, or a login refused for \
another reason ([IN-USE], [LOGIN-DELAY], [SYS/TEMP], [SYS/PERM]), or a -ERR to --list, --uidl, \
--top or --retr; 64 usage error."
)]
pub struct PopLoginArgs {
    /// The server: HOST, HOST:PORT or [IPv6]:PORT [default port: 110, or 995 with --tls]
    #[arg(value_name = "HOST[:PORT]")]
    pub server: String,
    /// The user name to log in as
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: String,
    /// Read the password from the first line of FILE
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Start TLS with STLS before logging in (RFC 2595)
    #[arg(long, conflicts_with = "tls")]
    pub stls: bool,
    /// TLS from the first byte (POP3S)
    #[arg(long)]
    pub tls: bool,
    /// Trust only the CA certificates in FILE (PEM) [default: the system's trust store]
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate: encrypts, but anyone may be at the other end
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Log in with APOP (same as --auth apop)
    #[arg(long, conflicts_with = "auth")]
    pub apop: bool,
    /// How to log in [default: user]
    #[arg(long, value_enum, value_name = "METHOD")]
    pub auth: Option<AuthArg>,
    /// Send a password unencrypted even to an address that is not loopback
    #[arg(long)]
    pub allow_plaintext: bool,
    /// How long to wait to connect and for each reply (30s, 1m, 500ms)
    #[arg(long, value_name = "SPAN", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// List the messages and their sizes (LIST)
    #[arg(long)]
    pub list: bool,
    /// List the messages' unique ids (UIDL)
    #[arg(long)]
    pub uidl: bool,
    /// Print message N as the server holds it (RETR); the summary line then goes to stderr
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub retr: Option<u32>,
    /// Print the headers and the first L body lines of message N (TOP)
    #[arg(long, num_args = 2, value_names = ["N", "L"])]
    pub top: Option<Vec<u32>>,
    /// Show the session on stderr (C: client, S: server); secrets appear as ********
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print one JSON object with the result instead of text
    #[arg(long)]
    pub json: bool,
}

use crate::duration::parse_timeout;

pub use crate::smtp::client::split_host_port as parse_server;

/// Where the password comes from, in order: the file, the environment, the terminal.
fn password(a: &PopLoginArgs, host: &str) -> Result<Secret, Fail> {
    if let Some(path) = &a.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Fail::new(
                FAILED,
                format!(
                    "pop-login: {}: {}",
                    path.display(),
                    crate::util::io_message(&e)
                ),
            )
        })?;
        let first = text.split('\n').next().unwrap_or("");
        let first = first.strip_suffix('\r').unwrap_or(first);
        if first.is_empty() {
            return Err(Fail::new(
                FAILED,
                format!(
                    "pop-login: {}: the first line (the password) is empty",
                    path.display()
                ),
            ));
        }
        return Ok(Secret::new(first));
    }
    if let Some(p) = std::env::var_os("MAILTOOL_PASSWORD") {
        return p
            .into_string()
            .map(Secret::new)
            .map_err(|_| Fail::new(FAILED, "pop-login: MAILTOOL_PASSWORD is not valid UTF-8"));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Fail::new(
            FAILED,
            "pop-login: no password: give --password-file FILE or set MAILTOOL_PASSWORD \
             (standard input is not a terminal, so there is no prompt)",
        ));
    }
    rpassword::prompt_password(format!("Password for {}@{host}: ", a.user))
        .map(Secret::new)
        .map_err(|e| {
            Fail::new(
                FAILED,
                format!(
                    "pop-login: reading the password: {}",
                    crate::util::io_message(&e)
                ),
            )
        })
}

/// Replaces control characters so a hostile server cannot drive the terminal through -v.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

fn stderr_transcript() -> Transcript {
    Box::new(|dir, line| {
        let prefix = match dir {
            Direction::Client => "C: ",
            Direction::Server => "S: ",
            Direction::Note => "-- ",
        };
        eprintln!("{prefix}{}", printable(line));
    })
}

pub fn run(_global: &GlobalOpts, a: &PopLoginArgs) -> Result<i32, Fail> {
    let tls = if a.tls {
        TlsMode::Tls
    } else if a.stls {
        TlsMode::Stls
    } else {
        TlsMode::None
    };
    let (host, port) = parse_server(&a.server, tls.default_port())
        .map_err(|e| Fail::new(crate::sysexits::EX_USAGE, format!("pop-login: {e}")))?;
    if a.user.is_empty() || a.user.contains(|c: char| c.is_control() || c == ' ') {
        return Err(Fail::new(
            crate::sysexits::EX_USAGE,
            "pop-login: --user must be a non-empty name without spaces or control characters",
        ));
    }
    let auth = match (a.apop, a.auth) {
        (true, _) | (_, Some(AuthArg::Apop)) => AuthMethod::Apop,
        (_, Some(AuthArg::Plain)) => AuthMethod::Plain,
        _ => AuthMethod::User,
    };
    let verify = match (&a.ca_file, a.insecure) {
        (Some(f), _) => Verify::CaFile(f.clone()),
        (None, true) => Verify::Nothing,
        (None, false) => Verify::System,
    };
    let top = a.top.as_ref().map(|v| (v[0], v[1]));
    if top.is_some_and(|(n, _)| n == 0) {
        return Err(Fail::new(
            crate::sysexits::EX_USAGE,
            "pop-login: --top: message numbers start at 1",
        ));
    }
    let opts = CheckOptions {
        host: host.clone(),
        port,
        tls,
        verify,
        user: a.user.clone(),
        auth,
        allow_plaintext: a.allow_plaintext,
        timeout: a.timeout,
        list: a.list,
        uidl: a.uidl,
        retr: a.retr,
        top,
    };
    let secret = password(a, &host)?;
    if secret.expose().contains(['\r', '\n', '\0']) {
        return Err(Fail::new(
            FAILED,
            "pop-login: the password contains a line break or NUL and cannot be sent",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::new(FAILED, format!("pop-login: {e}")))?;
    let transcript = a.verbose.then(stderr_transcript);
    let report = runtime.block_on(pop_login::run(&opts, &secret, transcript));
    output(a, &report)?;
    Ok(exit_code(&report))
}

pub fn exit_code(r: &Report) -> i32 {
    match &r.failure {
        None => LOGGED_IN,
        Some(f) if f.kind == FailureKind::Auth => AUTH_FAILED,
        Some(_) => FAILED,
    }
}

/// A table for people; the message number column is right-aligned like LIST's numbers.
fn table(header: [&str; 2]) -> Table {
    let mut t = Table::new();
    t.force_no_tty()
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    if let Some(c) = t.column_mut(0) {
        c.set_cell_alignment(comfy_table::CellAlignment::Right);
    }
    t
}

fn output(a: &PopLoginArgs, r: &Report) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    if a.json {
        let text = serde_json::to_string_pretty(r)
            .map_err(|e| Fail::new(FAILED, format!("pop-login: {e}")))?;
        writeln!(out, "{text}").map_err(stdout_error)?;
        return Ok(());
    }
    if let Some(line) = &r.summary_line {
        // With message text on stdout, the summary must not end up inside the message.
        if r.retr.is_some() || r.top.is_some() || a.retr.is_some() || a.top.is_some() {
            eprintln!("{}", printable(line));
        } else {
            writeln!(out, "{}", printable(line)).map_err(stdout_error)?;
        }
    }
    if let Some(list) = &r.list {
        let mut t = table(["msg", "octets"]);
        for l in list {
            t.add_row(vec![l.number.to_string(), l.octets.to_string()]);
        }
        writeln!(out, "{t}").map_err(stdout_error)?;
    }
    if let Some(ids) = &r.uidl {
        let mut t = table(["msg", "uid"]);
        for u in ids {
            t.add_row(vec![u.number.to_string(), u.uid.clone()]);
        }
        writeln!(out, "{t}").map_err(stdout_error)?;
    }
    for text in [&r.top, &r.retr].into_iter().flatten() {
        out.write_all(text).map_err(stdout_error)?;
    }
    out.flush().map_err(stdout_error)?;
    if let Some(f) = &r.failure {
        let msg = format!(
            "pop-login: {}:{}: {}",
            r.host,
            r.port,
            printable(&f.message)
        );
        return Err(Fail::new(exit_code(r), msg));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_argument() {
        let p = |s: &str| parse_server(s, 110);
        assert_eq!(
            p("mail.example1.com"),
            Ok(("mail.example1.com".into(), 110))
        );
        assert_eq!(p("127.0.0.1:1110"), Ok(("127.0.0.1".into(), 1110)));
        assert_eq!(p("[::1]:995"), Ok(("::1".into(), 995)));
        assert_eq!(p("[::1]"), Ok(("::1".into(), 110)));
        assert_eq!(p("::1"), Ok(("::1".into(), 110)));
        for bad in [
            "host:0",
            "host:x",
            "host:70000",
            "[::1",
            "[::1]x",
            ":110",
            "a b",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_not_printed() {
        assert_eq!(
            printable("+OK \x1b[2Jhi\tthere"),
            "+OK \u{fffd}[2Jhi\tthere"
        );
    }
}
