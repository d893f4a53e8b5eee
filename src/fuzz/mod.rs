//! The fuzz targets' invariants, one function per target, compiled only for tests and for the
//! cargo-fuzz crate (feature `fuzzing`): nothing here ships in a release build.
//!
//! Each `fuzz/fuzz_targets/NAME.rs` is one call of `NAME::invariants`, and each module's unit
//! test replays `fuzz/corpus/NAME/` through the same function on stable, with deterministic
//! mutations from the one engine in [`replay`]. fuzz/README.md says how to run the fuzzers.

pub mod aliases;
pub mod bdb;
pub mod config_toml;
pub mod mail_headers;
pub mod makemap_input;
pub mod mbox_encode;
pub mod mc_parse;
pub mod metrics_request;
pub mod milter_reply;
pub mod pop3_mbox;
pub mod pop3_response;
pub mod pop3_session;
pub mod smtp_address;
pub mod smtp_proto;
pub mod smtp_reply;

#[cfg(test)]
pub mod replay;
