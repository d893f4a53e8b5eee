//! cargo-fuzz target `smtp_proto`: the invariants are `mailtool::fuzz::smtp_proto::invariants`
//! (src/fuzz/smtp_proto.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/smtp_proto/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::smtp_proto::invariants(data));
