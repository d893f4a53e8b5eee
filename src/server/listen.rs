//! Listener plumbing shared by the SMTP and POP3 servers: the accept loop, admission against
//! a service's connection limits, and [`Conn`], a stream that is plain TCP until it turns TLS.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::app::App;

/// A stream that is plain TCP until STARTTLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the TCP stream is being moved into TLS.
    Closed,
}

impl Conn {
    /// The TLS handshake on a plain connection (implicit TLS, STARTTLS, STLS), within
    /// `timeout`. False when there is no certificate, the connection is already TLS, or the
    /// handshake failed; the connection is then unusable.
    pub async fn start_tls(&mut self, acceptor: Option<&TlsAcceptor>, timeout: Duration) -> bool {
        let Some(acceptor) = acceptor else {
            return false;
        };
        let Conn::Plain(tcp) = std::mem::replace(self, Conn::Closed) else {
            return false;
        };
        match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                *self = Conn::Tls(Box::new(tls));
                crate::metrics::tls_handshake(true);
                true
            }
            _ => {
                crate::metrics::tls_handshake(false);
                false
            }
        }
    }

    /// The TLS version and cipher suite, once TLS is up (the milter macros `{tls_version}`
    /// and `{cipher}`).
    pub fn tls_info(&self) -> Option<(String, String)> {
        let Conn::Tls(t) = self else {
            return None;
        };
        let c = t.get_ref().1;
        let version = match c.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_string(),
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_string(),
            v => format!("{v:?}"),
        };
        let cipher = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        Some((version, cipher))
    }

    /// Writes `bytes` and flushes. tokio-rustls may keep encrypted bytes in its buffer after
    /// `write_all` returns (when the socket would block) until `poll_flush`, so a reply that
    /// is not flushed can stall a session (a POP3S RETR stopped partway, issue 12).
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes).await?;
        self.flush().await
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Closed => Poll::Ready(Err(closed())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// The open connections of one service family (SMTP's ports, or POP3's), counted against its
/// own limits: a flood of POP3 logins cannot use up SMTP's connections, nor the reverse.
#[derive(Default)]
pub struct Limits {
    active: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    sessions: Mutex<HashMap<u64, Arc<Presence>>>,
    next_id: AtomicU64,
}

impl Limits {
    /// Connections open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Past `threshold` percent of `max` open connections (0: never).
    pub fn stressed(&self, max: u32, threshold: u32) -> bool {
        threshold > 0 && self.active() as u64 * 100 > u64::from(max) * u64::from(threshold)
    }

    /// Tells one session that is waiting for its client to close, to make room for a new one:
    /// of the sessions waiting at least [`EVICT_AFTER`], one from the address with the most
    /// sessions open, the longest-waiting of those. A flood from a few addresses thus gives way
    /// before a client with one session does, however fast it reconnects. False if every
    /// session is busy or fresh.
    fn evict_one(&self, now: Instant) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let victim = sessions
            .values()
            .filter(|p| !p.evicted.load(Ordering::SeqCst))
            .filter_map(|p| p.idle_since().map(|t| (t, p)))
            .filter(|(t, _)| now.saturating_duration_since(*t) >= EVICT_AFTER)
            .max_by_key(|(t, p)| {
                (
                    per_ip.get(&p.ip).copied().unwrap_or(0),
                    std::cmp::Reverse(*t),
                )
            });
        match victim {
            Some((_, p)) => {
                p.evicted.store(true, Ordering::SeqCst);
                p.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A session must have waited this long for its client before it may be closed for a new one.
pub const EVICT_AFTER: Duration = Duration::from_millis(200);

/// What a session shows the limits: since when it has been waiting for its client (nothing
/// while it works), and the signal that closes it to make room.
pub struct Presence {
    ip: IpAddr,
    idle_since: Mutex<Option<Instant>>,
    evicted: AtomicBool,
    close: tokio::sync::Notify,
}

impl Presence {
    fn new(ip: IpAddr) -> Presence {
        Presence {
            ip,
            idle_since: Mutex::new(None),
            evicted: AtomicBool::new(false),
            close: tokio::sync::Notify::new(),
        }
    }

    /// The session waits for its client from now (if it was not waiting already).
    pub fn waiting(&self) {
        let mut i = self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
        i.get_or_insert_with(Instant::now);
    }

    /// The client sent a whole command: the session is at work.
    pub fn working(&self) {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn idle_since(&self) -> Option<Instant> {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves when the session has been chosen to make room for a new client.
    pub async fn evicted(&self) {
        self.close.notified().await
    }
}

/// Which family a connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Smtp,
    Pop3,
}

/// Counts a connection against its family's global and per-address limits, and the server's
/// total (what shutdown waits for), for its lifetime.
pub struct Slot {
    app: Arc<App>,
    family: Family,
    ip: IpAddr,
    id: u64,
    presence: Arc<Presence>,
}

impl Slot {
    pub fn take(app: &Arc<App>, family: Family, ip: IpAddr) -> Result<Slot, &'static str> {
        let cfg = app.config();
        let (max, max_per_ip) = match family {
            Family::Smtp => (
                cfg.settings.smtp.max_connections as usize,
                cfg.settings.smtp.max_connections_per_ip,
            ),
            Family::Pop3 => (
                cfg.settings.pop3.max_connections as usize,
                cfg.settings.pop3.max_connections_per_ip,
            ),
        };
        let limits = app.limits(family);
        let total = limits.active.fetch_add(1, Ordering::SeqCst) + 1;
        app.open.fetch_add(1, Ordering::SeqCst);
        let from_ip = {
            let mut per_ip = limits.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = per_ip.entry(ip).or_insert(0);
            *n += 1;
            *n
        };
        // Counted first and released by Drop, so a refused connection undoes its own count
        // (the map's lock is not held here: Drop takes it).
        let id = limits.next_id.fetch_add(1, Ordering::SeqCst);
        let presence = Arc::new(Presence::new(ip));
        limits
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, presence.clone());
        let slot = Slot {
            app: app.clone(),
            family,
            ip,
            id,
            presence,
        };
        // Full: the session idle longest gives way (it closes at once; until then the count
        // is one over), else the new client is refused.
        if total > max && !limits.evict_one(Instant::now()) {
            return Err("Too many open connections");
        }
        // The host itself (127.0.0.1, ::1) and localip clients are the site's own, exempt as
        // Postfix exempts mynetworks from its per-client limit (the map is asked only past the
        // limit). The rest of 127/8 is not: tests use it to stand for distinct clients.
        if from_ip > max_per_ip && !is_this_host(ip) && !app.policy.is_localip(ip) {
            return Err("Too many open connections from your address");
        }
        Ok(slot)
    }
}

/// 127.0.0.1 or ::1 (also as an IPv4-mapped address).
pub fn is_this_host(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    }
}

impl Slot {
    /// The session's [`Presence`].
    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    /// Frees the slot now, before the last reply goes out: a client that reconnects as soon as
    /// it reads 221 must not find its old session still counted.
    pub fn release(slot: &mut Option<Slot>) {
        drop(slot.take());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let limits = self.app.limits(self.family);
        limits
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
        if let Ok(mut m) = limits.per_ip.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        limits.active.fetch_sub(1, Ordering::SeqCst);
        if self.app.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.app.idle.notify_waiters();
        }
    }
}

/// Accepts connections until `stop` turns true, one task per connection (SMTP and POP3).
/// A failing accept (descriptors exhausted, say) is logged and retried after a pause.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    service: &str,
    mut stop: watch::Receiver<bool>,
    session: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    tokio::spawn(session(stream, peer));
                }
                Err(e) => {
                    tracing::warn!("accept on {service} listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Counts a new connection against the limits (answering `refusal`, with `{why}` filled in,
/// when over them) and, for implicit-TLS ports (`tls_timeout` given), does the handshake.
/// Shared by the SMTP and POP3 listeners.
pub async fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Arc<App>,
    family: Family,
    service: &str,
    refusal: &str,
    tls_timeout: Option<Duration>,
) -> Option<(Slot, Conn)> {
    let slot = match Slot::take(shared, family, peer.ip()) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!("rejecting {service} connection from [{}]: {why}", peer.ip());
            let mut s = stream;
            let _ = s.write_all(refusal.replace("{why}", why).as_bytes()).await;
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::Plain(stream);
    if let Some(timeout) = tls_timeout
        && !conn.start_tls(shared.tls.as_ref(), timeout).await
    {
        tracing::info!("{service} TLS handshake failed with [{}]", peer.ip());
        return None;
    }
    Some((slot, conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting_since(l: &Limits, id: u64, ip: &str, since: Instant) -> Arc<Presence> {
        let ip: IpAddr = ip.parse().unwrap();
        let p = Arc::new(Presence::new(ip));
        *p.idle_since.lock().unwrap() = Some(since);
        l.sessions.lock().unwrap().insert(id, p.clone());
        *l.per_ip.lock().unwrap().entry(ip).or_insert(0) += 1;
        p
    }

    // Under stress the flood gives way first: a waiting session of the address with the most
    // sessions, the longest-waiting of them; a busy or fresh session never.
    #[test]
    fn eviction_picks_the_busiest_address_then_the_longest_wait() {
        let now = Instant::now();
        let ago = |ms: u64| now - Duration::from_millis(ms);
        let l = Limits::default();
        let real = waiting_since(&l, 1, "192.0.2.1", ago(10_000));
        let flood: Vec<_> = (0..3)
            .map(|i| waiting_since(&l, 10 + i, "198.51.100.9", ago(1000 + 100 * i)))
            .collect();
        let fresh = waiting_since(&l, 20, "198.51.100.9", ago(50));
        let busy = waiting_since(&l, 21, "198.51.100.9", ago(5000));
        busy.working();
        assert!(l.evict_one(now));
        // The flood's longest-waiting session (1200 ms), not the real client's (10 s).
        assert!(flood[2].evicted.load(Ordering::SeqCst));
        assert!(!real.evicted.load(Ordering::SeqCst));
        assert!(l.evict_one(now));
        assert!(l.evict_one(now));
        assert!(flood.iter().all(|p| p.evicted.load(Ordering::SeqCst)));
        // Only then the real client; never the fresh or the busy one.
        assert!(l.evict_one(now));
        assert!(real.evicted.load(Ordering::SeqCst));
        assert!(!l.evict_one(now));
        assert!(!fresh.evicted.load(Ordering::SeqCst) && !busy.evicted.load(Ordering::SeqCst));
    }
}
