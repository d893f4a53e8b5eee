//! Log output through `tracing`: one line per event, sendmail/Postfix style fields
//! (`qid: from=<a>, size=N, nrcpts=N, relay=host [ip]`). The target comes from `[log]`.

use std::io::{self, Write};
use std::sync::Once;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogTarget, Settings};

/// A writer that hands each formatted line to syslog(3) with facility LOG_MAIL.
#[derive(Clone, Copy, Default)]
pub struct SyslogWriter;

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let level = if line.contains("ERROR") {
                libc::LOG_ERR
            } else if line.contains("WARN") {
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
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false);
        let _ = match settings.log.target {
            LogTarget::Stderr => builder
                .with_ansi(crate::util::stderr_is_terminal())
                .with_writer(io::stderr)
                .try_init(),
            // journald adds its own time stamps and reads stderr of the unit.
            LogTarget::Journald => builder
                .without_time()
                .with_ansi(false)
                .with_writer(io::stderr)
                .try_init(),
            LogTarget::Syslog => {
                crate::sys::host::open_syslog(program);
                builder
                    .without_time()
                    .with_ansi(false)
                    .with_level(false)
                    .with_writer(SyslogWriter)
                    .try_init()
            }
        };
    });
}
