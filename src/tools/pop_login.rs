//! The check `mailtool pop-login` runs, as the seed guide's telnet session did it by hand:
//! connect (optionally TLS), read the greeting, CAPA, STLS if asked, log in (USER/PASS, APOP or
//! SASL PLAIN), report what the maildrop holds, run the requested listings, and always QUIT.
//!
//! The result is a [`Report`], never an error, so the caller can print a summary or JSON for a
//! failure just as for a success. The stage and kind of a failure decide the exit status.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::pop3::client::conn::{
    Client, MASK, Pop3Error, Secret, Transcript, apop_digest, ok_or_refused, sasl_plain,
};
use crate::pop3::client::response::{self, Indicator, Listing, Summary, UniqueId};
use crate::tls::{self, Verify};

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain TCP throughout.
    None,
    /// Plain TCP, then STLS (RFC 2595) before logging in.
    Stls,
    /// TLS from the first byte (POP3S, port 995).
    Tls,
}

impl TlsMode {
    /// The port used when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Tls => 995,
            _ => 110,
        }
    }
}

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// USER and PASS (RFC 1939 §7).
    User,
    /// APOP with the greeting's timestamp: the password itself never crosses the wire.
    Apop,
    /// AUTH PLAIN (RFC 5034, RFC 4616).
    Plain,
}

#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub verify: Verify,
    pub user: String,
    pub auth: AuthMethod,
    /// Send a password in the clear to a non-loopback address.
    pub allow_plaintext: bool,
    pub timeout: Duration,
    pub list: bool,
    pub uidl: bool,
    pub retr: Option<u32>,
    pub top: Option<(u32, u32)>,
}

/// Where the check stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Connect,
    Tls,
    Greeting,
    Capa,
    Stls,
    Auth,
    Transaction,
}

/// Why it stopped; [`FailureKind::Auth`] is the one failure that is about the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The server rejected the user name or password.
    Auth,
    /// The server answered `-ERR` to something else, or refused a login for a reason that is
    /// not the credentials (`[IN-USE]`, `[LOGIN-DELAY]`, `[SYS/TEMP]`, `[SYS/PERM]`).
    Server,
    /// Resolving, connecting, TLS, a timeout, or the connection dropped.
    Connection,
    /// The server said something that is not POP3.
    Protocol,
    /// This client refused to go on (a password in the clear, a bad argument, a local TLS
    /// configuration problem).
    Local,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub stage: Stage,
    pub kind: FailureKind,
    pub message: String,
    /// The server's reply that ended the check, when there was one.
    pub server_text: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: String,
    pub auth: AuthMethod,
    /// The address connected to.
    pub address: Option<String>,
    pub logged_in: bool,
    pub greeting: Option<String>,
    pub capabilities: Vec<String>,
    pub summary: Option<Summary>,
    /// The seed's check line: `USER has N visible messages (H hidden) in B octets`.
    pub summary_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list: Option<Vec<Listing>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uidl: Option<Vec<UniqueId>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy_text")]
    pub top: Option<Vec<u8>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy_text")]
    pub retr: Option<Vec<u8>>,
    pub failure: Option<Failure>,
}

/// Message text goes into JSON as a string; bytes that are not UTF-8 become U+FFFD.
fn lossy_text<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&String::from_utf8_lossy(b)),
        None => s.serialize_none(),
    }
}

/// Whether a password may be sent without TLS to `peer`: always over TLS, to loopback
/// (127.0.0.0/8, ::1, and ::ffff:127.x), or when the user said so with `--allow-plaintext`.
pub fn plaintext_allowed(peer: IpAddr, tls_active: bool, allow_plaintext: bool) -> bool {
    tls_active || allow_plaintext || peer.to_canonical().is_loopback()
}

/// Response codes (RFC 2449, RFC 3206) that refuse a login for a reason other than the
/// credentials.
const NOT_CREDENTIALS: &[&str] = &["IN-USE", "LOGIN-DELAY", "SYS/TEMP", "SYS/PERM"];

fn failure(stage: Stage, e: Pop3Error) -> Failure {
    let (kind, server_text) = match &e {
        Pop3Error::Refused { reply, .. } => (FailureKind::Server, Some(reply.render())),
        Pop3Error::Response(_) => (FailureKind::Protocol, None),
        Pop3Error::Argument(_) => (FailureKind::Local, None),
        _ => (FailureKind::Connection, None),
    };
    Failure {
        stage,
        kind,
        message: e.to_string(),
        server_text,
    }
}

/// A `-ERR` to the credentials: an authentication failure unless its code says otherwise.
fn auth_failure(e: Pop3Error) -> Failure {
    let mut f = failure(Stage::Auth, e);
    if f.kind == FailureKind::Server {
        let code = f
            .server_text
            .as_deref()
            .and_then(|t| response::parse_status(t.as_bytes()).ok())
            .and_then(|s| s.code);
        let system =
            code.is_some_and(|c| NOT_CREDENTIALS.iter().any(|n| c.eq_ignore_ascii_case(n)));
        if !system {
            f.kind = FailureKind::Auth;
            f.message = format!("authentication failed: {}", f.message);
        }
    }
    f
}

fn local(stage: Stage, message: String) -> Failure {
    Failure {
        stage,
        kind: FailureKind::Local,
        message,
        server_text: None,
    }
}

/// Runs the whole check. It always ends with QUIT while the connection can still carry it.
pub async fn run(opts: &CheckOptions, password: &Secret, transcript: Option<Transcript>) -> Report {
    let mut report = Report {
        host: opts.host.clone(),
        port: opts.port,
        tls: opts.tls,
        user: opts.user.clone(),
        auth: opts.auth,
        address: None,
        logged_in: false,
        greeting: None,
        capabilities: Vec::new(),
        summary: None,
        summary_line: None,
        list: None,
        uidl: None,
        top: None,
        retr: None,
        failure: None,
    };
    let mut client = None;
    if let Err(f) = steps(opts, password, transcript, &mut report, &mut client).await {
        report.failure = Some(f);
    }
    if let Some(c) = client.as_mut() {
        c.quit().await;
    }
    report
}

async fn steps(
    opts: &CheckOptions,
    password: &Secret,
    transcript: Option<Transcript>,
    report: &mut Report,
    slot: &mut Option<Client>,
) -> Result<(), Failure> {
    // Build the TLS configuration first: an unreadable CA file is reported before any traffic.
    let tls_config = match opts.tls {
        TlsMode::None => None,
        _ => {
            let config =
                tls::client_config(&opts.verify).map_err(|e| local(Stage::Tls, e.to_string()))?;
            let name =
                tls::server_name(&opts.host).map_err(|e| local(Stage::Tls, e.to_string()))?;
            Some((config, name))
        }
    };
    let c = Client::connect(&opts.host, opts.port, opts.timeout, transcript)
        .await
        .map_err(|e| failure(Stage::Connect, e))?;
    report.address = Some(c.peer().ip().to_string());
    let c = slot.insert(c);

    if let (TlsMode::Tls, Some((config, name))) = (opts.tls, &tls_config) {
        c.start_tls(config.clone(), name.clone())
            .await
            .map_err(|e| failure(Stage::Tls, e))?;
    }
    let greeting = c
        .read_status()
        .await
        .map_err(|e| failure(Stage::Greeting, e))?;
    report.greeting = Some(greeting.render());
    let greeting =
        ok_or_refused("(greeting)", greeting).map_err(|e| failure(Stage::Greeting, e))?;
    report.capabilities = capa(c).await?;

    if let (TlsMode::Stls, Some((config, name))) = (opts.tls, &tls_config) {
        c.expect_ok("STLS")
            .await
            .map_err(|e| failure(Stage::Stls, e))?;
        c.start_tls(config.clone(), name.clone())
            .await
            .map_err(|e| failure(Stage::Tls, e))?;
        // RFC 2595 §4: what CAPA said before TLS no longer counts.
        report.capabilities = capa(c).await?;
    }

    let login = login(opts, password, c, &greeting.text).await?;
    report.logged_in = true;

    let (user, summary) = match response::parse_qpopper_summary(&login.text) {
        Some(found) => found,
        None => {
            let st = c
                .expect_ok("STAT")
                .await
                .map_err(|e| failure(Stage::Transaction, e))?;
            let (messages, octets) = response::parse_stat(&st.text)
                .map_err(|e| failure(Stage::Transaction, e.into()))?;
            (
                opts.user.clone(),
                Summary {
                    messages,
                    hidden: 0,
                    octets,
                },
            )
        }
    };
    report.summary_line = Some(response::summary_line(&user, &summary));
    report.summary = Some(summary);

    let tx = |e: Pop3Error| failure(Stage::Transaction, e);
    if opts.list {
        let body = c.multiline("LIST", true).await.map_err(tx)?;
        report.list = Some(response::parse_scan_listing(&body).map_err(|e| tx(e.into()))?);
    }
    if opts.uidl {
        let body = c.multiline("UIDL", true).await.map_err(tx)?;
        report.uidl = Some(response::parse_uidl(&body).map_err(|e| tx(e.into()))?);
    }
    if let Some((n, lines)) = opts.top {
        report.top = Some(
            c.multiline(&format!("TOP {n} {lines}"), false)
                .await
                .map_err(tx)?,
        );
    }
    if let Some(n) = opts.retr {
        report.retr = Some(c.multiline(&format!("RETR {n}"), false).await.map_err(tx)?);
    }
    Ok(())
}

/// CAPA (RFC 2449); a server without it (`-ERR`) simply has no listed capabilities.
async fn capa(c: &mut Client) -> Result<Vec<String>, Failure> {
    match c.multiline("CAPA", true).await {
        Ok(body) => Ok(response::parse_capa(&body)),
        Err(Pop3Error::Refused { .. }) => Ok(Vec::new()),
        Err(e) => Err(failure(Stage::Capa, e)),
    }
}

/// Logs in; returns the server's `+OK` to the credentials (Qpopper puts its summary there).
async fn login(
    opts: &CheckOptions,
    password: &Secret,
    c: &mut Client,
    greeting: &str,
) -> Result<response::Status, Failure> {
    let user = &opts.user;
    let clear = opts.auth != AuthMethod::Apop;
    if clear && !plaintext_allowed(c.peer().ip(), c.is_tls(), opts.allow_plaintext) {
        return Err(local(
            Stage::Auth,
            format!(
                "refusing to send the password unencrypted to {} (not a loopback address); \
                 use --stls or --tls, or --allow-plaintext to send it anyway",
                c.peer().ip()
            ),
        ));
    }
    let arg = |e: Pop3Error| failure(Stage::Auth, e);
    match opts.auth {
        AuthMethod::User => {
            let st = c.command(&format!("USER {user}")).await.map_err(arg)?;
            ok_or_refused(&format!("USER {user}"), st).map_err(auth_failure)?;
            let shown = format!("PASS {MASK}");
            let st = c
                .command_masked(&format!("PASS {}", password.expose()), &shown)
                .await
                .map_err(arg)?;
            ok_or_refused(&shown, st).map_err(auth_failure)
        }
        AuthMethod::Apop => {
            let Some(stamp) = response::apop_timestamp(greeting) else {
                return Err(Failure {
                    stage: Stage::Auth,
                    kind: FailureKind::Server,
                    message: "the greeting has no APOP timestamp: the server does not offer APOP"
                        .into(),
                    server_text: None,
                });
            };
            let shown = format!("APOP {user} {MASK}");
            let line = format!("APOP {user} {}", apop_digest(stamp, password));
            let st = c.command_masked(&line, &shown).await.map_err(arg)?;
            ok_or_refused(&shown, st).map_err(auth_failure)
        }
        AuthMethod::Plain => {
            // The two-step form (no initial response) works with every RFC 5034 server.
            let st = c.command("AUTH PLAIN").await.map_err(arg)?;
            if st.indicator != Indicator::Continue {
                return Err(failure(
                    Stage::Auth,
                    Pop3Error::Refused {
                        command: "AUTH PLAIN".into(),
                        reply: st,
                    },
                ));
            }
            let st = c
                .command_masked(&sasl_plain(user, password), MASK)
                .await
                .map_err(arg)?;
            ok_or_refused(&format!("AUTH PLAIN {MASK}"), st).map_err(auth_failure)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plaintext_policy() {
        for lo in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert!(plaintext_allowed(ip(lo), false, false), "{lo}");
        }
        for remote in [
            "192.0.2.1",
            "10.0.0.1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "0.0.0.0",
        ] {
            assert!(!plaintext_allowed(ip(remote), false, false), "{remote}");
            assert!(
                plaintext_allowed(ip(remote), true, false),
                "{remote} over TLS"
            );
            assert!(
                plaintext_allowed(ip(remote), false, true),
                "{remote} allowed"
            );
        }
    }

    #[test]
    fn auth_failures_and_system_refusals() {
        let refused = |line: &str| Pop3Error::Refused {
            command: "PASS ********".into(),
            reply: response::parse_status(line.as_bytes()).unwrap(),
        };
        let f = auth_failure(refused("-ERR [AUTH] Authentication failed."));
        assert_eq!((f.stage, f.kind), (Stage::Auth, FailureKind::Auth));
        assert_eq!(
            f.server_text.as_deref(),
            Some("-ERR [AUTH] Authentication failed.")
        );
        assert_eq!(auth_failure(refused("-ERR bad")).kind, FailureKind::Auth);
        for code in ["IN-USE", "SYS/TEMP", "sys/perm", "LOGIN-DELAY"] {
            let f = auth_failure(refused(&format!("-ERR [{code}] not now")));
            assert_eq!(f.kind, FailureKind::Server, "{code}");
        }
        assert_eq!(
            auth_failure(Pop3Error::Closed).kind,
            FailureKind::Connection
        );
    }
}
