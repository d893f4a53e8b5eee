//! Stable replay of the `smtp_proto` fuzz target: every file of `fuzz/corpus/smtp_proto/`
//! goes through the same invariants as the fuzzer (`mailtool::smtp::proto::fuzz_invariants`),
//! then a bounded, deterministic mutation loop perturbs the corpus with the bytes that matter
//! for SMTP framing and smuggling: CR, LF, `.`, NUL, space and `:`.

mod common;

#[test]
fn corpus_and_mutations_keep_invariants() {
    common::fuzz::replay(
        "smtp_proto",
        b"\r\n.\0 :",
        3_000,
        4096,
        mailtool::smtp::proto::fuzz_invariants,
    );
}
