//! cargo-fuzz target for the POP3 server's mbox indexer (`pop3::maildrop::scan_mbox`). The
//! invariants live in `mailtool::pop3::maildrop::fuzz_invariants` (replayed on stable by
//! `tests/fuzz_replay_pop3d.rs`): no panic on any bytes, message extents inside the input and
//! in order, and each message's size equal to what RETR sends.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailtool::pop3::maildrop::fuzz_invariants(data);
});
