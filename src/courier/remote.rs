//! Remote delivery over SMTP (RFC 5321 §5): the smart host, or the domain's MX hosts in
//! preference order, then the implicit MX; a null MX (RFC 7505) fails at once. STARTTLS is
//! opportunistic (RFC 7435): used when offered, without certificate checks, and a failed
//! handshake is retried in plain text, as Postfix's `may` level does.
//!
//! Replies decide per recipient: 2xx delivered, 4xx deferred, 5xx failed. Connection-level
//! trouble (refused, timeout, a 4xx/5xx greeting) moves on to the next address or host, and
//! only when all are exhausted are the recipients deferred.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::Outcome;
use crate::content::Content;
use crate::dns::{Dns, Mx, Resolve};
use crate::queue::{Notify, Ret};
use crate::smtp::client::{Client, ClientError};
use crate::smtp::proto::Reply;

/// How to reach other servers.
#[derive(Clone)]
pub struct RemoteSettings {
    /// Our name in EHLO, and what a looping MX would greet us with.
    pub hostname: String,
    /// `queue.smart_host`: every message goes there instead of to the MX hosts.
    pub smart_host: Option<(String, u16)>,
    /// `queue.remote_port`: the port of MX hosts (25; tests point it elsewhere).
    pub port: u16,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// At most this many connections to one destination at once.
    pub per_destination: usize,
    pub tls: Arc<rustls::ClientConfig>,
}

/// One recipient of a remote job, with its DSN parameters.
#[derive(Debug, Clone)]
pub struct RemoteRcpt {
    pub address: String,
    pub notify: Option<Notify>,
    pub orcpt: Option<String>,
}

/// One message for the recipients of one domain.
pub struct RemoteJob<'a> {
    /// The envelope sender; empty for the null sender.
    pub sender: &'a str,
    pub rcpts: Vec<RemoteRcpt>,
    /// The message as the spool keeps it (LF line ends; the client sends CRLF).
    pub data: &'a Content,
    /// Some byte has the high bit set: BODY=8BITMIME where the server offers it.
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    pub envid: Option<&'a str>,
}

/// The remote courier: settings, per-destination connection limits, and idle connections
/// kept for the next message to the same server.
pub struct Remote {
    pub settings: RemoteSettings,
    dns: Dns,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    idle: Mutex<HashMap<SocketAddr, Vec<(Instant, Client)>>>,
}

/// How long an idle connection is kept (Postfix's smtp_connection_cache_time_limit is 2 s;
/// a queue run that drains a burst reuses it many times within that).
const IDLE_KEEP: Duration = Duration::from_secs(5);
/// Idle connections kept per server.
const IDLE_MAX: usize = 4;

/// The server that answered a job: the log's `relay=` and the DSN's `Remote-MTA:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// The name it was reached by (MX host or smart host).
    pub host: String,
    pub addr: SocketAddr,
    /// It offered DSN, so NOTIFY and ORCPT went on with the recipients (RFC 3461 §5.2.1).
    pub dsn: bool,
}

impl Relay {
    /// `host[ip]:port`, as Postfix logs it.
    pub fn display(&self) -> String {
        format!("{}[{}]:{}", self.host, self.addr.ip(), self.addr.port())
    }
}

/// What a remote job came to: one outcome per recipient, in order, and the server that gave
/// them (none when no server was reached).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub outcomes: Vec<Outcome>,
    pub relay: Option<Relay>,
}

impl Delivery {
    fn unanswered(outcomes: Vec<Outcome>) -> Delivery {
        Delivery {
            outcomes,
            relay: None,
        }
    }
}

/// The result of trying one server address.
enum Try {
    /// The transaction got as far as MAIL: these are the answers, and whether the server
    /// offered DSN.
    Done(Vec<Outcome>, bool),
    /// Nothing was decided there; this is why (for the deferral text if all fail).
    Next(String),
}

fn reply_text(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.join(" "))
}

fn all(n: usize, o: Outcome) -> Vec<Outcome> {
    vec![o; n]
}

impl Remote {
    pub fn new(settings: RemoteSettings, dns: Dns) -> Remote {
        Remote {
            settings,
            dns,
            limits: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// A cached connection to `addr` that is still fresh, if any.
    fn take_idle(&self, addr: SocketAddr) -> Option<Client> {
        let mut m = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let v = m.get_mut(&addr)?;
        while let Some((at, c)) = v.pop() {
            if at.elapsed() < IDLE_KEEP {
                return Some(c);
            }
        }
        None
    }

    fn put_idle(&self, addr: SocketAddr, c: Client) {
        let mut m = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let v = m.entry(addr).or_default();
        v.retain(|(at, _)| at.elapsed() < IDLE_KEEP);
        if v.len() < IDLE_MAX {
            v.push((Instant::now(), c));
        }
    }

    fn limit(&self, destination: &str) -> Arc<Semaphore> {
        let mut m = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(destination.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_destination.max(1))))
            .clone()
    }

    /// Delivers `job` to `domain`.
    pub async fn deliver(&self, domain: &str, job: &RemoteJob<'_>) -> Delivery {
        let n = job.rcpts.len();
        let hosts: Vec<(String, u16)> = match self.destinations(domain).await {
            Ok(h) => h,
            Err(o) => return Delivery::unanswered(all(n, o)),
        };
        let dest = self
            .settings
            .smart_host
            .as_ref()
            .map(|(h, _)| h.as_str())
            .unwrap_or(domain);
        let _permit = self.limit(dest).acquire_owned().await;
        let mut last = format!("Deferred: no usable address for {domain}");
        let mut unknown_hosts = 0;
        for (host, port) in &hosts {
            let ips = match self.dns.addresses(host).await {
                Resolve::Found(ips) => ips,
                Resolve::NotFound => {
                    unknown_hosts += 1;
                    last = format!("Deferred: {host}: host not found");
                    continue;
                }
                Resolve::TempFail(e) => {
                    last = format!("Deferred: Name server timeout looking up {host} ({e})");
                    continue;
                }
            };
            for ip in ips {
                let addr = SocketAddr::new(ip, *port);
                match self.try_server(host, addr, job, true).await {
                    Try::Done(outcomes, dsn) => {
                        let relay = Relay {
                            host: host.clone(),
                            addr,
                            dsn,
                        };
                        return Delivery {
                            outcomes,
                            relay: Some(relay),
                        };
                    }
                    Try::Next(why) => last = why,
                }
            }
        }
        // Every name is gone from the DNS: no retry will help (sendmail: "Host unknown").
        if unknown_hosts == hosts.len() && self.settings.smart_host.is_none() {
            return Delivery::unanswered(all(
                n,
                Outcome::Failed(format!(
                    "550 5.1.2 Host unknown (Name server: {domain}: host not found)"
                )),
            ));
        }
        Delivery::unanswered(all(n, Outcome::Deferred(last)))
    }

    /// The servers to try, in order: the smart host, or the MX hosts, or the domain itself.
    async fn destinations(&self, domain: &str) -> Result<Vec<(String, u16)>, Outcome> {
        if let Some((h, p)) = &self.settings.smart_host {
            return Ok(vec![(h.clone(), *p)]);
        }
        let port = self.settings.port;
        if domain.starts_with('[') {
            // An address literal: no MX lookup (RFC 5321 §5.1).
            return Ok(vec![(domain.to_string(), port)]);
        }
        match self.dns.mx(domain).await {
            Resolve::Found(Mx::Null) => Err(Outcome::Failed(format!(
                "556 5.1.10 {domain}: Domain does not accept mail (null MX)"
            ))),
            Resolve::Found(Mx::Hosts(v)) => Ok(v.into_iter().map(|(_, h)| (h, port)).collect()),
            Resolve::NotFound => Ok(vec![(domain.to_string(), port)]),
            Resolve::TempFail(e) => Err(Outcome::Deferred(format!(
                "Deferred: Name server timeout looking up MX of {domain} ({e})"
            ))),
        }
    }

    async fn try_server(
        &self,
        host: &str,
        addr: SocketAddr,
        job: &RemoteJob<'_>,
        allow_tls: bool,
    ) -> Try {
        let s = &self.settings;
        let n = job.rcpts.len();
        if allow_tls && let Some(mut c) = self.take_idle(addr) {
            // A reused session starts at MAIL; if the server dropped it meanwhile, the
            // transaction fails before any recipient is answered and we connect afresh.
            match transaction(&mut c, host, job).await {
                Try::Next(_) => {}
                done => {
                    self.finish(addr, c).await;
                    return done;
                }
            }
        }
        let mut c = match Client::connect(addr, None, s.connect_timeout).await {
            Ok(c) => c,
            Err(e) => return Try::Next(deferral(host, &e)),
        };
        c.set_timeout(s.command_timeout);
        let greeting = match c.read_reply().await {
            Ok(r) => r,
            Err(e) => return Try::Next(deferral(host, &e)),
        };
        if greeting.code / 100 != 2 {
            let _ = c.quit().await;
            return Try::Next(format!("Deferred: {host}: {}", reply_text(&greeting)));
        }
        if greets_as(&greeting, &s.hostname) {
            let _ = c.quit().await;
            return Try::Done(
                all(
                    n,
                    Outcome::Failed(format!(
                        "554 5.3.5 Local configuration error: mail for {host} loops back to me (MX problem?)"
                    )),
                ),
                false,
            );
        }
        if let Err(e) = hello(&mut c, &s.hostname).await {
            return Try::Next(e);
        }
        let offers_tls = c.caps().is_some_and(|k| k.starttls);
        if allow_tls && offers_tls {
            let name = crate::tls::server_name(host)
                .or_else(|_| crate::tls::server_name(&addr.ip().to_string()));
            let started = match name {
                Ok(name) => c.starttls(s.tls.clone(), name).await,
                Err(e) => {
                    return Try::Next(format!("Deferred: {host}: {e}"));
                }
            };
            match started {
                Ok(r) if r.code == 220 => {
                    if let Err(e) = hello(&mut c, &s.hostname).await {
                        return Try::Next(e);
                    }
                }
                Ok(_) => {} // refused: go on in plain text
                Err(ClientError::Tls { .. }) | Err(ClientError::TlsInjection { .. }) => {
                    // Opportunistic TLS: a failed handshake is retried without it.
                    return Box::pin(self.try_server(host, addr, job, false)).await;
                }
                Err(e) => return Try::Next(deferral(host, &e)),
            }
        }
        let out = transaction(&mut c, host, job).await;
        self.finish(addr, c).await;
        out
    }

    /// After a transaction: keep the session for the next message (RSET must succeed), or
    /// say goodbye.
    async fn finish(&self, addr: SocketAddr, mut c: Client) {
        match c.command("RSET").await {
            Ok(r) if r.code == 250 => self.put_idle(addr, c),
            _ => {
                let _ = c.quit().await;
            }
        }
    }
}

/// A greeting whose first word is our own name: the MX points back at us.
fn greets_as(greeting: &Reply, hostname: &str) -> bool {
    greeting
        .lines
        .first()
        .and_then(|l| l.split_ascii_whitespace().next())
        .is_some_and(|w| w.eq_ignore_ascii_case(hostname))
}

fn deferral(host: &str, e: &ClientError) -> String {
    match e {
        ClientError::Connect { message, .. } => {
            format!("Deferred: {message} (connecting to {host})")
        }
        ClientError::Timeout { .. } => format!("Deferred: Connection timed out with {host}"),
        ClientError::Closed { .. } => format!("Deferred: Connection reset by {host}"),
        other => format!("Deferred: {other}"),
    }
}

/// EHLO, or HELO when EHLO is refused.
async fn hello(c: &mut Client, name: &str) -> Result<(), String> {
    let host = c.peer().to_string();
    let r = c.ehlo(name).await.map_err(|e| deferral(&host, &e))?;
    if r.code == 250 {
        return Ok(());
    }
    let r = c.helo(name).await.map_err(|e| deferral(&host, &e))?;
    if r.code == 250 {
        Ok(())
    } else {
        Err(format!("Deferred: {host}: {}", reply_text(&r)))
    }
}

fn classify(r: &Reply) -> Outcome {
    match r.code / 100 {
        2 => Outcome::Sent(format!("Sent ({})", r.lines.join(" "))),
        5 => Outcome::Failed(reply_text(r)),
        _ => Outcome::Deferred(format!("Deferred: {}", reply_text(r))),
    }
}

fn mail_command(c: &Client, job: &RemoteJob<'_>) -> String {
    let mut cmd = format!("MAIL FROM:<{}>", job.sender);
    let caps = c.caps().cloned().unwrap_or_default();
    if caps.size.is_some() {
        cmd.push_str(&format!(" SIZE={}", job.data.len()));
    }
    if caps.eight_bit_mime && job.eight_bit {
        cmd.push_str(" BODY=8BITMIME");
    }
    if job.smtputf8 && caps.smtputf8 {
        cmd.push_str(" SMTPUTF8");
    }
    if caps.dsn {
        if let Some(ret) = job.ret {
            cmd.push_str(&format!(" RET={}", ret.as_str()));
        }
        if let Some(id) = job.envid {
            cmd.push_str(&format!(" ENVID={id}"));
        }
    }
    cmd
}

fn rcpt_command(c: &Client, r: &RemoteRcpt) -> String {
    let mut cmd = format!("RCPT TO:<{}>", r.address);
    if c.caps().is_some_and(|k| k.dsn) {
        if let Some(n) = r.notify {
            let v = n.to_string();
            if !v.is_empty() {
                cmd.push_str(&format!(" NOTIFY={v}"));
            }
        }
        if let Some(o) = &r.orcpt {
            cmd.push_str(&format!(" ORCPT={o}"));
        }
    }
    cmd
}

/// [`transaction_outcomes`], with whether the server offered DSN.
async fn transaction(c: &mut Client, host: &str, job: &RemoteJob<'_>) -> Try {
    let dsn = c.caps().is_some_and(|k| k.dsn);
    match transaction_outcomes(c, host, job).await {
        Ok(v) => Try::Done(v, dsn),
        Err(why) => Try::Next(why),
    }
}

/// MAIL, RCPT (pipelined when offered, RFC 2920), DATA. Once MAIL is answered the results
/// are final for this attempt, whatever happens after; before that, `Err` says why not.
async fn transaction_outcomes(
    c: &mut Client,
    host: &str,
    job: &RemoteJob<'_>,
) -> Result<Vec<Outcome>, String> {
    let n = job.rcpts.len();
    let lost = |e: &ClientError| Outcome::Deferred(deferral(host, e));
    if job.smtputf8 && !c.caps().is_some_and(|k| k.smtputf8) {
        return Ok(all(
            n,
            Outcome::Failed(format!(
                "553 5.6.7 {host} does not support SMTPUTF8 and the message needs it"
            )),
        ));
    }
    let mail = match c.command(&mail_command(c, job)).await {
        Ok(r) => r,
        Err(e) => return Err(deferral(host, &e)),
    };
    if mail.code / 100 != 2 {
        return Ok(all(n, classify(&mail)));
    }
    let pipelining = c.caps().is_some_and(|k| k.pipelining);
    let mut results: Vec<Outcome> = Vec::with_capacity(n);
    if pipelining {
        for r in &job.rcpts {
            if let Err(e) = c.send(&rcpt_command(c, r)).await {
                return Ok(all(n, lost(&e)));
            }
        }
        for _ in &job.rcpts {
            match c.read_reply().await {
                Ok(r) => results.push(classify(&r)),
                Err(e) => return Ok(all(n, lost(&e))),
            }
        }
    } else {
        for r in &job.rcpts {
            match c.command(&rcpt_command(c, r)).await {
                Ok(reply) => results.push(classify(&reply)),
                Err(e) => return Ok(all(n, lost(&e))),
            }
        }
    }
    let accepted: Vec<usize> = (0..n)
        .filter(|&i| matches!(results[i], Outcome::Sent(_)))
        .collect();
    if accepted.is_empty() {
        let _ = c.command("RSET").await;
        return Ok(results);
    }
    let end = match c.data_content(job.data).await {
        Ok(r) => classify(&r),
        // The message may or may not have arrived: retrying risks one duplicate, which is
        // better than a loss (RFC 5321 §6.1).
        Err(e) => lost(&e),
    };
    for i in accepted {
        results[i] = match &end {
            Outcome::Sent(s) => Outcome::Sent(format!("{s} [{host}]")),
            other => other.clone(),
        };
    }
    Ok(results)
}
