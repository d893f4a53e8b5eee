//! cargo-fuzz target `smtp_address`: the invariants are `mailtool::fuzz::smtp_address::invariants`
//! (src/fuzz/smtp_address.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/smtp_address/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::smtp_address::invariants(data));
