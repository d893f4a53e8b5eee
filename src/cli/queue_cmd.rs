//! `mailtool queue run|delete|hold|release`: the queue by hand (sendmail -q, Postfix
//! postqueue -f / postsuper -d/-h/-H).
//!
//! A run goes through the daemon (SIGUSR1) when it is up and no selector is given; otherwise
//! this process delivers by itself. Both take the per-message lock, so two runners never
//! deliver the same message.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::queue::attempt::{Attempt, Engine};
use crate::queue::{Filter, QueueId, Spool, SpoolError};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit status: 0 done; 64 usage; 66 no such message or spool; 75 a \
message is being delivered right now (try again); 77 the daemon runs as another user."
)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum QueueAction {
    /// Deliver what is queued now (sendmail -q): through the daemon, or directly
    Run(RunArgs),
    /// Remove messages from the queue without delivering them (postsuper -d)
    Delete(IdArgs),
    /// Keep messages in the queue; runs skip them until released (postsuper -h)
    Hold(IdArgs),
    /// Let held or quarantined messages go again (postsuper -H)
    Release(IdArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Only matching entries: Rsubstr, Ssubstr, Isubstr, each optionally after `!`
    #[arg(short = 'q', value_name = "[!]Xsubstr", allow_hyphen_values = true)]
    pub select: Vec<String>,
    /// Deliver in this process even when the daemon is running
    #[arg(long)]
    pub direct: bool,
    /// Daemon's pid file [default: ROOT/run/mailtool.pid]
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// A selector's substring given as a separate word (`-qR foo`)
    #[arg(hide = true)]
    pub rest: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct IdArgs {
    /// Queue ids, as mailq shows them
    #[arg(required = true, value_name = "QID")]
    pub ids: Vec<String>,
}

pub fn run(global: &GlobalOpts, a: &QueueArgs) -> Result<i32, Fail> {
    match &a.action {
        QueueAction::Run(r) => {
            let filter = super::mailq::parse_selectors("queue run", &r.select, &r.rest)?;
            run_queue(global, filter, r.direct, r.pid_file.clone())
        }
        QueueAction::Delete(i) => each(global, &i.ids, "deleted", |spool, id| spool.remove(id)),
        QueueAction::Hold(i) => each(global, &i.ids, "held", |spool, id| {
            spool.update(id, |e| e.held = true).map(drop)
        }),
        QueueAction::Release(i) => each(global, &i.ids, "released", |spool, id| {
            spool
                .update(id, |e| {
                    e.held = false;
                    e.quarantine = None;
                    // Released mail is due at once, not at the end of an old backoff.
                    e.next_attempt = None;
                })
                .map(drop)
        }),
    }
}

/// Root becomes the daemon's user first: a qf rewritten by root would be unreadable to the
/// daemon afterwards, and deliveries must not run as root.
fn become_queue_owner(cfg: &Config) -> Result<(), Fail> {
    if crate::sys::is_root() {
        let id = crate::server::privileges::lookup(&cfg.settings.user, &cfg.settings.group)
            .map_err(|e| Fail::new(EX_NOUSER, format!("queue: {e}")))?;
        crate::server::privileges::drop_to(&id)
            .map_err(|e| Fail::new(EX_OSERR, format!("queue: {e}")))?;
    }
    Ok(())
}

fn open_spool(cfg: &Config) -> Result<Spool, Fail> {
    let dir = cfg.path(&cfg.settings.paths.spool);
    Spool::attach(&dir).map_err(|e| Fail::new(EX_NOINPUT, format!("queue: {}: {e}", dir.display())))
}

/// Applies `op` to each message under its lock, so a delivery in progress is never cut.
fn each(
    global: &GlobalOpts,
    ids: &[String],
    done: &str,
    op: impl Fn(&Spool, &QueueId) -> Result<(), SpoolError>,
) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    become_queue_owner(&cfg)?;
    let spool = open_spool(&cfg)?;
    let mut code = EX_OK;
    let mut out = std::io::stdout().lock();
    for raw in ids {
        let id = QueueId::parse(raw).map_err(|e| Fail::new(EX_USAGE, format!("queue: {e}")))?;
        let result = match spool.try_lock(&id) {
            Ok(Some(_lock)) => op(&spool, &id),
            Ok(None) => {
                eprintln!("queue: {id}: being delivered right now; try again");
                code = code.max(EX_TEMPFAIL);
                continue;
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => writeln!(out, "{id}: {done}").map_err(stdout_error)?,
            Err(SpoolError::NotFound(_)) => {
                eprintln!("queue: {id}: no such message");
                code = code.max(EX_NOINPUT);
            }
            Err(e) => {
                eprintln!("queue: {id}: {e}");
                code = code.max(EX_TEMPFAIL);
            }
        }
    }
    Ok(code)
}

/// `queue run` and `sendmail -q`: ask the daemon, or deliver here.
pub fn run_queue(
    global: &GlobalOpts,
    filter: Filter,
    direct: bool,
    pid_file: Option<PathBuf>,
) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    let pid_file = pid_file.unwrap_or_else(|| cfg.path("/run/mailtool.pid"));
    if !direct
        && filter.is_empty()
        && let Some(pid) = crate::sys::process::running_pid(&pid_file)
    {
        let Err(e) = crate::sys::process::signal(pid, libc::SIGUSR1) else {
            println!("queue run requested from the daemon (pid {pid})");
            return Ok(EX_OK);
        };
        return Err(Fail::new(
            EX_NOPERM,
            format!(
                "queue: cannot signal the daemon (pid {pid}): {}; run as root or as its user, or use --direct",
                crate::util::io_message(&e)
            ),
        ));
    }
    deliver_here(cfg, filter)
}

/// One pass over the queue in this process, then over the notices it queued.
fn deliver_here(cfg: Config, filter: Filter) -> Result<i32, Fail> {
    become_queue_owner(&cfg)?;
    let spool = Arc::new(open_spool(&cfg)?);
    let dns = crate::dns::Dns::new(&cfg.settings.dns.servers, cfg.settings.dns.timeout.0)
        .map_err(|e| Fail::new(EX_CONFIG, format!("queue: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Fail::new(EX_OSERR, format!("queue: {e}")))?;
    let stage = Arc::new(
        crate::stage::Stage::load(&cfg).map_err(|e| Fail::new(EX_CONFIG, format!("queue: {e}")))?,
    );
    let engine = Engine::standalone(cfg, spool.clone(), dns, stage)
        .map_err(|e| Fail::new(EX_CONFIG, format!("queue: {e}")))?;
    // What `sendmail` left while the daemon was down is part of the queue too.
    let client = engine
        .config()
        .path(&engine.config().settings.paths.client_spool);
    if let Err(e) = crate::queue::client_spool::import(&client, &spool, &engine.stage()) {
        eprintln!("queue: client spool {}: {e}", client.display());
    }
    let selected = spool
        .list()
        .map_err(|e| Fail::new(EX_NOINPUT, format!("queue: {e}")))?;
    let mut work: Vec<QueueId> = filter.apply(&selected).into_iter().map(|m| m.id).collect();
    let mut out = std::io::stdout().lock();
    rt.block_on(async {
        while let Some(id) = work.pop() {
            let line = match engine.attempt(&id, true).await {
                Ok(Attempt::Done { notices }) => {
                    work.extend(notices);
                    format!("{id}: delivered")
                }
                Ok(Attempt::Deferred { notices, .. }) => {
                    work.extend(notices);
                    let why = spool
                        .read_envelope(&id)
                        .ok()
                        .and_then(|e| e.status_message)
                        .unwrap_or_default();
                    format!("{id}: deferred ({why})")
                }
                Ok(Attempt::Busy) => format!("{id}: being delivered by another runner"),
                Ok(Attempt::Held) => format!("{id}: held"),
                Ok(Attempt::NotDue(_)) => format!("{id}: not due"),
                Err(SpoolError::NotFound(_)) => continue,
                Err(e) => format!("{id}: {e}"),
            };
            writeln!(out, "{line}").map_err(stdout_error)?;
        }
        Ok::<(), Fail>(())
    })?;
    Ok(EX_OK)
}
