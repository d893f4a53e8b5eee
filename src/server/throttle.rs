//! Slowing down hostile clients without hurting the real users, shared by every session:
//!
//! * [`AuthThrottle`]: password guessing (POP3 USER/PASS and APOP, SMTP AUTH). Failures are
//!   counted per client network ([`NetKey`]: the address, or its /64 for IPv6) and each further
//!   attempt from it waits exponentially longer; attempts from one network are serialised, so
//!   parallel guesses wait their turn. Failures are also counted per user, which slows guessing
//!   from many networks, but that delay never applies where the user has logged in before, nor
//!   to this host or localip clients; and nothing ever refuses a user's correct password from
//!   everywhere (that would hand any stranger a way to lock a user out).
//! * [`ErrorTarpit`]: SMTP error replies (unknown recipients, bad commands) to one network are
//!   spaced at least `1 / rate` apart over all its sessions, so reconnecting does not reset
//!   the pace and enumeration runs at most `rate` answers a second.
//!
//! The state is in memory, bounded ([`MAX_TRACKED`] networks and users; the oldest go first),
//! and time is passed in, so the rules are tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Networks and users remembered at most (each map).
pub const MAX_TRACKED: usize = 100_000;
/// Failures older than this are forgotten.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long a successful login keeps its network trusted for that user.
pub const TRUST_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest wait a network's failures impose on its next attempt (Dovecot's auth penalty
/// stops at 15 s too).
pub const MAX_NET_DELAY: Duration = Duration::from_secs(15);
/// The longest wait a user's failures (from elsewhere) impose on a login from a new network.
pub const MAX_USER_DELAY: Duration = Duration::from_secs(16);

/// A client network: an IPv4 address, or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetKey(u128);

impl NetKey {
    pub fn of(ip: IpAddr) -> NetKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => NetKey(u128::from(u32::from(v4))),
            // The top bit marks IPv6, so no /64 equals an IPv4 key.
            IpAddr::V6(v6) => NetKey((u128::from(v6) >> 64) | (1 << 127)),
        }
    }

    /// The network as text: `192.0.2.1`, or `2001:db8:1:2::/64`.
    pub fn label(&self) -> String {
        if self.0 >> 127 == 1 {
            let prefix = (self.0 & !(1 << 127)) << 64;
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        } else {
            std::net::Ipv4Addr::from(self.0 as u32).to_string()
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: Instant,
    /// The earliest start of the next attempt (serialisation).
    next: Instant,
}

impl Count {
    fn new(now: Instant) -> Count {
        Count {
            failures: 0,
            last: now,
            next: now,
        }
    }

    fn current(&mut self, now: Instant) -> u32 {
        if now.saturating_duration_since(self.last) > FAILURE_WINDOW {
            self.failures = 0;
        }
        self.failures
    }
}

/// `base` doubled for every failure after the first, up to `max`; nothing before a failure.
fn backoff(failures: u32, base: Duration, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let doubled = base.saturating_mul(1u32 << (failures - 1).min(20));
    doubled.min(max)
}

fn prune<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    age: impl Fn(&V) -> Instant,
    now: Instant,
    keep: Duration,
) {
    if map.len() < MAX_TRACKED {
        return;
    }
    map.retain(|_, v| now.saturating_duration_since(age(v)) < keep);
    if map.len() >= MAX_TRACKED {
        // Still full of live entries: drop the oldest half rather than grow.
        let mut ages: Vec<Instant> = map.values().map(&age).collect();
        ages.sort();
        let cut = ages[ages.len() / 2];
        map.retain(|_, v| age(v) > cut);
    }
}

#[derive(Default)]
struct AuthState {
    nets: HashMap<NetKey, Count>,
    users: HashMap<String, Count>,
    /// (user, network) pairs that logged in, and when.
    good: HashMap<(String, NetKey), Instant>,
}

/// See the module docs.
#[derive(Default)]
pub struct AuthThrottle {
    state: Mutex<AuthState>,
}

/// What [`AuthThrottle::admit`] decided for one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Wait this long, then check the credential.
    pub wait: Duration,
    /// The network has failed `max_failures` times within the window: refuse without checking
    /// (only that network; the user can still log in from elsewhere).
    pub refused: bool,
}

impl AuthThrottle {
    pub fn new() -> AuthThrottle {
        AuthThrottle::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before checking a credential from `ip` for `user` (the caller exempts this host and
    /// localip clients altogether). `max_failures`: refuse a network after
    /// that many failures within the window (0: never). `base`: the wait after the first
    /// failure (`[pop3] auth_failure_delay`), doubling after every further one. The wait is
    /// reserved at once, so parallel attempts from one network queue up behind each other.
    pub fn admit(
        &self,
        ip: IpAddr,
        user: &str,
        max_failures: u32,
        base: Duration,
        now: Instant,
    ) -> Admission {
        let key = NetKey::of(ip);
        let user = user.to_ascii_lowercase();
        let mut st = self.lock();
        let net = st.nets.entry(key).or_insert_with(|| Count::new(now));
        let net_failures = net.current(now);
        if max_failures > 0 && net_failures >= max_failures {
            return Admission {
                wait: Duration::ZERO,
                refused: true,
            };
        }
        let start = net.next.max(now);
        let mut wait = start - now + backoff(net_failures, base, MAX_NET_DELAY);
        net.next = now + wait;
        let trusted = st
            .good
            .get(&(user.clone(), key))
            .is_some_and(|t| now.saturating_duration_since(*t) < TRUST_FOR);
        if !trusted && let Some(u) = st.users.get_mut(&user) {
            // Guessing one user from many networks: every tenth failure doubles the wait of a
            // login from a network the user never used; capped, and never a refusal.
            let f = u.current(now) / 10;
            let user_wait = backoff(f, base, MAX_USER_DELAY);
            let start = u.next.max(now);
            let w = (start - now + user_wait).min(MAX_USER_DELAY);
            u.next = now + w;
            wait = wait.max(w);
        }
        Admission {
            wait,
            refused: false,
        }
    }

    /// The credential was wrong.
    pub fn failed(&self, ip: IpAddr, user: &str, now: Instant) {
        let key = NetKey::of(ip);
        let user = user.to_ascii_lowercase();
        let mut st = self.lock();
        prune(&mut st.nets, |c| c.last, now, FAILURE_WINDOW);
        prune(&mut st.users, |c| c.last, now, FAILURE_WINDOW);
        let bump = |c: &mut Count| {
            c.current(now);
            c.failures = c.failures.saturating_add(1);
            c.last = now;
        };
        bump(st.nets.entry(key).or_insert_with(|| Count::new(now)));
        bump(st.users.entry(user).or_insert_with(|| Count::new(now)));
    }

    /// The credential was right: the network is trusted for the user from now on and its own
    /// failures are forgiven. The user's failure count stays: guessing from elsewhere goes on
    /// being slowed.
    pub fn succeeded(&self, ip: IpAddr, user: &str, now: Instant) {
        let key = NetKey::of(ip);
        let user = user.to_ascii_lowercase();
        let mut st = self.lock();
        if let Some(c) = st.nets.get_mut(&key) {
            c.failures = 0;
            c.next = now;
        }
        prune(&mut st.good, |t| *t, now, TRUST_FOR);
        st.good.insert((user, key), now);
    }
}

/// See the module docs.
#[derive(Default)]
pub struct ErrorTarpit {
    next: Mutex<HashMap<NetKey, Instant>>,
}

impl ErrorTarpit {
    pub fn new() -> ErrorTarpit {
        ErrorTarpit::default()
    }

    /// How long the next error reply to `ip` must wait, at `rate` replies a second per network
    /// (0: no limit): until the end of its slot, which is reserved at once, so `n` error
    /// replies take at least `n / rate` seconds however many sessions ask.
    pub fn reserve(&self, ip: IpAddr, rate: u32, now: Instant) -> Duration {
        if rate == 0 {
            return Duration::ZERO;
        }
        let spacing = Duration::from_secs(1) / rate;
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut next, |t| *t, now, Duration::from_secs(60));
        let slot = next.entry(NetKey::of(ip)).or_insert(now);
        let start = (*slot).max(now);
        *slot = start + spacing;
        *slot - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_per_64_and_never_clashes_with_ipv4() {
        assert_eq!(
            NetKey::of(ip("2001:db8:1:2::1")),
            NetKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            NetKey::of(ip("2001:db8:1:2::1")),
            NetKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            NetKey::of(ip("::ffff:10.0.0.1")),
            NetKey::of(ip("10.0.0.1"))
        );
        assert_ne!(NetKey::of(ip("10.0.0.1")), NetKey::of(ip("10.0.0.2")));
        assert_ne!(NetKey::of(ip("::")), NetKey::of(ip("0.0.0.0")));
    }

    #[test]
    fn failures_slow_a_network_exponentially_and_serialise_it() {
        let t = AuthThrottle::new();
        let base = Duration::from_secs(1);
        let now = Instant::now();
        let a = ip("192.0.2.50");
        let first = t.admit(a, "example", 0, base, now);
        assert_eq!(first.wait, Duration::ZERO);
        assert!(!first.refused);
        let mut waits = Vec::new();
        for _ in 0..5 {
            t.failed(a, "example", now);
            // Each attempt is admitted at the same instant, as parallel guesses are: each
            // queues behind the one before.
            waits.push(t.admit(a, "example", 0, base, now).wait);
        }
        assert_eq!(
            waits,
            [1, 3, 7, 15, 30].map(Duration::from_secs),
            "1 s, then doubling up to the cap, one after another"
        );
        // Another network is not slowed by this one's failures for its own user.
        assert_eq!(
            t.admit(ip("192.0.2.51"), "other", 0, base, now).wait,
            Duration::ZERO
        );
        // The cap.
        let s = Duration::from_secs(1);
        assert_eq!(backoff(0, s, MAX_NET_DELAY), Duration::ZERO);
        assert_eq!(backoff(3, s, MAX_NET_DELAY), Duration::from_secs(4));
        assert_eq!(backoff(7, s, MAX_NET_DELAY), MAX_NET_DELAY);
        assert_eq!(backoff(u32::MAX, s, MAX_NET_DELAY), MAX_NET_DELAY);
        // Failures older than the window are forgotten (and the queue has long drained).
        let later = now + FAILURE_WINDOW + Duration::from_secs(120);
        assert_eq!(t.admit(a, "example", 0, base, later).wait, Duration::ZERO);
    }

    #[test]
    fn a_network_is_refused_after_max_failures_but_the_user_is_not() {
        let t = AuthThrottle::new();
        let base = Duration::ZERO;
        let now = Instant::now();
        let bad = ip("192.0.2.50");
        for _ in 0..3 {
            assert!(!t.admit(bad, "example", 3, base, now).refused);
            t.failed(bad, "example", now);
        }
        assert!(t.admit(bad, "example", 3, base, now).refused);
        // The real user, from a network it used before, is neither refused nor slowed.
        t.succeeded(ip("198.51.100.7"), "example", now);
        for _ in 0..100 {
            t.failed(ip("203.0.113.1"), "example", now);
        }
        assert_eq!(
            t.admit(ip("198.51.100.7"), "example", 3, base, now).wait,
            Duration::ZERO
        );
        // A network the user never used waits (guessing across networks is slowed), but is
        // never refused for the user's sake.
        let t = AuthThrottle::new();
        let base = Duration::from_secs(1);
        for i in 0..100u8 {
            t.failed(ip(&format!("203.0.113.{i}")), "example", now);
        }
        let new = t.admit(ip("198.51.100.99"), "example", 3, base, now);
        assert!(!new.refused);
        assert!(
            new.wait > Duration::ZERO && new.wait <= MAX_USER_DELAY,
            "{new:?}"
        );
        // Success forgives the network's own failures.
        t.failed(ip("198.51.100.99"), "example", now);
        t.succeeded(ip("198.51.100.99"), "example", now);
        assert_eq!(
            t.admit(ip("198.51.100.99"), "example", 3, base, now).wait,
            Duration::ZERO
        );
    }

    #[test]
    fn error_replies_are_spaced_per_network() {
        let t = ErrorTarpit::new();
        let now = Instant::now();
        let waits: Vec<Duration> = (0..4).map(|_| t.reserve(ip("192.0.2.9"), 5, now)).collect();
        assert_eq!(waits, [200, 400, 600, 800].map(Duration::from_millis));
        assert_eq!(
            t.reserve(ip("192.0.2.10"), 5, now),
            Duration::from_millis(200)
        );
        // Later, the pace restarts from then.
        assert_eq!(
            t.reserve(ip("192.0.2.9"), 5, now + Duration::from_secs(5)),
            Duration::from_millis(200)
        );
        assert_eq!(t.reserve(ip("192.0.2.9"), 0, now), Duration::ZERO);
    }

    #[test]
    fn state_stays_bounded() {
        let t = ErrorTarpit::new();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            t.reserve(IpAddr::V4(i.into()), 1, now);
        }
        assert!(t.next.lock().unwrap().len() <= MAX_TRACKED);
    }
}
