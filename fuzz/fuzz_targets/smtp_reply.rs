//! cargo-fuzz target for the SMTP client codec: reply framing and the DATA encoding. The
//! invariants live in `mailtool::smtp::client::codec::fuzz_invariants`, so that
//! `tests/fuzz_replay_smtp_reply.rs` checks the same things on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailtool::smtp::client::codec::fuzz_invariants(data);
});
