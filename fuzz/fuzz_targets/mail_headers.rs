//! cargo-fuzz target `mail_headers`: the invariants are `mailtool::fuzz::mail_headers::invariants`
//! (src/fuzz/mail_headers.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/mail_headers/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::mail_headers::invariants(data));
