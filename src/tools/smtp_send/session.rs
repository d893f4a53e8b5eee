//! One smtp-send transaction over [`Client`]: connect, greeting, EHLO, STARTTLS, AUTH, MAIL,
//! RCPT, DATA, QUIT. Every failure names the stage it happened in, because that stage is
//! the exit status (swaks's convention).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::smtp::client::{AuthMech, Client, ClientError, Observer, Said};
use crate::smtp::proto::Reply;
use crate::tools::{StartTls, stderr_transcript};

/// The protocol step a transaction reached; each has its own exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    Tls,
    Auth,
    Mail,
    Rcpt,
    Data,
    /// The reply to the final dot: the message itself was refused.
    Message,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::Tls => "TLS",
            Stage::Auth => "AUTH",
            Stage::Mail => "MAIL",
            Stage::Rcpt => "RCPT",
            Stage::Data => "DATA",
            Stage::Message => "message",
        }
    }

    /// The exit status, swaks's numbers: 2 connect, 21 greeting, 22 EHLO, 23 MAIL, 24 RCPT,
    /// 25 DATA, 26 the message after DATA, 28 AUTH, 29 TLS.
    pub fn exit_code(self) -> i32 {
        match self {
            Stage::Connect => 2,
            Stage::Greeting => 21,
            Stage::Ehlo => 22,
            Stage::Mail => 23,
            Stage::Rcpt => 24,
            Stage::Data => 25,
            Stage::Message => 26,
            Stage::Auth => 28,
            Stage::Tls => 29,
        }
    }
}

impl Serialize for Stage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Where to connect: a host name (for SNI and certificate checks) and its addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls(StartTls),
    Implicit,
}

pub struct Credentials {
    pub mech: AuthMech,
    pub user: String,
    pub password: String,
}

/// Everything one run needs; built by the CLI from the arguments.
pub struct Plan {
    pub helo: String,
    pub source: Option<IpAddr>,
    pub timeout: Duration,
    pub tls: TlsMode,
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    pub auth: Option<Credentials>,
    pub allow_plaintext_auth: bool,
    pub pipeline: bool,
    pub from: String,
    pub to: Vec<String>,
    pub message: Vec<u8>,
    pub verbose: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReply {
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub code: u16,
    pub reply: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub recipient: String,
    pub code: u16,
    pub reply: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub stage: Stage,
    pub message: String,
}

/// What happened, for the summary line and `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub server: Option<String>,
    pub address: Option<SocketAddr>,
    pub tls: Option<String>,
    pub stages: Vec<StageReply>,
    pub accepted: Vec<String>,
    pub refused: Vec<Refused>,
    pub queue_id: Option<String>,
    pub failed: Option<Failure>,
}

impl Report {
    fn record(&mut self, stage: Stage, recipient: Option<&str>, r: &Reply) {
        self.stages.push(StageReply {
            stage,
            recipient: recipient.map(str::to_string),
            code: r.code,
            reply: r.lines.clone(),
        });
    }
}

/// A failed step: the stage and a one-line reason (a reply, or a transport error).
struct Stop {
    stage: Stage,
    message: String,
    /// The connection is still usable for a polite QUIT.
    can_quit: bool,
}

fn refused(stage: Stage, r: &Reply) -> Stop {
    Stop {
        stage,
        message: reply_text(r),
        can_quit: true,
    }
}

fn local(stage: Stage, message: impl Into<String>) -> Stop {
    Stop {
        stage,
        message: message.into(),
        can_quit: true,
    }
}

fn transport(stage: Stage) -> impl Fn(ClientError) -> Stop {
    move |e| Stop {
        stage,
        message: e.to_string(),
        can_quit: false,
    }
}

/// `550 5.7.1 text`, lines of a multi-line reply joined by " / ".
pub fn reply_text(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.join(" / "))
        .trim_end()
        .to_string()
}

/// The queue id in a 250 reply to the final dot, when the server names one: Postfix's
/// `Ok: queued as ID`, sendmail's (and ours) `2.0.0 ID Message accepted for delivery`,
/// Exim's `OK id=ID`.
pub fn queue_id(r: &Reply) -> Option<String> {
    let text = r.lines.first()?;
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let clean = |w: &str| {
        w.trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string()
    };
    if let Some(i) = words.windows(2).position(|w| w == ["queued", "as"]) {
        return words.get(i + 2).map(|w| clean(w)).filter(|w| !w.is_empty());
    }
    if let Some(id) = words.iter().find_map(|w| w.strip_prefix("id=")) {
        return Some(clean(id)).filter(|w| !w.is_empty());
    }
    let rest = match crate::smtp::client::codec::enhanced_code(r) {
        Some(_) => &words[1.min(words.len())..],
        None => &words[..],
    };
    match rest {
        [id, "Message", "accepted", ..] => Some(clean(id)),
        _ => None,
    }
}

fn observer(verbose: bool) -> Option<Observer> {
    verbose.then(|| stderr_transcript(String::new()))
}

fn note(verbose: bool, text: &str) {
    if let Some(mut o) = observer(verbose) {
        o(Said::Note, text);
    }
}

/// Tries the targets in order (MX preference, then each address); the first connection
/// that gets a greeting settles the outcome.
pub async fn run(plan: &Plan, targets: &[Target]) -> Report {
    let mut report = Report::default();
    let mut last = None;
    for t in targets {
        for &addr in &t.addrs {
            note(plan.verbose, &format!("Trying {} ({addr})...", t.host));
            report.server = Some(t.host.clone());
            report.address = Some(addr);
            match connect(plan, &t.host, addr).await {
                Ok(client) => {
                    let mut client = client;
                    if let Some(o) = observer(plan.verbose) {
                        client.set_observer(o);
                    }
                    report.tls = client.tls_info();
                    if let Err(stop) = transaction(plan, &t.host, &mut client, &mut report).await {
                        report.failed = Some(Failure {
                            stage: stop.stage,
                            message: stop.message,
                        });
                        if stop.can_quit {
                            client.quit().await;
                        }
                    } else {
                        client.quit().await;
                    }
                    return report;
                }
                Err(stop) => last = Some(stop),
            }
        }
    }
    let stop = last.unwrap_or_else(|| local(Stage::Connect, "no address to connect to"));
    report.failed = Some(Failure {
        stage: stop.stage,
        message: stop.message,
    });
    report
}

async fn connect(plan: &Plan, host: &str, addr: SocketAddr) -> Result<Client, Stop> {
    match (plan.tls, &plan.tls_config) {
        (TlsMode::Implicit, Some(cfg)) => {
            let name =
                crate::tls::server_name(host).map_err(|e| local(Stage::Tls, e.to_string()))?;
            Client::connect_tls(addr, plan.source, plan.timeout, cfg.clone(), name)
                .await
                .map_err(|e| match e {
                    ClientError::Connect { .. } => transport(Stage::Connect)(e),
                    other => transport(Stage::Tls)(other),
                })
        }
        _ => Client::connect(addr, plan.source, plan.timeout)
            .await
            .map_err(transport(Stage::Connect)),
    }
}

async fn transaction(
    plan: &Plan,
    host: &str,
    c: &mut Client,
    report: &mut Report,
) -> Result<(), Stop> {
    let r = c.read_reply().await.map_err(transport(Stage::Greeting))?;
    report.record(Stage::Greeting, None, &r);
    if r.code / 100 != 2 {
        return Err(refused(Stage::Greeting, &r));
    }
    hello(plan, c, report).await?;

    if let TlsMode::StartTls(when) = plan.tls {
        let offered = c.caps().is_some_and(|k| k.starttls);
        if offered {
            let cfg = plan
                .tls_config
                .clone()
                .ok_or_else(|| local(Stage::Tls, "no TLS configuration"))?;
            let name =
                crate::tls::server_name(host).map_err(|e| local(Stage::Tls, e.to_string()))?;
            let r = c.starttls(cfg, name).await.map_err(transport(Stage::Tls))?;
            report.record(Stage::Tls, None, &r);
            if r.code != 220 {
                return Err(refused(Stage::Tls, &r));
            }
            report.tls = c.tls_info();
            hello(plan, c, report).await?;
        } else if when == StartTls::Always {
            return Err(local(Stage::Tls, "the server does not offer STARTTLS"));
        } else if plan.verbose {
            note(true, "STARTTLS not offered; going on in plain text");
        }
    }

    if plan.pipeline && !c.caps().is_some_and(|k| k.pipelining) {
        return Err(local(
            Stage::Ehlo,
            "the server does not offer PIPELINING (--pipeline)",
        ));
    }

    if let Some(cred) = &plan.auth {
        authenticate(plan, c, cred, report).await?;
    }

    let mail = mail_command(plan, c)?;
    let rcpts: Vec<String> = plan.to.iter().map(|t| format!("RCPT TO:<{t}>")).collect();
    let data_reply = if plan.pipeline {
        let mut group = vec![mail];
        group.extend(rcpts);
        group.push("DATA".into());
        c.send_group(&group).await.map_err(transport(Stage::Mail))?;
        let r = c.read_reply().await.map_err(transport(Stage::Mail))?;
        report.record(Stage::Mail, None, &r);
        let mail_ok = r.code / 100 == 2;
        let mail_reply = r;
        for t in &plan.to {
            let r = c.read_reply().await.map_err(transport(Stage::Rcpt))?;
            rcpt_result(report, t, &r);
        }
        let r = c.read_reply().await.map_err(transport(Stage::Data))?;
        report.record(Stage::Data, None, &r);
        if r.code == 354 && (!mail_ok || report.accepted.is_empty()) {
            // RFC 2920 §3.1: DATA went through without a transaction; end it empty.
            let end = c.command(".").await.map_err(transport(Stage::Data))?;
            report.record(Stage::Message, None, &end);
        }
        if !mail_ok {
            return Err(refused(Stage::Mail, &mail_reply));
        }
        r
    } else {
        let r = c.command(&mail).await.map_err(transport(Stage::Mail))?;
        report.record(Stage::Mail, None, &r);
        if r.code / 100 != 2 {
            return Err(refused(Stage::Mail, &r));
        }
        for (t, line) in plan.to.iter().zip(&rcpts) {
            let r = c.command(line).await.map_err(transport(Stage::Rcpt))?;
            rcpt_result(report, t, &r);
        }
        if report.accepted.is_empty() {
            return Err(no_recipient(report));
        }
        let r = c.command("DATA").await.map_err(transport(Stage::Data))?;
        report.record(Stage::Data, None, &r);
        r
    };
    if report.accepted.is_empty() {
        return Err(no_recipient(report));
    }
    if data_reply.code != 354 {
        return Err(refused(Stage::Data, &data_reply));
    }
    let r = c
        .send_message(&plan.message)
        .await
        .map_err(transport(Stage::Message))?;
    report.record(Stage::Message, None, &r);
    if r.code / 100 != 2 {
        return Err(refused(Stage::Message, &r));
    }
    report.queue_id = queue_id(&r);
    Ok(())
}

/// EHLO, falling back to HELO when the server does not know EHLO (5xx).
async fn hello(plan: &Plan, c: &mut Client, report: &mut Report) -> Result<(), Stop> {
    let r = c.ehlo(&plan.helo).await.map_err(transport(Stage::Ehlo))?;
    report.record(Stage::Ehlo, None, &r);
    if r.code == 250 {
        return Ok(());
    }
    if r.code / 100 != 5 {
        return Err(refused(Stage::Ehlo, &r));
    }
    let r = c.helo(&plan.helo).await.map_err(transport(Stage::Ehlo))?;
    report.record(Stage::Ehlo, None, &r);
    if r.code / 100 != 2 {
        return Err(refused(Stage::Ehlo, &r));
    }
    Ok(())
}

async fn authenticate(
    plan: &Plan,
    c: &mut Client,
    cred: &Credentials,
    report: &mut Report,
) -> Result<(), Stop> {
    let peer = c.peer().ip();
    // A password in clear text is only acceptable where nobody can listen: loopback.
    if !c.is_tls() && !peer.is_loopback() && !plan.allow_plaintext_auth {
        return Err(local(
            Stage::Auth,
            format!(
                "refusing to send a password in plain text to {peer}: use --starttls or --tls \
                 (or --allow-plaintext-auth)"
            ),
        ));
    }
    let offered = c.caps().map(|k| k.auth.clone()).unwrap_or_default();
    let mech = cred.mech.name();
    if !offered.iter().any(|m| m == mech) {
        let what = if offered.is_empty() {
            "the server offers no AUTH".to_string()
        } else {
            format!("the server offers AUTH {}", offered.join(" "))
        };
        let hint = if c.is_tls() || plan.tls != TlsMode::None {
            ""
        } else {
            " (many servers offer AUTH only after STARTTLS)"
        };
        return Err(local(Stage::Auth, format!("{what}, not {mech}{hint}")));
    }
    let r = c
        .auth(cred.mech, &cred.user, &cred.password)
        .await
        .map_err(transport(Stage::Auth))?;
    report.record(Stage::Auth, None, &r);
    if r.code != 235 {
        return Err(refused(Stage::Auth, &r));
    }
    Ok(())
}

/// MAIL FROM with the parameters the message and the server call for.
fn mail_command(plan: &Plan, c: &Client) -> Result<String, Stop> {
    let caps = c.caps().cloned().unwrap_or_default();
    let mut line = format!("MAIL FROM:<{}>", plan.from);
    if caps.size.is_some() {
        line.push_str(&format!(" SIZE={}", plan.message.len()));
    }
    if super::message::is_8bit(&plan.message) && caps.eight_bit_mime {
        line.push_str(" BODY=8BITMIME");
    }
    let utf8 = !plan.from.is_ascii() || plan.to.iter().any(|t| !t.is_ascii());
    if utf8 {
        if !caps.smtputf8 {
            return Err(local(
                Stage::Mail,
                "the addresses are not ASCII and the server does not offer SMTPUTF8",
            ));
        }
        line.push_str(" SMTPUTF8");
    }
    Ok(line)
}

fn rcpt_result(report: &mut Report, rcpt: &str, r: &Reply) {
    report.record(Stage::Rcpt, Some(rcpt), r);
    if r.code / 100 == 2 {
        report.accepted.push(rcpt.to_string());
    } else {
        report.refused.push(Refused {
            recipient: rcpt.to_string(),
            code: r.code,
            reply: r.lines.clone(),
        });
    }
}

fn no_recipient(report: &Report) -> Stop {
    let n = report.refused.len();
    let message = match report.refused.last() {
        Some(last) if n == 1 => reply_text(&Reply {
            code: last.code,
            lines: last.reply.clone(),
        }),
        Some(last) => format!(
            "all {n} recipients refused; last: {}",
            reply_text(&Reply {
                code: last.code,
                lines: last.reply.clone(),
            })
        ),
        None => "no recipient accepted".into(),
    };
    local(Stage::Rcpt, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_of_common_servers() {
        let id = |t: &str| queue_id(&Reply::new(250, t));
        assert_eq!(
            id("2.0.0 Ok: queued as 4dXyZ1abc"),
            Some("4dXyZ1abc".into())
        );
        assert_eq!(
            id("2.0.0 5BQKx0aB012345 Message accepted for delivery"),
            Some("5BQKx0aB012345".into())
        );
        assert_eq!(
            id("OK id=1tQ2ab-000123-Xy"),
            Some("1tQ2ab-000123-Xy".into())
        );
        assert_eq!(id("2.0.0 OK"), None);
        assert_eq!(id(""), None);
    }

    #[test]
    fn stages_have_distinct_documented_codes() {
        let all = [
            Stage::Connect,
            Stage::Greeting,
            Stage::Ehlo,
            Stage::Tls,
            Stage::Auth,
            Stage::Mail,
            Stage::Rcpt,
            Stage::Data,
            Stage::Message,
        ];
        let mut codes: Vec<i32> = all.iter().map(|s| s.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes, [2, 21, 22, 23, 24, 25, 26, 28, 29]);
        assert_eq!(
            reply_text(&Reply {
                code: 550,
                lines: vec!["5.7.1 a".into(), "b".into()]
            }),
            "550 5.7.1 a / b"
        );
    }
}
