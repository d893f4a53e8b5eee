//! `/file` alias targets (docs/sendmail-compat.md §2.6): appended in mbox format, with a From_ line, as
//! sendmail's mailfile() does.
//!
//! Differences from a mailbox, after sendmail: `/dev/null` swallows the message; only regular
//! files are written, and never one with an execute bit; the lock is the fcntl lock alone
//! (mailfile() takes no dotlock, and the file's directory, `/var/log` say, need not be
//! writable).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::lock::{Create, MboxLock};
use super::{Delivered, LocalError, LocalMessage, LocalOptions, check_max_size, mbox};

/// Appends `msg` to the file at `path` (absolute), creating it with `opts.create_mode`.
pub fn deliver(
    path: &Path,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
) -> Result<Delivered, LocalError> {
    if path == Path::new("/dev/null") {
        return Ok(Delivered {
            path: path.to_path_buf(),
            bytes: 0,
        });
    }
    if !path.is_absolute() {
        return Err(LocalError::Irregular {
            path: path.to_path_buf(),
            reason: "not an absolute path",
        });
    }
    check_max_size(msg, opts)?;
    let create = Create {
        mode: opts.create_mode,
        owner: opts.owner,
    };
    let lock = MboxLock::acquire_with(path, opts.lock_timeout, false, Some(create))?;
    if let Some(f) = lock.file() {
        let mode = f
            .metadata()
            .map_err(|e| LocalError::io("fstat", path, e))?
            .permissions()
            .mode();
        if mode & 0o111 != 0 {
            return Err(LocalError::Executable(path.to_path_buf()));
        }
    }
    mbox::append(&lock, msg, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, UNIX_EPOCH};

    fn msg() -> LocalMessage<'static> {
        LocalMessage {
            envelope_sender: "joe@example.org",
            arrival: UNIX_EPOCH + Duration::from_secs(1_795_860_000),
            data: b"Subject: log\n\nFrom the log\n".into(),
            prepend: b"",
        }
    }

    #[test]
    fn appends_in_mbox_format_without_dotlock() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("archive");
        deliver(&f, &msg(), &LocalOptions::default()).unwrap();
        deliver(&f, &msg(), &LocalOptions::default()).unwrap();
        let text = fs::read_to_string(&f).unwrap();
        assert!(text.starts_with("From joe@example.org "));
        assert_eq!(text.matches(">From the log\n").count(), 2);
        assert_eq!(text.matches("From joe@example.org ").count(), 2);
        // A dotlock held by someone does not block a file target. (Not Duration::ZERO: a
        // child another test thread forks may hold our descriptor for a moment before exec.)
        let _held = MboxLock::acquire(&f, Duration::from_secs(5)).unwrap();
        let e = deliver(
            &f,
            &msg(),
            &LocalOptions {
                lock_timeout: Duration::from_millis(50),
                ..LocalOptions::default()
            },
        )
        .unwrap_err();
        // ...but its fcntl lock does.
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
    }

    #[test]
    fn dev_null_executables_and_relative_paths() {
        let d = deliver(Path::new("/dev/null"), &msg(), &LocalOptions::default()).unwrap();
        assert_eq!(d.bytes, 0);
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        fs::write(&script, b"#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let e = deliver(&script, &msg(), &LocalOptions::default()).unwrap_err();
        assert!(!e.is_temporary());
        assert_eq!(fs::read(&script).unwrap(), b"#!/bin/sh\n");
        let e = deliver(Path::new("rel/file"), &msg(), &LocalOptions::default()).unwrap_err();
        assert!(!e.is_temporary());
        // Other devices are not regular files.
        let e = deliver(Path::new("/dev/zero"), &msg(), &LocalOptions::default()).unwrap_err();
        assert!(matches!(e, LocalError::Irregular { .. }), "{e}");
    }
}
