//! cargo-fuzz target `metrics_request`: the invariants are `mailtool::fuzz::metrics_request::invariants`
//! (src/fuzz/metrics_request.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/metrics_request/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::metrics_request::invariants(data));
