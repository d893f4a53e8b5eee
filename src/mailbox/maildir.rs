//! Maildir delivery (`mailbox_format = "maildir"`): the message is written to `tmp/` under a
//! unique name, fsynced, linked into `new/`, and `new/` is fsynced. No locks are needed and no
//! From_ line or quoting is written. The name follows the Maildir spec plus Maildir++'s size
//! field: `<secs>.M<usec>P<pid>Q<counter>.<host>,S=<size>`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    Delivered, LocalError, LocalMessage, LocalOptions, check_max_size, chown_new, encode, sync_dir,
};

/// Names to try before giving up when every one is taken (a clock stuck in the past, say).
const NAME_ATTEMPTS: usize = 16;

/// Delivers `msg` into the Maildir `dir`, creating `dir` and `tmp/`, `new/`, `cur/` (0700,
/// owned by `opts.owner` when running as root) if missing.
pub fn deliver(
    dir: &Path,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
) -> Result<Delivered, LocalError> {
    check_max_size(msg, opts)?;
    ensure_maildir(dir, opts.owner)?;
    // The size goes into the file name (Maildir++ `S=`), so it is known before writing.
    let size = encode::write_maildir_message(&mut io::sink(), msg)
        .map_err(|e| LocalError::io("read", dir, e))?;
    if opts.quota > 0 {
        let used = usage(dir)?;
        if used.saturating_add(size) > opts.quota {
            return Err(LocalError::QuotaExceeded {
                path: dir.to_path_buf(),
                quota: opts.quota,
                used,
                size,
            });
        }
    }
    let new_dir = dir.join("new");
    for _ in 0..NAME_ATTEMPTS {
        let name = unique_name(size);
        let tmp = dir.join("tmp").join(&name);
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(opts.create_mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LocalError::io("create", &tmp, e)),
        };
        let written = (|| {
            let mut w = BufWriter::with_capacity(64 * 1024, &file);
            let n = encode::write_maildir_message(&mut w, msg).map_err(|e| ("write", e))?;
            w.flush().map_err(|e| ("write", e))?;
            file.sync_all().map_err(|e| ("fsync", e))?;
            Ok(n)
        })();
        let bytes = match written {
            Ok(n) => n,
            Err((op, e)) => {
                let _ = fs::remove_file(&tmp);
                return Err(LocalError::io(op, &tmp, e));
            }
        };
        if let Err(e) = chown_new(&tmp, opts.owner) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let dest = new_dir.join(&name);
        match move_into_new(&tmp, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let _ = fs::remove_file(&tmp);
                continue;
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(LocalError::io("link", &dest, e));
            }
        }
        sync_dir(&new_dir)?;
        return Ok(Delivered { path: dest, bytes });
    }
    Err(LocalError::io(
        "create",
        &dir.join("tmp"),
        io::Error::from(io::ErrorKind::AlreadyExists),
    ))
}

/// link() then unlink(), as the Maildir spec says: link never replaces an existing message.
/// Filesystems without hard links get a rename (the name is unique anyway).
fn move_into_new(tmp: &Path, dest: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => {
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EPERM) | Some(libc::ENOTSUP) | Some(libc::EXDEV)
            ) =>
        {
            fs::rename(tmp, dest)
        }
        Err(e) => Err(e),
    }
}

/// Creates the Maildir and its three subdirectories where missing; refuses a symlink or a
/// non-directory in their place (the same rule as for an mbox).
fn ensure_maildir(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), LocalError> {
    ensure_dir(dir, owner)?;
    for sub in ["tmp", "new", "cur"] {
        ensure_dir(&dir.join(sub), owner)?;
    }
    Ok(())
}

fn ensure_dir(path: &Path, owner: Option<(u32, u32)>) -> Result<(), LocalError> {
    loop {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_dir() => return Ok(()),
            Ok(m) => {
                return Err(LocalError::Irregular {
                    path: path.to_path_buf(),
                    reason: if m.file_type().is_symlink() {
                        "symbolic link"
                    } else {
                        "not a directory"
                    },
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(LocalError::io("stat", path, e)),
        }
        match DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {
                chown_new(path, owner)?;
                return sync_dir(path.parent().unwrap_or(Path::new(".")));
            }
            // Made by a concurrent delivery: check what it is.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(LocalError::io("mkdir", path, e)),
        }
    }
}

/// Bytes in `new/` and `cur/`: the `,S=` size from a name when present, else the file size.
pub fn usage(dir: &Path) -> Result<u64, LocalError> {
    let mut total = 0u64;
    for sub in ["new", "cur"] {
        let d = dir.join(sub);
        let entries = fs::read_dir(&d).map_err(|e| LocalError::io("readdir", &d, e))?;
        for ent in entries {
            let ent = ent.map_err(|e| LocalError::io("readdir", &d, e))?;
            let name = ent.file_name();
            let size = match size_from_name(&name.to_string_lossy()) {
                Some(s) => s,
                // Gone meanwhile (read by a POP3 client, moved to cur/): counts as nothing.
                None => ent.metadata().map_or(0, |m| m.len()),
            };
            total = total.saturating_add(size);
        }
    }
    Ok(total)
}

/// The `S=` field of a Maildir++ name: `1.M2P3Q4.host,S=1234:2,S` → 1234.
fn size_from_name(name: &str) -> Option<u64> {
    let base = name.split(':').next()?;
    base.split(',')
        .skip(1)
        .find_map(|f| f.strip_prefix("S="))
        .and_then(|s| s.parse().ok())
}

/// `<secs>.M<usec>P<pid>Q<counter>.<host>,S=<size>`, the microseconds zero-padded to six digits
/// as Dovecot writes them (cr.yp.to/proto/maildir.html), so names of one second sort in
/// delivery order. The counter makes names from one process distinct within a microsecond.
fn unique_name(size: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let q = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{:06}P{}Q{q}.{},S={size}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        host_part()
    )
}

/// The host name with `/` and `:` escaped as the Maildir spec asks (`\057`, `\072`).
fn host_part() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        crate::util::system_hostname()
            .replace('/', "\\057")
            .replace(':', "\\072")
    })
}

/// The message files in `new/` (for tests and tools; POP3 will have its own listing).
pub fn list_new(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("new"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    fn msg(data: &[u8]) -> LocalMessage<'_> {
        LocalMessage {
            envelope_sender: "joe@example.org",
            arrival: UNIX_EPOCH + Duration::from_secs(1_795_860_000),
            data: data.into(),
            prepend: b"Return-Path: <joe@example.org>\n",
        }
    }

    #[test]
    fn delivers_into_new() {
        let root = tempfile::tempdir().unwrap();
        let md = root.path().join("joe");
        let d = deliver(
            &md,
            &msg(b"Subject: a\r\n\r\nFrom me\r\n"),
            &LocalOptions::default(),
        )
        .unwrap();
        assert_eq!(d.path.parent().unwrap(), md.join("new"));
        let body = fs::read(&d.path).unwrap();
        assert_eq!(
            body,
            b"Return-Path: <joe@example.org>\nSubject: a\n\nFrom me\n"
        );
        assert_eq!(d.bytes, body.len() as u64);
        let name = d.path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(size_from_name(&name), Some(body.len() as u64));
        assert!(
            name.contains(&format!("P{}Q", std::process::id())),
            "{name}"
        );
        // secs.M + six digits of microseconds (Maildir spec, as Dovecot writes it).
        let usec = name.split_once(".M").unwrap().1.split_once('P').unwrap().0;
        assert_eq!(usec.len(), 6, "{name}");
        assert!(usec.bytes().all(|b| b.is_ascii_digit()), "{name}");
        for sub in ["", "tmp", "new", "cur"] {
            let m = fs::metadata(md.join(sub)).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{sub}");
        }
        assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);
        let d2 = deliver(&md, &msg(b"Subject: b\n\nx\n"), &LocalOptions::default()).unwrap();
        assert_ne!(d.path, d2.path);
        assert_eq!(list_new(&md).unwrap().len(), 2);
    }

    #[test]
    fn quota_counts_new_and_cur() {
        let root = tempfile::tempdir().unwrap();
        let md = root.path().join("joe");
        let o = LocalOptions {
            quota: 150,
            ..LocalOptions::default()
        };
        deliver(&md, &msg(b"Subject: a\n\n0123456789\n"), &o).unwrap();
        // A read message in cur/ with flags and without S=: its file size counts.
        fs::write(md.join("cur/1.2.host:2,S"), vec![b'x'; 60]).unwrap();
        let used = usage(&md).unwrap();
        assert_eq!(used, 60 + 31 + 23);
        let e = deliver(&md, &msg(b"Subject: b\n\n0123456789\n"), &o).unwrap_err();
        assert!(e.is_temporary());
        assert_eq!(e.status().0, "4.2.2");
        assert_eq!(list_new(&md).unwrap().len(), 1);
        assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn size_field() {
        assert_eq!(size_from_name("1.M2P3Q4.host,S=1234:2,S"), Some(1234));
        assert_eq!(size_from_name("1.M2P3Q4.host,W=9,S=12"), Some(12));
        assert_eq!(size_from_name("1.M2P3Q4.host:2,S"), None);
    }

    #[test]
    fn symlinked_maildir_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let md = root.path().join("joe");
        std::os::unix::fs::symlink(&elsewhere, &md).unwrap();
        let e = deliver(&md, &msg(b"S: x\n\nb\n"), &LocalOptions::default()).unwrap_err();
        assert!(!e.is_temporary());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        // Also a symlinked new/.
        let md2 = root.path().join("ann");
        fs::create_dir_all(md2.join("tmp")).unwrap();
        fs::create_dir(md2.join("cur")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, md2.join("new")).unwrap();
        assert!(deliver(&md2, &msg(b"S: x\n\nb\n"), &LocalOptions::default()).is_err());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn max_size_is_permanent() {
        let root = tempfile::tempdir().unwrap();
        let o = LocalOptions {
            max_size: 10,
            ..LocalOptions::default()
        };
        let e = deliver(&root.path().join("joe"), &msg(b"S: x\n\nb\n"), &o).unwrap_err();
        assert_eq!(e.status().0, "5.2.3");
        assert!(!root.path().join("joe").exists());
    }
}
