//! The host name, error texts and syslog.

use std::ffi::CString;
use std::io;

/// The system's host name (gethostname(2)), or `None` when it is unset.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is valid for buf.len() bytes; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The strerror(3) text of an I/O error ("Permission denied"), as sendmail's messages print
/// it, without Rust's "(os error 13)".
pub fn io_message(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a NUL-terminated string that stays valid at least
            // until the next strerror call; it is copied at once.
            let s = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
            s.to_string_lossy().into_owned()
        }
        None => e.to_string(),
    }
}

/// openlog(3) with the mail facility and the pid in every line. The identity must outlive
/// every later syslog call, so it is kept for the life of the process.
pub fn open_syslog(ident: &str) {
    let ident = CString::new(ident).unwrap_or_else(|_| c"mailtool".to_owned());
    // SAFETY: the identity string is leaked, so the pointer openlog keeps stays valid.
    unsafe {
        libc::openlog(
            Box::leak(ident.into_boxed_c_str()).as_ptr(),
            libc::LOG_PID,
            libc::LOG_MAIL,
        );
    }
}

/// One syslog(3) line at `level` (LOG_INFO, …) in the mail facility. A NUL in `line` ends it.
pub fn syslog(level: libc::c_int, line: &str) {
    let line = line.split('\0').next().unwrap_or("");
    if let Ok(c) = CString::new(line) {
        // SAFETY: a constant "%s" format with one NUL-terminated argument.
        unsafe { libc::syslog(libc::LOG_MAIL | level, c"%s".as_ptr(), c.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_message(&e), "Permission denied");
        assert_eq!(io_message(&io::Error::other("plain")), "plain");
        assert!(hostname().is_some_and(|h| !h.is_empty() && !h.contains('\0')));
    }
}
