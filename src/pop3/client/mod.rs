//! The POP3 client, used by `mailtool pop-login` ([`crate::tools::pop_login`]):
//!
//! * [`response`]: pure parsing of what a server sends (status lines, multi-line bodies with
//!   dot-unstuffing, listings, APOP timestamps, Qpopper's login summary). Fuzzed.
//! * [`conn`]: one connection: plain, STLS or implicit TLS, timeouts on every step, commands
//!   and a transcript in which secrets are masked.

pub mod conn;
pub mod response;
