//! cargo-fuzz target for `pop3::response`, the parser of what a POP3 server sends to
//! `pop-login`. The invariants live in `mailtool::pop3::client::response::fuzz_invariants` so that
//! `tests/fuzz_replay_pop3.rs` checks exactly the same things on stable:
//!
//! * nothing panics;
//! * a status line that parses renders back to a line that parses to the same status;
//! * the multi-line body decoder gives the same result fed whole, split, and byte by byte;
//! * any input taken as a message survives dot-stuffing and decoding unchanged;
//! * listings, UIDLs, STAT and Qpopper summaries that parse re-render and re-parse the same;
//! * an APOP timestamp, when found, is a `<…@…>` substring of the greeting.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailtool::pop3::client::response::fuzz_invariants(data);
});
