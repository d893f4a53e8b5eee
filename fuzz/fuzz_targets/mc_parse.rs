//! cargo-fuzz target `mc_parse`: the invariants are `mailtool::fuzz::mc_parse::invariants`
//! (src/fuzz/mc_parse.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/mc_parse/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::mc_parse::invariants(data));
