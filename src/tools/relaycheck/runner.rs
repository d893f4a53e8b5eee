//! Runs the battery against one server over [`crate::smtp::client`]: one connection like
//! nmap, RSET before each probe, a new connection when the server drops us, QUIT at the end.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::battery::{self, Placeholders, Probe};
use super::verdict::{Exchange, Next, Step, Verdict, judge};
use crate::smtp::client::{Client, ClientError, Observer, resolve};
use crate::smtp::proto::Reply;

/// How to use TLS.
#[derive(Clone)]
pub enum TlsMode {
    Plain,
    /// STARTTLS; `required`: fail when the server does not offer it.
    StartTls {
        required: bool,
        config: Arc<rustls::ClientConfig>,
    },
    /// SMTPS from the first byte.
    Implicit {
        config: Arc<rustls::ClientConfig>,
    },
}

/// Makes the `-v` transcript observer for each new connection.
pub type TranscriptFactory = Arc<dyn Fn() -> Observer + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    pub domain: String,
    pub from: String,
    pub to: String,
    pub helo: String,
    /// `{ip}`; the target's address when `None`.
    pub ip: Option<IpAddr>,
    pub source: Option<IpAddr>,
    pub tls: TlsMode,
    pub timeout: Duration,
    /// Count a relay only when DATA is accepted, and send a short test message then.
    pub data: bool,
    pub transcript: Option<TranscriptFactory>,
}

/// One server to test: the text the user gave, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub given: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyRecord {
    pub command: &'static str,
    pub code: u16,
    pub text: Vec<String>,
}

impl ReplyRecord {
    fn of(command: &'static str, r: &Reply) -> ReplyRecord {
        ReplyRecord {
            command,
            code: r.code,
            text: r.lines.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeResult {
    #[serde(flatten)]
    pub probe: Probe,
    pub verdict: Verdict,
    pub replies: Vec<ReplyRecord>,
    /// Why the verdict is not the server's own answer (a dropped connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every probe ran.
    Tested,
    /// A reply contained 530: the battery stopped there (nmap: not an open relay).
    AuthRequired,
    /// The connection was lost and could not be opened again: some probes did not run.
    Incomplete,
    /// Could not test at all: connect, greeting, EHLO/HELO or TLS failed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReport {
    pub host: String,
    pub address: Option<SocketAddr>,
    pub status: Status,
    pub error: Option<String>,
    pub banner: Option<String>,
    /// `{srv}` as nmap finds it.
    pub srv: Option<String>,
    /// `EHLO`, or `HELO` when EHLO was refused.
    pub hello: Option<&'static str>,
    pub tls: Option<String>,
    pub warnings: Vec<String>,
    /// New connections opened after the server closed one.
    pub reconnects: usize,
    pub probes: Vec<ProbeResult>,
}

impl HostReport {
    fn new(target: &Target) -> HostReport {
        HostReport {
            host: target.given.clone(),
            address: None,
            status: Status::Failed,
            error: None,
            banner: None,
            srv: None,
            hello: None,
            tls: None,
            warnings: Vec::new(),
            reconnects: 0,
            probes: Vec::new(),
        }
    }

    pub fn relayed(&self, family: battery::Family) -> usize {
        self.probes
            .iter()
            .filter(|p| p.probe.family == family && p.verdict.is_relay())
            .count()
    }

    pub fn open_relay(&self) -> bool {
        self.probes.iter().any(|p| p.verdict.is_relay())
    }
}

/// An open, greeted session.
struct Session {
    client: Client,
    banner: Reply,
    /// The first EHLO reply (before TLS), where nmap looks for `{srv}`.
    ehlo: Option<Reply>,
    hello: &'static str,
    tls: Option<String>,
    warnings: Vec<String>,
}

fn first_line(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.first().map_or("", |s| s.as_str()))
}

/// Connects to the first address that answers.
async fn connect(target: &Target, addrs: &[SocketAddr], opts: &Options) -> Result<Client, String> {
    let mut last = String::from("no address");
    for &addr in addrs {
        let r = match &opts.tls {
            TlsMode::Implicit { config } => {
                let name = crate::tls::server_name(&target.host).map_err(|e| e.to_string())?;
                Client::connect_tls(addr, opts.source, opts.timeout, config.clone(), name).await
            }
            _ => Client::connect(addr, opts.source, opts.timeout).await,
        };
        match r {
            Ok(mut c) => {
                if let Some(f) = &opts.transcript {
                    c.set_observer(f());
                }
                return Ok(c);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Connect, greeting, EHLO (HELO if refused), STARTTLS as asked.
async fn open(target: &Target, addrs: &[SocketAddr], opts: &Options) -> Result<Session, String> {
    let mut client = connect(target, addrs, opts).await?;
    let err = |e: ClientError| e.to_string();
    let banner = client.read_reply().await.map_err(err)?;
    if banner.code / 100 != 2 {
        let _ = client.quit().await;
        return Err(format!("greeting: {}", first_line(&banner)));
    }
    let mut warnings = Vec::new();
    let mut hello = "EHLO";
    let r = client.ehlo(&opts.helo).await.map_err(err)?;
    let ehlo = if r.code == 250 {
        Some(r)
    } else {
        // nmap gives up here; HELO still lets the probes run (no extensions, so no STARTTLS).
        let h = client.helo(&opts.helo).await.map_err(err)?;
        if h.code != 250 {
            let _ = client.quit().await;
            return Err(format!(
                "EHLO refused ({}), HELO refused ({})",
                first_line(&r),
                first_line(&h)
            ));
        }
        hello = "HELO";
        warnings.push(format!("EHLO refused ({}); using HELO", first_line(&r)));
        None
    };
    let mut tls = client.tls_info();
    if let TlsMode::StartTls { required, config } = &opts.tls {
        let offered = client.caps().is_some_and(|c| c.starttls);
        if !offered && *required {
            let _ = client.quit().await;
            return Err("the server does not offer STARTTLS".into());
        }
        if offered {
            let name = crate::tls::server_name(&target.host).map_err(|e| e.to_string())?;
            let r = client.starttls(config.clone(), name).await.map_err(err)?;
            if r.code == 220 {
                let again = client.ehlo(&opts.helo).await.map_err(err)?;
                if again.code != 250 {
                    let _ = client.quit().await;
                    return Err(format!("EHLO after STARTTLS: {}", first_line(&again)));
                }
                tls = client.tls_info();
            } else if *required {
                let _ = client.quit().await;
                return Err(format!("STARTTLS refused: {}", first_line(&r)));
            } else {
                warnings.push(format!(
                    "STARTTLS refused ({}); testing in plain text",
                    first_line(&r)
                ));
            }
        }
    }
    Ok(Session {
        client,
        banner,
        ehlo,
        hello,
        tls,
        warnings,
    })
}

/// The `--data` message: says plainly that it is a relay test.
fn test_message(p: &Probe, ph: &Placeholders, total: usize) -> Vec<u8> {
    format!(
        "From: relaycheck <{from}@{domain}>\n\
         To: <{to}@{domain}>\n\
         Subject: relaycheck: open relay test {n}/{total} ({name})\n\
         X-Relaycheck: test {n}\n\
         \n\
         This is an automated open relay test sent by mailtool relaycheck.\n\
         The server {srv} ({ip}) accepted it for relaying with\n\
         \x20 MAIL FROM:{mail}\n\
         \x20 RCPT TO:{rcpt}\n\
         If you received it, that server relays mail for anyone. No reply is needed.\n",
        from = ph.from,
        to = ph.to,
        domain = ph.domain,
        n = p.number,
        name = p.name,
        srv = ph.srv,
        ip = ph.ip,
        mail = p.mail_from,
        rcpt = p.rcpt_to,
    )
    .into_bytes()
}

/// One probe on an open connection. Returns the replies and, when the connection was lost
/// (or the server said 421, it is closing), why.
async fn run_probe(
    c: &mut Client,
    p: &Probe,
    ph: &Placeholders,
    total: usize,
    data: bool,
) -> (Exchange, Option<String>) {
    let mut ex = Exchange::default();
    loop {
        let step = match judge(&ex, data, p.to_target) {
            Next::Done(_) => return (ex, None),
            Next::Send(s) => s,
        };
        let r = match step {
            Step::Rset => c.command("RSET").await,
            Step::Mail => c.command(&p.mail_command()).await,
            Step::Rcpt => c.command(&p.rcpt_command()).await,
            Step::Data => c.command("DATA").await,
            Step::Message => c.send_message(&test_message(p, ph, total)).await,
        };
        let reply = match r {
            Ok(r) => r,
            Err(e) => return (ex, Some(e.to_string())),
        };
        let closing = reply.code == 421;
        let slot = match step {
            Step::Rset => &mut ex.rset,
            Step::Mail => &mut ex.mail,
            Step::Rcpt => &mut ex.rcpt,
            Step::Data => &mut ex.data,
            Step::Message => &mut ex.message,
        };
        *slot = Some(reply);
        if closing {
            return (
                ex,
                Some("the server is closing the connection (421)".into()),
            );
        }
    }
}

/// Tests one server with the whole battery.
pub async fn check_host(target: &Target, opts: &Options) -> HostReport {
    let mut report = HostReport::new(target);
    let mut addrs = match resolve(&target.host, target.port).await {
        Ok(a) => a,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    // A source address can only reach addresses of its own family.
    if let Some(src) = opts.source {
        addrs.retain(|a| a.is_ipv4() == src.is_ipv4());
    }
    let session = match open(target, &addrs, opts).await {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let peer = session.client.peer();
    report.address = Some(peer);
    report.banner = Some(
        session
            .banner
            .lines
            .iter()
            .map(|l| format!("{} {l}", session.banner.code))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    report.hello = Some(session.hello);
    report.tls = session.tls.clone();
    report.warnings.extend(session.warnings.iter().cloned());
    let srv = battery::srv_name(&session.banner, session.ehlo.as_ref());
    report.srv = srv.clone();
    let ip = opts.ip.unwrap_or(peer.ip());
    let ph = Placeholders {
        domain: opts.domain.clone(),
        from: opts.from.clone(),
        to: opts.to.clone(),
        ip,
        // nmap would fail on a missing name; the IP literal is the server's name too.
        srv: srv.clone().unwrap_or_else(|| match ip {
            IpAddr::V4(a) => format!("[{a}]"),
            IpAddr::V6(a) => format!("[IPv6:{a}]"),
        }),
    };
    let mut names: Vec<String> = srv.into_iter().collect();
    for r in [Some(&session.banner), session.ehlo.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Some(w) = r.lines.first().and_then(|l| l.split_whitespace().next()) {
            names.push(w.to_string());
        }
    }
    let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    if battery::domain_is_servers(&opts.domain, &refs) {
        report.warnings.push(format!(
            "--domain {} looks like a domain the server serves (it calls itself {}): accepted \
             probes may be local deliveries, not relays; use an outside domain",
            opts.domain, names[0]
        ));
    }
    let probes = battery::battery(&ph, ip == peer.ip());
    let total = probes.len();
    let mut session = Some(session);
    let mut retried = false;
    let mut i = 0;
    report.status = Status::Tested;
    while i < total {
        let p = &probes[i];
        if session.is_none() {
            match open(target, &addrs, opts).await {
                Ok(s) => {
                    report.reconnects += 1;
                    session = Some(s);
                }
                Err(e) => {
                    report.status = Status::Incomplete;
                    report.error = Some(format!("reconnecting before test {}: {e}", p.number));
                    break;
                }
            }
        }
        let s = session.as_mut().expect("a session is open here");
        let (ex, lost) = run_probe(&mut s.client, p, &ph, total, opts.data).await;
        if lost.is_some() {
            session = None;
            // Dropped before this probe got to MAIL: nothing was tested, so try it once more
            // on a new connection (a server that ends sessions after N refusals does this).
            if ex.mail.is_none() && !retried {
                retried = true;
                continue;
            }
        }
        let verdict = match judge(&ex, opts.data, p.to_target) {
            Next::Done(v) => v,
            Next::Send(_) => Verdict::Untested,
        };
        report.probes.push(ProbeResult {
            probe: p.clone(),
            verdict,
            replies: ex
                .replies()
                .into_iter()
                .map(|(c, r)| ReplyRecord::of(c, r))
                .collect(),
            note: lost.map(|why| format!("connection lost: {why}")),
        });
        if verdict == Verdict::AuthRequired {
            report.status = Status::AuthRequired;
            break;
        }
        retried = false;
        i += 1;
    }
    if let Some(s) = session {
        let _ = s.client.quit().await;
    }
    if report.open_relay()
        && let Some(src) = trusted_looking_source(peer.ip(), opts.source)
    {
        report.warnings.push(format!(
            "the tests came from {src}, an address the server itself may trust (mailtool, \
             sendmail and Postfix let loopback and their own networks relay by default); test \
             from an address it does not trust, e.g. --source 127.0.0.50"
        ));
    }
    report
}

/// The source address of a test from the server's own host (loopback, or the server's address
/// itself), which MTAs trust to relay: a "relay" found from there says nothing about strangers.
fn trusted_looking_source(peer: IpAddr, source: Option<IpAddr>) -> Option<IpAddr> {
    let default_v4 = IpAddr::from([127, 0, 0, 1]);
    let src = match source {
        Some(s) => s,
        // With no --source the kernel picks the loopback address for a loopback peer.
        None if peer.is_loopback() => {
            if peer.is_ipv4() {
                default_v4
            } else {
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            }
        }
        None => return None,
    };
    let is_default_loopback =
        src == default_v4 || src == IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
    (is_default_loopback || src == peer).then_some(src)
}

/// What `--classic` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicVerdict {
    Allow,
    Deny,
    /// `HOST can't connect.` or `server HOST response undefined.`
    Untested,
}

/// relaychecker.pl, line for line: `helo`, `mail from:<…>`, `rcpt to:<…>` in one connection;
/// `Allow` when every reply was 2xx. Returns its output lines (`HOST > reply`, `HOST < cmd`,
/// `HOST relay Allow|Deny`). The Perl script ended lines with a bare LF; we send CRLF,
/// since servers (ours included) refuse bare LF.
pub async fn classic(
    target: &Target,
    helo: &str,
    from: &str,
    to: &str,
    opts: &Options,
) -> (Vec<String>, ClassicVerdict) {
    let h = &target.given;
    let mut out = Vec::new();
    let cant = |out: &mut Vec<String>| {
        out.push(format!("{h} can't connect."));
        ClassicVerdict::Untested
    };
    let Ok(mut addrs) = resolve(&target.host, target.port).await else {
        let v = cant(&mut out);
        return (out, v);
    };
    if let Some(src) = opts.source {
        addrs.retain(|a| a.is_ipv4() == src.is_ipv4());
    }
    let Ok(mut c) = connect(target, &addrs, opts).await else {
        let v = cant(&mut out);
        return (out, v);
    };
    let show = |out: &mut Vec<String>, r: &Result<Reply, ClientError>| match r {
        Ok(r) => {
            let n = r.lines.len();
            for (i, l) in r.lines.iter().enumerate() {
                let sep = if i + 1 == n { ' ' } else { '-' };
                out.push(format!("{h} > {:03}{sep}{l}", r.code));
            }
        }
        Err(e) => out.push(format!("{h} > ({e})")),
    };
    let greeting = c.read_reply().await;
    show(&mut out, &greeting);
    if !matches!(&greeting, Ok(r) if r.code / 100 == 2) {
        out.push(format!("server {h} response undefined."));
        return (out, ClassicVerdict::Untested);
    }
    let mut verdict = ClassicVerdict::Allow;
    for cmd in [
        format!("helo {helo}"),
        format!("mail from:<{from}>"),
        format!("rcpt to:<{to}>"),
    ] {
        out.push(format!("{h} < {cmd}"));
        let r = c.command(&cmd).await;
        show(&mut out, &r);
        if !matches!(&r, Ok(r) if r.code / 100 == 2) {
            verdict = ClassicVerdict::Deny;
            break;
        }
    }
    out.push(format!("{h} < quit"));
    let q = c.command("quit").await;
    show(&mut out, &q);
    let word = if verdict == ClassicVerdict::Allow {
        "Allow"
    } else {
        "Deny"
    };
    out.push(format!("{h} relay {word}"));
    (out, verdict)
}

#[cfg(test)]
mod tests {
    use super::trusted_looking_source;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tests_from_the_servers_own_host_are_flagged() {
        assert_eq!(
            trusted_looking_source(ip("127.0.0.1"), None),
            Some(ip("127.0.0.1"))
        );
        assert_eq!(trusted_looking_source(ip("::1"), None), Some(ip("::1")));
        assert_eq!(
            trusted_looking_source(ip("192.0.2.7"), Some(ip("192.0.2.7"))),
            Some(ip("192.0.2.7"))
        );
        assert_eq!(
            trusted_looking_source(ip("127.0.0.9"), Some(ip("127.0.0.1"))),
            Some(ip("127.0.0.1"))
        );
        // An untrusted source, or a remote server without --source: no hint.
        assert_eq!(
            trusted_looking_source(ip("127.0.0.1"), Some(ip("127.0.0.50"))),
            None
        );
        assert_eq!(trusted_looking_source(ip("192.0.2.7"), None), None);
    }
}
