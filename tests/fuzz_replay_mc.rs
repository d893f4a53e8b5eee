//! Stable replay of the `mc_parse` fuzz target (the sendmail `.mc` reader): the corpus in
//! `fuzz/corpus/mc_parse/`, then deterministic mutations with the bytes m4 cares about (quotes,
//! parentheses, commas, `#`, newlines, `dnl`'s letters), through
//! `mailtool::migrate::mc::fuzz_invariants`.

mod common;

#[test]
fn corpus_and_mutations_keep_invariants() {
    common::fuzz::replay(
        "mc_parse",
        b"`'(),#\n\tdnlS$",
        3_000,
        4096,
        mailtool::migrate::mc::fuzz_invariants,
    );
}
