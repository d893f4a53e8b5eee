//! cargo-fuzz target `pop3_mbox`: the invariants are `mailtool::fuzz::pop3_mbox::invariants`
//! (src/fuzz/pop3_mbox.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/pop3_mbox/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::pop3_mbox::invariants(data));
