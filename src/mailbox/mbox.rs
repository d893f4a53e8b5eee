//! Appending to an mbox the way mail.local does: under [`MboxLock`], From_ line and `>From `
//! quoting ([`super::encode`]), fsync, and on any failure the file is cut back to its old size
//! so no partial message is ever left behind.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::lock::{Create, MboxLock};
use super::{Delivered, LocalError, LocalMessage, LocalOptions, check_max_size, encode};

/// Delivers `msg` to the mbox at `path`, creating it (mode and owner from `opts`) if missing.
pub fn deliver(
    path: &Path,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
) -> Result<Delivered, LocalError> {
    deliver_many(path, std::slice::from_ref(msg), opts)
        .pop()
        .unwrap_or_else(|| Err(LocalError::io("append", path, io::ErrorKind::Other.into())))
}

/// Delivers several messages to the mbox at `path` under one lock and one fsync: a group
/// commit for the mailbox, as the spool has one. Each message gets its own result. One over the
/// size limit or the quota fails alone; a write error cuts the file back to before that entry
/// and fails it alone; a failed fsync cuts the whole batch back and fails every entry written.
/// Nothing counts as delivered before the fsync that covers it. When no message is within the
/// size limit, the mbox is neither locked nor created.
pub fn deliver_many(
    path: &Path,
    msgs: &[LocalMessage<'_>],
    opts: &LocalOptions,
) -> Vec<Result<Delivered, LocalError>> {
    let mut results: Vec<Result<Delivered, LocalError>> = msgs
        .iter()
        .map(|msg| {
            check_max_size(msg, opts)?;
            // Placeholder until the entry is written below.
            Ok(Delivered {
                path: path.to_path_buf(),
                bytes: 0,
            })
        })
        .collect();
    if !results.iter().any(Result::is_ok) {
        return results;
    }
    let create = Create {
        mode: opts.create_mode,
        owner: opts.owner,
    };
    let fail_all = |results: &mut Vec<Result<Delivered, LocalError>>, e: LocalError| {
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(e.clone());
        }
    };
    let lock = match MboxLock::acquire_with(path, opts.lock_timeout, true, Some(create)) {
        Ok(l) => l,
        Err(e) => {
            fail_all(&mut results, e);
            return results;
        }
    };
    let Some(file) = lock.file() else {
        let e = LocalError::io("open", path, io::Error::from(io::ErrorKind::NotFound));
        fail_all(&mut results, e);
        return results;
    };
    let mut batch_start = None;
    for (msg, r) in msgs.iter().zip(results.iter_mut()) {
        if r.is_err() {
            continue;
        }
        *r = write_entry(&lock, file, msg, opts, |f| f).map(|(start, bytes)| {
            batch_start.get_or_insert(start);
            Delivered {
                path: path.to_path_buf(),
                bytes,
            }
        });
    }
    if let Some(start) = batch_start
        && let Err(e) = file.sync_all()
    {
        cut_back(file, path, start);
        fail_all(&mut results, LocalError::io("fsync", path, e));
    }
    results
}

/// Appends one entry to the locked mbox and fsyncs it (also used for `/file` targets).
pub(crate) fn append(
    lock: &MboxLock,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
) -> Result<Delivered, LocalError> {
    append_via(lock, msg, opts, |f| f)
}

/// [`append`] with the writer made by `wrap` (tests put a failing writer in between).
fn append_via<'f, W: Write>(
    lock: &'f MboxLock,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
    wrap: impl FnOnce(&'f File) -> W,
) -> Result<Delivered, LocalError> {
    let path = lock.path();
    let file = lock
        .file()
        .ok_or_else(|| LocalError::io("open", path, io::Error::from(io::ErrorKind::NotFound)))?;
    let (start, bytes) = write_entry(lock, file, msg, opts, wrap)?;
    if let Err(e) = file.sync_all() {
        cut_back(file, path, start);
        return Err(LocalError::io("fsync", path, e));
    }
    Ok(Delivered {
        path: path.to_path_buf(),
        bytes,
    })
}

/// Writes one entry at the end of the locked mbox, without fsync: separator, quota check,
/// From_ line, quoted message. Returns where it began and its length. On a write error the
/// file is cut back to where it was.
fn write_entry<'f, W: Write>(
    lock: &'f MboxLock,
    file: &'f File,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
    wrap: impl FnOnce(&'f File) -> W,
) -> Result<(u64, u64), LocalError> {
    let path = lock.path();
    let start = file
        .metadata()
        .map_err(|e| LocalError::io("fstat", path, e))?
        .len();
    let sep = separator(file, start).map_err(|e| LocalError::io("read", path, e))?;
    let offset = encode::local_utc_offset(msg.arrival);
    if opts.quota > 0 {
        // A dry run of the encoding: one more read of a large message, only when it matters.
        let size = sep.len() as u64
            + encode::mbox_entry_len(msg, offset).map_err(|e| LocalError::io("read", path, e))?;
        check_quota(path, opts.quota, start, size)?;
    }
    set_append(file).map_err(|e| LocalError::io("fcntl", path, e))?;
    let written = (|| {
        let mut w = BufWriter::with_capacity(64 * 1024, wrap(file));
        w.write_all(sep)?;
        let n = encode::write_mbox_entry(&mut w, msg, offset)?;
        w.flush()?;
        Ok::<u64, io::Error>(n + sep.len() as u64)
    })();
    written.map(|n| (start, n)).map_err(|e| {
        // Cut off whatever part got written: the mbox is as it was, the queue retries.
        cut_back(file, path, start);
        LocalError::io("write", path, e)
    })
}

/// Truncates the mbox back to `len` bytes after a failed append.
fn cut_back(file: &File, path: &Path, len: u64) {
    if let Err(te) = file.set_len(len).and_then(|()| file.sync_all()) {
        tracing::error!(
            "{}: cannot truncate to {len} bytes after a failed append: {te}",
            path.display()
        );
    }
}

fn check_quota(path: &Path, quota: u64, used: u64, size: u64) -> Result<(), LocalError> {
    if used.saturating_add(size) > quota {
        return Err(LocalError::QuotaExceeded {
            path: path.to_path_buf(),
            quota,
            used,
            size,
        });
    }
    Ok(())
}

/// What goes before a new From_ line so it starts a message of its own: nothing for an empty
/// file or one ending in a blank line, else enough newlines to end the last line and leave a
/// blank one (a file written by a careless program may lack them).
fn separator(file: &File, len: u64) -> io::Result<&'static [u8]> {
    if len == 0 {
        return Ok(b"");
    }
    let mut tail = [0u8; 2];
    let want = len.min(2) as usize;
    file.read_exact_at(&mut tail[..want], len - want as u64)?;
    let tail = &tail[..want];
    Ok(if !tail.ends_with(b"\n") {
        b"\n\n"
    } else if tail == b"\n" || tail == b"\n\n" {
        b""
    } else {
        b"\n"
    })
}

/// O_APPEND for the write, so even a writer that ignores the locks cannot be overwritten.
use crate::sys::fs::set_append;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn msg(data: &[u8]) -> LocalMessage<'_> {
        LocalMessage {
            envelope_sender: "joe@example.org",
            arrival: UNIX_EPOCH + Duration::from_secs(1_795_860_000),
            data: data.into(),
            prepend: b"Return-Path: <joe@example.org>\n",
        }
    }

    fn opts() -> LocalOptions {
        LocalOptions {
            lock_timeout: Duration::from_secs(5),
            ..LocalOptions::default()
        }
    }

    #[test]
    fn creates_and_appends() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        let d1 = deliver(&mbox, &msg(b"Subject: one\n\nFrom me\n"), &opts()).unwrap();
        let d2 = deliver(&mbox, &msg(b"Subject: two\n\nno newline"), &opts()).unwrap();
        let text = fs::read_to_string(&mbox).unwrap();
        assert_eq!(text.len() as u64, d1.bytes + d2.bytes);
        assert_eq!(text.matches("\nFrom ").count(), 1);
        assert!(text.starts_with("From joe@example.org "));
        assert!(text.contains("\n>From me\n\nFrom joe@example.org "));
        assert!(text.ends_with("\nno newline\n\n"));
        let mode = fs::metadata(&mbox).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!lock_path(&mbox).exists());
    }

    fn lock_path(mbox: &Path) -> std::path::PathBuf {
        super::super::lock::dotlock_path(mbox)
    }

    #[test]
    fn a_file_without_final_blank_line_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        fs::write(&mbox, "From a Sat Nov 28 10:00:00 2026\n\nbody").unwrap();
        deliver(&mbox, &msg(b"S: x\n\nb\n"), &opts()).unwrap();
        let text = fs::read_to_string(&mbox).unwrap();
        assert!(text.contains("\nbody\n\nFrom joe@example.org "), "{text}");
        fs::write(&mbox, "From a Sat Nov 28 10:00:00 2026\n\nbody\n").unwrap();
        deliver(&mbox, &msg(b"S: x\n\nb\n"), &opts()).unwrap();
        let text = fs::read_to_string(&mbox).unwrap();
        assert!(text.contains("\nbody\n\nFrom joe@example.org "), "{text}");
    }

    #[test]
    fn max_size_is_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        let o = LocalOptions {
            max_size: 40,
            ..opts()
        };
        let e = deliver(&mbox, &msg(b"Subject: big\n\n0123456789\n"), &o).unwrap_err();
        assert!(!e.is_temporary());
        assert_eq!(
            e.status(),
            ("5.2.3", "Message is too large; 40 bytes max".into())
        );
        assert!(!mbox.exists());
    }

    #[test]
    fn quota_is_temporary_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        let o = LocalOptions {
            quota: 150,
            ..opts()
        };
        deliver(&mbox, &msg(b"S: 1\n\nx\n"), &o).unwrap();
        let before = fs::read(&mbox).unwrap();
        let e = deliver(&mbox, &msg(b"S: 2\n\nlonger body, over quota\n"), &o).unwrap_err();
        assert!(e.is_temporary());
        assert_eq!(e.status().0, "4.2.2");
        assert_eq!(fs::read(&mbox).unwrap(), before);
    }

    /// Passes `left` bytes through, then fails like a full disk.
    struct FailAfter<'a> {
        inner: &'a File,
        left: usize,
    }

    impl Write for FailAfter<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.left);
            let n = self.inner.write(&buf[..n])?;
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failure_mid_write_truncates_back() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        deliver(&mbox, &msg(b"S: 1\n\nfirst\n"), &opts()).unwrap();
        let before = fs::read(&mbox).unwrap();
        let big = vec![b'a'; 200_000];
        let create = Create {
            mode: 0o600,
            owner: None,
        };
        let lock = MboxLock::acquire_with(&mbox, Duration::ZERO, true, Some(create)).unwrap();
        let e = append_via(&lock, &msg(&big), &opts(), |f| FailAfter {
            inner: f,
            left: 100_000,
        })
        .unwrap_err();
        drop(lock);
        assert!(e.is_temporary());
        assert_eq!(e.status().0, "4.3.1");
        assert_eq!(fs::read(&mbox).unwrap(), before);
        // And the next delivery is clean.
        deliver(&mbox, &msg(b"S: 2\n\nsecond\n"), &opts()).unwrap();
        let text = fs::read_to_string(&mbox).unwrap();
        assert_eq!(text.matches("From joe@example.org ").count(), 2);
    }

    #[test]
    fn symlinked_mailbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("passwd");
        fs::write(&target, b"root:x:0:0\n").unwrap();
        let mbox = dir.path().join("joe");
        std::os::unix::fs::symlink(&target, &mbox).unwrap();
        let e = deliver(&mbox, &msg(b"S: x\n\nb\n"), &opts()).unwrap_err();
        assert!(!e.is_temporary());
        assert_eq!(e.status().0, "5.2.0");
        assert_eq!(fs::read(&target).unwrap(), b"root:x:0:0\n");
        // A dangling symlink must not create its target either.
        fs::remove_file(&target).unwrap();
        assert!(deliver(&mbox, &msg(b"S: x\n\nb\n"), &opts()).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn lock_timeout_is_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        let _held = MboxLock::acquire(&mbox, Duration::ZERO).unwrap();
        let o = LocalOptions {
            lock_timeout: Duration::from_millis(50),
            ..opts()
        };
        let e = deliver(&mbox, &msg(b"S: x\n\nb\n"), &o).unwrap_err();
        assert!(e.is_temporary());
        assert_eq!(e.status().0, "4.2.0");
        assert!(!mbox.exists());
    }

    #[test]
    fn unwritable_or_missing_directory_is_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let e = deliver(&dir.path().join("gone/joe"), &msg(b"S: x\n\nb\n"), &opts()).unwrap_err();
        assert!(e.is_temporary(), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        // Root ignores permission bits, so the read-only case only runs as a normal user.
        // SAFETY: geteuid has no preconditions.
        if !crate::sys::is_root() {
            let ro = dir.path().join("ro");
            fs::create_dir(&ro).unwrap();
            fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
            let e = deliver(&ro.join("joe"), &msg(b"S: x\n\nb\n"), &opts()).unwrap_err();
            fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
            assert!(e.is_temporary(), "{e}");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES));
        }
    }

    #[test]
    fn owner_of_new_mailbox_and_wrong_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        let as_daemon = LocalOptions {
            owner: Some((1, 1)),
            ..opts()
        };
        deliver(&mbox, &msg(b"S: x\n\nb\n"), &as_daemon).unwrap();
        let meta = fs::metadata(&mbox).unwrap();
        // SAFETY: geteuid has no preconditions.
        if crate::sys::is_root() {
            assert_eq!((meta.uid(), meta.gid()), (1, 1));
            // Someone else's file at the user's mailbox path is not written to.
            let other = LocalOptions {
                owner: Some((2, 2)),
                ..opts()
            };
            let e = deliver(&mbox, &msg(b"S: y\n\nb\n"), &other).unwrap_err();
            assert!(
                matches!(
                    e,
                    LocalError::Irregular {
                        reason: "wrong ownership",
                        ..
                    }
                ),
                "{e}"
            );
            assert!(!e.is_temporary());
        } else {
            // Not root: no chown, the file is ours.
            // SAFETY: geteuid has no preconditions.
            assert_eq!(meta.uid(), crate::sys::process::euid());
        }
    }

    // The mailbox group commit: one lock and one fsync for the batch, a result per message,
    // and a message that cannot go in (too large) fails alone.
    #[test]
    fn deliver_many_appends_each_and_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        fs::write(
            &mbox,
            "From old Sat Nov 28 10:00:00 2026\nSubject: old\n\nold\n\n",
        )
        .unwrap();
        let big = vec![b'x'; 5000];
        let msgs = [
            msg(b"Subject: one\n\nFrom me\n"),
            msg(&big),
            msg(b"Subject: three\n\nbye\n"),
        ];
        let o = LocalOptions {
            max_size: 1000,
            ..opts()
        };
        let r = deliver_many(&mbox, &msgs, &o);
        assert_eq!(r.len(), 3);
        assert!(r[0].is_ok() && r[2].is_ok(), "{r:?}");
        assert!(matches!(r[1], Err(LocalError::TooLarge { .. })), "{r:?}");
        let text = fs::read_to_string(&mbox).unwrap();
        assert_eq!(text.matches("\nFrom joe@example.org ").count(), 2, "{text}");
        assert!(text.contains("Subject: one\n\n>From me\n"), "{text}");
        assert!(text.ends_with("Subject: three\n\nbye\n\n"), "{text}");
        assert_eq!(
            r[0].as_ref().unwrap().bytes + r[2].as_ref().unwrap().bytes,
            text.len() as u64
                - "From old Sat Nov 28 10:00:00 2026\nSubject: old\n\nold\n\n".len() as u64
        );
        // An mbox that cannot be locked fails every message of the batch.
        let r = deliver_many(&dir.path().join("no/such/dir/joe"), &msgs, &o);
        assert!(r.iter().all(Result::is_err), "{r:?}");
    }

    #[test]
    fn arrival_time_is_in_the_from_line() {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("joe");
        let m = LocalMessage {
            envelope_sender: "",
            arrival: SystemTime::now(),
            data: b"S: x\n\nb\n".into(),
            prepend: b"",
        };
        deliver(&mbox, &m, &opts()).unwrap();
        let text = fs::read_to_string(&mbox).unwrap();
        let first = text.lines().next().unwrap();
        let offset = encode::local_utc_offset(m.arrival);
        assert_eq!(
            first,
            format!("From MAILER-DAEMON {}", encode::asctime(m.arrival, offset))
        );
    }
}
