//! cargo-fuzz target `pop3_response`: the invariants are `mailtool::fuzz::pop3_response::invariants`
//! (src/fuzz/pop3_response.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/pop3_response/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::pop3_response::invariants(data));
