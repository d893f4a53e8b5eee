//! Mailbox locking shared by local delivery and the POP3 server: a dotlock `MBOX.lock` plus an
//! fcntl write lock on the mbox, the pair that mutt, mailx, qpopper, procmail and Python's
//! `mailbox.mbox` each check at least one of (docs/sendmail-compat.md §10.4).
//!
//! Order: dotlock first, then the mbox is opened and fcntl-locked, as mail.local does. The
//! dotlock is what keeps mailtool's own threads apart; the fcntl lock is for readers that only
//! use fcntl. On Linux the fcntl lock is an open-file-description lock (`F_OFD_SETLK`): it
//! conflicts with classic `fcntl`/`lockf` locks of other programs, but unlike those it also
//! conflicts between threads of one process and is not dropped when another descriptor of the
//! same file is closed, both of which a threaded server needs.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{LocalError, chown_new, sync_dir};

/// A dotlock older than this whose mbox nobody holds an fcntl lock on is removed, as
/// mail.local and liblockfile do. Holders for longer must call [`MboxLock::touch`].
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// Longest pause between two attempts at a busy lock.
const MAX_BACKOFF: Duration = Duration::from_millis(50);

/// How a missing mbox is created while the dotlock is held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Create {
    pub mode: u32,
    pub owner: Option<(u32, u32)>,
}

/// A held mailbox lock: the dotlock `PATH.lock` and an fcntl write lock on `PATH`, both
/// released on drop. A POP3 session holds one from login to QUIT.
#[derive(Debug)]
pub struct MboxLock {
    path: PathBuf,
    // Field order is drop order: the fcntl lock (closing the file) goes before the dotlock.
    file: Option<File>,
    dot: Option<DotLock>,
}

impl MboxLock {
    /// Takes the dotlock and the fcntl lock on the mbox at `path`, retrying busy locks until
    /// `timeout` (`Duration::ZERO`: one attempt, for POP3's `-ERR [IN-USE]`). A missing mbox is
    /// not created: the lock then holds only the dotlock and [`MboxLock::file`] is `None`.
    /// A symlink or otherwise irregular mbox is refused ([`LocalError::Irregular`]).
    pub fn acquire(path: &Path, timeout: Duration) -> Result<MboxLock, LocalError> {
        Self::acquire_with(path, timeout, true, None)
    }

    /// The general form: `dotlock` false takes only the fcntl lock (`/file` targets, whose
    /// directory may not be writable); `create` makes a missing mbox under the lock.
    pub(crate) fn acquire_with(
        path: &Path,
        timeout: Duration,
        dotlock: bool,
        create: Option<Create>,
    ) -> Result<MboxLock, LocalError> {
        let deadline = Instant::now() + timeout;
        let dot = if dotlock {
            Some(DotLock::acquire(path, deadline)?)
        } else {
            None
        };
        // The loop covers the mbox being created, removed or replaced while we waited.
        loop {
            let Some(file) = open_mailbox(path, create)? else {
                return Ok(MboxLock {
                    path: path.to_path_buf(),
                    file: None,
                    dot,
                });
            };
            fcntl_lock(&file, path, deadline)?;
            if same_file(&file, path) {
                return Ok(MboxLock {
                    path: path.to_path_buf(),
                    file: Some(file),
                    dot,
                });
            }
        }
    }

    /// The mbox path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The locked mbox, opened read-write; `None` if it did not exist.
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// Refreshes the dotlock's time so it is not taken for stale (qpopper's `-L`): a holder of
    /// more than a minute or two should call it now and then.
    pub fn touch(&self) -> Result<(), LocalError> {
        match &self.dot {
            Some(d) => d
                .file
                .set_modified(SystemTime::now())
                .map_err(|e| LocalError::io("utime", &d.path, e)),
            None => Ok(()),
        }
    }
}

/// `PATH.lock`, created with O_EXCL, removed on drop if it is still ours.
#[derive(Debug)]
struct DotLock {
    path: PathBuf,
    file: File,
}

impl DotLock {
    fn acquire(mbox: &Path, deadline: Instant) -> Result<DotLock, LocalError> {
        let path = dotlock_path(mbox);
        let mut pause = Duration::from_millis(5);
        loop {
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path);
            match opened {
                Ok(mut file) => {
                    // The pid is for people looking at a stuck lock, as liblockfile writes it.
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(DotLock { path, file });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if is_stale(&path, mbox) {
                        // Another waiter may remove it first; either way we try again at once.
                        // If it cannot be removed, wait like for a live lock.
                        match fs::remove_file(&path) {
                            Ok(()) => continue,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(_) => {}
                        }
                    }
                }
                Err(e) => return Err(LocalError::io("create lock file", &path, e)),
            }
            pause = wait(pause, deadline).ok_or_else(|| LocalError::LockTimeout {
                path: mbox.to_path_buf(),
                what: "dotlock",
            })?;
        }
    }
}

impl Drop for DotLock {
    fn drop(&mut self) {
        // Only our own file: if ours was judged stale and replaced, the new one is not ours.
        let ours = match (fs::symlink_metadata(&self.path), self.file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `PATH.lock`.
pub fn dotlock_path(mbox: &Path) -> PathBuf {
    let mut s = OsString::from(mbox.as_os_str());
    s.push(".lock");
    PathBuf::from(s)
}

/// Sleeps before the next attempt; `None` once the deadline has passed. Returns the next pause.
fn wait(pause: Duration, deadline: Instant) -> Option<Duration> {
    let now = Instant::now();
    if now >= deadline {
        return None;
    }
    std::thread::sleep(pause.min(deadline - now));
    Some((pause * 2).min(MAX_BACKOFF))
}

/// A dotlock is stale when it is older than [`STALE_AFTER`] and nobody holds an fcntl lock on
/// the mbox (a live POP3 session does, even if it forgot to touch the dotlock).
fn is_stale(lock: &Path, mbox: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(lock) else {
        return false;
    };
    let old = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age > STALE_AFTER);
    old && !fcntl_locked_by_anyone(mbox)
}

/// Whether some process (or, with OFD locks, some other descriptor of ours) holds an fcntl
/// lock on `mbox` (always `false` without OFD locks: [`crate::sys::lock::write_locked`]).
fn fcntl_locked_by_anyone(mbox: &Path) -> bool {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(mbox)
        .is_ok_and(|f| crate::sys::lock::write_locked(&f))
}

/// Takes the fcntl write lock on the whole file, retrying until `deadline`.
fn fcntl_lock(file: &File, path: &Path, deadline: Instant) -> Result<(), LocalError> {
    let mut pause = Duration::from_millis(5);
    loop {
        match crate::sys::lock::try_write_lock(file) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(LocalError::io("fcntl lock", path, e)),
        }
        pause = wait(pause, deadline).ok_or_else(|| LocalError::LockTimeout {
            path: path.to_path_buf(),
            what: "fcntl lock",
        })?;
    }
}

/// Whether `path` still names the file we opened (it may have been renamed over or removed
/// by a program that rewrote the mbox while we waited for the fcntl lock).
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Opens the mbox read-write without following a symlink, creating it when asked; checks it
/// is a regular file with one link (and, as root with an owner, that owner's): what mail.local
/// checks before it writes.
fn open_mailbox(path: &Path, create: Option<Create>) -> Result<Option<File>, LocalError> {
    // O_NONBLOCK: opening a FIFO planted as a mailbox must not hang; no effect on files.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    let file = loop {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(path)
        {
            Ok(f) => break f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(LocalError::Irregular {
                    path: path.to_path_buf(),
                    reason: "symbolic link",
                });
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::ENXIO)) => {
                return Err(LocalError::Irregular {
                    path: path.to_path_buf(),
                    reason: "irregular file",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(c) = create else {
                    return Ok(None);
                };
                match OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(c.mode)
                    .custom_flags(flags)
                    .open(path)
                {
                    Ok(f) => {
                        chown_new(path, c.owner)?;
                        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
                        break f;
                    }
                    // Created by someone who does not use the dotlock: open theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(LocalError::io("create", path, e)),
                }
            }
            Err(e) => return Err(LocalError::io("open", path, e)),
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| LocalError::io("fstat", path, e))?;
    let irregular = |reason| {
        Err(LocalError::Irregular {
            path: path.to_path_buf(),
            reason,
        })
    };
    if !meta.file_type().is_file() {
        return irregular("irregular file");
    }
    if meta.nlink() != 1 {
        return irregular("linked file");
    }
    if let Some((uid, _)) = create.and_then(|c| c.owner)
        && crate::sys::is_root()
        && meta.uid() != uid
    {
        return irregular("wrong ownership");
    }
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(path: &Path, secs: u64) {
        let f = File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn dotlock_and_fcntl_are_taken_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        fs::write(&mbox, b"").unwrap();
        let lock = MboxLock::acquire(&mbox, Duration::from_secs(1)).unwrap();
        assert!(lock.file().is_some());
        assert!(dotlock_path(&mbox).exists());
        assert!(fcntl_locked_by_anyone(&mbox));
        // A second taker times out on the dotlock, and a temporary error it is.
        let e = MboxLock::acquire(&mbox, Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(
                e,
                LocalError::LockTimeout {
                    what: "dotlock",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.is_temporary());
        lock.touch().unwrap();
        drop(lock);
        assert!(!dotlock_path(&mbox).exists());
        assert!(!fcntl_locked_by_anyone(&mbox));
        MboxLock::acquire(&mbox, Duration::ZERO).unwrap();
    }

    #[test]
    fn fcntl_lock_alone_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        fs::write(&mbox, b"").unwrap();
        // Someone holding only the fcntl lock (mutt without a writable spool dir, say).
        let holder = MboxLock::acquire_with(&mbox, Duration::ZERO, false, None).unwrap();
        let e = MboxLock::acquire(&mbox, Duration::from_millis(50)).unwrap_err();
        assert!(
            matches!(
                e,
                LocalError::LockTimeout {
                    what: "fcntl lock",
                    ..
                }
            ),
            "{e}"
        );
        // The dotlock taken before the fcntl attempt is released again.
        assert!(!dotlock_path(&mbox).exists());
        drop(holder);
    }

    #[test]
    fn stale_dotlock_is_removed_fresh_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        fs::write(&mbox, b"").unwrap();
        let lock = dotlock_path(&mbox);
        fs::write(&lock, b"12345\n").unwrap();
        assert!(MboxLock::acquire(&mbox, Duration::from_millis(30)).is_err());
        assert!(lock.exists());
        age(&lock, 600);
        let held = MboxLock::acquire(&mbox, Duration::from_millis(30)).unwrap();
        drop(held);
        assert!(!lock.exists());
    }

    #[test]
    fn old_dotlock_of_a_live_holder_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        fs::write(&mbox, b"").unwrap();
        let holder = MboxLock::acquire(&mbox, Duration::ZERO).unwrap();
        age(&dotlock_path(&mbox), 600);
        // Old, but the holder still has the fcntl lock: not stale.
        assert!(MboxLock::acquire(&mbox, Duration::from_millis(30)).is_err());
        drop(holder);
    }

    #[test]
    fn missing_mbox_holds_only_the_dotlock() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("nobody");
        let lock = MboxLock::acquire(&mbox, Duration::ZERO).unwrap();
        assert!(lock.file().is_none());
        assert!(!mbox.exists());
        assert!(dotlock_path(&mbox).exists());
    }

    #[test]
    fn symlinks_and_irregular_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"").unwrap();
        let link = dir.path().join("joe");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = MboxLock::acquire(&link, Duration::ZERO).unwrap_err();
        assert!(
            matches!(
                e,
                LocalError::Irregular {
                    reason: "symbolic link",
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.is_temporary());

        let hard = dir.path().join("hard");
        fs::hard_link(&target, &hard).unwrap();
        let e = MboxLock::acquire(&hard, Duration::ZERO).unwrap_err();
        assert!(
            matches!(
                e,
                LocalError::Irregular {
                    reason: "linked file",
                    ..
                }
            ),
            "{e}"
        );

        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let e = MboxLock::acquire(&sub, Duration::ZERO).unwrap_err();
        assert!(
            matches!(
                e,
                LocalError::Irregular {
                    reason: "irregular file",
                    ..
                }
            ),
            "{e}"
        );
    }
}
