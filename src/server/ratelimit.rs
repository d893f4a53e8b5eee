//! `[limits]`: sliding-window rate limits per client network (the address, or its /64 for
//! IPv6) and per authenticated user, like Postfix's anvil and mox's per-account cap.
//!
//! Each counter keeps the times of its recent hits (at most `max` of them), so the window
//! slides exactly: a hit is counted unless `max` hits fall within the last window. A refused
//! attempt is not counted, so a client that keeps trying is not locked out for longer. With
//! `backend` set the counters live in that Redis and every host shares them; while it cannot
//! be reached the counters of this process stand in, so a limit never lapses.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::throttle::NetKey;
use crate::maps::backend::Backend;

/// Counters remembered at most in this process; past it, idle ones are dropped first.
pub const MAX_TRACKED: usize = 100_000;

/// The Redis key prefix of the counters (`mailtool_rate:LIMIT:KEY`).
const TABLE: &str = "mailtool_rate";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    Connection,
    Message,
    Recipient,
    UserDaily,
}

impl Limit {
    /// The `limit` label of `mailtool_ratelimit_refusals_total`, and the key name.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Connection => "connection_rate",
            Limit::Message => "message_rate",
            Limit::Recipient => "recipient_rate",
            Limit::UserDaily => "user_daily",
        }
    }

    pub fn window(self) -> Duration {
        match self {
            Limit::UserDaily => Duration::from_secs(24 * 3600),
            _ => Duration::from_secs(60),
        }
    }
}

/// Whom a counter counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Net(NetKey),
    User(String),
}

impl Subject {
    pub fn client(ip: IpAddr) -> Subject {
        Subject::Net(NetKey::of(ip))
    }

    /// An authenticated user; names are case-insensitive, as logins are.
    pub fn user(name: &str) -> Subject {
        Subject::User(name.to_ascii_lowercase())
    }

    /// The key shared by every host: the address (IPv6: its /64 prefix), or the user.
    fn key(&self, limit: Limit) -> String {
        match self {
            Subject::Net(n) => format!("{}:{}", limit.name(), n.label()),
            Subject::User(u) => format!("{}:user:{u}", limit.name()),
        }
    }
}

/// The counters of this process.
#[derive(Default)]
pub struct RateLimiter {
    local: Mutex<HashMap<(Limit, Subject), VecDeque<u64>>>,
    /// Set while the shared backend is unreachable (logged once per outage).
    backend_down: AtomicBool,
}

impl RateLimiter {
    pub fn new() -> RateLimiter {
        RateLimiter::default()
    }

    /// One hit of `subject` against `limit` at `now_ms` (milliseconds since the epoch): true
    /// if it is allowed (and counted). `max` 0 is no limit.
    pub fn hit(
        &self,
        limit: Limit,
        subject: &Subject,
        max: u32,
        now_ms: u64,
        backend: Option<&Backend>,
    ) -> bool {
        if max == 0 {
            return true;
        }
        if let Some(b) = backend {
            match b.rate_hit(
                TABLE,
                subject.key(limit).as_bytes(),
                limit.window(),
                max,
                now_ms,
            ) {
                Ok(allowed) => {
                    if self.backend_down.swap(false, Ordering::SeqCst) {
                        tracing::info!(
                            "limits: backend {} is back; counters shared again",
                            b.name()
                        );
                    }
                    return allowed;
                }
                Err(e) => {
                    if !self.backend_down.swap(true, Ordering::SeqCst) {
                        tracing::warn!("limits: {e}; counting in this process until it is back");
                    }
                }
            }
        }
        self.hit_local(limit, subject, max, now_ms)
    }

    fn hit_local(&self, limit: Limit, subject: &Subject, max: u32, now_ms: u64) -> bool {
        let window = limit.window().as_millis() as u64;
        let start = now_ms.saturating_sub(window);
        let mut map = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&(limit, subject.clone())) {
            map.retain(|(l, _), hits| {
                hits.back()
                    .is_some_and(|&t| t > now_ms.saturating_sub(l.window().as_millis() as u64))
            });
            // Still full of live counters: the one idle longest goes.
            if map.len() >= MAX_TRACKED
                && let Some(k) = map
                    .iter()
                    .min_by_key(|(_, h)| h.back().copied().unwrap_or(0))
                    .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        let hits = map.entry((limit, subject.clone())).or_default();
        while hits.front().is_some_and(|&t| t <= start) {
            hits.pop_front();
        }
        if hits.len() >= max as usize {
            return false;
        }
        hits.push_back(now_ms);
        true
    }
}

/// Milliseconds since the epoch: the counters' clock, the same on every host sharing them.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Subject {
        Subject::client(s.parse().unwrap())
    }

    // The first N pass, the next is refused (and not counted), others are unaffected, and
    // the window slides: a hit is allowed again once the oldest leaves the last minute.
    #[test]
    fn the_window_slides() {
        let r = RateLimiter::new();
        let a = ip("192.0.2.1");
        let t0 = 1_000_000;
        for i in 0..3 {
            assert!(
                r.hit(Limit::Message, &a, 3, t0 + i * 10_000, None),
                "hit {i}"
            );
        }
        assert!(!r.hit(Limit::Message, &a, 3, t0 + 30_000, None));
        assert!(r.hit(Limit::Message, &ip("192.0.2.2"), 3, t0 + 30_000, None));
        // Another limit of the same client is its own counter.
        assert!(r.hit(Limit::Recipient, &a, 3, t0 + 30_000, None));
        // 60 s after the first hit it has left the window; the second has not.
        assert!(!r.hit(Limit::Message, &a, 3, t0 + 59_999, None));
        assert!(r.hit(Limit::Message, &a, 3, t0 + 60_000, None));
        assert!(!r.hit(Limit::Message, &a, 3, t0 + 60_001, None));
        assert!(r.hit(Limit::Message, &a, 3, t0 + 70_000, None));
    }

    #[test]
    fn zero_is_no_limit() {
        let r = RateLimiter::new();
        let a = ip("192.0.2.1");
        assert!((0..1000).all(|i| r.hit(Limit::Connection, &a, 0, i, None)));
    }

    // IPv6 clients count per /64: another address of the same /64 shares the counter, the
    // next /64 does not.
    #[test]
    fn ipv6_counts_per_64() {
        let r = RateLimiter::new();
        assert!(r.hit(Limit::Connection, &ip("2001:db8:1:2::1"), 1, 5, None));
        assert!(!r.hit(Limit::Connection, &ip("2001:db8:1:2:ffff::9"), 1, 6, None));
        assert!(r.hit(Limit::Connection, &ip("2001:db8:1:3::1"), 1, 7, None));
    }

    // A day for users, case-insensitively.
    #[test]
    fn users_count_over_a_day() {
        let r = RateLimiter::new();
        let u = Subject::user;
        let day = 24 * 3600 * 1000;
        assert!(r.hit(Limit::UserDaily, &u("Alice"), 2, 10, None));
        assert!(r.hit(Limit::UserDaily, &u("alice"), 2, 20, None));
        assert!(!r.hit(Limit::UserDaily, &u("ALICE"), 2, day, None));
        assert!(r.hit(Limit::UserDaily, &u("bob"), 2, day, None));
        assert!(r.hit(Limit::UserDaily, &u("alice"), 2, day + 10, None));
        assert_eq!(Limit::UserDaily.window(), Duration::from_secs(86_400));
        assert_eq!(Limit::Message.window(), Duration::from_secs(60));
    }

    #[test]
    fn keys_name_the_limit_and_the_subject() {
        assert_eq!(
            ip("192.0.2.1").key(Limit::Message),
            "message_rate:192.0.2.1"
        );
        assert_eq!(
            ip("2001:db8:1:2::1").key(Limit::Connection),
            "connection_rate:2001:db8:1:2::/64"
        );
        assert_eq!(
            Subject::user("Al").key(Limit::UserDaily),
            "user_daily:user:al"
        );
    }

    // Past MAX_TRACKED counters, idle ones make room; the live ones keep counting.
    #[test]
    fn memory_is_bounded() {
        let r = RateLimiter::new();
        let busy = ip("192.0.2.1");
        assert!(r.hit(Limit::Message, &busy, 1, 1_000_000, None));
        for i in 0..MAX_TRACKED as u64 {
            let s = Subject::User(format!("u{i}"));
            r.hit(Limit::Message, &s, 5, 1000, None);
        }
        assert!(r.local.lock().unwrap().len() <= MAX_TRACKED);
        assert!(!r.hit(Limit::Message, &busy, 1, 1_000_100, None));
    }
}
