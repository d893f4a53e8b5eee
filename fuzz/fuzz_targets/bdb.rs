//! cargo-fuzz target `bdb`: the invariants are `mailtool::fuzz::bdb::invariants`
//! (src/fuzz/bdb.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/bdb/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::bdb::invariants(data));
