//! Milters: sendmail's mail filter protocol (INPUT_MAIL_FILTER), as a client. Every
//! `[[milter]]` is called in order at each SMTP step it did not decline in negotiation, and
//! at the end of each message as a step of the message stage ([`crate::stage`]): after the
//! checks of a stranger's mail, before our own DKIM signature, so the signature covers what
//! the milters changed.
//!
//! - [`wire`]: the packets (pure; fuzzed).
//! - [`client`]: one connection, with sendmail's timeouts.
//! - [`session`]: the milters of one SMTP session and their verdicts.
//! - [`edit`]: the message as milters change it.

pub mod client;
pub mod edit;
pub mod session;
pub mod wire;

pub use edit::Message;
pub use session::{Milters, Peer, Verdict};
