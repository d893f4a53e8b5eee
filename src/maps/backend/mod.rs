//! Maps in a shared store: the `[backends.NAME]` tables of mailtool.toml, in PostgreSQL or
//! Redis, so that several `serve` hosts share their maps, users and POP-before-SMTP state.
//!
//! The map seam is synchronous ([`super::Map`]), and the policy code that uses it stays pure.
//! Each backend therefore runs its network I/O on a thread of its own, with a small tokio
//! runtime, and a caller waits for the answer on a channel. A caller on a server's runtime
//! thread waits inside `block_in_place`, so the runtime moves its other tasks elsewhere and no
//! worker thread of the server ever sits on the network.
//!
//! A backend that is down, or slower than its `timeout`, makes the lookup fail: the error is
//! never "not found", so access_db's `-T<TMPF>` answers 451 and no relay opens. Reconnects
//! back off from 100 ms to 5 s, and one line is logged when an outage starts and one when it
//! ends, not one per lookup.

mod postgres;
mod redis;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{self, BackendKind, Config};

/// Why a backend could not answer. Shown to operators; the SMTP reply is 451 4.3.0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Down, slow past the timeout, or the connection broke: a temporary failure.
    #[error("backend {backend}: {message}")]
    Unavailable { backend: String, message: String },
    /// The store answered with an error about this table (wrong columns, bad data).
    #[error("backend {backend}, table {table}: {message}")]
    Table {
        backend: String,
        table: String,
        message: String,
    },
}

/// How [`Backend::put`] treats a key that is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Replace the value.
    Replace,
    /// Keep the old value; the answer says whether the key was new.
    IfAbsent,
    /// Replace the value, and let the store drop the key after this long (Redis); a store
    /// without expiry keeps it, and the reader judges the time stamp in the value.
    Expiring(Duration),
}

/// One record of a table, with the time the store will keep it (Redis expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub expires_in: Option<Duration>,
}

/// What doctor and the start-up check learn about one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCheck {
    /// The round trip of the check.
    pub rtt: Duration,
    /// `None`: the table does not exist (an empty map).
    pub present: Option<Result<(), String>>,
}

pub(crate) enum Op {
    Get(Vec<Vec<u8>>),
    Put(Vec<u8>, Vec<u8>, Put),
    Delete(Vec<u8>),
    Iterate,
    ReplaceAll(Vec<(Vec<u8>, Vec<u8>)>),
    Check,
    /// One hit in a sliding window (Redis only): counted, and `Done(true)`, unless `max`
    /// hits already fall within the last `window_ms` before `now_ms`.
    RateHit {
        window_ms: u64,
        max: u32,
        now_ms: u64,
        member: String,
    },
}

pub(crate) enum Answer {
    Values(Vec<Option<Vec<u8>>>),
    Done(bool),
    Rows(Vec<Row>),
    Count(usize),
    Check(Option<Result<(), String>>),
}

/// An error from a store's client: whether it means the connection is gone (reconnect, and
/// the lookup is a temporary failure) or is about the table.
pub(crate) enum StoreFailure {
    Connection(String),
    Table(String),
}

struct Job {
    table: String,
    op: Op,
    reply: std::sync::mpsc::SyncSender<Result<Answer, BackendError>>,
}

/// A handle to one configured backend. Cheap to share; the worker thread ends when the last
/// handle is dropped.
pub struct Backend {
    name: String,
    kind: BackendKind,
    timeout: Duration,
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

/// Connection health, shared by the worker's tasks: the outage log lines and the backoff.
struct Health {
    down_since: Option<Instant>,
    next_try: Instant,
    backoff: Duration,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) struct Gate {
    name: String,
    health: Mutex<Health>,
}

impl Gate {
    fn new(name: &str) -> Gate {
        Gate {
            name: name.to_string(),
            health: Mutex::new(Health {
                down_since: None,
                next_try: Instant::now(),
                backoff: MIN_BACKOFF,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a connection attempt may be made now (not inside a backoff interval).
    pub(crate) fn may_connect(&self) -> bool {
        let h = self.lock();
        h.down_since.is_none() || Instant::now() >= h.next_try
    }

    pub(crate) fn failed(&self, why: &str) {
        let mut h = self.lock();
        let now = Instant::now();
        if h.down_since.is_none() {
            tracing::error!("backend {}: unavailable: {why}", self.name);
            h.down_since = Some(now);
            h.backoff = MIN_BACKOFF;
        } else {
            h.backoff = (h.backoff * 2).min(MAX_BACKOFF);
        }
        h.next_try = now + h.backoff;
    }

    pub(crate) fn succeeded(&self) {
        let mut h = self.lock();
        if let Some(since) = h.down_since.take() {
            tracing::info!(
                "backend {}: available again after {}",
                self.name,
                crate::duration::describe(since.elapsed())
            );
        }
        h.backoff = MIN_BACKOFF;
    }
}

/// The client side of one store, run on the backend's own runtime.
pub(crate) trait Store: Send + Sync + 'static {
    fn exec(
        &self,
        table: &str,
        op: Op,
    ) -> impl std::future::Future<Output = Result<Answer, StoreFailure>> + Send;
}

impl Backend {
    /// Starts the worker for `[backends.name]`. Nothing connects until the first request, so
    /// a backend that is down at start delays nothing.
    pub fn start(name: &str, conf: &config::Backend, password: Option<String>) -> Arc<Backend> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let timeout = conf.timeout.0;
        let gate = Arc::new(Gate::new(name));
        match conf.kind {
            BackendKind::Postgresql => {
                let store = postgres::Pg::new(conf, password, gate.clone());
                spawn_worker(name, store, rx, timeout);
            }
            BackendKind::Redis => {
                let store = redis::Rd::new(conf, password, gate.clone());
                spawn_worker(name, store, rx, timeout);
            }
        }
        Arc::new(Backend {
            name: name.to_string(),
            kind: conf.kind,
            timeout,
            tx,
            gate,
        })
    }

    /// False while the last request failed to reach the store (`mailtool_backend_up`).
    pub fn is_up(&self) -> bool {
        self.gate.lock().down_since.is_none()
    }

    /// One hit on the sliding-window counter `key` of `table` (Redis): true if it was
    /// counted, false if `max` hits already fell within the last `window`.
    pub fn rate_hit(
        &self,
        table: &str,
        key: &[u8],
        window: Duration,
        max: u32,
        now_ms: u64,
    ) -> Result<bool, BackendError> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Unique across hosts and processes, so two hits in one millisecond are two members.
        let member = format!(
            "{now_ms}-{}-{}-{seq}",
            crate::sys::host::hostname().unwrap_or_default(),
            std::process::id()
        );
        let table = format!("{table}:{}", String::from_utf8_lossy(key));
        match self.call(
            &table,
            Op::RateHit {
                window_ms: window.as_millis() as u64,
                max,
                now_ms,
                member,
            },
        )? {
            Answer::Done(b) => Ok(b),
            _ => Err(self.unavailable("unexpected answer")),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    fn unavailable(&self, message: impl Into<String>) -> BackendError {
        BackendError::Unavailable {
            backend: self.name.clone(),
            message: message.into(),
        }
    }

    fn call(&self, table: &str, op: Op) -> Result<Answer, BackendError> {
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        self.tx
            .send(Job {
                table: table.to_string(),
                op,
                reply,
            })
            .map_err(|_| self.unavailable("its worker has stopped"))?;
        // The worker answers within the timeout; the margin covers a worker that is itself
        // stuck, which must still not hang a session.
        let wait = self.timeout + Duration::from_millis(500);
        match wait_outside_runtime(|| rx.recv_timeout(wait)) {
            Ok(answer) => answer,
            Err(_) => Err(self.unavailable(format!(
                "no answer within {}",
                crate::duration::describe(self.timeout)
            ))),
        }
    }

    /// The values of `keys`, `None` where absent: one round trip.
    pub fn get_many(
        &self,
        table: &str,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let keys = keys.iter().map(|k| k.to_vec()).collect();
        match self.call(table, Op::Get(keys))? {
            Answer::Values(v) => Ok(v),
            _ => Err(self.unavailable("unexpected answer")),
        }
    }

    /// Stores one record; the answer is whether the key was new (meaningful for
    /// [`Put::IfAbsent`]). Creates the table when absent.
    pub fn put(
        &self,
        table: &str,
        key: &[u8],
        value: &[u8],
        how: Put,
    ) -> Result<bool, BackendError> {
        match self.call(table, Op::Put(key.to_vec(), value.to_vec(), how))? {
            Answer::Done(b) => Ok(b),
            _ => Err(self.unavailable("unexpected answer")),
        }
    }

    /// Removes one key; the answer is whether it was there.
    pub fn delete(&self, table: &str, key: &[u8]) -> Result<bool, BackendError> {
        match self.call(table, Op::Delete(key.to_vec()))? {
            Answer::Done(b) => Ok(b),
            _ => Err(self.unavailable("unexpected answer")),
        }
    }

    /// Every record, in key order. An absent table has none.
    pub fn iterate(&self, table: &str) -> Result<Vec<Row>, BackendError> {
        match self.call(table, Op::Iterate)? {
            Answer::Rows(mut rows) => {
                rows.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(rows)
            }
            _ => Err(self.unavailable("unexpected answer")),
        }
    }

    /// Replaces the whole table in one transaction: every reader sees the old map or the new
    /// one. Creates the table when absent. Returns the number of records written.
    pub fn replace_all(
        &self,
        table: &str,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<usize, BackendError> {
        match self.call(table, Op::ReplaceAll(entries))? {
            Answer::Count(n) => Ok(n),
            _ => Err(self.unavailable("unexpected answer")),
        }
    }

    /// Reachability, the round trip, and whether `table` exists with the right shape.
    pub fn check(&self, table: &str) -> Result<TableCheck, BackendError> {
        let t0 = Instant::now();
        match self.call(table, Op::Check)? {
            Answer::Check(present) => Ok(TableCheck {
                rtt: t0.elapsed(),
                present,
            }),
            _ => Err(self.unavailable("unexpected answer")),
        }
    }
}

/// Runs a blocking wait. On a thread of a multi-threaded tokio runtime the wait happens inside
/// `block_in_place`, so the runtime's other tasks move to another worker meanwhile.
fn wait_outside_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn spawn_worker<S: Store>(
    name: &str,
    store: S,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Job>,
    timeout: Duration,
) {
    let name = name.to_string();
    let thread_name = format!("backend-{name}");
    let spawned = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("backend {name}: cannot start its runtime: {e}");
                    return;
                }
            };
            let store = Arc::new(store);
            rt.block_on(async move {
                while let Some(job) = rx.recv().await {
                    let store = store.clone();
                    let name = name.clone();
                    tokio::spawn(async move {
                        let r = tokio::time::timeout(timeout, store.exec(&job.table, job.op)).await;
                        let answer = match r {
                            Ok(Ok(a)) => Ok(a),
                            Ok(Err(StoreFailure::Connection(m))) => {
                                Err(BackendError::Unavailable {
                                    backend: name,
                                    message: m,
                                })
                            }
                            Ok(Err(StoreFailure::Table(m))) => Err(BackendError::Table {
                                backend: name,
                                table: job.table.clone(),
                                message: m,
                            }),
                            Err(_) => Err(BackendError::Unavailable {
                                backend: name,
                                message: format!(
                                    "no answer within {}",
                                    crate::duration::describe(timeout)
                                ),
                            }),
                        };
                        let _ = job.reply.send(answer);
                    });
                }
            });
        });
    if let Err(e) = spawned {
        tracing::error!("backend: cannot start its thread: {e}");
    }
}

/// The backends of one configuration, started on first use.
#[derive(Debug, Default)]
pub struct Backends {
    started: Mutex<BTreeMap<String, Arc<Backend>>>,
    conf: BTreeMap<String, (config::Backend, Option<std::path::PathBuf>)>,
}

impl Backends {
    pub fn new(cfg: &Config) -> Backends {
        let conf = cfg
            .settings
            .backends
            .iter()
            .map(|(name, b)| {
                let pw = (!b.password_file.is_empty()).then(|| cfg.path(&b.password_file));
                (name.clone(), (b.clone(), pw))
            })
            .collect();
        Backends {
            started: Mutex::new(BTreeMap::new()),
            conf,
        }
    }

    /// The handle for `[backends.name]`, starting its worker the first time. The password file
    /// is read then; a missing or unreadable one is an error that names it.
    pub fn get(&self, name: &str) -> Result<Arc<Backend>, BackendError> {
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = started.get(name) {
            return Ok(b.clone());
        }
        let Some((conf, pw_file)) = self.conf.get(name) else {
            return Err(BackendError::Unavailable {
                backend: name.to_string(),
                message: "not configured".into(),
            });
        };
        let password = match pw_file {
            None => None,
            Some(p) => Some(
                read_password(p).map_err(|message| BackendError::Unavailable {
                    backend: name.to_string(),
                    message,
                })?,
            ),
        };
        let b = Backend::start(name, conf, password);
        started.insert(name.to_string(), b.clone());
        Ok(b)
    }

    /// The names of the configured backends.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.conf.keys().map(String::as_str)
    }
}

/// Password files read while the process could (before `serve` leaves root).
static PRELOADED: std::sync::OnceLock<BTreeMap<std::path::PathBuf, String>> =
    std::sync::OnceLock::new();

/// Reads every backend's password file now, for [`Backends::get`] to use later.
pub fn preload_passwords(cfg: &Config) {
    let files: BTreeMap<std::path::PathBuf, String> = cfg
        .settings
        .backends
        .values()
        .filter(|b| !b.password_file.is_empty())
        .filter_map(|b| {
            let p = cfg.path(&b.password_file);
            read_password(&p).ok().map(|pw| (p, pw))
        })
        .collect();
    let _ = PRELOADED.set(files);
}

/// The first line of the password file, without its line end.
fn read_password(path: &std::path::Path) -> Result<String, String> {
    if let Some(pw) = PRELOADED.get().and_then(|m| m.get(path)) {
        return Ok(pw.clone());
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "password_file {}: {}",
            path.display(),
            crate::util::io_message(&e)
        )
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Keys and values PostgreSQL's `text` can hold: UTF-8 without NUL.
pub fn text_ok(b: &[u8]) -> bool {
    std::str::from_utf8(b).is_ok_and(|s| !s.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_is_logged_once_and_backs_off() {
        let g = Gate::new("t");
        assert!(g.may_connect());
        g.failed("refused");
        assert!(!g.may_connect(), "inside the first backoff");
        let first = g.lock().backoff;
        g.failed("refused");
        assert_eq!(g.lock().backoff, first * 2);
        for _ in 0..20 {
            g.failed("refused");
        }
        assert_eq!(g.lock().backoff, MAX_BACKOFF);
        g.succeeded();
        assert!(g.may_connect());
        assert!(g.lock().down_since.is_none());
        assert_eq!(g.lock().backoff, MIN_BACKOFF);
    }

    #[test]
    fn text_columns_take_utf8_without_nul() {
        assert!(text_ok(b"a@b"));
        assert!(text_ok("ü".as_bytes()));
        assert!(!text_ok(b"\xff"));
        assert!(!text_ok(b"a\0b"));
    }

    #[test]
    fn a_dead_backend_fails_lookups_within_its_timeout() {
        // Port 9 on loopback: nothing listens, the connection is refused at once.
        let conf = config::Backend {
            kind: BackendKind::Redis,
            url: "redis://127.0.0.1:9/0".into(),
            password_file: String::new(),
            timeout: crate::duration::Span(Duration::from_millis(300)),
            pool: 1,
        };
        let b = Backend::start("dead", &conf, None);
        let t0 = Instant::now();
        let r = b.get_many("access", &[b"k"]);
        assert!(matches!(r, Err(BackendError::Unavailable { .. })), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(2));
        // Inside the backoff the next lookup fails at once, without a connection attempt.
        let t1 = Instant::now();
        assert!(b.get_many("access", &[b"k"]).is_err());
        assert!(t1.elapsed() < Duration::from_millis(250));
    }
}
