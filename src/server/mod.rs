//! `mailtool serve`: bind, drop privileges, start the runtime, run the listeners, handle
//! signals. Only this module and `cli` know about processes and signals.
//!
//! Order matters for safety: sockets are bound while still root (ports 25/587/465), then the
//! process becomes the configured user before any thread or runtime exists, so no session is
//! ever served as root.

pub mod account;
pub mod activation;
pub mod app;
pub mod deadline;
pub mod listen;
pub mod preflight;
pub mod privileges;
pub mod ratelimit;
pub mod setup;
pub mod throttle;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, Locate};
use crate::dns::Dns;
use crate::queue::Spool;
use crate::queue::runner::Runner;
use crate::smtp::server::{self, Kind};
use app::App;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr} ({kind}): {message}")]
    Bind {
        addr: SocketAddr,
        kind: &'static str,
        message: String,
    },
    #[error("{0}")]
    Privileges(#[from] privileges::PrivError),
    #[error("{0}")]
    Account(#[from] account::AccountError),
    #[error("{0}")]
    Tls(String),
    #[error("spool {path}: {message}")]
    Spool { path: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("DNS: {0}")]
    Dns(String),
    #[error("{0}")]
    Runtime(String),
    #[error("socket activation: {0}")]
    Activation(String),
    #[error("{0}")]
    Backend(String),
    #[error("{0}")]
    Dkim(#[from] crate::stage::keys::KeyError),
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Stay in the foreground and log to stderr (the default; there is no fork).
    pub pid_file: Option<PathBuf>,
}

/// What a bound socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Smtp(Kind),
    /// POP3; `true` for POP3S (implicit TLS).
    Pop3(bool),
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Smtp(k) => k.name(),
            Service::Pop3(false) => "POP3",
            Service::Pop3(true) => "POP3S",
        }
    }
}

struct Bound {
    addr: SocketAddr,
    kind: Service,
    listener: std::net::TcpListener,
}

fn bind_all(cfg: &Config) -> Result<Vec<Bound>, ServeError> {
    let s = &cfg.settings.smtp;
    let mut out = Vec::new();
    let p = &cfg.settings.pop3;
    let groups: [(&[SocketAddr], Service); 5] = [
        (&s.listen, Service::Smtp(Kind::Smtp)),
        (&s.submission, Service::Smtp(Kind::Submission)),
        (&s.smtps, Service::Smtp(Kind::Smtps)),
        (&p.listen, Service::Pop3(false)),
        (&p.pop3s, Service::Pop3(true)),
    ];
    for (addrs, kind) in groups {
        for &addr in addrs {
            let l = std::net::TcpListener::bind(addr).map_err(|e| ServeError::Bind {
                addr,
                kind: kind.name(),
                message: crate::util::io_message(&e),
            })?;
            l.set_nonblocking(true).map_err(|e| ServeError::Bind {
                addr,
                kind: kind.name(),
                message: e.to_string(),
            })?;
            let addr = l.local_addr().unwrap_or(addr);
            out.push(Bound {
                addr,
                kind,
                listener: l,
            });
        }
    }
    Ok(out)
}

/// Creates the directories a fresh (non-root default) root needs, so that a newcomer's first
/// `mailtool serve` simply works.
/// Creates the directories the server needs; returns the ones that did not exist before.
fn prepare_dirs(cfg: &Config) -> Result<Vec<PathBuf>, ServeError> {
    let p = &cfg.settings.paths;
    let mut created = Vec::new();
    for d in [&p.mail_dir, &p.spool, &p.mailboxes] {
        let path = cfg.path(d);
        if !path.exists() {
            created.push(path.clone());
        }
        let io = |e: std::io::Error| ServeError::Io {
            path: path.display().to_string(),
            message: crate::util::io_message(&e),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Queued mail is private: the spool is 0700 from the start (parents stay 0755).
        let mode = if d == &p.spool { 0o700 } else { 0o755 };
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(mode).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(created)
}

/// A mailbox directory we just created gets the /var/mail convention (root-owned, setgid,
/// group-writable) with the server's group, so local delivery can create mailboxes after the
/// privilege drop. An existing one is left alone: doctor reports it if it is unusable.
fn share_mailboxes(path: &Path, id: &privileges::Identity) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::os::unix::fs::chown(path, Some(0), Some(id.gid));
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2775));
}

fn chown_tree(path: &Path, id: &privileges::Identity) {
    let _ = std::os::unix::fs::chown(path, Some(id.uid), Some(id.gid));
}

/// The configured user and group; as root on a fresh machine, the default `mailtool` account is
/// created first (what a package's install script would do), in the mailbox directory's group.
fn run_time_identity(cfg: &Config, mailboxes: &Path) -> Result<privileges::Identity, ServeError> {
    let s = &cfg.settings;
    match privileges::lookup(&s.user, &s.group) {
        Ok(id) => Ok(id),
        Err(_) if s.user == account::DEFAULT_ACCOUNT && s.group == account::DEFAULT_ACCOUNT => {
            let extra = account::writing_group(mailboxes).map(privileges::group_name);
            for line in account::ensure(&s.user, &s.group, extra.as_deref(), false)? {
                tracing::info!("{line}");
            }
            Ok(privileges::lookup(&s.user, &s.group)?)
        }
        Err(e) => Err(e.into()),
    }
}

use crate::sys::process::raise_fd_limit;

/// Runs the server until SIGTERM/SIGINT. Returns after in-flight sessions finished (or the
/// grace period ran out).
pub fn run(locate: &Locate, opts: &ServeOptions) -> Result<(), ServeError> {
    let cfg = Config::load(locate)?;
    crate::logging::init(&cfg.settings, "mailtool");
    raise_fd_limit();
    if locate.root.is_none() && locate.config.is_none() && !crate::config::is_root() {
        tracing::info!("no configuration given: using {}", cfg.root.display());
    }
    let created = prepare_dirs(&cfg)?;
    // Socket activation: the listeners come from systemd and nothing is bound here.
    let (bound, metrics) = match activation::take().map_err(ServeError::Activation)? {
        Some(inherited) => from_inherited(&cfg, inherited)?,
        None => (bind_all(&cfg)?, bind_metrics(&cfg)?),
    };
    let tls = preflight::tls(&cfg).map_err(ServeError::Tls)?;
    let spool_dir = cfg.path(&cfg.settings.paths.spool);
    // Written while still root, as sendmail does; /run is root's.
    let pid_file = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| cfg.path("/run/mailtool.pid"));
    write_pid(&pid_file);
    let mailboxes = cfg.path(&cfg.settings.paths.mailboxes);
    if crate::config::is_root() {
        // Password files are often root's alone: read them before the switch.
        crate::maps::backend::preload_passwords(&cfg);
        let mut id = run_time_identity(&cfg, &mailboxes)?;
        chown_tree(&spool_dir, &id);
        if created.contains(&mailboxes) {
            share_mailboxes(&mailboxes, &id);
        }
        if let Some(line) = account::join_writing_group(&mut id, &mailboxes) {
            tracing::info!("{line}");
        }
        let p3 = &cfg.settings.pop3;
        let pop3_listens = !p3.listen.is_empty() || !p3.pop3s.is_empty();
        if pop3_listens
            && !p3.pop_before_smtp_ttl.0.is_zero()
            && let Ok(crate::config::MapPlace::File(popip)) =
                cfg.map_place(&cfg.settings.maps.popip)
            && let Err(e) = crate::popip::prepare(&popip, (id.uid, id.gid))
        {
            tracing::warn!("popip map {}: {e}", popip.display());
        }
        let client = cfg.path(&cfg.settings.paths.client_spool);
        if let Err(e) = crate::queue::client_spool::prepare_dir(&client, Some((id.uid, id.gid))) {
            tracing::warn!("client spool {}: {e}", client.display());
        }
        privileges::drop_to(&id)?;
        tracing::info!(
            "running as user {} (uid {}, gid {})",
            id.user,
            id.uid,
            id.gid
        );
    }
    // As the run-time user: refuse to start rather than accept mail that cannot be delivered.
    let me = privileges::current_user();
    account::check_writable(&spool_dir, &me)?;
    account::check_writable(&mailboxes, &me)?;
    let spool = Spool::open(&spool_dir).map_err(|e| ServeError::Spool {
        path: spool_dir.display().to_string(),
        message: e.to_string(),
    })?;
    for (file, why) in &spool.recovery_report().removed {
        tracing::warn!("spool recovery: removed {file}: {why}");
    }
    let dns = Dns::new(&cfg.settings.dns.servers, cfg.settings.dns.timeout.0)
        .map_err(|e| ServeError::Dns(e.to_string()))?;
    let mut tables = preflight::Report::default();
    preflight::backend_tables(&cfg, &mut tables);
    if let Some(p) = tables.problems.first() {
        return Err(ServeError::Backend(p.message.clone()));
    }
    for note in &tables.notes {
        tracing::warn!("{note}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mailtool")
        .build()
        .map_err(|e| ServeError::Runtime(e.to_string()))?;
    let pid_file = opts
        .pid_file
        .clone()
        .unwrap_or_else(|| cfg.path("/run/mailtool.pid"));
    runtime.block_on(async_main(
        cfg,
        locate.clone(),
        (bound, metrics),
        spool,
        dns,
        tls,
        pid_file,
    ))
}

async fn async_main(
    cfg: Config,
    locate: Locate,
    (bound, metrics): (Vec<Bound>, Vec<(SocketAddr, std::net::TcpListener)>),
    spool: Spool,
    dns: Dns,
    tls: Option<Arc<rustls::ServerConfig>>,
    pid_file: PathBuf,
) -> Result<(), ServeError> {
    let grace = cfg.settings.smtp.shutdown_grace.0;
    // journald reads stderr too: only syslog is somewhere else.
    let log_elsewhere = cfg.settings.log.target == crate::config::LogTarget::Syslog;
    let json_log = cfg.settings.log.format == crate::config::LogFormat::Json;
    let spool = Arc::new(spool);
    // DKIM keys are read as the server's user: what it cannot read now, it could not on
    // SIGHUP either.
    let stage = Arc::new(crate::stage::Stage::load(&cfg)?);
    let shared = Arc::new(
        App::new(
            cfg,
            spool,
            dns,
            tls.map(tokio_rustls::TlsAcceptor::from),
            stage,
        )
        .map_err(|e| ServeError::Runtime(e.to_string()))?,
    );
    let engine = shared.engine.clone();
    let (queue_stop, queue_stop_rx) = tokio::sync::watch::channel(false);
    // poprelayd's custodian: purge POP-before-SMTP entries older than the TTL, every minute.
    let purge_shared = shared.clone();
    let purger = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            let cfg = purge_shared.config();
            let ttl = cfg.settings.pop3.pop_before_smtp_ttl.0;
            let file = match cfg.map_place(&cfg.settings.maps.popip) {
                Ok(crate::config::MapPlace::File(path)) => Some(path),
                // A backend table is purged here too (Redis also expires its entries itself).
                Ok(crate::config::MapPlace::Backend { .. }) => None,
                Err(_) => continue,
            };
            if ttl.is_zero() || file.is_some_and(|p| !crate::maps::store::db_path(&p).exists()) {
                continue;
            }
            let policy = purge_shared.policy.clone();
            let res = tokio::task::spawn_blocking(move || {
                crate::popip::PopipMap::open(&cfg, &policy.backends)?
                    .expire(ttl, std::time::SystemTime::now())
            })
            .await;
            match res {
                Ok(Ok(n)) if n > 0 => tracing::info!("popip: {n} expired entries removed"),
                Ok(Err(e)) => tracing::warn!("popip: expiry failed: {e}"),
                _ => {}
            }
        }
    });
    let intake = crate::queue::runner::client_spool_intake(&engine);
    let (runner, runner_task) = Runner::start(engine.clone(), Some(intake), queue_stop_rx);
    let _ = shared.queue.set(runner.clone());
    // Handlers first: a script that signals us as soon as we say "listening" must not kill us.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| ServeError::Runtime(e.to_string()))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| ServeError::Runtime(e.to_string()))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| ServeError::Runtime(e.to_string()))?;
    let mut usr1 =
        signal(SignalKind::user_defined1()).map_err(|e| ServeError::Runtime(e.to_string()))?;
    let stop_rx = shared.stop.subscribe();
    let pop3 = Arc::new(crate::pop3::server::Pop3State::default());
    let mut tasks = Vec::new();
    for b in bound {
        let l = tokio::net::TcpListener::from_std(b.listener)
            .map_err(|e| ServeError::Runtime(e.to_string()))?;
        // Scripts wait for this line on stderr; the log gets it too, but only where the log
        // is not stderr itself (else every start-up line came out twice).
        announce(
            json_log,
            &format!("listening for {} on {}", b.kind.name(), b.addr),
        );
        if log_elsewhere {
            tracing::info!("listening for {} on {}", b.kind.name(), b.addr);
        }
        tasks.push(match b.kind {
            Service::Smtp(kind) => {
                tokio::spawn(server::serve(l, kind, shared.clone(), stop_rx.clone()))
            }
            Service::Pop3(implicit) => tokio::spawn(crate::pop3::server::serve(
                l,
                implicit,
                shared.clone(),
                pop3.clone(),
                stop_rx.clone(),
            )),
        });
    }
    for (addr, l) in metrics {
        let l =
            tokio::net::TcpListener::from_std(l).map_err(|e| ServeError::Runtime(e.to_string()))?;
        announce(json_log, &format!("listening for metrics on {addr}"));
        if log_elsewhere {
            tracing::info!("listening for metrics on {addr}");
        }
        let app = shared.clone();
        let refresh: Arc<dyn Fn() + Send + Sync> = Arc::new(move || refresh_gauges(&app));
        tasks.push(tokio::spawn(crate::metrics::http::serve(
            l,
            refresh,
            stop_rx.clone(),
        )));
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                tracing::info!("queue run requested (SIGUSR1)");
                runner.run_all();
            }
            _ = hup.recv() => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                match Config::load(&locate) {
                    Ok(c) => {
                        shared.reload(c);
                        tracing::info!("configuration and class files reloaded (SIGHUP)");
                    }
                    Err(e) => tracing::error!("SIGHUP: keeping the old configuration: {e}"),
                }
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            }
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    tracing::info!(
        "shutting down: no new connections; waiting up to {}s for {} sessions",
        grace.as_secs(),
        shared.open_connections()
    );
    let _ = shared.stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let wait = async {
        while shared.open_connections() > 0 {
            let notified = shared.idle.notified();
            if shared.open_connections() == 0 {
                break;
            }
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), notified).await;
        }
    };
    if tokio::time::timeout(grace, wait).await.is_err() {
        tracing::warn!("grace period over; closing the remaining sessions");
    }
    // Deliveries in flight are cut short: each is at worst repeated after the restart.
    purger.abort();
    let _ = queue_stop.send(true);
    let _ = runner_task.await;
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("stopped");
    Ok(())
}

/// The start-up line scripts wait for on stderr, `mailtool: listening for SMTP on ADDR`; with
/// `[log] format = "json"` the same text as the `msg` of a JSON line, so that every line of
/// stderr parses.
fn announce(json: bool, what: &str) {
    let text = format!("mailtool: {what}");
    if json {
        let line = serde_json::json!({
            "ts": crate::dates::rfc3339(crate::dates::unix_secs(std::time::SystemTime::now())),
            "level": "info",
            "msg": text,
        });
        eprintln!("{line}");
    } else {
        eprintln!("{text}");
    }
}

/// The listeners systemd passed, by their names ([`activation::NAMES`]). An implicit-TLS
/// socket needs `[tls]`, as a configured one does.
#[allow(clippy::type_complexity)]
fn from_inherited(
    cfg: &Config,
    inherited: Vec<(String, std::net::TcpListener)>,
) -> Result<(Vec<Bound>, Vec<(SocketAddr, std::net::TcpListener)>), ServeError> {
    let mut bound = Vec::new();
    let mut metrics = Vec::new();
    for (name, listener) in inherited {
        let addr = listener
            .local_addr()
            .map_err(|e| ServeError::Activation(format!("socket {name}: {e}")))?;
        let kind = match name.as_str() {
            "smtp" => Service::Smtp(Kind::Smtp),
            "submission" => Service::Smtp(Kind::Submission),
            "smtps" => Service::Smtp(Kind::Smtps),
            "pop3" => Service::Pop3(false),
            "pop3s" => Service::Pop3(true),
            _ => {
                metrics.push((addr, listener));
                continue;
            }
        };
        if matches!(kind, Service::Smtp(Kind::Smtps) | Service::Pop3(true))
            && cfg.settings.tls.cert.is_empty()
        {
            return Err(ServeError::Activation(format!(
                "socket {name} ({addr}) is implicit TLS, but [tls] has no cert and key"
            )));
        }
        bound.push(Bound {
            addr,
            kind,
            listener,
        });
    }
    Ok((bound, metrics))
}

/// Binds `[metrics] listen` (before the privilege drop, like the mail ports).
fn bind_metrics(cfg: &Config) -> Result<Vec<(SocketAddr, std::net::TcpListener)>, ServeError> {
    let mut out = Vec::new();
    for &addr in &cfg.settings.metrics.listen {
        let bind_err = |e: std::io::Error| ServeError::Bind {
            addr,
            kind: "metrics",
            message: crate::util::io_message(&e),
        };
        let l = std::net::TcpListener::bind(addr).map_err(bind_err)?;
        l.set_nonblocking(true).map_err(bind_err)?;
        out.push((l.local_addr().unwrap_or(addr), l));
    }
    Ok(out)
}

/// The gauges read at scrape time: sessions, the queue, the backends.
fn refresh_gauges(app: &App) {
    let m = crate::metrics::get();
    m.smtp_sessions
        .set(app.limits(listen::Family::Smtp).active() as i64);
    if let Ok(list) = app.spool.list() {
        m.queue_messages.set(list.len() as i64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let oldest = list.iter().map(|q| q.envelope.created).min();
        m.queue_oldest
            .set(oldest.map_or(0, |c| now.saturating_sub(c)) as i64);
    }
    for name in app.policy.backends.names() {
        if let Ok(b) = app.policy.backends.get(name) {
            crate::metrics::backend_up(name, b.is_up());
        }
    }
}

fn write_pid(path: &Path) {
    if let Some(d) = path.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        tracing::warn!(
            "cannot write pid file {}: {}",
            path.display(),
            crate::util::io_message(&e)
        );
    }
}
