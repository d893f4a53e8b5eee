//! Log output through `tracing`: one line per event, sendmail/Postfix style fields
//! (`qid: from=<a>, size=N, nrcpts=N, relay=host [ip]`), or one JSON object a line
//! ([`json`]). The target and format come from `[log]`.

pub mod json;

use std::io::{self, Write};
use std::sync::Once;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, LogTarget, Settings};

/// A writer that hands each formatted line to syslog(3) with facility LOG_MAIL.
#[derive(Clone, Copy, Default)]
pub struct SyslogWriter;

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let level = if line.contains("ERROR")
                || line.starts_with("{\"ts\":") && line.contains("\"level\":\"error\"")
            {
                libc::LOG_ERR
            } else if line.contains("WARN") || line.contains("\"level\":\"warn\"") {
                libc::LOG_WARNING
            } else {
                libc::LOG_INFO
            };
            crate::sys::host::syslog(level, &line.replace('\0', " "));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = SyslogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

static INIT: Once = Once::new();

/// Installs the global subscriber once. `RUST_LOG`-style directives in `MAILTOOL_LOG`
/// override the configured level, for debugging a running setup.
pub fn init(settings: &Settings, program: &'static str) {
    INIT.call_once(|| {
        let filter = std::env::var("MAILTOOL_LOG")
            .ok()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new(format!("mailtool={}", settings.log.level)));
        let json = settings.log.format == LogFormat::Json;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false);
        if settings.log.target == LogTarget::Syslog {
            crate::sys::host::open_syslog(program);
        }
        let _ = match (settings.log.target, json) {
            (LogTarget::Stderr | LogTarget::Journald, true) => builder
                .event_format(json::JsonLines)
                .with_writer(io::stderr)
                .try_init(),
            (LogTarget::Syslog, true) => builder
                .event_format(json::JsonLines)
                .with_writer(SyslogWriter)
                .try_init(),
            (LogTarget::Stderr, false) => builder
                .with_ansi(crate::util::stderr_is_terminal())
                .with_writer(io::stderr)
                .try_init(),
            // journald adds its own time stamps and reads stderr of the unit.
            (LogTarget::Journald, false) => builder
                .without_time()
                .with_ansi(false)
                .with_writer(io::stderr)
                .try_init(),
            (LogTarget::Syslog, false) => builder
                .without_time()
                .with_ansi(false)
                .with_level(false)
                .with_writer(SyslogWriter)
                .try_init(),
        };
    });
}
