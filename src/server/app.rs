//! The application context of `serve`: one configuration, one [`Policy`] (with its maps),
//! the spool, DNS, TLS, the connection counters, the stop signal and the queue. The SMTP and
//! POP3 servers and delivery all work through it, and SIGHUP rebuilds it in one place
//! ([`App::reload`]).

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock, RwLock};

use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;

use super::listen::{Family, Limits};
use super::throttle::{Admission, AuthThrottle, ErrorTarpit};
use crate::config::Config;
use crate::dns::Dns;
use crate::policy::Policy;
use crate::queue::Spool;
use crate::queue::attempt::Engine;
use crate::queue::runner::Runner;

pub struct App {
    config: RwLock<Arc<Config>>,
    /// The one policy: SMTP decisions at RCPT time and routing at delivery read the same maps.
    pub policy: Arc<Policy>,
    pub spool: Arc<Spool>,
    /// One resolver for the SMTP server and the queue.
    pub dns: Dns,
    pub tls: Option<TlsAcceptor>,
    /// The delivery engine (the queue runner's, sharing this policy and resolver).
    pub engine: Arc<Engine>,
    /// The queue runner, told about each accepted message (set once at start).
    pub queue: OnceLock<Runner>,
    smtp: Limits,
    pop3: Limits,
    /// Password guessing (POP3 and SMTP AUTH share it) and the SMTP error tarpit.
    pub auth: AuthThrottle,
    pub tarpit: ErrorTarpit,
    /// `[limits]`: connection, message, recipient and per-user rates.
    pub rates: super::ratelimit::RateLimiter,
    /// Connections open on every service (shutdown waits for 0), and the wake-up when it is.
    pub(super) open: AtomicUsize,
    pub idle: Notify,
    /// Set to true on SIGTERM: listeners stop, idle sessions are closed.
    pub stop: watch::Sender<bool>,
}

impl App {
    pub fn new(
        config: Config,
        spool: Arc<Spool>,
        dns: Dns,
        tls: Option<TlsAcceptor>,
        stage: Arc<crate::stage::Stage>,
    ) -> Result<App, crate::tls::TlsError> {
        let policy = Arc::new(Policy::new(&config));
        let engine = Arc::new(Engine::new(
            config.clone(),
            spool.clone(),
            dns.clone(),
            policy.clone(),
            stage,
        )?);
        Ok(App {
            config: RwLock::new(Arc::new(config)),
            policy,
            spool,
            dns,
            tls,
            engine,
            queue: OnceLock::new(),
            smtp: Limits::default(),
            pop3: Limits::default(),
            auth: AuthThrottle::new(),
            tarpit: ErrorTarpit::new(),
            rates: super::ratelimit::RateLimiter::new(),
            open: AtomicUsize::new(0),
            idle: Notify::new(),
            stop: watch::channel(false).0,
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The counters of one service family.
    pub fn limits(&self, family: Family) -> &Limits {
        match family {
            Family::Smtp => &self.smtp,
            Family::Pop3 => &self.pop3,
        }
    }

    /// Whether `ip` is this host (127.0.0.1, ::1) or a localip client: the site's own, never
    /// slowed down for someone else's misdeeds.
    pub fn is_site(&self, ip: std::net::IpAddr) -> bool {
        super::listen::is_this_host(ip) || self.policy.is_localip(ip)
    }

    /// The password throttle's decision for one attempt, POP3 and SMTP AUTH alike: this host
    /// and localip clients (a webmail, the office) are never slowed or refused for someone
    /// else's guessing; other networks wait their turn ([`super::throttle`]).
    pub fn auth_admission(&self, ip: std::net::IpAddr, user: &str) -> Admission {
        if self.is_site(ip) {
            return Admission {
                wait: std::time::Duration::ZERO,
                refused: false,
            };
        }
        let cfg = self.config();
        let p = &cfg.settings.pop3;
        self.auth.admit(
            ip,
            user,
            p.max_auth_failures,
            p.auth_failure_delay.0,
            std::time::Instant::now(),
        )
    }

    /// `normal`, or the service's `stress_timeout` if that is shorter and the service is past
    /// its `stress_threshold` (Postfix's `${stress?…}`).
    pub fn timeout_now(&self, family: Family, normal: std::time::Duration) -> std::time::Duration {
        let cfg = self.config();
        let (max, threshold, stress) = match family {
            Family::Smtp => {
                let s = &cfg.settings.smtp;
                (s.max_connections, s.stress_threshold, s.stress_timeout.0)
            }
            Family::Pop3 => {
                let p = &cfg.settings.pop3;
                (p.max_connections, p.stress_threshold, p.stress_timeout.0)
            }
        };
        if self.limits(family).stressed(max, threshold) {
            normal.min(stress.max(std::time::Duration::from_secs(1)))
        } else {
            normal
        }
    }

    /// One hit against a `[limits]` rate; false (and counted in the metrics) when over it.
    /// Exempt clients (`exempt = "local"`: this host, localip, relay-domains) always pass.
    pub fn rate_ok(
        &self,
        limit: super::ratelimit::Limit,
        subject: &super::ratelimit::Subject,
        client: Option<&crate::policy::Client>,
    ) -> bool {
        use super::ratelimit::Limit;
        let cfg = self.config();
        let l = &cfg.settings.limits;
        let max = match limit {
            Limit::Connection => l.connection_rate,
            Limit::Message => l.message_rate,
            Limit::Recipient => l.recipient_rate,
            Limit::UserDaily => l.user_daily,
        };
        if max == 0 {
            return true;
        }
        if l.exempt == crate::config::LimitExempt::Local
            && limit != Limit::UserDaily
            && client.is_some_and(|c| self.is_site(c.ip) || self.policy.is_relay_domains_client(c))
        {
            return true;
        }
        let backend = if l.backend.is_empty() {
            None
        } else {
            self.policy.backends.get(&l.backend).ok()
        };
        let ok = self.rates.hit(
            limit,
            subject,
            max,
            super::ratelimit::now_ms(),
            backend.as_deref(),
        );
        if !ok {
            crate::metrics::ratelimit_refusal(limit.name());
        }
        ok
    }

    /// Connections open on every service.
    pub fn open_connections(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// SIGHUP: the new configuration, class files and `[dns] servers` apply to new connections
    /// and the next deliveries. A resolver that cannot be built keeps the old one.
    pub fn reload(&self, cfg: Config) {
        let d = &cfg.settings.dns;
        if let Err(e) = self.dns.reload(&d.servers, d.timeout.0) {
            tracing::error!("SIGHUP: keeping the old DNS resolver: {e}");
        }
        self.policy.reload(&cfg);
        self.engine.reload(cfg.clone());
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg);
    }
}
