//! The `mc_parse` target: the sendmail `.mc` reader of `migrate sendmail` (`migrate::mc`).

use crate::migrate::mc::*;

/// The fuzz target's invariants: never panics, every item's (or error's) line exists in the
/// input, and parsing is deterministic.
pub fn invariants(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.split('\n').count();
    let first = parse("fuzz.mc", &text);
    match &first {
        Ok(items) => {
            for it in items {
                assert!(
                    it.line >= 1 && it.line <= lines,
                    "line {} of {lines}: {it:?}",
                    it.line
                );
            }
        }
        Err(e) => assert!(e.line >= 1 && e.line <= lines, "{e}"),
    }
    assert_eq!(first, parse("fuzz.mc", &text), "parsing is deterministic");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and mutations with the bytes m4 cares about (quotes, parentheses, commas,
    /// `#`, newlines, the letters of `dnl`).
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan::text("mc_parse", b"`'(),#\n\tdnlS$", 4096).run(invariants);
    }
}
