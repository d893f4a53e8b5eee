//! The `makemap_input` target: makemap source text under every option combination the
//! header selects, fed whole and split, against an independent resolution of duplicates.

use crate::maps::source::makemap;

/// Bytes of option header in front of a `makemap_input` body:
/// `[flags, separator, comment, split_lo, split_hi]`, flags `1` = `-f` (no case folding),
/// `2` = `-e` (empty values allowed), `4` = `-t SEPARATOR`, `8` = `-D COMMENT`. The split is
/// taken modulo `body.len() + 1`. Missing header bytes read as 0: default options.
const MAKEMAP_HEADER: usize = 5;

fn makemap_options(data: &[u8]) -> (makemap::ParseOptions, usize, &[u8]) {
    let h = |i: usize| data.get(i).copied().unwrap_or(0);
    let body = data.get(MAKEMAP_HEADER..).unwrap_or(&[]);
    let flags = h(0);
    let opts = makemap::ParseOptions {
        comment: if flags & 8 != 0 { h(2) } else { b'#' },
        separator: (flags & 4 != 0).then(|| h(1)),
        fold_case: flags & 1 == 0,
        allow_empty: flags & 2 != 0,
    };
    let split = usize::from(u16::from_le_bytes([h(3), h(4)])) % (body.len() + 1);
    (opts, split, body)
}

/// A parser item with its ranges resolved to bytes, so items from different buffers compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Record {
        line: u32,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Error {
        line: u32,
        error: makemap::LineError,
    },
}

/// Resolves `items` against `buf` and checks each one on its own.
fn makemap_resolve(
    buf: &[u8],
    items: Vec<makemap::Item>,
    opts: &makemap::ParseOptions,
) -> Vec<Resolved> {
    let is_sep = |c: u8| match opts.separator {
        None => makemap::is_c_space(c),
        Some(s) => c == s,
    };
    let check_key = |key: &[u8]| {
        assert!(!key.contains(&b'\n') && !key.contains(&0), "key {key:?}");
        // Folding happens after the separator test, so `-t v` keeps a `V` that became `v`.
        let sep_ok = |c: u8| !is_sep(c) || (opts.fold_case && c.is_ascii_lowercase());
        assert!(key.iter().all(|&c| sep_ok(c)), "separator in key {key:?}");
        if opts.fold_case {
            assert!(
                !key.iter().any(u8::is_ascii_uppercase),
                "unfolded key {key:?}"
            );
        }
        if opts.separator.is_none() {
            assert!(!key.is_empty(), "empty key without -t");
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            makemap::Item::Record(r) => {
                assert!(
                    r.key.start <= r.key.end
                        && r.key.end <= r.value.start
                        && r.value.start <= r.value.end
                        && r.value.end <= buf.len(),
                    "bad ranges {r:?} in a buffer of {}",
                    buf.len()
                );
                let key = &buf[r.key.clone()];
                let value = &buf[r.value.clone()];
                check_key(key);
                // Only a line's first byte counts, tested before folding (`-D u` and `U`).
                let c = key.first().copied();
                let folded = opts.fold_case && opts.comment.is_ascii_lowercase();
                assert!(c != Some(opts.comment) || folded, "comment line parsed");
                assert!(!value.contains(&b'\n') && !value.contains(&0), "{value:?}");
                assert!(!value.first().is_some_and(|&c| is_sep(c)), "{value:?}");
                assert!(
                    opts.allow_empty || !value.is_empty(),
                    "empty value without -e"
                );
                Resolved::Record {
                    line: r.line,
                    key: key.to_vec(),
                    value: value.to_vec(),
                }
            }
            makemap::Item::Error { line, error } => {
                match &error {
                    makemap::LineError::NoRhs { key } => {
                        check_key(key);
                        assert!(!opts.allow_empty, "no-RHS error with -e");
                    }
                    makemap::LineError::LeadingSpace => {
                        assert!(opts.separator.is_none(), "leading-space error with -t");
                    }
                    makemap::LineError::TooLong => {}
                }
                assert!(!error.message().is_empty());
                Resolved::Error { line, error }
            }
        })
        .collect()
}

fn resolved_line(r: &Resolved) -> u32 {
    match r {
        Resolved::Record { line, .. } | Resolved::Error { line, .. } => *line,
    }
}

/// The `makemap_input` target: parse in one pass, then again fed in two pieces, and compare.
pub fn invariants(data: &[u8]) {
    let (opts, split, body) = makemap_options(data);

    let mut whole = body.to_vec();
    let items = makemap::parse(&mut whole, &opts);
    // The only change parse makes to its buffer is folding keys to lower case.
    if opts.fold_case {
        assert!(
            whole.eq_ignore_ascii_case(body),
            "parse changed more than case"
        );
    } else {
        assert_eq!(whole, body, "parse changed the buffer under -f");
    }
    let one_pass = makemap_resolve(&whole, items, &opts);
    // At most one item per line, lines counted from 1, every line at least one byte long.
    let mut last = 0u32;
    for r in &one_pass {
        let line = resolved_line(r);
        assert!(line > last, "line {line} after {last}");
        last = line;
    }
    assert!(
        last as usize <= body.len(),
        "line {last} in {} bytes",
        body.len()
    );

    // A final feed consumes everything.
    let mut buf = body.to_vec();
    let mut n = 0usize;
    let used = makemap::Parser::new(opts).feed(&mut buf, true, |_| n += 1);
    assert_eq!(used, body.len(), "final feed left input");
    assert_eq!(n, one_pass.len());

    // Two pieces: a non-final feed consumes whole lines only; the rest is fed with piece two.
    let mut parser = makemap::Parser::new(opts);
    let mut first = body[..split].to_vec();
    let mut items = Vec::new();
    let used = parser.feed(&mut first, false, |it| items.push(it));
    assert!(used <= split, "consumed {used} of {split}");
    let mut two_pass = makemap_resolve(&first[..used], items, &opts);
    let mut rest = first[used..].to_vec();
    assert_eq!(rest, body[used..split], "unconsumed bytes were modified");
    rest.extend_from_slice(&body[split..]);
    let mut items = Vec::new();
    let used2 = parser.feed(&mut rest, true, |it| items.push(it));
    assert_eq!(used2, rest.len(), "final feed left input");
    two_pass.extend(makemap_resolve(&rest, items, &opts));
    assert_eq!(two_pass, one_pass, "split at {split} changes the result");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and deterministic mutations of it, on stable.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        let tokens: &[&[u8]] = &[
            b"\r\n",
            b"Connect:",
            b"From:",
            b"To:",
            b"\t\t",
            b"\n\n",
            b"\0\n",
        ];
        Plan {
            iterations: 4000,
            keep: MAKEMAP_HEADER,
            tokens,
            min_files: 10,
            ..Plan::new("makemap_input")
        }
        .run(invariants);
    }
}
