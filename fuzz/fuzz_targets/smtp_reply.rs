//! cargo-fuzz target `smtp_reply`: the invariants are `mailtool::fuzz::smtp_reply::invariants`
//! (src/fuzz/smtp_reply.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/smtp_reply/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::smtp_reply::invariants(data));
