//! cargo-fuzz target `aliases`: the invariants are `mailtool::fuzz::aliases::invariants`
//! (src/fuzz/aliases.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/aliases/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::aliases::invariants(data));
