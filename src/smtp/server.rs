//! The SMTP listeners: sockets, TLS, timeouts and limits around [`Session`].
//!
//! One task per connection. Input goes through the codec's `LineReader`/`DataReader`; each
//! command line is handed to the session with a flag saying whether more input was already
//! waiting, which is how unauthorised pipelining is caught. Replies are queued and flushed
//! when the input buffer runs dry, so a pipelining client gets one write per group.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::Config;
use crate::dns::{ClientResolve, Resolve};
use crate::milter::{self, Milters, Verdict};
use crate::policy::{Client, Connect, Policy};
use crate::queue::{self, Incoming, NewMessage, QueueId, SpoolError};
use crate::server::app::App as Shared;
use crate::server::deadline::{DataClock, DataLimit};
use crate::server::listen::{Conn, Family, Slot, accept_loop, admit};
use crate::server::ratelimit::{Limit, Subject};
use crate::smtp::proto::{DataReader, DataState, LineEvent, LineReader, Reply, received_header};
use crate::smtp::session::{Envelope, MilterCall, Session, SessionConfig, SpoolRoom, Step};

/// Which port a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Smtp,
    Submission,
    Smtps,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Smtp => "SMTP",
            Kind::Submission => "submission",
            Kind::Smtps => "SMTPS",
        }
    }

    /// The `service` label of the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Smtp => "smtp",
            Kind::Submission => "submission",
            Kind::Smtps => "smtps",
        }
    }
}

/// The `stage` label of `mailtool_smtp_rejections_total`: the command a reply answers.
fn stage_of(line: &[u8]) -> &'static str {
    let verb = line.split(|&b| b == b' ').next().unwrap_or(b"");
    let verb = verb.to_ascii_uppercase();
    match verb.as_slice() {
        b"HELO" | b"EHLO" => "helo",
        b"MAIL" => "mail",
        b"RCPT" => "rcpt",
        b"DATA" | b"BDAT" => "data",
        b"AUTH" => "auth",
        b"STARTTLS" => "starttls",
        _ => "command",
    }
}

/// Accepts connections until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    kind: Kind,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    accept_loop(listener, kind.name(), stop, move |stream, peer| {
        handle(stream, peer, kind, shared.clone())
    })
    .await
}

async fn handle(stream: TcpStream, peer: SocketAddr, kind: Kind, shared: Arc<Shared>) {
    let cfg = shared.config();
    let host = cfg.hostname();
    let refusal = format!("421 4.3.2 {host} {{why}}; closing connection\r\n");
    let Some((slot, mut conn)) = admit(
        stream,
        peer,
        &shared,
        Family::Smtp,
        kind.name(),
        &refusal,
        (kind == Kind::Smtps).then_some(cfg.settings.smtp.command_timeout.0),
    )
    .await
    else {
        return;
    };
    crate::metrics::smtp_connection(kind.label());
    let resolve = tokio::time::timeout(
        shared.dns.timeout() * 3,
        shared.dns.client_resolve(peer.ip()),
    )
    .await
    .unwrap_or(ClientResolve::Temp);
    let client = Client {
        ip: peer.ip(),
        resolve,
        submission: kind == Kind::Submission,
        authenticated: None,
    };
    tracing::info!("connect from {} ({})", client.hello_text(), kind.name());
    if !shared.rate_ok(
        Limit::Connection,
        &Subject::client(client.ip),
        Some(&client),
    ) {
        tracing::warn!(
            "rejecting connection from {}: connection_rate exceeded",
            client.hello_text()
        );
        crate::metrics::smtp_rejection("connect", 421);
        let _ = conn
            .send(format!("421 4.7.0 {host} Too many connections\r\n").as_bytes())
            .await;
        let _ = conn.shutdown().await;
        return;
    }
    let s = &cfg.settings.smtp;
    let plaintext_auth = s.allow_plaintext_auth.allows(peer.ip());
    let scfg = SessionConfig {
        hostname: host.clone(),
        max_message_size: s.max_message_size,
        spool_room: spool_room(&shared.spool, cfg.settings.queue.min_free_space),
        max_recipients: s.max_recipients,
        max_messages: s.max_messages_per_connection,
        max_errors: s.max_errors,
        tls_available: shared.tls.is_some(),
        plaintext_auth,
        vrfy: s.vrfy,
        expn: s.expn,
    };
    let mut session = Session::new(scfg, client.clone(), kind == Kind::Smtps);
    session.set_connect(connection_checks(&shared, &cfg, &client).await);
    // The milters hear of the connection only when the server itself takes it.
    let mut milters = if cfg.settings.milter.is_empty() || session.is_null_server() {
        None
    } else {
        let peer = milter::Peer {
            hostname: client
                .resolve
                .name()
                .map_or_else(|| format!("[{}]", client.addr()), str::to_string),
            ip: peer.ip(),
            port: peer.port(),
        };
        let macros = connect_macros(&host, kind, &client, &peer);
        let relocate = |p: &std::path::Path| cfg.path(&p.to_string_lossy());
        let (m, verdict) = Milters::open(&cfg.settings.milter, &relocate, &peer, &macros).await;
        if let Verdict::Refuse(r) = verdict {
            session.set_null(r);
        }
        Some(m)
    };

    let mut lines = LineReader::new();
    let mut buf = vec![0u8; 16 * 1024];
    // greet_pause: a client that talks before the greeting is refused (docs/sendmail-compat.md §6.5).
    let pause = s.greet_pause.0.min(Duration::from_secs(300));
    if !pause.is_zero()
        && kind != Kind::Smtps
        && let Ok(n) = tokio::time::timeout(pause, conn.read(&mut buf)).await
    {
        if let Some(m) = milters.take() {
            m.quit().await;
        }
        if matches!(n, Ok(n) if n > 0) {
            tracing::warn!(
                "rejecting commands from {} due to pre-greeting traffic",
                client.hello_text()
            );
            let _ = conn.send(&session.pregreet_reply().to_bytes()).await;
            let _ = conn.shutdown().await;
        }
        // Talked first, or hung up / failed during the pause: either way the session is over.
        return;
    }
    if conn.send(&session.greeting().to_bytes()).await.is_err() {
        if let Some(m) = milters.take() {
            m.quit().await;
        }
        return;
    }
    let mut slot = Some(slot);
    let stats = run_session(
        &mut conn,
        &mut session,
        &mut lines,
        &mut buf,
        &shared,
        &cfg,
        &mut slot,
        &mut milters,
        kind.label(),
    )
    .await;
    let _ = conn.shutdown().await;
    if let Some(m) = milters.take() {
        m.quit().await;
    }
    tracing::info!(
        "disconnect from {} commands={} messages={}",
        session.client.hello_text(),
        stats.0,
        stats.1
    );
    Slot::release(&mut slot);
}

/// The spool's free space beyond `reserve`, asked at every MAIL (one statvfs); no check when
/// `reserve` is 0.
fn spool_room(spool: &Arc<queue::Spool>, reserve: u64) -> Option<SpoolRoom> {
    if reserve == 0 {
        return None;
    }
    let dir = spool.dir().to_path_buf();
    Some(SpoolRoom(Arc::new(move || {
        crate::sys::fs::free_space(&dir)
            .ok()
            .map(|free| free.saturating_sub(reserve))
    })))
}

/// PTR rule, access `Connect:`, then DNSBL (unless access said OK/RELAY), as check_relay runs.
async fn connection_checks(shared: &Shared, cfg: &Config, client: &Client) -> Connect {
    if let Some(r) = shared.policy.ptr_rule(client) {
        tracing::info!(
            "ruleset=check_relay, arg1={}, arg2={}, reject={}",
            client.name(),
            client.addr(),
            r.line()
        );
        return Connect::Reject(r);
    }
    let verdict = shared.policy.connect(client);
    tracing::debug!(
        "check_relay for {} [{}]: {verdict:?} (access map: {})",
        client.name(),
        client.addr(),
        shared.policy.access.describe()
    );
    match verdict {
        Connect::Accept => return Connect::Accept,
        Connect::Reject(r) => {
            tracing::info!(
                "ruleset=check_relay, arg1={}, arg2={}, reject={}",
                client.name(),
                client.addr(),
                r.line()
            );
            return Connect::Reject(r);
        }
        Connect::Continue => {}
    }
    for bl in &cfg.settings.smtp.dnsbl {
        // Temporary DNS failures are ignored, as FEATURE(dnsbl) does without its `t` argument.
        if let Resolve::Found(_) = shared.dns.dnsbl(client.ip, &bl.zone).await {
            let r = Policy::dnsbl_reply(client.ip, &bl.zone, bl.message.as_deref());
            tracing::info!(
                "ruleset=check_relay, arg1={}, arg2={}, reject={}",
                client.name(),
                client.addr(),
                r.line()
            );
            return Connect::Reject(r);
        }
    }
    Connect::Continue
}

enum Flow {
    Continue,
    Close,
}

/// The macros of the connect callback.
fn connect_macros(
    host: &str,
    kind: Kind,
    client: &Client,
    peer: &milter::Peer,
) -> Vec<(String, String)> {
    let daemon = if kind == Kind::Submission {
        "MSA"
    } else {
        "MTA"
    };
    vec![
        ("j".into(), host.to_string()),
        ("{daemon_name}".into(), daemon.into()),
        ("{client_addr}".into(), client.addr()),
        ("{client_name}".into(), peer.hostname.clone()),
        ("{client_port}".into(), peer.port.to_string()),
        ("_".into(), client.hello_text()),
    ]
}

/// The macros of a session's later steps: TLS, AUTH, the queue id.
fn session_macros(
    conn: &Conn,
    session: &Session,
    qid: Option<&QueueId>,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut m = Vec::new();
    if let Some(q) = qid {
        m.push(("i".to_string(), q.as_str().to_string()));
    }
    if let Some((version, cipher)) = conn.tls_info() {
        m.push(("{tls_version}".into(), version));
        m.push(("{cipher}".into(), cipher));
    }
    if let Some(user) = &session.client.authenticated {
        m.push(("{auth_authen}".into(), user.clone()));
        if let Some(t) = session.auth_type() {
            m.push(("{auth_type}".into(), t.to_string()));
        }
    }
    m.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    m
}

/// A MAIL/RCPT milter argument's address, without its angle brackets.
fn bare(args: &[String]) -> String {
    args.first()
        .map(|a| a.trim_start_matches('<').trim_end_matches('>').to_string())
        .unwrap_or_default()
}

/// `[limits]` at MAIL (message_rate, and user_daily for an authenticated user) and RCPT
/// (recipient_rate): `Some` is the 450 to send instead of the server's reply.
fn rate_refusal(
    shared: &Arc<Shared>,
    session: &Session,
    call: &MilterCall,
    cfg: &Config,
) -> Option<Reply> {
    let c = &session.client;
    let host = cfg.hostname();
    let refuse = |limit: Limit, what: &str| {
        tracing::warn!(
            "{}: {} refused: {} exceeded",
            c.hello_text(),
            what,
            limit.name()
        );
        Some(Reply::new(
            450,
            format!("4.7.1 {host} Error: {} rate limit exceeded", limit.name()),
        ))
    };
    match call {
        MilterCall::Mail(_) => {
            if !shared.rate_ok(Limit::Message, &Subject::client(c.ip), Some(c)) {
                return refuse(Limit::Message, "MAIL");
            }
            if let Some(user) = &c.authenticated
                && !shared.rate_ok(Limit::UserDaily, &Subject::user(user), Some(c))
            {
                return refuse(Limit::UserDaily, "MAIL");
            }
            None
        }
        MilterCall::Rcpt(_)
            if !shared.rate_ok(Limit::Recipient, &Subject::client(c.ip), Some(c)) =>
        {
            refuse(Limit::Recipient, "RCPT")
        }
        _ => None,
    }
}

/// Asks the milters about a command the server accepted; `Some` is the reply to send instead.
async fn milter_call(
    milters: &mut Milters,
    call: &MilterCall,
    conn: &Conn,
    session: &mut Session,
) -> Option<Reply> {
    let verdict = match call {
        MilterCall::Helo(name) => {
            let m = session_macros(conn, session, None, &[]);
            milters.helo(name, &m).await
        }
        MilterCall::Mail(args) => {
            milters.qid = Some(QueueId::allocate());
            let m = session_macros(
                conn,
                session,
                milters.qid.as_ref(),
                &[("{mail_addr}", bare(args))],
            );
            milters.mail(args, &m).await
        }
        MilterCall::Rcpt(args) => {
            let m = session_macros(conn, session, None, &[("{rcpt_addr}", bare(args))]);
            milters.rcpt(args, &m).await
        }
        MilterCall::Data => {
            let m = session_macros(conn, session, milters.qid.as_ref(), &[]);
            milters.data(&m).await
        }
    };
    match verdict {
        Verdict::Continue => None,
        Verdict::Discard => {
            session.milter_discard();
            None
        }
        Verdict::Refuse(r) => {
            session.milter_refused(call);
            Some(r)
        }
    }
}

/// The command loop; returns (commands, messages) for the log line.
#[allow(clippy::too_many_arguments)]
async fn run_session(
    conn: &mut Conn,
    session: &mut Session,
    lines: &mut LineReader,
    buf: &mut [u8],
    shared: &Arc<Shared>,
    cfg: &Config,
    slot: &mut Option<Slot>,
    milters: &mut Option<Milters>,
    service: &'static str,
) -> (usize, usize) {
    let mut out: Vec<u8> = Vec::new();
    let mut commands = 0usize;
    let mut messages = 0usize;
    let mut stop = shared.stop.subscribe();
    let presence = slot.as_ref().map(|s| s.presence().clone());
    // The deadline of the command line being read: set when the server starts waiting for it,
    // kept while bytes trickle in, cleared when a whole line has arrived.
    let mut deadline: Option<Instant> = None;
    loop {
        while let Some(ev) = lines.next_line() {
            commands += 1;
            deadline = None;
            if let Some(p) = &presence {
                p.working();
            }
            let more = lines.buffered() > 0;
            let stage = match &ev {
                LineEvent::Line(l) => stage_of(l),
                _ => "command",
            };
            let steps = session.on_line(ev, more, &shared.policy);
            match do_steps(
                steps,
                conn,
                session,
                lines,
                buf,
                shared,
                cfg,
                &mut out,
                &mut messages,
                milters,
                (stage, service),
            )
            .await
            {
                Flow::Continue => {}
                Flow::Close => {
                    Slot::release(slot);
                    let _ = conn.send(&out).await;
                    return (commands, messages);
                }
            }
        }
        if !out.is_empty() {
            if conn.send(&out).await.is_err() {
                return (commands, messages);
            }
            out.clear();
        }
        let until = *deadline.get_or_insert_with(|| {
            Instant::now() + shared.timeout_now(Family::Smtp, cfg.settings.smtp.command_timeout.0)
        });
        if let Some(p) = &presence {
            p.waiting();
        }
        let read = tokio::time::timeout_at(until.into(), conn.read(buf));
        tokio::pin!(read);
        let evicted = async {
            match &presence {
                Some(p) => p.evicted().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(evicted);
        let result = loop {
            // On SIGTERM a session between transactions is closed at once; one in the middle
            // of a transaction may finish it within the grace period.
            let stopping = *stop.borrow();
            if stopping && session.is_idle() {
                let host = cfg.hostname();
                let _ = conn
                    .send(
                        format!("421 4.3.2 {host} Service shutting down; closing connection\r\n")
                            .as_bytes(),
                    )
                    .await;
                return (commands, messages);
            }
            tokio::select! {
                r = &mut read => break r,
                () = &mut evicted => {
                    tracing::info!(
                        "closing idle session of {} to make room (server busy)",
                        session.client.hello_text()
                    );
                    let host = cfg.hostname();
                    let _ = conn
                        .send(format!("421 4.3.2 {host} Server busy; closing idle connection\r\n").as_bytes())
                        .await;
                    return (commands, messages);
                }
                changed = stop.changed(), if !stopping => {
                    if changed.is_err() {
                        // The server is gone; nothing will tell us to stop any more.
                        break (&mut read).await;
                    }
                }
            }
        };
        match result {
            Ok(Ok(0)) | Ok(Err(_)) => return (commands, messages),
            Ok(Ok(n)) => lines.feed(&buf[..n]),
            Err(_) => {
                tracing::info!(
                    "timeout waiting for a command from {}",
                    session.client.hello_text()
                );
                let host = &cfg.hostname();
                let _ = conn
                    .send(format!("421 4.4.2 {host} Error: timeout exceeded\r\n").as_bytes())
                    .await;
                return (commands, messages);
            }
        }
    }
}

/// How long the `errors`-th error reply of a session waits: the network's turn in the tarpit
/// (`error_rate` per second over all its sessions) plus, past `soft_error_limit`, `error_sleep`
/// for every five errors beyond it (at most ten times). Authenticated clients and those that may relay are
/// never held back, and neither is any answer that is not an error.
fn tarpit_delay(shared: &Shared, cfg: &Config, session: &Session, errors: u32) -> Duration {
    let s = &cfg.settings.smtp;
    if session.client.authenticated.is_some() {
        return Duration::ZERO;
    }
    let policy = &shared.policy;
    let trusted = policy
        .client_may_relay(&session.client, &policy.settings(), &policy.classes())
        .unwrap_or(false);
    if trusted {
        return Duration::ZERO;
    }
    let mut delay = shared
        .tarpit
        .reserve(session.client.ip, s.error_rate, Instant::now());
    if errors > s.soft_error_limit {
        // One more error_sleep for every five errors past the limit: a prober slows down
        // and down, while no single reply waits long enough to time out a patient client.
        delay += s.error_sleep.0 * (errors - s.soft_error_limit).div_ceil(5).min(10);
    }
    delay
}

#[allow(clippy::too_many_arguments)]
async fn do_steps(
    steps: Vec<Step>,
    conn: &mut Conn,
    session: &mut Session,
    lines: &mut LineReader,
    buf: &mut [u8],
    shared: &Arc<Shared>,
    cfg: &Config,
    out: &mut Vec<u8>,
    messages: &mut usize,
    milters: &mut Option<Milters>,
    (stage, service): (&'static str, &'static str),
) -> Flow {
    let mut queue: std::collections::VecDeque<Step> = steps.into();
    while let Some(step) = queue.pop_front() {
        match step {
            Step::Milter(call) => {
                if let Some(reply) = rate_refusal(shared, session, &call, cfg) {
                    session.milter_refused(&call);
                    if matches!(queue.front(), Some(Step::Send(_))) {
                        queue.pop_front();
                    }
                    queue.push_front(Step::Send(reply));
                    continue;
                }
                let Some(m) = milters.as_mut() else {
                    continue;
                };
                if let Some(reply) = milter_call(m, &call, conn, session).await {
                    // The refusal replaces the server's own reply (and, at DATA, the read).
                    if matches!(queue.front(), Some(Step::Send(_))) {
                        queue.pop_front();
                    }
                    if matches!(queue.front(), Some(Step::ReadData)) {
                        queue.pop_front();
                    }
                    // sendmail closes the session after a milter's 421.
                    let close = reply.code == 421;
                    queue.push_front(Step::Send(reply));
                    if close {
                        queue.insert(1, Step::Close);
                    }
                }
            }
            Step::Send(r) => {
                if r.code >= 400 {
                    crate::metrics::smtp_rejection(stage, r.code);
                }
                out.extend_from_slice(&r.to_bytes());
            }
            Step::Close => return Flow::Close,
            Step::Tarpit { errors } => {
                let delay = tarpit_delay(shared, cfg, session, errors);
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            Step::StartTls => {
                if conn.send(out).await.is_err() {
                    return Flow::Close;
                }
                out.clear();
                // Plaintext sent after STARTTLS must never be read as if it came over TLS
                // (CVE-2011-0411 class).
                let dropped = lines.discard_buffered();
                if dropped > 0 {
                    tracing::warn!(
                        "discarded {dropped} bytes of plaintext pipelined after STARTTLS from {}",
                        session.client.hello_text()
                    );
                }
                if conn
                    .start_tls(shared.tls.as_ref(), cfg.settings.smtp.command_timeout.0)
                    .await
                {
                    session.tls_started();
                } else {
                    tracing::info!(
                        "STARTTLS handshake failed with {}",
                        session.client.hello_text()
                    );
                    return Flow::Close;
                }
            }
            Step::VerifyAuth { user, password } => {
                let ip = session.client.ip;
                let p = &cfg.settings.pop3;
                // The same throttle as POP3 logins: a network that failed too often is refused
                // without a check.
                let adm = shared.auth_admission(ip, &user);
                if adm.refused {
                    tracing::warn!(
                        "SMTP AUTH refused for {}: too many failures from this address",
                        session.client.hello_text()
                    );
                    tokio::time::sleep(p.auth_failure_delay.0).await;
                    queue.extend(session.auth_result(None));
                    continue;
                }
                tokio::time::sleep(adm.wait).await;
                let sh = shared.clone();
                let u = user.clone();
                let result =
                    tokio::task::spawn_blocking(move || sh.policy.authenticate(&u, &password))
                        .await;
                let ok = match result {
                    Ok(Ok(b)) => Some(b),
                    _ => None,
                };
                match ok {
                    Some(true) => shared.auth.succeeded(ip, &user, Instant::now()),
                    Some(false) => {
                        shared.auth.failed(ip, &user, Instant::now());
                        tokio::time::sleep(p.auth_failure_delay.0).await;
                    }
                    None => {}
                }
                queue.extend(session.auth_result(ok));
            }
            Step::ReadData => {
                if conn.send(out).await.is_err() {
                    return Flow::Close;
                }
                out.clear();
                let Some(reply) = read_data(conn, session, lines, buf, shared, cfg, milters).await
                else {
                    return Flow::Close;
                };
                if reply.code == 250 {
                    *messages += 1;
                    crate::metrics::smtp_accepted(service);
                } else if reply.code >= 400 {
                    crate::metrics::smtp_rejection("data", reply.code);
                }
                out.extend_from_slice(&reply.to_bytes());
            }
        }
    }
    Flow::Continue
}

/// Reads the message into the spool as it arrives ([`Incoming`]: memory stays bounded whatever
/// its size) and answers for it. `None`: the client went away or timed out; the partial `df`
/// is gone with the `Incoming`.
async fn read_data(
    conn: &mut Conn,
    session: &mut Session,
    lines: &mut LineReader,
    buf: &mut [u8],
    shared: &Arc<Shared>,
    cfg: &Config,
    milters: &mut Option<Milters>,
) -> Option<Reply> {
    let s = &cfg.settings.smtp;
    // The milters were told this id at MAIL (the macro `i`).
    let qid = milters
        .as_mut()
        .and_then(|m| m.qid.take())
        .unwrap_or_else(QueueId::allocate);
    let mut incoming = Some(Incoming::new(qid.clone(), shared.spool.data_path(&qid)));
    if let (Some(env), Some(inc)) = (session.pending_envelope(), incoming.as_mut()) {
        inc.push(received_for(&env, &qid, &cfg.hostname()).as_bytes());
    }
    // A write error (a full disk) is answered after the client's end of data, not mid-stream.
    let mut failed: Option<SpoolError> = None;
    let mut reader = DataReader::new(s.max_message_size);
    let mut lf = Vec::new();
    let mut clock = DataClock::new(
        Instant::now(),
        s.data_deadline.0,
        s.data_min_rate,
        s.data_rate_grace.0,
    );
    let size_exceeded = loop {
        let (used, state) = reader.feed(lines.buffered_bytes());
        lines.consume(used);
        if let Some(inc) = incoming.as_mut() {
            // The DataReader made every line end CRLF and every other CR a space, so the LF
            // form the spool keeps is the chunk without its CRs.
            lf.clear();
            lf.extend(reader.take_message().into_iter().filter(|&b| b != b'\r'));
            inc.push(&lf);
        }
        if incoming.as_ref().is_some_and(Incoming::wants_flush) {
            let mut inc = incoming.take()?;
            let (inc, result) = tokio::task::spawn_blocking(move || {
                let r = inc.flush();
                (inc, r)
            })
            .await
            .ok()?;
            match result {
                Ok(()) => incoming = Some(inc),
                Err(e) => {
                    tracing::error!(
                        "{qid}: cannot queue message from {}: {e}",
                        session.client.hello_text()
                    );
                    failed = Some(e);
                }
            }
        }
        if let DataState::Done { size_exceeded, .. } = state {
            break size_exceeded;
        }
        let now = Instant::now();
        let (until, why) = clock.next_check(shared.timeout_now(Family::Smtp, s.data_timeout.0));
        if now >= until {
            tracing::info!(
                "{why} during DATA from {} ({} bytes in {:.0?})",
                session.client.hello_text(),
                clock.received,
                now - clock.start
            );
            let host = cfg.hostname();
            let text = match why {
                DataLimit::TooSlow => "Error: data transfer too slow",
                _ => "Error: timeout exceeded",
            };
            let _ = conn
                .send(format!("421 4.4.2 {host} {text}\r\n").as_bytes())
                .await;
            return None;
        }
        match tokio::time::timeout_at(until.into(), conn.read(buf)).await {
            Ok(Ok(n)) if n > 0 => {
                clock.received += n as u64;
                clock.last = Instant::now();
                lines.feed(&buf[..n]);
            }
            Ok(_) => {
                tracing::info!(
                    "lost input channel from {} during DATA",
                    session.client.hello_text()
                );
                return None;
            }
            // The loop decides which limit it was.
            Err(_) => {}
        }
    };
    let env = match session.data_done(size_exceeded) {
        Err(r) => return Some(r),
        Ok(env) => env,
    };
    let macros = session_macros(conn, session, Some(&qid), &[]);
    Some(match (incoming, failed) {
        (Some(inc), None) => store(env, qid, inc, shared, cfg, milters.as_mut(), &macros).await,
        (_, e) => {
            let (code, dsn) = e.map_or((451, "4.3.0"), |e| e.smtp_status());
            Reply::new(
                code,
                format!("{dsn} Insufficient system resources; try again later"),
            )
        }
    })
}

/// The Received: line (LF-ended) that heads the stored message.
fn received_for(env: &Envelope, qid: &QueueId, host: &str) -> String {
    let first_rcpt = (env.recipients.len() == 1).then(|| env.recipients[0].path.to_string());
    let client_name = env.client.resolve.name().map(str::to_string);
    let mut line = received_header(
        &env.helo,
        client_name.as_deref(),
        env.client.ip,
        host,
        &env.protocol,
        qid.as_str(),
        first_rcpt.as_deref(),
        &crate::util::rfc5322_date(SystemTime::now()),
    );
    line.retain(|c| c != '\r');
    line
}

/// Makes the message durable in the spool and answers for it: the 250 goes out only after
/// the spool's group commit has put the data and envelope on stable storage.
async fn store(
    env: Envelope,
    qid: QueueId,
    incoming: Incoming,
    shared: &Arc<Shared>,
    cfg: &Config,
    milters: Option<&mut Milters>,
    macros: &[(String, String)],
) -> Reply {
    let host = cfg.hostname();
    let s = &cfg.settings.smtp;
    let msgid = message_id(incoming.head());
    let mut envelope = to_queue_envelope(&env, &host, cfg.settings.smtp.always_add_domain);
    // The message stage (crate::stage), step 1: the head starts with our own Received: line,
    // which counts as a hop.
    crate::stage::hops::check(incoming.head(), s.max_hops, &mut envelope);
    let nrcpts = envelope.recipients.len();
    if env.discard {
        if let Some(m) = milters {
            m.abort().await;
        }
        // access DISCARD: the client is told it was accepted; nothing is kept.
        tracing::info!(
            "{qid}: discarded (access db), from=<{}>, nrcpts={nrcpts}, relay={}",
            envelope.sender,
            env.client.hello_text()
        );
        return Reply::accepted(qid.as_str());
    }
    let from = if envelope.sender.is_empty() {
        "<>".to_string()
    } else {
        format!("<{}>", envelope.sender)
    };
    let failed = || Reply::new(451, "4.3.0 Insufficient system resources; try again later");
    let mut head = incoming.head().to_vec();
    // A message still in memory finishes without I/O; one on disk writes its last piece.
    let finished = if incoming.is_spilled() {
        tokio::task::spawn_blocking(move || incoming.finish()).await
    } else {
        Ok(incoming.finish())
    };
    let data = match finished {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            tracing::error!("cannot queue message from {}: {e}", env.client.hello_text());
            let (code, dsn) = e.smtp_status();
            return Reply::new(
                code,
                format!("{dsn} Insufficient system resources; try again later"),
            );
        }
        Err(e) => {
            tracing::error!("queueing task failed: {e}");
            return failed();
        }
    };
    // Steps 2-4: forged Authentication-Results, SPF/DKIM/DMARC, DKIM signing.
    let policy = &shared.policy;
    let trusted = policy
        .client_may_relay(&env.client, &policy.settings(), &policy.classes())
        .unwrap_or(false);
    let client = crate::stage::Client {
        ip: env.client.ip,
        helo: &env.helo,
        trusted,
    };
    let stage = shared.engine.stage();
    let data = match stage
        .smtp(&shared.dns, &qid, data, &mut head, &client, &mut envelope)
        .await
    {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    // Step 3b: the milters, which may change the message our signature will cover.
    let data = match milters {
        Some(m) if !m.is_empty() => {
            match milter_message(m, &qid, data, &mut head, &mut envelope, macros).await {
                MilterEnd::Store(d) => d,
                MilterEnd::Answer(r) => return r,
            }
        }
        _ => data,
    };
    // The milters may have added or removed recipients, or replaced the data.
    let nrcpts = envelope.recipients.len();
    let size = data.len();
    let spool = shared.spool.clone();
    let id = qid.clone();
    let res = tokio::task::spawn_blocking(move || {
        // Step 4: our own users' mail is signed (CPU, or a read of a large df) here.
        if trusted {
            stage.local(&id, &data, &head, &mut envelope);
        }
        spool.store(NewMessage {
            envelope,
            data,
            id: Some(id),
        })
    })
    .await;
    match res {
        Ok(Ok(qid)) => {
            tracing::info!(
                "{qid}: from={from}, size={size}, class=0, nrcpts={nrcpts}, msgid={}, proto={}, daemon=MTA, relay={}",
                msgid.as_deref().unwrap_or("<none>"),
                env.protocol,
                env.client.hello_text()
            );
            let reply = Reply::accepted(qid.as_str());
            if cfg.settings.queue.delivery_mode == crate::config::DeliveryMode::Background
                && let Some(q) = shared.queue.get()
            {
                q.kick(qid);
            }
            reply
        }
        Ok(Err(e)) => {
            tracing::error!("cannot queue message from {}: {e}", env.client.hello_text());
            let (code, dsn) = e.smtp_status();
            Reply::new(
                code,
                format!("{dsn} Insufficient system resources; try again later"),
            )
        }
        Err(e) => {
            tracing::error!("queueing task failed: {e}");
            Reply::new(
                451,
                "4.3.0 Temporary system failure. Please try again later.",
            )
        }
    }
}

enum MilterEnd {
    Store(queue::incoming::Payload),
    Answer(Reply),
}

/// The end-of-message step of the milters: the message as they left it, or the answer to
/// give without storing it (a refusal, or a discard's 250).
async fn milter_message(
    m: &mut Milters,
    qid: &QueueId,
    data: queue::incoming::Payload,
    head: &mut Vec<u8>,
    envelope: &mut queue::Envelope,
    macros: &[(String, String)],
) -> MilterEnd {
    let mut msg = milter::Message::new(data, head, &envelope.headers);
    let out = m.message(&mut msg, macros, macros).await;
    match out.verdict {
        Verdict::Refuse(r) => return MilterEnd::Answer(r),
        Verdict::Discard => {
            tracing::info!("{qid}: discarded (milter), from=<{}>", envelope.sender);
            return MilterEnd::Answer(Reply::accepted(qid.as_str()));
        }
        Verdict::Continue => {}
    }
    if let Some(why) = out.quarantine {
        envelope.held = true;
        envelope.quarantine = Some(why);
    }
    let mut env = std::mem::take(envelope);
    let rewrite = msg.needs_rewrite();
    let done = tokio::task::spawn_blocking(move || {
        let r = msg.finish(&mut env).and_then(|p| {
            // The head the signer reads must be the rewritten one.
            let head = match (&p, rewrite) {
                (queue::incoming::Payload::Spilled(s), true) => {
                    use std::io::Read;
                    let mut h = Vec::new();
                    std::fs::File::open(s.path())?
                        .take(queue::incoming::HEAD_KEPT as u64)
                        .read_to_end(&mut h)?;
                    Some(h)
                }
                (queue::incoming::Payload::Bytes(b), true) => {
                    Some(b[..b.len().min(queue::incoming::HEAD_KEPT)].to_vec())
                }
                _ => None,
            };
            Ok((p, head))
        });
        (r, env)
    })
    .await;
    let (r, env) = match done {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("{qid}: milter edits failed: {e}");
            return MilterEnd::Answer(Reply::new(
                451,
                "4.3.0 Temporary system failure. Please try again later.",
            ));
        }
    };
    *envelope = env;
    match r {
        Ok((p, new_head)) => {
            if let Some(h) = new_head {
                *head = h;
            }
            if envelope.recipients.is_empty() {
                tracing::info!("{qid}: discarded: the milters removed every recipient");
                return MilterEnd::Answer(Reply::accepted(qid.as_str()));
            }
            MilterEnd::Store(p)
        }
        Err(e) => {
            tracing::error!("{qid}: cannot apply the milters' edits: {e}");
            MilterEnd::Answer(Reply::new(
                451,
                "4.3.0 Temporary system failure. Please try again later.",
            ))
        }
    }
}

fn message_id(message: &[u8]) -> Option<String> {
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            return Some(String::from_utf8_lossy(&line[11..]).trim().to_string());
        }
    }
    None
}

fn to_queue_envelope(env: &Envelope, host: &str, add_domain: bool) -> queue::Envelope {
    let qualify = |p: &crate::address::Path| -> String {
        match &p.mailbox {
            None => String::new(),
            Some(m) if m.domain.is_none() && add_domain => format!("{}@{host}", m.local),
            Some(m) => m.to_string(),
        }
    };
    let recipients = env
        .recipients
        .iter()
        .map(|r| {
            let mut q = queue::Recipient::new(qualify(&r.path));
            q.notify = r.params.notify;
            q.orcpt = r
                .params
                .orcpt
                .as_ref()
                .map(|(t, a)| format!("{t};{}", crate::address::xtext_encode(a)));
            q
        })
        .collect();
    let mut e = queue::Envelope::new(qualify(&env.sender), recipients);
    e.body_type = env.params.body;
    e.envid = env
        .params
        .envid
        .as_ref()
        .map(|v| crate::address::xtext_encode(v));
    e.ret = env.params.ret;
    e.auth = env.params.auth.clone();
    e.protocol = Some(env.protocol.clone());
    e.helo = Some(env.helo.clone());
    e.client_addr = Some(env.client.ip.to_canonical().to_string());
    e.client_name = env.client.resolve.name().map(str::to_string);
    e.smtputf8 = env.params.smtputf8;
    e
}
