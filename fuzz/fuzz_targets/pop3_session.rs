//! cargo-fuzz target for the POP3 server's state machine (`pop3::session`) and its message
//! encoding. The invariants live in `mailtool::pop3::session::fuzz_invariants`, so that
//! `tests/fuzz_replay_pop3d.rs` checks the same things on stable:
//!
//! * no command sequence panics, in any state, with or without TLS and plaintext logins;
//! * every reply ends in CRLF and its status line fits RFC 1939's 512 octets;
//! * message numbers handed to the I/O layer are in range;
//! * any input encoded as a message decodes (dot-unstuffed) to itself with CRLF line ends,
//!   and its announced size is the encoded size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailtool::pop3::session::fuzz_invariants(data);
});
