//! Processes: pids, signals, the effective user, resource limits.

use std::io;

/// Whether process `pid` exists (kill(pid, 0); EPERM means it exists as someone else's).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid written in `pid_file` when that process is alive (a running daemon).
pub fn running_pid(pid_file: &std::path::Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: kill has no memory preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The effective uid.
pub fn euid() -> libc::uid_t {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The real uid and gid.
pub fn real_ids() -> (libc::uid_t, libc::gid_t) {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    euid() == 0
}

/// Raises the soft limit of open files to the hard limit (thousands of idle connections need
/// thousands of descriptors).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// Restores SIGPIPE's default action (Rust ignores it), so a tool writing into a closed pipe
/// (`makemap -u | head`) dies quietly as C programs do.
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL has no memory preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Clock ticks a second and the page size: the units of /proc/self/stat.
pub fn stat_units() -> (f64, f64) {
    // SAFETY: sysconf only reads system constants.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (ticks.max(1) as f64, page.max(1) as f64)
}

/// The soft limit on open descriptors.
pub fn fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur)
}

/// Clears the socket-activation variables, so that programs we start do not think the
/// descriptors are theirs. Only before any other thread exists (set_var/remove_var race with
/// getenv in other threads).
pub fn forget_listen_env() {
    for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: called from `serve` before the runtime or any worker thread starts.
        unsafe { std::env::remove_var(k) };
    }
}

/// Takes ownership of an inherited descriptor that must be a listening TCP socket (IPv4 or
/// IPv6), and marks it close-on-exec.
pub fn inherited_listener(fd: std::os::fd::RawFd) -> io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let int_opt = |level: libc::c_int, name: libc::c_int| -> io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`, which we own.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                level,
                name,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            Ok(v)
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no such descriptor",
        ));
    }
    let not = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("not {what}"));
    if int_opt(libc::SOL_SOCKET, libc::SO_TYPE).map_err(|_| not("a socket"))? != libc::SOCK_STREAM {
        return Err(not("a stream socket"));
    }
    let domain = int_opt(libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Err(not("a TCP socket"));
    }
    if int_opt(libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? == 0 {
        return Err(not("listening"));
    }
    // SAFETY: F_SETFD sets the flags of a descriptor we checked exists.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is a listening TCP socket handed to this process, and nothing
    // else in it owns it.
    Ok(unsafe { std::net::TcpListener::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {

    // Only an open, listening TCP socket is taken, and it comes back close-on-exec.
    #[test]
    fn inherited_descriptors_are_checked() {
        use std::os::fd::{AsRawFd, IntoRawFd};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let fd = l.into_raw_fd();
        let back = inherited_listener(fd).unwrap();
        assert_eq!(back.local_addr().unwrap(), addr);
        // SAFETY: F_GETFD only reads the flags.
        assert_ne!(
            unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC,
            0
        );
        let why = |fd| inherited_listener(fd).unwrap_err().to_string();
        let conn = std::net::TcpStream::connect(addr).unwrap();
        assert_eq!(why(conn.as_raw_fd()), "not listening");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(why(udp.as_raw_fd()), "not a stream socket");
        let file = tempfile::tempfile().unwrap();
        assert_eq!(why(file.as_raw_fd()), "not a socket");
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        assert_eq!(why(unix.as_raw_fd()), "not a TCP socket");
        assert_eq!(why(i32::MAX - 1), "no such descriptor");
        drop(back);
    }
    use super::*;

    #[test]
    fn pids() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        assert!(!alive(u32::MAX));
        // pid_max is at most 2^22 on Linux.
        assert!(!alive(1 << 23));
        assert!(signal(std::process::id(), 0).is_ok());
        assert!(signal(0, 0).is_err());
        assert_eq!(is_root(), euid() == 0);
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pid");
        assert_eq!(running_pid(&f), None);
        std::fs::write(&f, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(running_pid(&f), Some(std::process::id()));
        std::fs::write(&f, "0\n").unwrap();
        assert_eq!(running_pid(&f), None);
        std::fs::write(&f, "junk").unwrap();
        assert_eq!(running_pid(&f), None);
    }
}
