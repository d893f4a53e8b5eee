//! cargo-fuzz target for the sendmail `.mc` reader (`mailtool migrate sendmail`). The
//! invariants live in `mailtool::migrate::mc::fuzz_invariants`, so that
//! `tests/fuzz_replay_mc.rs` checks the same things on stable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailtool::migrate::mc::fuzz_invariants(data);
});
