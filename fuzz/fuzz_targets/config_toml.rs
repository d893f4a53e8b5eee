//! cargo-fuzz target `config_toml`: the invariants are `mailtool::fuzz::config_toml::invariants`
//! (src/fuzz/config_toml.rs), which the stable replay in the same file runs over
//! `fuzz/corpus/config_toml/` too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailtool::fuzz::config_toml::invariants(data));
