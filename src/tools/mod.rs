//! The client tools' library side, one home for the three: `smtp_send` (a swaks-style test
//! sender: composition and the stage-by-stage session), `relaycheck` (the open-relay battery)
//! and `pop_login` (the seed guide's POP3 check). `cli` parses their arguments and prints.

pub mod pop_login;
pub mod relaycheck;
pub mod smtp_send;

use crate::smtp::client::{Observer, Said};

/// When to use STARTTLS (smtp-send, relaycheck).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartTls {
    /// Require it: fail when the server does not offer it.
    Always,
    /// Use it when the server offers it.
    Auto,
}

/// A `-v` transcript on stderr, swaks style: ` -> ` what we sent, `<-  ` what we got,
/// ` === ` our own notes. `prefix` tells concurrent sessions apart.
pub fn stderr_transcript(prefix: String) -> Observer {
    Box::new(move |said, line| {
        let arrow = match said {
            Said::Client => " -> ",
            Said::Server => "<-  ",
            Said::Note => " === ",
        };
        eprintln!("{prefix}{arrow}{line}");
    })
}
