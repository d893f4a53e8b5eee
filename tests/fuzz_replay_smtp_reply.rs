//! Stable replay of the `smtp_reply` fuzz target (the SMTP client's codec): the corpus in
//! `fuzz/corpus/smtp_reply/`, then deterministic mutations with CR, LF, "-", ".", digits and
//! a control character, through `mailtool::smtp::client::codec::fuzz_invariants`.

mod common;

#[test]
fn corpus_and_mutations_keep_invariants() {
    common::fuzz::replay(
        "smtp_reply",
        b"\r\n-. 25\x1b",
        3_000,
        4096,
        mailtool::smtp::client::codec::fuzz_invariants,
    );
}
