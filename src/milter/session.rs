//! The milters of one SMTP session: one connection to each `[[milter]]`, opened when the
//! client connects and reused for every message of the session, and the order in which
//! they are asked. A milter that fails (down, too slow, talking nonsense) is dropped for the
//! rest of the session and its `on_failure` decides for it from then on.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::client::{Connection, MilterError};
use super::edit::{Edit, Message};
use super::wire::{Command, Response, proto, stage};
use crate::config::{Milter, MilterFailure};
use crate::smtp::proto::Reply;

/// sendmail's reply when a milter says SMFIR_TEMPFAIL (MSG_TEMPFAIL in srvrsmtp.c), also
/// used for a failed milter under `on_failure = "tempfail"` (F=T).
pub fn tempfail_reply() -> Reply {
    Reply::new(451, "4.3.2 Please try again later")
}

/// sendmail's reply for SMFIR_REJECT: 550 for the envelope, 554 for the message.
pub fn reject_reply(at_message: bool) -> Reply {
    Reply::new(if at_message { 554 } else { 550 }, "5.7.1 Command rejected")
}

/// What the milters decided about a command or a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Answer 250, keep nothing.
    Discard,
    /// Answer this instead of the server's own reply.
    Refuse(Reply),
}

/// The client as the connect callback describes it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The verified PTR name, else `[ip]`.
    pub hostname: String,
    pub ip: IpAddr,
    pub port: u16,
}

struct Filter {
    cfg: Milter,
    conn: Option<Connection>,
    /// Why it failed, once it has: `on_failure` applies from then on.
    failed: Option<String>,
    /// SMFIR_ACCEPT at connect or HELO: nothing more this session.
    done_session: bool,
    /// SMFIR_ACCEPT (or a refusal) in this transaction: nothing more until the next MAIL.
    done_message: bool,
}

impl Filter {
    fn fail(&mut self, e: &MilterError, at: &str) {
        tracing::warn!(
            "Milter ({}): {at}: {e}; on_failure={}",
            self.cfg.name,
            match self.cfg.on_failure {
                MilterFailure::Accept => "accept",
                MilterFailure::Tempfail => "tempfail",
                MilterFailure::Reject => "reject",
            }
        );
        self.failed = Some(e.to_string());
        self.conn = None;
    }

    /// What a failed milter means for a transaction command or the message.
    fn failure_verdict(&self, at_message: bool) -> Verdict {
        match self.cfg.on_failure {
            MilterFailure::Accept => Verdict::Continue,
            MilterFailure::Tempfail => Verdict::Refuse(tempfail_reply()),
            MilterFailure::Reject => Verdict::Refuse(reject_reply(at_message)),
        }
    }
}

/// The result of the end-of-message step.
#[derive(Debug)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Quarantine reason, if a milter asked for it.
    pub quarantine: Option<String>,
}

pub struct Milters {
    filters: Vec<Filter>,
    /// The queue id of the transaction in progress: given at MAIL (the macro `i`), used by
    /// the message when it is stored.
    pub qid: Option<crate::queue::QueueId>,
    /// A transaction was opened (MAIL sent) and not yet ended by the end of a message.
    in_transaction: bool,
}

impl std::fmt::Debug for Milters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Milters")
            .field("filters", &self.filters.len())
            .finish()
    }
}

impl Milters {
    /// Connects to every milter in `cfgs` and sends them the connect callback. A milter
    /// that cannot be reached fails now; `on_failure` then answers for it at MAIL.
    pub async fn open(
        cfgs: &[Milter],
        relocate: &(dyn Fn(&Path) -> PathBuf + Sync),
        peer: &Peer,
        macros: &[(String, String)],
    ) -> (Milters, Verdict) {
        let mut filters = Vec::with_capacity(cfgs.len());
        for cfg in cfgs {
            let mut f = Filter {
                cfg: cfg.clone(),
                conn: None,
                failed: None,
                done_session: false,
                done_message: false,
            };
            match Connection::open(cfg, relocate).await {
                Ok(c) => f.conn = Some(c),
                Err(e) => f.fail(&e, "connect"),
            }
            filters.push(f);
        }
        let mut m = Milters {
            filters,
            qid: None,
            in_transaction: false,
        };
        let family = match peer.ip {
            IpAddr::V4(_) => b'4',
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => b'4',
            IpAddr::V6(_) => b'6',
        };
        let address = peer.ip.to_canonical().to_string();
        let cmd = Command::Connect {
            hostname: &peer.hostname,
            family,
            port: peer.port,
            address: &address,
        };
        let v = m
            .step(
                stage::CONNECT,
                macros,
                &cmd,
                proto::NOCONNECT,
                proto::NR_CONN,
                false,
            )
            .await;
        (m, v)
    }

    /// True when no milter is configured.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Asks each milter in turn; the first refusal or discard ends the round.
    async fn step(
        &mut self,
        stage: u8,
        macros: &[(String, String)],
        cmd: &Command<'_>,
        skip: u32,
        no_reply: u32,
        transaction: bool,
    ) -> Verdict {
        let what = step_name(cmd);
        for f in self.filters.iter_mut() {
            if f.done_session || (transaction && f.done_message) {
                continue;
            }
            if f.failed.is_some() {
                if transaction {
                    let v = f.failure_verdict(false);
                    if v != Verdict::Continue {
                        return v;
                    }
                }
                continue;
            }
            let Some(conn) = f.conn.as_mut() else {
                continue;
            };
            if conn.negotiated.has(skip) {
                continue;
            }
            let answer = async {
                if !macros.is_empty() {
                    conn.send(&Command::Macro {
                        stage,
                        pairs: macros,
                    })
                    .await?;
                }
                conn.send(cmd).await?;
                if conn.negotiated.has(no_reply) {
                    return Ok(None);
                }
                conn.reply().await.map(Some)
            }
            .await;
            // A milter that says goodbye or answers out of turn has failed like one that
            // went away; a refusal of any kind is its reply.
            let answer = match answer {
                Ok(Some(Response::Shutdown)) => Err(MilterError::Closed),
                // Only a transaction has a message to discard.
                Ok(Some(Response::Discard)) if !transaction => {
                    Err(MilterError::Unexpected("Discard".into(), "a verdict"))
                }
                Ok(Some(r @ (Response::Continue | Response::Accept | Response::Discard))) => {
                    Ok(Some(r))
                }
                Ok(Some(r)) => refusal(r, false)
                    .map(|reply| Some(Response::ReplyCode(reply)))
                    .map_err(|other| MilterError::Unexpected(format!("{other:?}"), "a verdict")),
                other => other,
            };
            match answer {
                Ok(Some(Response::Accept)) => {
                    if transaction {
                        f.done_message = true;
                    } else {
                        f.done_session = true;
                    }
                }
                Ok(Some(Response::Discard)) if transaction => {
                    tracing::info!("Milter ({}): {what}: discard", f.cfg.name);
                    return Verdict::Discard;
                }
                Ok(Some(Response::ReplyCode(r))) => {
                    tracing::info!("Milter ({}): {what}: reject={}", f.cfg.name, shown(&r));
                    return Verdict::Refuse(r);
                }
                // Continue, or no reply asked for.
                Ok(_) => {}
                Err(e) => {
                    f.fail(&e, what);
                    let v = f.failure_verdict(false);
                    if transaction && v != Verdict::Continue {
                        return v;
                    }
                }
            }
        }
        Verdict::Continue
    }

    /// HELO/EHLO was accepted by the server.
    pub async fn helo(&mut self, name: &str, macros: &[(String, String)]) -> Verdict {
        self.step(
            stage::HELO,
            macros,
            &Command::Helo(name),
            proto::NOHELO,
            proto::NR_HELO,
            false,
        )
        .await
    }

    /// MAIL FROM was accepted by the server: `args` is `<path>` then the ESMTP parameters.
    /// An unfinished transaction is aborted first.
    pub async fn mail(&mut self, args: &[String], macros: &[(String, String)]) -> Verdict {
        self.abort().await;
        for f in &mut self.filters {
            f.done_message = false;
        }
        self.in_transaction = true;
        self.step(
            stage::MAIL,
            macros,
            &Command::Mail(args),
            proto::NOMAIL,
            proto::NR_MAIL,
            true,
        )
        .await
    }

    /// RCPT TO was accepted by the server. A refusal refuses this recipient only.
    pub async fn rcpt(&mut self, args: &[String], macros: &[(String, String)]) -> Verdict {
        self.step(
            stage::RCPT,
            macros,
            &Command::Rcpt(args),
            proto::NORCPT,
            proto::NR_RCPT,
            true,
        )
        .await
    }

    /// DATA, before the 354.
    pub async fn data(&mut self, macros: &[(String, String)]) -> Verdict {
        self.step(
            stage::DATA,
            macros,
            &Command::Data,
            proto::NODATA,
            proto::NR_DATA,
            true,
        )
        .await
    }

    /// Ends an open transaction at every milter (RSET, a new MAIL, a refused message).
    pub async fn abort(&mut self) {
        if !std::mem::take(&mut self.in_transaction) {
            return;
        }
        for f in &mut self.filters {
            if f.done_session {
                continue;
            }
            if let Some(c) = f.conn.as_mut()
                && let Err(e) = c.send(&Command::Abort).await
            {
                f.fail(&e, "abort");
            }
        }
    }

    /// The message: each milter in turn gets the headers, the body and the end of message,
    /// and its edits are applied to `msg` before the next one sees it (as sendmail does).
    pub async fn message(
        &mut self,
        msg: &mut Message,
        eoh_macros: &[(String, String)],
        eom_macros: &[(String, String)],
    ) -> Outcome {
        self.in_transaction = false;
        let mut quarantine = None;
        for f in self.filters.iter_mut() {
            if f.done_session || f.done_message {
                continue;
            }
            if f.failed.is_some() {
                let v = f.failure_verdict(true);
                if v != Verdict::Continue {
                    return Outcome {
                        verdict: v,
                        quarantine,
                    };
                }
                continue;
            }
            let Some(conn) = f.conn.as_mut() else {
                continue;
            };
            let name = f.cfg.name.clone();
            match one_message(conn, &f.cfg, msg, eoh_macros, eom_macros).await {
                Ok(End::Continue(edits)) => {
                    for e in edits {
                        if let Edit::Quarantine(why) = &e {
                            tracing::info!("Milter ({name}): quarantine: {why}");
                            quarantine = Some(why.clone());
                        }
                        msg.apply(e);
                    }
                }
                Ok(End::Verdict(v, edits)) => {
                    match &v {
                        Verdict::Discard => tracing::info!("Milter ({name}): data, discard"),
                        Verdict::Refuse(r) => {
                            tracing::info!("Milter ({name}): data, reject={}", shown(r))
                        }
                        Verdict::Continue => {}
                    }
                    drop(edits);
                    return Outcome {
                        verdict: v,
                        quarantine,
                    };
                }
                Err(e) => {
                    f.fail(&e, "data");
                    let v = f.failure_verdict(true);
                    if v != Verdict::Continue {
                        return Outcome {
                            verdict: v,
                            quarantine,
                        };
                    }
                }
            }
        }
        Outcome {
            verdict: Verdict::Continue,
            quarantine,
        }
    }

    /// Ends the session at every milter.
    pub async fn quit(self) {
        for f in self.filters {
            if let Some(c) = f.conn {
                c.quit().await;
            }
        }
    }
}

fn step_name(cmd: &Command<'_>) -> &'static str {
    match cmd {
        Command::Connect { .. } => "connect",
        Command::Helo(_) => "helo",
        Command::Mail(_) => "mail",
        Command::Rcpt(_) => "rcpt",
        Command::Data => "data",
        _ => "data",
    }
}

enum End {
    /// Accepted or continued, with the edits to apply.
    Continue(Vec<Edit>),
    Verdict(Verdict, Vec<Edit>),
}

/// Headers, end of headers, body and end of message to one milter; its edits and verdict.
async fn one_message(
    conn: &mut Connection,
    cfg: &Milter,
    msg: &Message,
    eoh_macros: &[(String, String)],
    eom_macros: &[(String, String)],
) -> Result<End, MilterError> {
    let n = conn.negotiated;
    // A verdict before the end of message (a header or body callback answering reject).
    macro_rules! early {
        ($resp:expr) => {
            match $resp {
                Response::Continue => {}
                Response::Accept => return Ok(End::Continue(Vec::new())),
                Response::Discard => return Ok(End::Verdict(Verdict::Discard, Vec::new())),
                other => match refusal(other, true) {
                    Ok(r) => return Ok(End::Verdict(Verdict::Refuse(r), Vec::new())),
                    Err(other) => {
                        return Err(MilterError::Unexpected(format!("{other:?}"), "a verdict"));
                    }
                },
            }
        };
    }
    if !n.has(proto::NOHDRS) {
        for (name, value) in msg.fields() {
            let value = if n.has(proto::HDR_LEADSPC) {
                value.to_string()
            } else {
                value.strip_prefix(' ').unwrap_or(value).to_string()
            };
            conn.send(&Command::Header {
                name: &name,
                value: &value,
            })
            .await?;
            if !n.has(proto::NR_HDR) {
                early!(conn.reply().await?);
            }
        }
    }
    if !n.has(proto::NOEOH) {
        if !eoh_macros.is_empty() {
            conn.send(&Command::Macro {
                stage: stage::EOH,
                pairs: eoh_macros,
            })
            .await?;
        }
        conn.send(&Command::Eoh).await?;
        if !n.has(proto::NR_EOH) {
            early!(conn.reply().await?);
        }
    }
    if !n.has(proto::NOBODY) {
        let mut body = msg.body_chunks().await?;
        while let Some(chunk) = body.next().await? {
            conn.send(&Command::Body(&chunk)).await?;
            if !n.has(proto::NR_BODY) {
                match conn.reply().await? {
                    Response::Skip if n.has(proto::SKIP) => break,
                    r => early!(r),
                }
            }
        }
    }
    if !eom_macros.is_empty() {
        conn.send(&Command::Macro {
            stage: stage::EOM,
            pairs: eom_macros,
        })
        .await?;
    }
    conn.send(&Command::BodyEob).await?;
    // The end-of-message step may take long (a virus scan): each progress reply starts the
    // E timer again.
    let mut edits = Vec::new();
    let end = cfg.timeouts.end.0;
    loop {
        let r = conn.read(end).await?;
        match r {
            Response::Progress => continue,
            Response::Accept | Response::Continue => return Ok(End::Continue(edits)),
            Response::Discard => return Ok(End::Verdict(Verdict::Discard, edits)),
            other => match refusal(other, true) {
                Ok(r) => return Ok(End::Verdict(Verdict::Refuse(r), edits)),
                Err(other) => match Edit::from_response(other, n.actions) {
                    Ok(e) => edits.push(e),
                    Err(why) => return Err(MilterError::Unexpected(why, "an edit it negotiated")),
                },
            },
        }
    }
}

/// The refusal a reply states (SMFIR_REJECT and SMFIR_TEMPFAIL with sendmail's texts,
/// SMFIR_REPLYCODE with the milter's own), or the reply back when it is not one.
fn refusal(r: Response, at_message: bool) -> Result<Reply, Response> {
    match r {
        Response::Reject => Ok(reject_reply(at_message)),
        Response::Tempfail => Ok(tempfail_reply()),
        Response::ReplyCode(r) => Ok(r),
        other => Err(other),
    }
}

/// A reply as the log shows it.
fn shown(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.join(" "))
}
