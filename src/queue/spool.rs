//! The durable spool: `df`/`qf` file pairs, group-committed acceptance, crash recovery.
//!
//! See the module documentation of [`crate::queue`] for the on-disk format.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::id::QueueId;

/// Name of the owner lock file inside the spool directory (held by [`Spool::open`]).
pub const OWNER_LOCK_NAME: &str = ".mailtool-spool.lock";

use crate::sys::io_message;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Everything that can go wrong in the spool. Cloneable so one failed group commit can be
/// reported to every caller of the batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    /// A system call failed (`op` is e.g. `write`, `rename`, `syncfs`).
    #[error("{op} {}: {}", path.display(), io_message(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    /// A `qf` file that cannot be parsed.
    #[error("queue file qf{id}: {reason}")]
    Corrupt { id: String, reason: String },
    /// No queue entry with that id.
    #[error("{0}: no such queue entry")]
    NotFound(QueueId),
    /// The envelope cannot be written (a field holds a line break, NUL, …).
    #[error("invalid envelope: {0}")]
    Invalid(String),
    /// [`Spool::open`]: another process owns the spool.
    #[error("{}: spool is in use by another process", .0.display())]
    Locked(PathBuf),
    /// Another process is rewriting this entry right now (its `tf` file exists).
    #[error("{0}: queue entry is being updated by another process")]
    Busy(QueueId),
    /// All 3600 sequence numbers of this second were taken.
    #[error("could not allocate a unique queue id")]
    IdExhausted,
    /// A bug: the group-commit leader panicked.
    #[error("internal error in the spool writer")]
    Internal,
}

impl SpoolError {
    pub(crate) fn io(op: &'static str, path: &Path, e: io::Error) -> SpoolError {
        SpoolError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(e),
        }
    }

    /// The errno of an I/O error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            SpoolError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True for "disk full" style errors (ENOSPC, EDQUOT).
    pub fn is_no_space(&self) -> bool {
        matches!(self.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
    }

    /// The SMTP reply the server should give when `store` fails: `452 4.3.1` for a full disk,
    /// `451 4.3.0` otherwise.
    pub fn smtp_status(&self) -> (u16, &'static str) {
        if self.is_no_space() {
            (452, "4.3.1")
        } else {
            (451, "4.3.0")
        }
    }
}

use super::commit::Batch;
pub use super::envelope::{Body, Envelope, Notify, RcptState, Recipient, Ret};
pub use super::incoming::Payload;
pub use super::qf::{QF_VERSION, QfError};

// ---------------------------------------------------------------------------------------------
// Spool
// ---------------------------------------------------------------------------------------------

/// A message to accept: its envelope and the data exactly as received (Received: already
/// prepended), in memory or already in its `df` file ([`super::incoming`]). `store` sets
/// `envelope.size` and, when 0, `envelope.created`.
#[derive(Debug)]
pub struct NewMessage {
    pub envelope: Envelope,
    pub data: Payload,
    /// An id chosen in advance with [`QueueId::allocate`] (the server writes it into the
    /// Received: header before storing); `None`: allocate one here. A preset id that is already
    /// taken fails with an I/O error of kind `AlreadyExists`, and the caller retries with a new one.
    pub id: Option<QueueId>,
}

/// One entry of the queue as listed by [`Spool::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: QueueId,
    pub envelope: Envelope,
    /// Current size of the `df` file (falls back to `I` if it cannot be stat'ed).
    pub df_size: u64,
    /// True if some process holds the message lock (see [`Spool::try_lock`]): being delivered.
    pub locked: bool,
}

/// Result of a directory scan: the readable entries and the unreadable ones.
#[derive(Debug, Clone, Default)]
pub struct QueueScan {
    /// Sorted like sendmail's default QueueSortOrder: priority, then creation time, then id.
    pub messages: Vec<QueuedMessage>,
    /// `(file name, reason)` for `qf` files that were skipped (corrupt or incomplete).
    pub problems: Vec<(String, String)>,
}

/// What [`Spool::open`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// `(file name, reason)` of every file removed.
    pub removed: Vec<(String, String)>,
    /// `(file name, reason)` of corrupt `qf` files left in place (listing skips them).
    pub corrupt: Vec<(String, String)>,
}

/// How acceptance is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Group commit, one `syncfs(2)` per batch (falls back to `FsyncBatch` on ENOSYS).
    #[default]
    Syncfs,
    /// Group commit, `fsync` of every file of the batch plus one of the directory.
    FsyncBatch,
    /// No group commit: every `store` fsyncs df, tf, and the directory itself.
    PerMessage,
}

/// Options for [`Spool::open_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SpoolOptions {
    pub sync: SyncMode,
    /// Group commit only. false (default): the leader writes the files of the whole batch, then
    /// syncs. true: each caller writes its own files before joining the batch, so writes run in
    /// parallel and overlap the previous batch's sync; the leader only syncs. (Measured: no
    /// clear difference on a virtio ext4 disk; kept as a knob.)
    pub parallel_writes: bool,
}

/// An exclusive per-message lock (an OFD lock on the `df` file on Linux, flock elsewhere).
/// Held by the delivery code while it works on a message; mailq shows such entries with `*`.
/// Released on drop.
#[derive(Debug)]
pub struct MessageLock {
    id: QueueId,
    _file: File,
}

impl MessageLock {
    pub fn id(&self) -> &QueueId {
        &self.id
    }
}

/// The spool directory. `Send + Sync`; share it with an `Arc`.
pub struct Spool {
    pub(super) dir: PathBuf,
    pub(super) dir_file: File,
    pub(super) _owner_lock: Option<File>,
    pub(super) options: SpoolOptions,
    pub(super) recovery: RecoveryReport,
    pub(super) batch: Mutex<Batch>,
    pub(super) batch_cv: Condvar,
    pub(super) busy: Mutex<HashSet<QueueId>>,
    pub(super) busy_cv: Condvar,
    pub(super) syncfs_unsupported: AtomicBool,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) use crate::sys::unix_now as now_unix;

/// True if the file name is `<prefix><valid id>`.
pub(super) fn id_of(name: &str, prefix: &str) -> Option<QueueId> {
    QueueId::parse(name.strip_prefix(prefix)?).ok()
}

pub(super) fn create_excl(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Removes a file, ignoring "not found".
pub(super) fn remove_quiet(path: &Path) {
    let _ = fs::remove_file(path);
}

impl Spool {
    /// Opens (creating it 0700 if needed) the spool as its owner: takes the owner lock and runs
    /// crash recovery (see the module docs). Fails with [`SpoolError::Locked`] if another process
    /// owns it.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        Spool::open_with(dir, SpoolOptions::default())
    }

    /// [`Spool::open`] with options.
    pub fn open_with(dir: &Path, options: SpoolOptions) -> Result<Spool, SpoolError> {
        match fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) => return Err(SpoolError::io("mkdir", dir, e)),
        }
        let lock_path = dir.join(OWNER_LOCK_NAME);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| SpoolError::io("open", &lock_path, e))?;
        match crate::sys::lock::try_flock_exclusive(&lock_file) {
            Ok(true) => {}
            Ok(false) => return Err(SpoolError::Locked(dir.to_path_buf())),
            Err(e) => return Err(SpoolError::io("flock", &lock_path, e)),
        }
        let mut spool = Spool::new(dir, Some(lock_file), options)?;
        spool.recovery = spool.recover()?;
        Ok(spool)
    }

    /// Uses an existing spool without owning it: no recovery, no owner lock. For `mailq` and
    /// other short-lived clients running next to the server. All operations work.
    pub fn attach(dir: &Path) -> Result<Spool, SpoolError> {
        Spool::new(dir, None, SpoolOptions::default())
    }

    pub(super) fn new(
        dir: &Path,
        owner: Option<File>,
        options: SpoolOptions,
    ) -> Result<Spool, SpoolError> {
        let dir_file = File::open(dir).map_err(|e| SpoolError::io("open", dir, e))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            dir_file,
            _owner_lock: owner,
            options,
            recovery: RecoveryReport::default(),
            batch: Mutex::new(Batch::default()),
            batch_cv: Condvar::new(),
            busy: Mutex::new(HashSet::new()),
            busy_cv: Condvar::new(),
            syncfs_unsupported: AtomicBool::new(false),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What recovery removed at [`Spool::open`] (empty for [`Spool::attach`]).
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Path of the message data, `<dir>/df<ID>`.
    pub fn data_path(&self, id: &QueueId) -> PathBuf {
        self.dir.join(format!("df{id}"))
    }

    /// Path of the control file, `<dir>/qf<ID>`.
    pub fn control_path(&self, id: &QueueId) -> PathBuf {
        self.dir.join(format!("qf{id}"))
    }

    pub(super) fn temp_path(&self, id: &QueueId) -> PathBuf {
        self.dir.join(format!("tf{id}"))
    }

    pub(super) fn sync_dir(&self) -> Result<(), SpoolError> {
        self.dir_file
            .sync_all()
            .map_err(|e| SpoolError::io("fsync", &self.dir, e))
    }

    // ----- per-message operations for delivery -----------------------------------------------

    pub(super) fn claim(&self, id: &QueueId) -> BusyGuard<'_> {
        let mut busy = lock(&self.busy);
        while busy.contains(id) {
            busy = self.busy_cv.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(id.clone());
        BusyGuard {
            spool: self,
            id: id.clone(),
        }
    }

    /// Reads and parses `qf<ID>`.
    pub fn read_envelope(&self, id: &QueueId) -> Result<Envelope, SpoolError> {
        let path = self.control_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.clone()));
            }
            Err(e) => return Err(SpoolError::io("read", &path, e)),
        };
        Envelope::parse_qf(&bytes).map_err(|e| SpoolError::Corrupt {
            id: id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Rewrites `qf<ID>` atomically after `f` changed the envelope: tf, fsync, rename, fsync of
    /// the directory. `I` (the df size) is kept whatever `f` does. Returns the new envelope.
    /// Updates of the same id within this process are serialized; across processes hold the
    /// message lock ([`Spool::try_lock`]).
    pub fn update<F: FnOnce(&mut Envelope)>(
        &self,
        id: &QueueId,
        f: F,
    ) -> Result<Envelope, SpoolError> {
        let _claim = self.claim(id);
        let mut env = self.read_envelope(id)?;
        let size = env.size;
        f(&mut env);
        env.size = size;
        let text = env.to_qf()?;
        let tf_path = self.temp_path(id);
        let mut tf = match create_excl(&tf_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SpoolError::Busy(id.clone()));
            }
            Err(e) => return Err(SpoolError::io("create", &tf_path, e)),
        };
        let res = (|| {
            tf.write_all(text.as_bytes())
                .map_err(|e| SpoolError::io("write", &tf_path, e))?;
            tf.sync_all()
                .map_err(|e| SpoolError::io("fsync", &tf_path, e))?;
            fs::rename(&tf_path, self.control_path(id))
                .map_err(|e| SpoolError::io("rename", &tf_path, e))
        })();
        if let Err(e) = res {
            remove_quiet(&tf_path);
            return Err(e);
        }
        self.sync_dir()?;
        Ok(env)
    }

    /// Removes a message (qf, then df) and makes the removal durable.
    pub fn remove(&self, id: &QueueId) -> Result<(), SpoolError> {
        let _claim = self.claim(id);
        let mut found = false;
        for path in [self.control_path(id), self.data_path(id)] {
            match fs::remove_file(&path) {
                Ok(()) => found = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(SpoolError::io("unlink", &path, e)),
            }
        }
        if !found {
            return Err(SpoolError::NotFound(id.clone()));
        }
        self.sync_dir()
    }

    /// Takes the exclusive message lock without waiting; `Ok(None)` if someone else holds it.
    pub fn try_lock(&self, id: &QueueId) -> Result<Option<MessageLock>, SpoolError> {
        let path = self.data_path(id);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SpoolError::NotFound(id.clone()));
            }
            Err(e) => return Err(SpoolError::io("open", &path, e)),
        };
        match crate::sys::lock::try_write_lock(&file) {
            Ok(true) => Ok(Some(MessageLock {
                id: id.clone(),
                _file: file,
            })),
            Ok(false) => Ok(None),
            Err(e) => Err(SpoolError::io("lock", &path, e)),
        }
    }

    /// True if some process holds the message lock.
    pub fn is_locked(&self, id: &QueueId) -> bool {
        File::open(self.data_path(id))
            .map(|f| crate::sys::lock::write_locked(&f))
            .unwrap_or(false)
    }

    // ----- listing ----------------------------------------------------------------------------

    /// Every readable queue entry, sorted (see [`QueueScan::messages`]). Corrupt and incomplete
    /// `qf` files are skipped; [`Spool::scan`] reports them.
    pub fn list(&self) -> Result<Vec<QueuedMessage>, SpoolError> {
        Ok(self.scan()?.messages)
    }

    /// Like [`Spool::list`], also reporting the `qf` files that were skipped.
    pub fn scan(&self) -> Result<QueueScan, SpoolError> {
        let mut scan = QueueScan::default();
        let rd = fs::read_dir(&self.dir).map_err(|e| SpoolError::io("readdir", &self.dir, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| SpoolError::io("readdir", &self.dir, e))?;
            let Ok(name) = ent.file_name().into_string() else {
                continue;
            };
            let Some(id) = id_of(&name, "qf") else {
                continue;
            };
            let bytes = match fs::read(ent.path()) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // job completed
                Err(e) => {
                    scan.problems.push((name, io_message(&e)));
                    continue;
                }
            };
            let envelope = match Envelope::parse_qf(&bytes) {
                Ok(env) => env,
                Err(e) => {
                    scan.problems.push((name, e.to_string()));
                    continue;
                }
            };
            let df_size = fs::metadata(self.data_path(&id))
                .map(|m| m.len())
                .unwrap_or(envelope.size);
            let locked = self.is_locked(&id);
            scan.messages.push(QueuedMessage {
                id,
                envelope,
                df_size,
                locked,
            });
        }
        scan.messages.sort_by(|a, b| {
            (a.envelope.priority(), a.envelope.created, &a.id).cmp(&(
                b.envelope.priority(),
                b.envelope.created,
                &b.id,
            ))
        });
        scan.problems.sort();
        Ok(scan)
    }
}

pub(super) struct BusyGuard<'a> {
    spool: &'a Spool,
    id: QueueId,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.spool.busy).remove(&self.id);
        self.spool.busy_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn sample_envelope() -> Envelope {
        let mut env = Envelope::new(
            "sender@example.com",
            vec![
                Recipient {
                    address: "a@example.org".into(),
                    notify: Some(Notify {
                        success: true,
                        failure: true,
                        delay: false,
                        never: false,
                    }),
                    orcpt: Some("rfc822;a+2Bx@example.org".into()),
                    state: RcptState::Pending,
                    status: Some("Deferred: 451 4.3.0 try; later: now".into()),
                    target: Some("prog:/usr/bin/x; y".into()),
                    parent: Some("list@example.org".into()),
                    notified: false,
                    remote_mta: Some("mx.example.org".into()),
                },
                Recipient {
                    address: "b@example.org".into(),
                    notify: Some(Notify {
                        never: true,
                        ..Notify::default()
                    }),
                    state: RcptState::Sent,
                    ..Recipient::default()
                },
                Recipient {
                    address: "weird:name@example.org".into(),
                    state: RcptState::Failed,
                    notified: true,
                    ..Recipient::default()
                },
            ],
        );
        env.created = 1_150_390_740;
        env.last_attempt = 1_150_390_800;
        env.tries = 2;
        env.next_attempt = Some(1_150_394_400);
        env.body_type = Some(Body::EightBitMime);
        env.envid = Some("QQ314159".into());
        env.ret = Some(Ret::Hdrs);
        env.auth = Some("<>".into());
        env.protocol = Some("ESMTPSA".into());
        env.helo = Some("client.example.com".into());
        env.client_addr = Some("192.0.2.1".into());
        env.client_name = Some("client.example.com".into());
        env.other_macros = vec![
            ("_".into(), "client [192.0.2.1]".into()),
            ("daemon_flags".into(), String::new()),
        ];
        env.smtputf8 = true;
        env.other_flags = vec!["XFOO".into()];
        env.status_message = Some("Deferred: Connection refused by mx.example.org.".into());
        env.warning_sent = true;
        env.held = true;
        env.size = 1234;
        env.extra_records = vec!["Xsomething new".into()];
        env
    }

    fn msg(sender: &str, rcpts: &[&str], data: &[u8]) -> NewMessage {
        NewMessage {
            envelope: Envelope::new(sender, rcpts.iter().map(|r| Recipient::new(*r)).collect()),
            data: data.to_vec().into(),
            id: None,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != OWNER_LOCK_NAME)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn spool_is_shareable() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<Spool>();
        is_send_sync::<SpoolError>();
    }

    #[test]
    fn qf_text_is_as_documented() {
        let text = sample_envelope().to_qf().unwrap();
        let expected = "V1-mailtool\nT1150390740\nK1150390800\nN2\nY1150394400\nI1234\nB8BITMIME\n\
            MDeferred: Connection refused by mx.example.org.\nFwh\n$rESMTPSA\n$sclient.example.com\n\
            ${client_addr}192.0.2.1\n${client_name}client.example.com\n$_client [192.0.2.1]\n\
            ${daemon_flags}\nS<sender@example.com>\nZQQ314159\nrHDRS\nA<>\nCSMTPUTF8 XFOO\n\
            RSF;STATE=pending;ORCPT=rfc822+3Ba+2B2Bx@example.org;STATUS=Deferred+3A+20451+204.3.0+20try+3B+20later+3A+20now;TARGET=prog+3A/usr/bin/x+3B+20y;PARENT=list@example.org;MTA=mx.example.org:<a@example.org>\n\
            RN;STATE=sent:<b@example.org>\n\
            R;STATE=failed;DSN=sent:<weird:name@example.org>\nXsomething new\n.\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn qf_round_trip() {
        let env = sample_envelope();
        let text = env.to_qf().unwrap();
        assert_eq!(Envelope::parse_qf(text.as_bytes()).unwrap(), env);
        let null = Envelope {
            created: 1,
            ..Envelope::new("", vec![Recipient::new("x@y")])
        };
        let text = null.to_qf().unwrap();
        assert!(text.contains("\nS<>\n"));
        assert_eq!(Envelope::parse_qf(text.as_bytes()).unwrap(), null);
    }

    #[test]
    fn qf_refuses_line_breaks_and_flattens_status() {
        let bad = Envelope::new("a\nb@example.com", vec![]);
        assert!(matches!(bad.to_qf(), Err(SpoolError::Invalid(_))));
        let bad = Envelope::new("a@example.com", vec![Recipient::new("x\r@y")]);
        assert!(matches!(bad.to_qf(), Err(SpoolError::Invalid(_))));
        let mut env = Envelope::new("a@example.com", vec![Recipient::new("x@y")]);
        env.status_message = Some("line1\r\nline2".into());
        env.recipients[0].status = Some("550\nno".into());
        let back = Envelope::parse_qf(env.to_qf().unwrap().as_bytes()).unwrap();
        assert_eq!(back.status_message.as_deref(), Some("line1  line2"));
        assert_eq!(back.recipients[0].status.as_deref(), Some("550 no"));
    }

    #[test]
    fn malformed_qf_never_panics() {
        let text = sample_envelope().to_qf().unwrap();
        let b = text.as_bytes();
        for cut in 0..b.len() {
            assert_eq!(
                Envelope::parse_qf(&b[..cut]),
                Err(QfError::Incomplete),
                "cut at {cut}"
            );
        }
        // Flip every byte to a few nasty values; only require no panic.
        for i in 0..b.len() {
            for v in [b'\n', b'.', b':', b'+', b'{', 0xff, b'R', b'V', b'9'] {
                let mut m = b.to_vec();
                m[i] = v;
                let _ = Envelope::parse_qf(&m);
            }
        }
        for bad in [
            &b".\n"[..],
            b"V1-mailtool\n.\n",
            b"V2\nT1\nS<>\nI0\n.\n",
            b"T1\nV1-mailtool\nS<>\nI0\n.\n",
            b"V1-mailtool\nTx\nS<>\nI0\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\nRno colon\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\nR;STATE=bogus:<a>\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\nR;STATUS=+G1:<a>\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\nR;STATUS=+C3:<a>\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\n\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\n.\nx\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\n${x\n.\n",
            b"V1-mailtool\nT1\nS<>\nI0\n\xff\n.\n",
        ] {
            assert!(
                matches!(Envelope::parse_qf(bad), Err(QfError::Corrupt(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(Envelope::parse_qf(b"V1-mailtool\nT1\nS<>\nI0\n.\n").is_ok());
    }

    #[test]
    fn store_read_update_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mqueue");
        let spool = Spool::open(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let mut m = msg(
            "s@example.com",
            &["r1@example.org", "r2@example.org"],
            b"Subject: hi\n\nbody\n",
        );
        m.envelope.body_type = Some(Body::SevenBit);
        let id = spool.store(m).unwrap();
        assert_eq!(
            id.as_str().len(),
            8 + format!("{:06}", std::process::id()).len()
        );
        assert_eq!(names(&dir), vec![format!("df{id}"), format!("qf{id}")]);
        assert_eq!(
            fs::read(spool.data_path(&id)).unwrap(),
            b"Subject: hi\n\nbody\n"
        );
        assert_eq!(
            fs::metadata(spool.data_path(&id))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let env = spool.read_envelope(&id).unwrap();
        assert_eq!(env.size, 18);
        assert!(env.created > 1_600_000_000);
        assert_eq!(env.recipients.len(), 2);

        let env = spool
            .update(&id, |e| {
                e.recipients[0].state = RcptState::Sent;
                e.recipients[1].status = Some("Deferred: Connection refused".into());
                e.status_message = Some("Deferred: Connection refused".into());
                e.tries += 1;
                e.size = 999_999; // ignored
            })
            .unwrap();
        assert_eq!(env.size, 18);
        let back = spool.read_envelope(&id).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.pending_recipients().count(), 1);
        assert_eq!(names(&dir).len(), 2, "no tf left");

        let list = spool.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].df_size, 18);
        assert!(!list[0].locked);

        spool.remove(&id).unwrap();
        assert!(names(&dir).is_empty());
        assert!(matches!(spool.remove(&id), Err(SpoolError::NotFound(_))));
        assert!(matches!(
            spool.read_envelope(&id),
            Err(SpoolError::NotFound(_))
        ));
        assert!(matches!(
            spool.update(&id, |_| {}),
            Err(SpoolError::NotFound(_))
        ));
    }

    #[test]
    fn preset_id_is_used_and_never_clobbers() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::open(tmp.path()).unwrap();
        let id = QueueId::allocate();
        let mut m = msg("a@x", &["r@y"], b"first");
        m.id = Some(id.clone());
        assert_eq!(spool.store(m).unwrap(), id);
        let mut again = msg("b@x", &["r@y"], b"second");
        again.id = Some(id.clone());
        let err = spool.store(again).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(fs::read(spool.data_path(&id)).unwrap(), b"first");
        assert_eq!(spool.read_envelope(&id).unwrap().sender, "a@x");
        // A stale tf under a preset id fails too, without leaving a df behind.
        let other = QueueId::allocate();
        fs::write(tmp.path().join(format!("tf{other}")), "x").unwrap();
        let mut m = msg("c@x", &["r@y"], b"third");
        m.id = Some(other.clone());
        assert_eq!(
            spool.store(m).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        assert!(!spool.data_path(&other).exists());
    }

    #[test]
    fn invalid_envelope_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::open(tmp.path()).unwrap();
        let err = spool.store(msg("bad\n@x", &["r@y"], b"x")).unwrap_err();
        assert!(matches!(err, SpoolError::Invalid(_)));
        assert!(names(tmp.path()).is_empty());
        // The batch machinery still works afterwards.
        spool.store(msg("ok@x", &["r@y"], b"x")).unwrap();
    }

    #[test]
    fn io_error_is_typed_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("q");
        let spool = Spool::open(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let err = spool.store(msg("a@x", &["r@y"], b"x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(err.smtp_status(), (451, "4.3.0"));
        let full = SpoolError::io(
            "write",
            Path::new("/x"),
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(full.smtp_status(), (452, "4.3.1"));
        assert_eq!(full.to_string(), "write /x: No space left on device");
    }

    #[test]
    fn owner_lock_and_attach() {
        let tmp = tempfile::tempdir().unwrap();
        let owner = Spool::open(tmp.path()).unwrap();
        assert!(matches!(
            Spool::open(tmp.path()),
            Err(SpoolError::Locked(_))
        ));
        let id = owner.store(msg("a@x", &["r@y"], b"data")).unwrap();
        let reader = Spool::attach(tmp.path()).unwrap();
        assert_eq!(reader.list().unwrap()[0].id, id);
        drop(owner);
        let again = Spool::open(tmp.path()).unwrap();
        assert!(again.recovery_report().removed.is_empty());
        assert!(Spool::attach(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn message_lock_shows_in_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Spool::open(tmp.path()).unwrap();
        let id = spool.store(msg("a@x", &["r@y"], b"data")).unwrap();
        let lock = spool.try_lock(&id).unwrap().expect("free");
        assert_eq!(lock.id(), &id);
        assert!(spool.try_lock(&id).unwrap().is_none());
        assert!(spool.is_locked(&id));
        assert!(spool.list().unwrap()[0].locked);
        // Probing does not disturb the holder or a later locker.
        drop(lock);
        assert!(!spool.is_locked(&id));
        assert!(!spool.list().unwrap()[0].locked);
        assert!(spool.try_lock(&id).unwrap().is_some());
    }

    #[test]
    fn concurrent_stores_are_unique_and_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let spool = Arc::new(Spool::open(tmp.path()).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let spool = Arc::clone(&spool);
                std::thread::spawn(move || {
                    (0..25)
                        .map(|i| {
                            spool
                                .store(msg(
                                    &format!("t{t}@x"),
                                    &["r@y"],
                                    format!("m{t}-{i}").as_bytes(),
                                ))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ids: Vec<QueueId> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert_eq!(spool.list().unwrap().len(), 200);
        for id in &ids {
            assert!(
                fs::read_to_string(spool.data_path(id))
                    .unwrap()
                    .starts_with('m')
            );
        }
    }

    #[test]
    fn every_sync_mode_stores() {
        for (sync, parallel_writes) in [
            (SyncMode::Syncfs, false),
            (SyncMode::Syncfs, true),
            (SyncMode::FsyncBatch, false),
            (SyncMode::PerMessage, false),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let opts = SpoolOptions {
                sync,
                parallel_writes,
            };
            let spool = Arc::new(Spool::open_with(tmp.path(), opts).unwrap());
            let handles: Vec<_> = (0..4)
                .map(|t| {
                    let spool = Arc::clone(&spool);
                    std::thread::spawn(move || {
                        for i in 0..5 {
                            spool
                                .store(msg(&format!("{t}@x"), &["r@y"], format!("{i}").as_bytes()))
                                .unwrap();
                        }
                        spool.store(msg("bad\r@x", &["r@y"], b"x")).unwrap_err();
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(spool.list().unwrap().len(), 20, "{sync:?}");
            assert_eq!(names(tmp.path()).len(), 40, "{sync:?}");
        }
    }

    #[test]
    fn crash_recovery_removes_exactly_the_unacknowledged() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let spool = Spool::open(dir).unwrap();
        let keep1 = spool.store(msg("a@x", &["r@y"], b"one")).unwrap();
        let keep2 = spool.store(msg("b@x", &["r@y"], b"two two")).unwrap();
        drop(spool);

        let now = now_unix() as i64;
        let fake = |n: u32| QueueId::compose(now, n, std::process::id());
        let complete = |size: u64| {
            let mut e = Envelope::new("c@x", vec![Recipient::new("r@y")]);
            e.created = now as u64;
            e.size = size;
            e.to_qf().unwrap()
        };
        // (a) crash after df, before tf.
        let a = fake(1);
        fs::write(dir.join(format!("df{a}")), b"partial").unwrap();
        // (b) crash after df and tf, before rename.
        let b = fake(2);
        fs::write(dir.join(format!("df{b}")), b"12345").unwrap();
        fs::write(dir.join(format!("tf{b}")), complete(5)).unwrap();
        // (c) qf without the final '.' line.
        let c = fake(3);
        fs::write(dir.join(format!("df{c}")), b"12345").unwrap();
        let text = complete(5);
        fs::write(dir.join(format!("qf{c}")), &text[..text.len() - 2]).unwrap();
        // (d) qf complete, df shorter than I (data lost in the crash).
        let d = fake(4);
        fs::write(dir.join(format!("df{d}")), b"12").unwrap();
        fs::write(dir.join(format!("qf{d}")), complete(5)).unwrap();
        // (e) qf complete, df missing.
        let e = fake(5);
        fs::write(dir.join(format!("qf{e}")), complete(5)).unwrap();
        // (f) a stale tf of an update of a kept message.
        fs::write(dir.join(format!("tf{keep1}")), "V1-mail").unwrap();
        // (g) corrupt but complete qf: kept and reported, not listed.
        let g = fake(7);
        fs::write(dir.join(format!("df{g}")), b"12345").unwrap();
        fs::write(
            dir.join(format!("qf{g}")),
            "V1-mailtool\nTnot-a-number\n.\n",
        )
        .unwrap();
        // Unrelated files are not touched.
        fs::write(dir.join("xfREADME"), b"x").unwrap();

        let spool = Spool::open(dir).unwrap();
        let report = spool.recovery_report();
        let mut removed: Vec<&str> = report.removed.iter().map(|(n, _)| n.as_str()).collect();
        removed.sort();
        let mut expected = vec![
            format!("df{a}"),
            format!("df{b}"),
            format!("tf{b}"),
            format!("df{c}"),
            format!("qf{c}"),
            format!("df{d}"),
            format!("qf{d}"),
            format!("qf{e}"),
            format!("tf{keep1}"),
        ];
        expected.sort();
        assert_eq!(removed, expected);
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(report.corrupt[0].0, format!("qf{g}"));

        let mut left = names(dir);
        left.sort();
        let mut want = vec![
            format!("df{keep1}"),
            format!("qf{keep1}"),
            format!("df{keep2}"),
            format!("qf{keep2}"),
            format!("df{g}"),
            format!("qf{g}"),
            "xfREADME".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);

        let scan = spool.scan().unwrap();
        let ids: Vec<&QueueId> = scan.messages.iter().map(|m| &m.id).collect();
        assert_eq!(ids, vec![&keep1, &keep2]); // priority: smaller message first
        assert_eq!(scan.problems.len(), 1);
        assert_eq!(spool.list().unwrap().len(), 2);
        assert_eq!(fs::read(spool.data_path(&keep2)).unwrap(), b"two two");
    }

    #[test]
    fn recovery_spares_files_of_live_foreign_writers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::create_dir_all(dir).unwrap();
        // pid 1 is always alive: a client process writing into the spool right now.
        let id = QueueId::compose(now_unix() as i64, 9, 1);
        fs::write(dir.join(format!("df{id}")), b"in flight").unwrap();
        fs::write(dir.join(format!("tf{id}")), b"V1-mailtool\n").unwrap();
        let spool = Spool::open(dir).unwrap();
        assert!(spool.recovery_report().removed.is_empty());
        assert_eq!(names(dir).len(), 2);
    }

    fn bench(mode: SyncMode, total: usize, threads: usize) -> f64 {
        let base = std::env::var_os("SPOOL_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let tmp = tempfile::tempdir_in(base).unwrap();
        let parallel_writes = std::env::var_os("SPOOL_BENCH_PARALLEL_WRITES").is_some();
        let spool = Arc::new(
            Spool::open_with(
                tmp.path(),
                SpoolOptions {
                    sync: mode,
                    parallel_writes,
                },
            )
            .unwrap(),
        );
        let data = Arc::new(vec![b'x'; 1024]);
        let start = Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let spool = Arc::clone(&spool);
                let data = Arc::clone(&data);
                std::thread::spawn(move || {
                    for i in 0..total / threads {
                        let m = NewMessage {
                            envelope: Envelope::new(
                                format!("s{t}@example.com"),
                                vec![Recipient::new(format!("r{i}@example.org"))],
                            ),
                            data: data.to_vec().into(),
                            id: None,
                        };
                        spool.store(m).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = total as f64 / secs;
        println!(
            "{mode:?} (parallel_writes {parallel_writes}): {total} x 1 KB from {threads} threads in {secs:.2} s = {rate:.0} messages/s"
        );
        let t = Instant::now();
        assert_eq!(spool.list().unwrap().len(), total / threads * threads);
        println!("  list of {total}: {:.3} s", t.elapsed().as_secs_f64());
        let t = Instant::now();
        drop(spool);
        drop(tmp);
        println!("  cleanup: {:.3} s", t.elapsed().as_secs_f64());
        rate
    }

    /// `cargo test --release -- --ignored --nocapture group_commit_benchmark`
    #[test]
    #[ignore]
    fn group_commit_benchmark() {
        let threads = std::env::var("SPOOL_BENCH_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let modes = std::env::var("SPOOL_BENCH_MODES")
            .unwrap_or_else(|_| "syncfs,fsync-batch,per-message".into());
        for mode in modes.split(',') {
            let mode = match mode {
                "syncfs" => SyncMode::Syncfs,
                "fsync-batch" => SyncMode::FsyncBatch,
                _ => SyncMode::PerMessage,
            };
            bench(mode, 5000, threads);
        }
    }
}
