//! cargo-fuzz target `mbox_encode`: the invariants are `mailtool::fuzz::mbox_encode::invariants`
//! (src/fuzz/mbox_encode.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/mbox_encode/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::mbox_encode::invariants(data));
