//! The queue runner inside `serve`: every accepted message is tried at once; deferred ones
//! come back when their backoff expires (an in-memory schedule, checked every few seconds,
//! so a large queue is not rescanned all the time); a full run, which
//! ignores the backoff as `sendmail -q` does, happens every `queue.interval`, at start, and on
//! SIGUSR1 (`mailtool queue run`). At most `queue.max_parallel` messages are in delivery at
//! once; the per-message lock keeps a second runner (another process) off the same message.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use super::QueueId;
use super::attempt::{Attempt, Engine};

/// What the runner is asked to do.
#[derive(Debug)]
enum Cmd {
    /// Try this message now (just accepted, or a DSN just queued).
    Now(QueueId),
    /// Try everything that is not held, due or not.
    RunAll,
}

/// A handle to the runner task.
#[derive(Clone)]
pub struct Runner {
    tx: mpsc::UnboundedSender<Cmd>,
}

/// Called before each full run: pick up what `sendmail` left in the client spool.
pub type Intake = Arc<dyn Fn() -> Vec<QueueId> + Send + Sync>;

/// How often the schedule of deferred messages is checked (it is in memory, so this is cheap;
/// retry times are whole seconds).
const DUE_SCAN: Duration = Duration::from_secs(1);

struct State {
    engine: Arc<Engine>,
    slots: Arc<Semaphore>,
    in_flight: Mutex<HashSet<QueueId>>,
    /// Deferred messages by the time their backoff expires (unix seconds).
    schedule: Mutex<BTreeSet<(u64, QueueId)>>,
    tx: mpsc::UnboundedSender<Cmd>,
}

/// The intake that imports what `sendmail` left in `[paths] client_spool` while the daemon
/// was down; logs what it did.
pub fn client_spool_intake(engine: &Arc<Engine>) -> Intake {
    let engine = engine.clone();
    Arc::new(move || {
        let cfg = engine.config();
        let dir = cfg.path(&cfg.settings.paths.client_spool);
        match super::client_spool::import(&dir, &engine.spool, &engine.stage()) {
            Ok(r) => {
                for (file, why) in &r.skipped {
                    tracing::warn!("client spool: {file} left in place: {why}");
                }
                for id in &r.imported {
                    tracing::info!("{id}: imported from the client spool");
                }
                r.imported
            }
            Err(e) => {
                tracing::error!("client spool {}: {e}", dir.display());
                Vec::new()
            }
        }
    })
}

impl Runner {
    /// Starts the runner on the current tokio runtime; it stops when `stop` turns true.
    pub fn start(
        engine: Arc<Engine>,
        intake: Option<Intake>,
        mut stop: watch::Receiver<bool>,
    ) -> (Runner, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let max = engine.config().settings.queue.max_parallel.max(1);
        let state = Arc::new(State {
            engine,
            slots: Arc::new(Semaphore::new(max)),
            in_flight: Mutex::new(HashSet::new()),
            schedule: Mutex::new(BTreeSet::new()),
            tx: tx.clone(),
        });
        let task = tokio::spawn(async move {
            let interval = state.engine.config().settings.queue.interval.0;
            // "0s": no periodic runs, but still the start-up run (mailtool.toml(5): "only at
            // start, on SIGUSR1 and with mailtool queue run"), which imports the client
            // spool and retries what was deferred before the restart.
            let periodic = !interval.is_zero();
            // (A zero period would panic; the timer is not polled then anyway.)
            let mut full = tokio::time::interval(if periodic {
                interval
            } else {
                Duration::from_secs(86_400)
            });
            if !periodic {
                run_all(&state, &intake, true).await;
            }
            let mut due = tokio::time::interval(DUE_SCAN);
            due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => {
                        if *stop.borrow() { break; }
                    }
                    cmd = rx.recv() => match cmd {
                        Some(Cmd::Now(id)) => spawn_attempt(&state, id, true),
                        Some(Cmd::RunAll) => run_all(&state, &intake, true).await,
                        None => break,
                    },
                    // The first tick fires at once: the start-up run.
                    _ = full.tick(), if periodic => run_all(&state, &intake, true).await,
                    _ = due.tick() => run_due(&state),
                }
            }
            // Let deliveries in flight finish and record their results (bounded): one cut
            // short would be repeated after the restart.
            let grace = state.engine.config().settings.smtp.shutdown_grace.0;
            let deadline = tokio::time::Instant::now() + grace;
            while !state
                .in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        (Runner { tx }, task)
    }

    /// Tries `id` as soon as a slot is free (in the `background` delivery mode).
    pub fn kick(&self, id: QueueId) {
        let _ = self.tx.send(Cmd::Now(id));
    }

    /// A full queue run (SIGUSR1, `mailtool queue run`).
    pub fn run_all(&self) {
        let _ = self.tx.send(Cmd::RunAll);
    }
}

use crate::sys::unix_now as now_secs;

/// Starts attempts for every queued message: all of them (`force`), or only those whose
/// backoff has expired. The directory scan runs on a blocking thread.
async fn run_all(state: &Arc<State>, intake: &Option<Intake>, force: bool) {
    if let Some(f) = intake.clone() {
        let ids = tokio::task::spawn_blocking(move || f())
            .await
            .unwrap_or_default();
        for id in ids {
            spawn_attempt(state, id, true);
        }
    }
    let spool = state.engine.spool.clone();
    let Ok(Ok(list)) = tokio::task::spawn_blocking(move || spool.list()).await else {
        tracing::error!("queue run: cannot read the spool directory");
        return;
    };
    let now = now_secs();
    for m in list {
        if m.locked || m.envelope.held {
            continue;
        }
        match m.envelope.next_attempt {
            Some(t) if t > now && !force => schedule(state, t, m.id),
            _ => spawn_attempt(state, m.id, force),
        }
    }
}

/// Starts the deferred messages whose backoff has expired.
fn run_due(state: &Arc<State>) {
    let now = now_secs();
    let mut due = Vec::new();
    {
        let mut s = state.schedule.lock().unwrap_or_else(|p| p.into_inner());
        while s.first().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, id)) = s.pop_first() {
                due.push(id);
            }
        }
    }
    for id in due {
        spawn_attempt(state, id, false);
    }
}

fn spawn_attempt(state: &Arc<State>, id: QueueId, force: bool) {
    {
        let mut f = state.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if !f.insert(id.clone()) {
            return;
        }
    }
    let state = state.clone();
    tokio::spawn(async move {
        let permit = state.slots.clone().acquire_owned().await;
        let result = state.engine.attempt(&id, force).await;
        drop(permit);
        state
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        match result {
            Ok(Attempt::Done { notices }) => {
                for n in notices {
                    let _ = state.tx.send(Cmd::Now(n));
                }
            }
            Ok(Attempt::Deferred { next, notices }) => {
                for n in notices {
                    let _ = state.tx.send(Cmd::Now(n));
                }
                schedule(&state, next, id);
            }
            Ok(Attempt::NotDue(next)) => schedule(&state, next, id),
            Ok(_) => {}
            Err(super::SpoolError::NotFound(_)) => {} // delivered by someone else meanwhile
            Err(e) => tracing::error!("{id}: delivery attempt failed: {e}"),
        }
    });
}

fn schedule(state: &State, at: u64, id: QueueId) {
    state
        .schedule
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((at, id));
}
