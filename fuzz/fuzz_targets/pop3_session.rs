//! cargo-fuzz target `pop3_session`: the invariants are `mailtool::fuzz::pop3_session::invariants`
//! (src/fuzz/pop3_session.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/pop3_session/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::pop3_session::invariants(data));
