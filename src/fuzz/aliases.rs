//! The `aliases` target: aliases(5) text, parsed with and without case folding and with every
//! domain local.

use crate::maps::source::{aliases, makemap};

/// Class w for the `aliases` target: the seed's local names.
fn seed_is_local(domain: &str) -> bool {
    ["localhost", "example1.com", "example2.com"]
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
}

fn check_alias_run(input: &[u8], p: &aliases::Parsed, fold_case: bool) {
    let mut last = 0u32;
    for e in &p.entries {
        assert!(!e.key.is_empty(), "empty key at line {}", e.line);
        if fold_case {
            assert!(!e.key.iter().any(u8::is_ascii_uppercase), "{:?}", e.key);
        }
        assert!(!e.key.contains(&b':'), "colon in key {:?}", e.key);
        for part in [&e.key, &e.value] {
            assert!(!part.contains(&b'\n') && !part.contains(&0), "{part:?}");
        }
        assert!(
            !e.value.iter().all(|&b| makemap::is_c_space(b)),
            "blank value at line {}",
            e.line
        );
        assert!(e.line > last, "entry line {} after {last}", e.line);
        last = e.line;
    }
    let mut last = 0u32;
    for d in &p.diagnostics {
        assert!(d.line > last, "diagnostic line {} after {last}", d.line);
        assert!(!d.text.is_empty());
        last = d.line;
    }
    // Stats: no overflow, and every entry is carved out of its own part of the input.
    let s = aliases::stats(&p.entries);
    let mut bytes = 0usize;
    let mut longest = 0usize;
    for e in &p.entries {
        bytes = bytes
            .checked_add(e.key.len())
            .and_then(|b| b.checked_add(e.value.len()))
            .expect("stats overflow");
        longest = longest.max(e.value.len());
    }
    assert_eq!(s.aliases, p.entries.len());
    assert_eq!(s.bytes, bytes);
    assert_eq!(s.longest, longest);
    assert!(
        s.bytes <= input.len(),
        "{} stats bytes from {}",
        s.bytes,
        input.len()
    );
}

/// The `aliases` target: parse with and without case folding and with every domain local.
pub fn invariants(data: &[u8]) {
    let folded = aliases::parse(
        data,
        aliases::ParseOptions { fold_case: true },
        &seed_is_local,
    );
    check_alias_run(data, &folded, true);

    // -f changes the keys' case and nothing else.
    let kept = aliases::parse(
        data,
        aliases::ParseOptions { fold_case: false },
        &seed_is_local,
    );
    check_alias_run(data, &kept, false);
    assert_eq!(kept.diagnostics, folded.diagnostics);
    assert_eq!(kept.entries.len(), folded.entries.len());
    for (k, f) in kept.entries.iter().zip(&folded.entries) {
        assert_eq!((k.line, &k.value), (f.line, &f.value));
        assert_eq!(k.key.to_ascii_lowercase(), f.key);
    }

    // Class w only turns "cannot alias non-local names" errors into entries (or other errors).
    let all_local = aliases::parse(data, aliases::ParseOptions { fold_case: true }, &|_| true);
    check_alias_run(data, &all_local, true);
    assert_eq!(
        all_local.entries.len() + all_local.diagnostics.len(),
        folded.entries.len() + folded.diagnostics.len()
    );
    assert!(all_local.entries.len() >= folded.entries.len());
    assert!(
        all_local
            .diagnostics
            .iter()
            .all(|d| !d.text.ends_with("cannot alias non-local names"))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and deterministic mutations of it, on stable.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        let tokens: &[&[u8]] = &[
            b"\\\n",
            b"\n\t",
            b"\n ",
            b"postmaster",
            b"@localhost",
            b"@example1.com",
            b"@elsewhere.org",
            b":include:",
            b"\"|",
            b"\"\"",
        ];
        Plan {
            iterations: 4000,
            keep: 0,
            tokens,
            min_files: 10,
            ..Plan::new("aliases")
        }
        .run(invariants);
    }
}
