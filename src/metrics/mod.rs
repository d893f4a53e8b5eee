//! The counters `[metrics] listen` serves (names documented in mailtool.toml(5), a contract
//! with dashboards and alerts). One process-wide set, so the SMTP and POP3 servers, delivery
//! and the map lookups count without being handed a handle; gauges are read at scrape time.

pub mod exposition;
pub mod http;
pub mod process;

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    pub service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    pub stage: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub mailer: &'static str,
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MapLabel {
    pub map: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: &'static str,
}

/// Every metric of the process.
pub struct Metrics {
    pub smtp_connections: Family<ServiceLabel, Counter>,
    pub smtp_accepted: Family<ServiceLabel, Counter>,
    pub smtp_rejections: Family<RejectionLabels, Counter>,
    pub smtp_sessions: Gauge,
    pub queue_messages: Gauge,
    pub queue_oldest: Gauge,
    pub delivery: Family<DeliveryLabels, Counter>,
    pub delivery_seconds: Histogram,
    pub pop3_logins: Family<ResultLabel, Counter>,
    pub map_lookup_errors: Family<MapLabel, Counter>,
    pub backend_up: Family<BackendLabel, Gauge>,
    pub tls_handshakes: Family<ResultLabel, Counter>,
    pub ratelimit_refusals: Family<LimitLabel, Counter>,
}

/// Delivery times from a tenth of a second (a local mailbox) to a day in the queue.
const DELIVERY_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0,
];

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics::empty();
        // The series a dashboard plots from the start are there at 0 before the first event,
        // so rate() and alerts see them (a family shows only the label sets it has).
        for service in ["smtp", "submission", "smtps"] {
            let l = ServiceLabel { service };
            drop(m.smtp_connections.get_or_create(&l));
            drop(m.smtp_accepted.get_or_create(&l));
        }
        for result in ["ok", "failed"] {
            let l = ResultLabel { result };
            drop(m.tls_handshakes.get_or_create(&l));
            drop(m.pop3_logins.get_or_create(&l));
        }
        for limit in [
            "connection_rate",
            "message_rate",
            "recipient_rate",
            "user_daily",
        ] {
            drop(m.ratelimit_refusals.get_or_create(&LimitLabel { limit }));
        }
        m
    }

    fn empty() -> Metrics {
        Metrics {
            smtp_connections: Family::default(),
            smtp_accepted: Family::default(),
            smtp_rejections: Family::default(),
            smtp_sessions: Gauge::default(),
            queue_messages: Gauge::default(),
            queue_oldest: Gauge::default(),
            delivery: Family::default(),
            delivery_seconds: Histogram::new(DELIVERY_BUCKETS),
            pop3_logins: Family::default(),
            map_lookup_errors: Family::default(),
            backend_up: Family::default(),
            tls_handshakes: Family::default(),
            ratelimit_refusals: Family::default(),
        }
    }

    /// A registry over these metrics and the process collector. prometheus-client adds the
    /// `_total` of counters itself, so counters are registered without it.
    pub fn registry(&'static self) -> Registry {
        let mut r = Registry::default();
        r.register(
            "mailtool_smtp_connections",
            "SMTP connections accepted, by service (smtp, submission, smtps)",
            self.smtp_connections.clone(),
        );
        r.register(
            "mailtool_smtp_messages_accepted",
            "Messages answered 250 at the end of DATA, by service",
            self.smtp_accepted.clone(),
        );
        r.register(
            "mailtool_smtp_rejections",
            "SMTP replies 4xx and 5xx, by the stage of the session and the reply code",
            self.smtp_rejections.clone(),
        );
        r.register(
            "mailtool_smtp_sessions",
            "SMTP sessions open now",
            self.smtp_sessions.clone(),
        );
        r.register(
            "mailtool_queue_messages",
            "Messages in the queue",
            self.queue_messages.clone(),
        );
        r.register(
            "mailtool_queue_oldest_seconds",
            "Age of the oldest message in the queue, in seconds (0 when it is empty)",
            self.queue_oldest.clone(),
        );
        r.register(
            "mailtool_delivery",
            "Delivery attempts per recipient, by mailer and status (sent, deferred, bounced)",
            self.delivery.clone(),
        );
        r.register(
            "mailtool_delivery_seconds",
            "Time from queueing to final delivery (sent or bounced), in seconds",
            self.delivery_seconds.clone(),
        );
        r.register(
            "mailtool_pop3_logins",
            "POP3 logins (USER/PASS, APOP), by result (ok, failed, refused, tempfail)",
            self.pop3_logins.clone(),
        );
        r.register(
            "mailtool_map_lookup_errors",
            "Map lookups that failed (the answer was 451), by map",
            self.map_lookup_errors.clone(),
        );
        r.register(
            "mailtool_backend_up",
            "1 while the backend answers, 0 while it cannot be reached",
            self.backend_up.clone(),
        );
        r.register(
            "mailtool_tls_handshakes",
            "TLS handshakes (STARTTLS, STLS, implicit TLS), by result (ok, failed)",
            self.tls_handshakes.clone(),
        );
        r.register(
            "mailtool_ratelimit_refusals",
            "Connections, messages and recipients refused by [limits], by limit",
            self.ratelimit_refusals.clone(),
        );
        r.register_collector(Box::new(process::ProcessCollector));
        r
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

// Label values on the hot paths are static strings: counting allocates nothing.

pub fn smtp_connection(service: &'static str) {
    get()
        .smtp_connections
        .get_or_create(&ServiceLabel { service })
        .inc();
}

pub fn smtp_accepted(service: &'static str) {
    get()
        .smtp_accepted
        .get_or_create(&ServiceLabel { service })
        .inc();
}

pub fn smtp_rejection(stage: &'static str, code: u16) {
    get()
        .smtp_rejections
        .get_or_create(&RejectionLabels { stage, code })
        .inc();
}

pub fn delivery(mailer: &'static str, status: &'static str) {
    get()
        .delivery
        .get_or_create(&DeliveryLabels { mailer, status })
        .inc();
}

pub fn delivery_time(seconds: f64) {
    get().delivery_seconds.observe(seconds.max(0.0));
}

/// `result`: ok, failed (a wrong password or user), refused (too many failures from the
/// address) or tempfail (the users map could not be read).
pub fn pop3_login(result: &'static str) {
    get()
        .pop3_logins
        .get_or_create(&ResultLabel { result })
        .inc();
}

pub fn map_lookup_error(map: &str) {
    get()
        .map_lookup_errors
        .get_or_create(&MapLabel {
            map: map.to_string(),
        })
        .inc();
}

pub fn tls_handshake(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    get()
        .tls_handshakes
        .get_or_create(&ResultLabel { result })
        .inc();
}

pub fn ratelimit_refusal(limit: &'static str) {
    get()
        .ratelimit_refusals
        .get_or_create(&LimitLabel { limit })
        .inc();
}

pub fn backend_up(name: &str, up: bool) {
    get()
        .backend_up
        .get_or_create(&BackendLabel {
            backend: name.to_string(),
        })
        .set(i64::from(up));
}
