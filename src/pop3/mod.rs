//! POP3, both sides (RFC 1939, 2449, 2595, 5034), as `smtp` holds both of SMTP's.
//!
//! The server inside `serve` (replaces qpopper; POP-before-SMTP replaces poprelayd):
//!
//! * [`session`]: the protocol state machine, pure. Fuzzed.
//! * [`maildrop`]: the maildrop: session lock, mbox snapshot and UPDATE, Maildir, UIDs. The mbox
//!   indexer is fuzzed.
//! * [`auth`]: password and APOP checks against the users map, failure throttling, the
//!   verified-login cache.
//! * [`server`]: sockets, TLS, timeouts; writes the popip entry on each login.
//!
//! The client, used by `mailtool pop-login`: [`client`].

pub mod auth;
pub mod client;
pub mod maildrop;
pub mod server;
pub mod session;
