//! Acceptance: storing a new message durably before the 250. Concurrent stores join a batch
//! whose leader writes (or collects) the files and syncs them once, with one syncfs where the
//! system has it (group commit), then renames each `tf` to its `qf`.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use super::id::{QueueId, SEQ_SPACE};
use super::incoming::Payload;
use super::spool::*;

/// Threads used by the fsync fallback of a group commit.
const FSYNC_THREADS: usize = 8;

pub(super) type StoreResult = Result<QueueId, SpoolError>;

/// A queued group-commit job: still to be written by the leader, or already written by its caller.
pub(super) enum Job {
    Unwritten(Box<NewMessage>),
    Written(Written),
}

#[derive(Default)]
pub(super) struct Batch {
    next_ticket: u64,
    pending: Vec<(u64, Job)>,
    leader_active: bool,
    done: HashMap<u64, StoreResult>,
}

/// A message written but not yet made durable.
pub(super) struct Written {
    id: QueueId,
    df: File,
    qf: File,
}

impl Spool {
    /// Stores a message durably and returns its id. Blocking and thread-safe: returns only once
    /// `df` and `qf` and their directory entries are on stable storage. Concurrent callers share
    /// one flush (group commit). On error nothing of the message is left behind.
    pub fn store(&self, msg: NewMessage) -> Result<QueueId, SpoolError> {
        if self.options.sync == SyncMode::PerMessage {
            return self.store_direct(msg);
        }
        let job = if self.options.parallel_writes {
            Job::Written(self.write_message(msg, now_unix(), false)?)
        } else {
            Job::Unwritten(Box::new(msg))
        };
        let mut st = lock(&self.batch);
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.pending.push((ticket, job));
        loop {
            if let Some(result) = st.done.remove(&ticket) {
                return result;
            }
            if !st.leader_active {
                st.leader_active = true;
                let jobs = std::mem::take(&mut st.pending);
                drop(st);
                let mut guard = LeaderGuard {
                    spool: self,
                    tickets: jobs.iter().map(|(t, _)| *t).collect(),
                    results: Vec::new(),
                };
                guard.results = self.commit_batch(jobs);
                drop(guard);
                st = lock(&self.batch);
                continue;
            }
            st = self.batch_cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Without group commit: write and fsync one message.
    pub(super) fn store_direct(&self, msg: NewMessage) -> Result<QueueId, SpoolError> {
        let w = self.write_message(msg, now_unix(), true)?;
        if let Err(e) = self.sync_dir() {
            self.discard(&w.id);
            return Err(e);
        }
        Ok(w.id)
    }

    /// Leader: write every message of the batch, then make them durable together.
    pub(super) fn commit_batch(&self, jobs: Vec<(u64, Job)>) -> Vec<(u64, StoreResult)> {
        let now = now_unix();
        let mut results = Vec::with_capacity(jobs.len());
        let mut written = Vec::with_capacity(jobs.len());
        for (ticket, job) in jobs {
            match job {
                Job::Written(w) => written.push((ticket, w)),
                Job::Unwritten(msg) => match self.write_message(*msg, now, false) {
                    Ok(w) => written.push((ticket, w)),
                    Err(e) => results.push((ticket, Err(e))),
                },
            }
        }
        if written.is_empty() {
            return results;
        }
        match self.sync_batch(&written) {
            Ok(()) => results.extend(written.into_iter().map(|(t, w)| (t, Ok(w.id)))),
            Err(e) => {
                for (_, w) in &written {
                    self.discard(&w.id);
                }
                let _ = self.sync_dir();
                results.extend(written.into_iter().map(|(t, _)| (t, Err(e.clone()))));
            }
        }
        results
    }

    pub(super) fn sync_batch(&self, written: &[(u64, Written)]) -> Result<(), SpoolError> {
        if self.options.sync == SyncMode::Syncfs && !self.syncfs_unsupported.load(Ordering::Relaxed)
        {
            match crate::sys::fs::syncfs(&self.dir_file) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    self.syncfs_unsupported.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(SpoolError::io("syncfs", &self.dir, e)),
            }
        }
        // fsync the files from a few threads so the file system can merge the flushes.
        let fsync_all = |chunk: &[(u64, Written)]| -> Result<(), SpoolError> {
            for (_, w) in chunk {
                w.df.sync_all()
                    .map_err(|e| SpoolError::io("fsync", &self.data_path(&w.id), e))?;
                w.qf.sync_all()
                    .map_err(|e| SpoolError::io("fsync", &self.control_path(&w.id), e))?;
            }
            Ok(())
        };
        let per_thread = written.len().div_ceil(FSYNC_THREADS).max(1);
        if written.len() <= 2 {
            fsync_all(written)?;
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = written
                    .chunks(per_thread)
                    .map(|chunk| scope.spawn(move || fsync_all(chunk)))
                    .collect();
                handles
                    .into_iter()
                    .try_for_each(|h| h.join().unwrap_or(Err(SpoolError::Internal)))
            })?;
        }
        self.sync_dir()
    }

    /// Removes every file of a message that failed (qf first, so no qf ever lacks its df).
    pub(super) fn discard(&self, id: &QueueId) {
        remove_quiet(&self.control_path(id));
        remove_quiet(&self.temp_path(id));
        remove_quiet(&self.data_path(id));
    }

    /// Allocates an id (df created with O_EXCL), writes df, writes tf, renames tf to qf.
    /// With `fsync_each`, df and tf are fsynced before the rename.
    pub(super) fn write_message(
        &self,
        msg: NewMessage,
        now: u64,
        fsync_each: bool,
    ) -> Result<Written, SpoolError> {
        let NewMessage {
            mut envelope,
            data,
            id: preset,
        } = msg;
        envelope.size = data.len();
        if envelope.created == 0 {
            envelope.created = now;
        }
        let qf_text = envelope.to_qf()?;
        let (data, mut spilled) = match data {
            Payload::Bytes(b) => (b, None),
            Payload::Spilled(s) => (Vec::new(), Some(s)),
        };
        for _ in 0..SEQ_SPACE {
            let (id, df_path, mut df) = match spilled.as_mut() {
                // Written as it arrived, under the id chosen in advance: only the qf is missing.
                Some(s) => {
                    let df = s.take_file().ok_or(SpoolError::Internal)?;
                    (s.id.clone(), s.path.clone(), df)
                }
                None => {
                    let id = preset.clone().unwrap_or_else(QueueId::allocate);
                    let df_path = self.data_path(&id);
                    match create_excl(&df_path) {
                        Ok(f) => (id, df_path, f),
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && preset.is_none() => {
                            continue;
                        }
                        Err(e) => return Err(SpoolError::io("create", &df_path, e)),
                    }
                }
            };
            let preset = if spilled.is_some() {
                Some(id.clone())
            } else {
                preset.clone()
            };
            let fail = |op, path: &Path, e| {
                remove_quiet(&self.temp_path(&id));
                remove_quiet(&df_path);
                SpoolError::io(op, path, e)
            };
            if spilled.is_none() {
                df.write_all(&data)
                    .map_err(|e| fail("write", &df_path, e))?;
            }
            if fsync_each {
                df.sync_all().map_err(|e| fail("fsync", &df_path, e))?;
            }
            let tf_path = self.temp_path(&id);
            let mut tf = match create_excl(&tf_path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Someone else's id (or a stale tf): not ours to touch; pick another id.
                    remove_quiet(&df_path);
                    if preset.is_some() {
                        return Err(SpoolError::io("create", &tf_path, e));
                    }
                    continue;
                }
                Err(e) => {
                    remove_quiet(&df_path);
                    return Err(SpoolError::io("create", &tf_path, e));
                }
            };
            tf.write_all(qf_text.as_bytes())
                .map_err(|e| fail("write", &tf_path, e))?;
            if fsync_each {
                tf.sync_all().map_err(|e| fail("fsync", &tf_path, e))?;
            }
            let qf_path = self.control_path(&id);
            fs::rename(&tf_path, &qf_path).map_err(|e| fail("rename", &tf_path, e))?;
            return Ok(Written { id, df, qf: tf });
        }
        Err(SpoolError::IdExhausted)
    }
}

/// Publishes the leader's results (or, if it panicked, an error for every job) and wakes waiters.
pub(super) struct LeaderGuard<'a> {
    spool: &'a Spool,
    tickets: Vec<u64>,
    results: Vec<(u64, StoreResult)>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.spool.batch);
        let results = std::mem::take(&mut self.results);
        let mut answered: HashSet<u64> = HashSet::with_capacity(results.len());
        for (t, r) in results {
            answered.insert(t);
            st.done.insert(t, r);
        }
        for t in &self.tickets {
            if !answered.contains(t) {
                st.done.insert(*t, Err(SpoolError::Internal));
            }
        }
        st.leader_active = false;
        self.spool.batch_cv.notify_all();
    }
}
