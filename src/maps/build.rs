//! Building a map from makemap input: parse, order, resolve duplicates, store.
//!
//! The records are sorted by key before they are stored, so SQLite appends to its B-tree
//! instead of splitting pages at random; that is most of makemap's speed. A stable sort keeps
//! equal keys in line order, so first-wins (`makemap`), last-wins (`-r`) and keep-all (`-d`)
//! are decided on adjacent runs.

use std::path::Path;

use super::source::makemap::{self, Item, ParseOptions, Record};
use super::store::{Builder, DupPolicy, Meta, Row, StoreError, Updater};

/// A per-line problem, reported as `makemap: MAP: line N: TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: u32,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// Sorted by line, as sendmail prints them while it reads.
    pub diagnostics: Vec<Diagnostic>,
    pub stored: usize,
}

/// Parses `input` (keys are folded in place) and returns the records and line errors.
pub fn parse(input: &mut [u8], opts: &ParseOptions) -> (Vec<Record>, Vec<Diagnostic>) {
    let mut records = Vec::new();
    let mut diags = Vec::new();
    makemap::parse_each(input, opts, |item| match item {
        Item::Record(r) => records.push(r),
        Item::Error { line, error } => diags.push(Diagnostic { line, text: error.message() }),
    });
    (records, diags)
}

fn dup_diag(input: &[u8], r: &Record) -> Diagnostic {
    Diagnostic {
        line: r.line,
        text: format!("key {}: duplicate key", String::from_utf8_lossy(&input[r.key.clone()])),
    }
}

/// Builds a new map file at `target` from parsed records, replacing any old one atomically.
/// `progress` is called with the number of records stored so far.
pub fn build_new(
    target: &Path,
    meta: Meta,
    input: &[u8],
    mut records: Vec<Record>,
    policy: DupPolicy,
    progress: &mut dyn FnMut(usize),
) -> Result<Outcome, StoreError> {
    let mut out = Outcome::default();
    records.sort_by(|a, b| input[a.key.clone()].cmp(&input[b.key.clone()]));
    let mut builder = Builder::create(target, meta)?;
    let mut rows: Vec<Row<'_>> = Vec::with_capacity(records.len());
    let mut i = 0;
    while i < records.len() {
        let key = &input[records[i].key.clone()];
        let mut j = i + 1;
        while j < records.len() && &input[records[j].key.clone()] == key {
            j += 1;
        }
        let run = &records[i..j];
        match policy {
            DupPolicy::FirstWins => {
                rows.push(Row { key, dup: 0, value: &input[run[0].value.clone()] });
                out.diagnostics.extend(run[1..].iter().map(|r| dup_diag(input, r)));
            }
            DupPolicy::Replace => {
                let last = &run[run.len() - 1];
                rows.push(Row { key, dup: 0, value: &input[last.value.clone()] });
            }
            DupPolicy::Keep => {
                for (n, r) in run.iter().enumerate() {
                    rows.push(Row { key, dup: n as u32, value: &input[r.value.clone()] });
                }
            }
        }
        i = j;
    }
    out.stored = rows.len();
    const CHUNK: usize = 65_536;
    for (n, chunk) in rows.chunks(CHUNK).enumerate() {
        builder.insert(chunk.iter().map(|r| Row { key: r.key, dup: r.dup, value: r.value }))?;
        progress((n * CHUNK + chunk.len()).min(out.stored));
    }
    builder.commit()?;
    out.diagnostics.sort_by_key(|d| d.line);
    Ok(out)
}

/// `makemap -o`: adds records to an existing map in one transaction, in line order.
pub fn update(
    target: &Path,
    input: &[u8],
    records: &[Record],
    policy: DupPolicy,
) -> Result<Outcome, StoreError> {
    let mut out = Outcome::default();
    let mut up = Updater::open(target)?;
    for r in records {
        if up.add(&input[r.key.clone()], &input[r.value.clone()], policy)? {
            out.stored += 1;
        } else {
            out.diagnostics.push(dup_diag(input, r));
        }
    }
    up.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::Map;
    use crate::maps::store::SqliteMap;

    fn build(text: &str, policy: DupPolicy) -> (tempfile::TempDir, SqliteMap, Outcome) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        let mut buf = text.as_bytes().to_vec();
        let (recs, mut diags) = parse(&mut buf, &ParseOptions::default());
        let mut out = build_new(&p, Meta { kind: "hash".into(), nul: false }, &buf, recs, policy, &mut |_| {})
            .unwrap();
        diags.append(&mut out.diagnostics);
        diags.sort_by_key(|d| d.line);
        out.diagnostics = diags;
        let m = SqliteMap::open(&p).unwrap();
        (dir, m, out)
    }

    #[test]
    fn first_value_wins_with_a_message() {
        // SENDMAIL-SPEC §1.5: keys compare after folding; the later line is reported.
        let (_d, m, out) = build("a 1\nb 2\nA 3\n", DupPolicy::FirstWins);
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(out.diagnostics, vec![Diagnostic { line: 3, text: "key a: duplicate key".into() }]);
        assert_eq!(out.stored, 2);
    }

    #[test]
    fn replace_and_keep() {
        // §1.5 -r and -d.
        let (_d, m, out) = build("a 1\nA 3\n", DupPolicy::Replace);
        assert_eq!(m.get(b"a").unwrap(), Some(b"3".to_vec()));
        assert!(out.diagnostics.is_empty());
        let (_d, m, out) = build("a 1\nA 3\n", DupPolicy::Keep);
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(out.stored, 2);
    }

    #[test]
    fn update_keeps_existing_values() {
        let (dir, _m, _) = build("a 1\n", DupPolicy::FirstWins);
        let p = dir.path().join("m.db");
        let mut buf = b"a 2\nb 3\n".to_vec();
        let (recs, _) = parse(&mut buf, &ParseOptions::default());
        let out = update(&p, &buf, &recs, DupPolicy::FirstWins).unwrap();
        assert_eq!(out.stored, 1);
        assert_eq!(out.diagnostics[0].line, 1);
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(m.get(b"b").unwrap(), Some(b"3".to_vec()));
    }
}
