//! cargo-fuzz target `makemap_input`: the invariants are `mailtool::fuzz::makemap_input::invariants`
//! (src/fuzz/makemap_input.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/makemap_input/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::makemap_input::invariants(data));
