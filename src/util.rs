//! Small helpers shared by the CLI and the library.

use std::io;

pub use crate::sys::io_message;

/// The system's host name (fully qualified if the system says so), else `localhost`.
pub fn system_hostname() -> String {
    crate::sys::hostname().unwrap_or_else(|| "localhost".into())
}

/// Whether stderr is a terminal (progress bars and colour only then).
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    io::stderr().is_terminal()
}

/// An RFC 5322 date in UTC, e.g. `Sat, 28 Nov 2026 04:20:00 +0000`, for Received: headers.
pub fn rfc5322_date(t: std::time::SystemTime) -> String {
    crate::dates::rfc5322_utc(crate::dates::unix_secs(t))
}

/// `one` for 1, else `many`: "1 message", "2 messages".
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_847_000);
        assert_eq!(rfc5322_date(t), "Sat, 28 Nov 2026 06:23:20 +0000");
        assert_eq!(
            rfc5322_date(std::time::UNIX_EPOCH),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
    }
}
