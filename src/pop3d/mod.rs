//! The POP3 server inside `serve` (replaces qpopper; POP-before-SMTP replaces poprelayd).
//!
//! * [`session`]: the protocol state machine, pure (RFC 1939, 2449, 2595, 5034). Fuzzed.
//! * [`mailbox`]: the maildrop: session lock, mbox snapshot and UPDATE, Maildir, UIDs. The mbox
//!   indexer is fuzzed.
//! * [`auth`]: password and APOP checks against the users map, failure throttling, the
//!   verified-login cache.
//! * [`server`]: sockets, TLS, timeouts; writes the popip entry on each login.

pub mod auth;
pub mod mailbox;
pub mod server;
pub mod session;
