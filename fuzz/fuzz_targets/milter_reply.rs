//! cargo-fuzz target `milter_reply`: the invariants are `mailtool::fuzz::milter_reply::invariants`
//! (src/fuzz/milter_reply.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/milter_reply/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::milter_reply::invariants(data));
