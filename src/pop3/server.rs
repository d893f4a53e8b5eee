//! The POP3 listeners (110 with STLS, 995 with implicit TLS) inside `serve`: sockets, TLS,
//! timeouts, throttling and the maildrop around [`Session`].
//!
//! Connections count against the same `max_connections` limits as SMTP. Replies are queued
//! and written when the client's pipelined input runs dry.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::auth::{Guard, loggable};
use super::maildrop::{DropError, IndexCache, Maildrop};
use super::session::{
    Credential, MAX_LINE, MessageEncoder, Session, SessionConfig, Step, encode_message,
};
use crate::config::Config;
use crate::server::app::App as Shared;
use crate::server::listen::{Conn, Family, Slot, accept_loop, admit};
use crate::wire::lines::{LineEvent, LineReader};

/// State the POP3 side adds to the server's shared state.
#[derive(Default)]
pub struct Pop3State {
    pub guard: Guard,
    pub cache: IndexCache,
    /// When each address's popip entry was last written: a client polling every few seconds
    /// need not cost a map write (and its fsync) each time.
    popip_written: std::sync::Mutex<std::collections::HashMap<IpAddr, Instant>>,
}

/// A popip entry younger than this (or a quarter of the TTL) is not rewritten; relaying may
/// end this much earlier than `pop_before_smtp_ttl` after the last login.
const POPIP_REFRESH: Duration = Duration::from_secs(30);

impl Pop3State {
    /// Whether `ip`'s entry is due to be written, noting that it is being written now.
    fn popip_due(&self, ip: IpAddr, now: Instant, ttl: Duration) -> bool {
        let refresh = POPIP_REFRESH.min(ttl / 4);
        let mut m = self.popip_written.lock().unwrap_or_else(|p| p.into_inner());
        if m.get(&ip).is_some_and(|t| now.duration_since(*t) < refresh) {
            return false;
        }
        if m.len() >= 100_000 {
            m.retain(|_, t| now.duration_since(*t) < refresh);
        }
        m.insert(ip, now);
        true
    }
}

/// Messages at least this large are read off the async workers.
const BIG_MESSAGE: u64 = 256 * 1024;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Accepts connections until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    implicit_tls: bool,
    shared: Arc<Shared>,
    pop: Arc<Pop3State>,
    stop: watch::Receiver<bool>,
) {
    let service = if implicit_tls { "POP3S" } else { "POP3" };
    accept_loop(listener, service, stop, move |stream, peer| {
        handle(stream, peer, implicit_tls, shared.clone(), pop.clone())
    })
    .await
}

fn apop_stamp(host: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "<{}.{}.{}@{host}>",
        std::process::id(),
        t.as_nanos(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    pop: &'a Arc<Pop3State>,
    cfg: &'a Config,
    peer: IpAddr,
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    shared: Arc<Shared>,
    pop: Arc<Pop3State>,
) {
    let cfg = shared.config();
    let host = cfg.hostname();
    let service = if implicit_tls { "POP3S" } else { "POP3" };
    let Some((slot, mut conn)) = admit(
        stream,
        peer,
        &shared,
        Family::Pop3,
        service,
        "-ERR [SYS/TEMP] {why}\r\n",
        implicit_tls.then_some(HANDSHAKE_TIMEOUT),
    )
    .await
    else {
        return;
    };
    let plaintext_auth = cfg.settings.pop3.allow_plaintext_auth.allows(peer.ip());
    let mut session = Session::new(SessionConfig {
        hostname: host.clone(),
        tls_available: shared.tls.is_some(),
        plaintext_auth,
        apop_stamp: apop_stamp(&host),
        implicit_tls,
        max_bad_commands: cfg.settings.pop3.max_bad_commands,
    });
    tracing::info!(
        "POP3 connection from [{}]{}",
        peer.ip(),
        if implicit_tls { " (POP3S)" } else { "" }
    );
    if conn.send(&session.greeting()).await.is_err() {
        return;
    }
    let ctx = Ctx {
        shared: &shared,
        pop: &pop,
        cfg: &cfg,
        peer: peer.ip(),
    };
    let mut maildrop: Option<Maildrop> = None;
    let mut slot = Some(slot);
    let end = run(&mut conn, &mut session, &mut maildrop, &ctx, &mut slot).await;
    if maildrop.is_some() {
        // Dropped without QUIT: RFC 1939 §6, no UPDATE; nothing is deleted.
        tracing::info!(
            "POP3 session of user \"{}\" from [{}] ended without QUIT ({end}); nothing deleted",
            loggable(session.user()),
            peer.ip()
        );
    }
    let _ = conn.shutdown().await;
}

async fn run(
    conn: &mut Conn,
    session: &mut Session,
    maildrop: &mut Option<Maildrop>,
    ctx: &Ctx<'_>,
    slot: &mut Option<Slot>,
) -> &'static str {
    let idle = ctx
        .cfg
        .settings
        .pop3
        .idle_timeout
        .0
        .max(Duration::from_secs(1));
    // MAX_LINE octets of command, plus its CRLF.
    let mut lines = LineReader::lenient(MAX_LINE + 2);
    let mut buf = vec![0u8; 16 * 1024];
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut stop = ctx.shared.stop.subscribe();
    let presence = slot.as_ref().map(|s| s.presence().clone());
    let mut deadline: Option<Instant> = None;
    loop {
        while let Some(l) = lines.next_line() {
            deadline = None;
            if let Some(p) = &presence {
                p.working();
            }
            let steps = match l {
                LineEvent::Line(t) => session.on_line(&t),
                // Lenient framing reports no bare line ends: only over-long lines remain.
                LineEvent::TooLong | LineEvent::BareLf | LineEvent::BareCr => {
                    vec![Step::Send(b"-ERR Command line too long.\r\n".to_vec())]
                }
            };
            for step in steps {
                match step {
                    Step::Send(b) => out.extend_from_slice(&b),
                    Step::StartTls => {
                        if conn.send(&out).await.is_err() {
                            return "write error";
                        }
                        out.clear();
                        // RFC 2595 §4 / docs/security.md §4: nothing sent before the handshake
                        // may be taken as a command after it.
                        lines.discard_buffered();
                        if !conn
                            .start_tls(ctx.shared.tls.as_ref(), HANDSHAKE_TIMEOUT)
                            .await
                        {
                            tracing::info!("STLS handshake failed with [{}]", ctx.peer);
                            return "TLS handshake failed";
                        }
                        session.tls_started();
                        break;
                    }
                    Step::Login { user, credential } => {
                        let reply = login(session, maildrop, ctx, user, credential).await;
                        for s in reply {
                            if let Step::Send(b) = s {
                                out.extend_from_slice(&b);
                            }
                        }
                    }
                    Step::Retrieve { index, lines: top } => {
                        let Some(d) = maildrop.as_ref() else {
                            return "no maildrop";
                        };
                        if let Err(why) =
                            retrieve(conn, &mut out, d, index, top, session.user()).await
                        {
                            return why;
                        }
                    }
                    Step::Update { deleted } => {
                        let user = loggable(session.user());
                        let reply = match maildrop.take() {
                            Some(d) => {
                                let pop = ctx.pop.clone();
                                let res = tokio::task::spawn_blocking(move || {
                                    d.update(&deleted, &pop.cache)
                                })
                                .await;
                                match res {
                                    Ok(Ok(n)) => {
                                        tracing::info!(
                                            "POP3 logout of user \"{user}\" from [{}]: {n} deleted",
                                            ctx.peer
                                        );
                                        session.signing_off()
                                    }
                                    Ok(Err(e)) => {
                                        tracing::error!(
                                            "POP3 user \"{user}\": mailbox not updated: {e}"
                                        );
                                        b"-ERR [SYS/TEMP] The mailbox could not be updated; no message was deleted.\r\n".to_vec()
                                    }
                                    Err(_) => b"-ERR [SYS/TEMP] Internal error; no message was deleted.\r\n".to_vec(),
                                }
                            }
                            None => session.signing_off(),
                        };
                        out.extend_from_slice(&reply);
                        // Counted no more once the client may reconnect (see Slot::release).
                        Slot::release(slot);
                        let _ = conn.send(&out).await;
                        return "QUIT";
                    }
                    Step::Close => {
                        Slot::release(slot);
                        let _ = conn.send(&out).await;
                        return "QUIT";
                    }
                }
            }
            if out.len() >= 256 * 1024 {
                if conn.send(&out).await.is_err() {
                    return "write error";
                }
                out.clear();
            }
        }
        if !out.is_empty() {
            if conn.send(&out).await.is_err() {
                return "write error";
            }
            out.clear();
        }
        if *stop.borrow() {
            let _ = conn
                .send(b"-ERR [SYS/TEMP] Server shutting down; no message was deleted.\r\n")
                .await;
            return "server shutdown";
        }
        // A deadline for the whole next command from now: bytes trickling in do not extend it.
        let until = *deadline
            .get_or_insert_with(|| Instant::now() + ctx.shared.timeout_now(Family::Pop3, idle));
        if let Some(p) = &presence {
            p.waiting();
        }
        let evicted = async {
            match &presence {
                Some(p) => p.evicted().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = tokio::time::timeout_at(until.into(), conn.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => return "connection closed",
                Ok(Ok(n)) => lines.feed(&buf[..n]),
                Err(_) => {
                    let _ = conn.send(b"-ERR Autologout; idle for too long.\r\n").await;
                    return "idle timeout";
                }
            },
            () = evicted => {
                let _ = conn
                    .send(b"-ERR [SYS/TEMP] Server busy; closing idle connection.\r\n")
                    .await;
                return "closed to make room (server busy)";
            }
            _ = stop.changed() => {}
        }
    }
}

/// RETR and TOP: `+OK`, the message encoded for the wire, `.`. Small messages are read
/// whole; large ones in pieces off the async workers, written out as they go, so a session
/// never holds a large message in memory. An error after the `+OK` closes the connection
/// (there is no way to take a multi-line reply back).
async fn retrieve(
    conn: &mut Conn,
    out: &mut Vec<u8>,
    d: &Maildrop,
    index: usize,
    top: Option<u64>,
    user: &str,
) -> Result<(), &'static str> {
    let size = d.size(index);
    let status = if top.is_some() {
        "+OK Message follows\r\n".to_string()
    } else {
        format!("+OK {size} octets\r\n")
    };
    let failed = |e: DropError| {
        tracing::error!(
            "POP3 user \"{}\": message {}: {e}",
            loggable(user),
            index + 1
        );
    };
    if size < BIG_MESSAGE {
        match d.read(index) {
            Ok(content) => {
                out.extend_from_slice(status.as_bytes());
                encode_message(&content, top, out);
                out.extend_from_slice(b".\r\n");
            }
            Err(e) => {
                failed(e);
                out.extend_from_slice(b"-ERR [SYS/TEMP] The message cannot be read now.\r\n");
            }
        }
        return Ok(());
    }
    let (file, start, len) = match tokio::task::block_in_place(|| d.open_message(index)) {
        Ok(v) => v,
        Err(e) => {
            failed(e);
            out.extend_from_slice(b"-ERR [SYS/TEMP] The message cannot be read now.\r\n");
            return Ok(());
        }
    };
    out.extend_from_slice(status.as_bytes());
    let mut enc = MessageEncoder::new(top);
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut carry: Vec<u8> = Vec::new();
    let mut pos = 0u64;
    while pos < len && !enc.is_done() {
        let want = (len - pos).min(READ_CHUNK as u64) as usize;
        let n = tokio::task::block_in_place(|| {
            use std::os::unix::fs::FileExt;
            file.read_at(&mut chunk[..want], start + pos)
        });
        let n = match n {
            Ok(0) | Err(_) => {
                failed(DropError::Io("mailbox shorter than indexed".into()));
                return Err("read error");
            }
            Ok(n) => n,
        };
        pos += n as u64;
        carry.extend_from_slice(&chunk[..n]);
        // Whole lines only, except at the end of the message.
        let cut = if pos >= len {
            carry.len()
        } else {
            memchr::memrchr(b'\n', &carry).map_or(0, |i| i + 1)
        };
        enc.lines(&carry[..cut], out);
        carry.drain(..cut);
        if conn.send(out).await.is_err() {
            return Err("write error");
        }
        out.clear();
    }
    out.extend_from_slice(b".\r\n");
    Ok(())
}

/// How much of a large message is read at a time.
const READ_CHUNK: usize = 1 << 20;

/// Checks the credential, opens the maildrop and records the POP-before-SMTP entry.
async fn login(
    session: &mut Session,
    maildrop: &mut Option<Maildrop>,
    ctx: &Ctx<'_>,
    user: String,
    credential: Credential,
) -> Vec<Step> {
    let p = &ctx.cfg.settings.pop3;
    let shown = loggable(&user);
    let ip = ctx.peer;
    let fail = |why: &str| {
        // The address last: contrib/fail2ban's filter anchors on it.
        tracing::warn!("{why}: POP3 login failure for user \"{shown}\" from [{ip}]");
    };
    let adm = ctx.shared.auth_admission(ip, &user);
    if adm.refused {
        crate::metrics::pop3_login("refused");
        fail("too many failures from this address");
        tokio::time::sleep(p.auth_failure_delay.0).await;
        return session.login_failed(
            "-ERR [LOGIN-DELAY] Too many failed logins from your address; try again later.",
        );
    }
    tokio::time::sleep(adm.wait).await;
    let shared = ctx.shared.clone();
    let pop = ctx.pop.clone();
    let u = user.clone();
    let verified = tokio::task::spawn_blocking(move || {
        pop.guard.verify(&shared.policy.users, &u, &credential)
    })
    .await;
    match verified {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            crate::metrics::pop3_login("failed");
            ctx.shared.auth.failed(ip, &user, Instant::now());
            fail("bad password or unknown user");
            tokio::time::sleep(p.auth_failure_delay.0).await;
            return session.login_failed(&format!(
                "-ERR [AUTH] Password supplied for \"{shown}\" is incorrect."
            ));
        }
        Ok(Err(e)) => {
            crate::metrics::pop3_login("tempfail");
            tracing::error!("POP3 login of user \"{shown}\": users map: {e}");
            return session
                .login_failed("-ERR [SYS/TEMP] Passwords cannot be checked now; try again later.");
        }
        Err(_) => {
            return session.login_failed("-ERR [SYS/TEMP] Internal error; try again later.");
        }
    }
    ctx.shared.auth.succeeded(ip, &user, Instant::now());
    crate::metrics::pop3_login("ok");
    let name = user.to_ascii_lowercase();
    let mailboxes = ctx.cfg.path(&ctx.cfg.settings.paths.mailboxes);
    let format = ctx.cfg.settings.paths.mailbox_format;
    let pop = ctx.pop.clone();
    let n2 = name.clone();
    let opened =
        tokio::task::spawn_blocking(move || Maildrop::open(&mailboxes, format, &n2, &pop.cache))
            .await;
    let drop = match opened {
        Ok(Ok(d)) => d,
        Ok(Err(DropError::InUse(_))) => {
            tracing::info!("POP3 user \"{shown}\" from [{ip}]: mailbox in use by another session");
            return session
                .login_failed("-ERR [IN-USE] The mailbox is in use by another POP3 session.");
        }
        Ok(Err(DropError::Locked(_))) => {
            tracing::info!("POP3 user \"{shown}\" from [{ip}]: mailbox locked");
            return session.login_failed(
                "-ERR [IN-USE] The mailbox is locked by another program; try again later.",
            );
        }
        Ok(Err(e)) => {
            tracing::error!("POP3 user \"{shown}\": cannot open the mailbox: {e}");
            return session.login_failed(
                "-ERR [SYS/TEMP] The mailbox cannot be opened now; try again later.",
            );
        }
        Err(_) => {
            return session.login_failed("-ERR [SYS/TEMP] Internal error; try again later.");
        }
    };
    // qpopper's login line, which poprelayd-style tools scan for (docs/sendmail-compat.md §10.1). The
    // host is the address, as qpopper -R logs it: no reverse lookup on every login.
    tracing::info!(
        "(v{}) POP login by user \"{shown}\" at ({ip}) {ip}",
        env!("CARGO_PKG_VERSION")
    );
    let ttl = p.pop_before_smtp_ttl.0;
    if !ttl.is_zero() && ctx.pop.popip_due(ip, Instant::now(), ttl) {
        // Written from the session itself, never read back from a log (CVE-2001-1075).
        let cfg = ctx.cfg.clone();
        let shared = ctx.shared.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            crate::popip::PopipMap::open(&cfg, &shared.policy.backends)?.record(
                ip,
                SystemTime::now(),
                ttl,
            )
        })
        .await;
        if let Ok(Err(e)) = recorded {
            tracing::warn!("popip: cannot record {ip}: {e}");
        }
    }
    let listing = drop.listing();
    *maildrop = Some(drop);
    session.login_ok(&name, listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popip_writes_are_spaced_out() {
        let p = Pop3State::default();
        let ip: IpAddr = "127.0.0.3".parse().unwrap();
        let t = Instant::now();
        let ttl = Duration::from_secs(900);
        assert!(p.popip_due(ip, t, ttl));
        assert!(!p.popip_due(ip, t + Duration::from_secs(10), ttl));
        assert!(p.popip_due(ip, t + Duration::from_secs(31), ttl));
        // A short TTL refreshes more often.
        assert!(p.popip_due(ip, t + Duration::from_secs(33), Duration::from_secs(4)));
        assert!(p.popip_due("127.0.0.4".parse().unwrap(), t, ttl));
    }
}
