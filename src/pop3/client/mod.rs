//! The POP3 client, used by `mailtool pop-login`:
//!
//! * [`response`]: pure parsing of what a server sends (status lines, multi-line bodies with
//!   dot-unstuffing, listings, APOP timestamps, Qpopper's login summary). Fuzzed.
//! * [`conn`]: one connection: plain, STLS or implicit TLS, timeouts on every step, commands
//!   and a transcript in which secrets are masked.
//! * [`login_check`]: the whole check `pop-login` runs (connect, secure, authenticate, report,
//!   QUIT) and the policy that keeps passwords off unencrypted non-loopback connections.

pub mod conn;
pub mod login_check;
pub mod response;
