//! Socket activation (sd_listen_fds(3)): systemd, or `systemd-socket-activate`, binds the
//! ports and hands them over as descriptors 3, 4, … with `LISTEN_FDS`, `LISTEN_PID` and
//! `LISTEN_FDNAMES`. Each descriptor's name says what it serves; `serve` then binds nothing
//! itself. Reading the environment is pure ([`parse`]), so the rules are tested without
//! sockets.

use std::os::fd::RawFd;

/// The first inherited descriptor (after stdin, stdout, stderr).
pub const FIRST_FD: RawFd = 3;

/// What a descriptor's name (the unit's `FileDescriptorName=`) can say it serves.
pub const NAMES: [&str; 6] = ["smtp", "submission", "smtps", "pop3", "pop3s", "metrics"];

/// The descriptors meant for us, with their names, or `None` when nothing was passed (or it
/// was meant for another process: `LISTEN_PID` is not ours).
pub fn parse(
    pid: Option<&str>,
    fds: Option<&str>,
    names: Option<&str>,
    me: u32,
) -> Result<Option<Vec<(RawFd, String)>>, String> {
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(me) {
        return Ok(None);
    }
    let n: i32 = fds
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_FDS={fds:?} is not a number"))?;
    if n <= 0 {
        return Ok(None);
    }
    if n > 64 {
        return Err(format!("LISTEN_FDS={n}: more sockets than mailtool serves"));
    }
    let names: Vec<&str> = match names {
        Some(s) => s.split(':').collect(),
        None => {
            return Err(format!(
                "LISTEN_FDS={n} without LISTEN_FDNAMES: name each socket \
                 (FileDescriptorName= one of {})",
                NAMES.join(", ")
            ));
        }
    };
    if names.len() != n as usize {
        return Err(format!(
            "LISTEN_FDS={n} but LISTEN_FDNAMES names {} sockets",
            names.len()
        ));
    }
    let mut out = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        if !NAMES.contains(&name) {
            return Err(format!(
                "inherited socket {} is named {name:?}, not one of {}",
                FIRST_FD + i as RawFd,
                NAMES.join(", ")
            ));
        }
        out.push((FIRST_FD + i as RawFd, name.to_string()));
    }
    Ok(Some(out))
}

/// The inherited listeners by name, from this process's environment, which is then cleared of
/// `LISTEN_*` so that programs we start (`|program` deliveries) do not see them. Called once,
/// before any thread exists.
pub fn take() -> Result<Option<Vec<(String, std::net::TcpListener)>>, String> {
    let var = |k: &str| std::env::var(k).ok();
    let parsed = parse(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    );
    crate::sys::process::forget_listen_env();
    let Some(list) = parsed? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (fd, name) in list {
        let l = crate::sys::process::inherited_listener(fd)
            .map_err(|e| format!("inherited socket {fd} ({name}): {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("inherited socket {fd} ({name}): {e}"))?;
        out.push((name, l));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_descriptors_meant_for_us_are_taken() {
        let me = 4242;
        assert_eq!(parse(None, None, None, me), Ok(None));
        assert_eq!(parse(Some("4242"), None, Some("smtp"), me), Ok(None));
        // Meant for another process (a parent that did not clear them).
        assert_eq!(parse(Some("4243"), Some("1"), Some("smtp"), me), Ok(None));
        assert_eq!(parse(Some("x"), Some("1"), Some("smtp"), me), Ok(None));
        assert_eq!(parse(Some("4242"), Some("0"), Some(""), me), Ok(None));
        assert_eq!(
            parse(Some("4242"), Some("3"), Some("smtp:pop3:metrics"), me),
            Ok(Some(vec![
                (3, "smtp".into()),
                (4, "pop3".into()),
                (5, "metrics".into())
            ]))
        );
        assert_eq!(
            parse(Some(" 4242 "), Some("1"), Some("submission"), me),
            Ok(Some(vec![(3, "submission".into())]))
        );
    }

    #[test]
    fn bad_environments_are_named() {
        let me = 7;
        let err = |p, f, n| parse(Some(p), Some(f), n, me).unwrap_err();
        assert!(err("7", "two", Some("smtp")).contains("LISTEN_FDS=\"two\""));
        assert!(err("7", "1", None).contains("without LISTEN_FDNAMES"));
        assert!(err("7", "2", Some("smtp")).contains("names 1 sockets"));
        let e = err("7", "2", Some("smtp:bogus"));
        assert!(e.contains("socket 4") && e.contains("\"bogus\""), "{e}");
        assert!(err("7", "65", Some("smtp")).contains("more sockets"));
    }
}
