//! cargo-fuzz target for `smtp::proto`: drives `LineReader`, `parse_command`
//! and `DataReader` over the input, fed whole, split at an offset derived
//! from the input, and byte by byte. The invariants live in
//! `mailtool::smtp::proto::fuzz_invariants` so that
//! `tests/fuzz_replay_smtp_proto.rs` checks exactly the same things on stable:
//!
//! * nothing panics;
//! * one-shot, split and byte-by-byte feeding give identical results, for the
//!   DATA reader alone and for a whole simulated session;
//! * DATA ends exactly at the first real `CRLF . CRLF` (cross-checked against
//!   a plain search), never earlier, so no smuggled ending is honoured;
//! * the stored message holds no bare CR or LF and respects the size limit;
//! * command lines are at most 510 octets and every echoed reply line is at
//!   most 512 octets with no CR/LF inside;
//! * after `STARTTLS`, `discard_buffered` leaves nothing to execute.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mailtool::smtp::proto::fuzz_invariants(data);
});
