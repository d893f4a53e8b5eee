//! File-system durability helpers.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// fsync a directory, so that a new, renamed or removed entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// syncfs(2): flushes the whole file system `file` lives on, in one call (the spool's group
/// commit). `Unsupported` where the system has no syncfs.
pub fn syncfs(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: syncfs on a descriptor owned by `file`, open for the whole call.
        if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOSYS) {
            return Err(io::Error::new(io::ErrorKind::Unsupported, e));
        }
        Err(e)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Bytes available to unprivileged users on the file system holding `path` (statvfs(3)
/// `f_bavail * f_frsize`): what the spool may still grow by.
pub fn free_space(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// sync(2): flushes every file system (the fallback where syncfs is missing).
pub fn sync_all_filesystems() {
    // SAFETY: sync has no preconditions and cannot fail.
    unsafe { libc::sync() };
}

/// Sets O_APPEND on an open file, so even a writer that ignores the locks cannot overwrite
/// what we append.
pub fn set_append(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor owned by `file`.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_APPEND) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let free = free_space(d.path()).unwrap();
        assert!(free > 0);
        assert!(free_space(&d.path().join("missing")).is_err());
    }
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn append_mode_writes_at_the_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        set_append(&f).unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.write_all(b"d").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abcd");
        sync_dir(d.path()).unwrap();
        assert!(sync_dir(&d.path().join("missing")).is_err());
        #[cfg(target_os = "linux")]
        syncfs(&f).unwrap();
    }
}
