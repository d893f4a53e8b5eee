//! Whole-file locks. On Linux the fcntl locks are open-file-description locks (F_OFD_*): they
//! belong to the open file like flock's, so one descriptor's lock is not dropped by closing
//! another, and they can be tested with F_OFD_GETLK without taking them. Elsewhere classic
//! per-process fcntl locks stand in.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

#[cfg(any(target_os = "linux", target_os = "android"))]
const SETLK: libc::c_int = libc::F_OFD_SETLK;
#[cfg(any(target_os = "linux", target_os = "android"))]
const GETLK: libc::c_int = libc::F_OFD_GETLK;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const SETLK: libc::c_int = libc::F_SETLK;

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: flock is plain old data; all-zero is a valid value (l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl
}

/// Tries the fcntl write lock on the whole file: `Ok(false)` when someone else holds it. The
/// lock lasts until the file (every descriptor of this open file) is closed. EINTR counts as
/// "held" so the caller's retry loop simply tries again.
pub fn try_write_lock(file: &File) -> io::Result<bool> {
    let fl = whole_file(libc::F_WRLCK);
    // SAFETY: fcntl on a descriptor owned by `file`, with a valid flock struct.
    if unsafe { libc::fcntl(file.as_raw_fd(), SETLK, &fl) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

/// Whether any open file (ours included) holds an fcntl lock on this file. Without OFD locks
/// a probe would drop our own classic locks, so the answer there is always `false`.
pub fn write_locked(file: &File) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut fl = whole_file(libc::F_WRLCK);
        // SAFETY: fcntl F_OFD_GETLK on a descriptor owned by `file`; the kernel writes `fl`.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), GETLK, &mut fl) };
        rc == 0 && libc::c_int::from(fl.l_type) != libc::F_UNLCK
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = file;
        false
    }
}

/// Tries an exclusive flock(2): `Ok(false)` when another open file holds one.
pub fn try_flock_exclusive(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor owned by `file`.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_exclude_other_open_files() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&p)
                .unwrap()
        };
        let (a, b) = (open(), open());
        assert!(!write_locked(&b));
        assert!(try_write_lock(&a).unwrap());
        #[cfg(target_os = "linux")]
        {
            assert!(write_locked(&b));
            assert!(!try_write_lock(&b).unwrap());
        }
        drop(a);
        assert!(!write_locked(&b));
        let (c, e) = (open(), open());
        assert!(try_flock_exclusive(&c).unwrap());
        assert!(!try_flock_exclusive(&e).unwrap());
        drop(c);
        assert!(try_flock_exclusive(&e).unwrap());
    }
}
