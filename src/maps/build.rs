//! Building a map from makemap input: parse, sort, resolve duplicates, store.
//!
//! The input is streamed: records are collected into runs of bounded size, each run is sorted
//! and, when there is more than one, spilled to an anonymous temp file; the runs are then
//! merged in key order straight into the store. Memory stays at a few MiB whatever the input
//! size, and the store only ever appends. The sort is by key, then line, so equal keys arrive
//! in line order and first-wins (`makemap`), last-wins (`-r`) and keep-all (`-d`) are decided
//! on adjacent records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use super::source::makemap::{Item, ParseOptions, Parser};
use super::store::{Builder, DupPolicy, Meta, StoreError, Updater};

/// Default size of one sorted run, in bytes of keys and values.
pub const RUN_BYTES: usize = 384 << 10;
const READ_CHUNK: usize = 64 << 10;
/// Read buffer of each spilled run during the merge.
const MERGE_BUFFER: usize = 4 << 10;

/// A per-line problem, reported as `makemap: MAP: line N: TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: u32,
    pub text: String,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// Every line error and duplicate, sorted by line, as sendmail prints them while it reads.
    pub diagnostics: Vec<Diagnostic>,
    pub stored: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the input: {}", crate::util::io_message(.0))]
    Input(io::Error),
    #[error("temporary sort file: {}", crate::util::io_message(.0))]
    Temp(io::Error),
}

/// How to read and store the input.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub opts: ParseOptions,
    pub policy: DupPolicy,
    pub run_bytes: usize,
}

/// A callback that sees every record as it is read (`makemap -v`).
pub type RecordHook<'a> = &'a mut dyn FnMut(&[u8], &[u8]);

/// Hooks for `-v` (every record as read) and progress (records read so far).
pub struct Hooks<'a> {
    pub on_record: Option<RecordHook<'a>>,
    pub progress: Option<&'a mut dyn FnMut(usize)>,
}

impl Hooks<'_> {
    pub fn none() -> Hooks<'static> {
        Hooks {
            on_record: None,
            progress: None,
        }
    }
}

/// One record's place in a run's arena.
#[derive(Debug, Clone, Copy)]
struct Rec {
    off: u32,
    klen: u16,
    vlen: u16,
    line: u32,
}

#[derive(Default)]
struct Run {
    arena: Vec<u8>,
    recs: Vec<Rec>,
}

impl Run {
    fn key(&self, r: &Rec) -> &[u8] {
        &self.arena[r.off as usize..r.off as usize + r.klen as usize]
    }
    fn value(&self, r: &Rec) -> &[u8] {
        let s = r.off as usize + r.klen as usize;
        &self.arena[s..s + r.vlen as usize]
    }
    fn push(&mut self, key: &[u8], value: &[u8], line: u32) {
        // Lines are at most 1023 bytes, so both lengths fit in u16.
        let off = self.arena.len() as u32;
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(value);
        self.recs.push(Rec {
            off,
            klen: key.len() as u16,
            vlen: value.len() as u16,
            line,
        });
    }
    fn sort(&mut self) {
        let arena = &self.arena;
        self.recs.sort_unstable_by(|a, b| {
            let ka = &arena[a.off as usize..a.off as usize + a.klen as usize];
            let kb = &arena[b.off as usize..b.off as usize + b.klen as usize];
            ka.cmp(kb).then(a.line.cmp(&b.line))
        });
    }
    /// Writes the sorted run as `line u32, klen u16, vlen u16, key, value` records.
    fn spill(&mut self, dir: &Path) -> io::Result<File> {
        self.sort();
        let mut w = BufWriter::with_capacity(16 << 10, tempfile::tempfile_in(dir)?);
        for r in &self.recs {
            w.write_all(&r.line.to_le_bytes())?;
            w.write_all(&r.klen.to_le_bytes())?;
            w.write_all(&r.vlen.to_le_bytes())?;
            w.write_all(self.key(r))?;
            w.write_all(self.value(r))?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        io::Seek::seek(&mut f, io::SeekFrom::Start(0))?;
        self.arena.clear();
        self.recs.clear();
        Ok(f)
    }
}

/// A sorted stream of records: an in-memory run or a spilled one.
enum Source {
    Mem {
        run: Run,
        next: usize,
    },
    File {
        r: BufReader<File>,
        key: Vec<u8>,
        value: Vec<u8>,
        line: u32,
        live: bool,
    },
}

impl Source {
    fn file(f: File) -> io::Result<Source> {
        let mut s = Source::File {
            r: BufReader::with_capacity(MERGE_BUFFER, f),
            key: Vec::new(),
            value: Vec::new(),
            line: 0,
            live: true,
        };
        s.advance()?;
        Ok(s)
    }

    fn current(&self) -> Option<(&[u8], &[u8], u32)> {
        match self {
            Source::Mem { run, next } => run
                .recs
                .get(*next)
                .map(|r| (run.key(r), run.value(r), r.line)),
            Source::File {
                key,
                value,
                line,
                live,
                ..
            } => live.then_some((key.as_slice(), value.as_slice(), *line)),
        }
    }

    fn advance(&mut self) -> io::Result<()> {
        match self {
            Source::Mem { next, .. } => *next += 1,
            Source::File {
                r,
                key,
                value,
                line,
                live,
            } => {
                let mut head = [0u8; 8];
                match r.read_exact(&mut head) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        *live = false;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
                *line = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                let kl = u16::from_le_bytes([head[4], head[5]]) as usize;
                let vl = u16::from_le_bytes([head[6], head[7]]) as usize;
                key.resize(kl, 0);
                r.read_exact(key)?;
                value.resize(vl, 0);
                r.read_exact(value)?;
            }
        }
        Ok(())
    }
}

/// Reads makemap input from `input` and builds a new map at `target`, replacing any old one
/// atomically. Line errors do not stop the build; they are returned, sorted by line.
pub fn build_new(
    target: &Path,
    meta: Meta,
    input: &mut dyn Read,
    spec: &Spec,
    hooks: Hooks<'_>,
) -> Result<Outcome, BuildError> {
    let Hooks {
        mut on_record,
        mut progress,
    } = hooks;
    let mut out = Outcome::default();
    let mut parser = Parser::new(spec.opts);
    let mut pending: Vec<u8> = Vec::with_capacity(READ_CHUNK + 1024);
    let mut items: Vec<Item> = Vec::new();
    // Sized once: a growing Vec would double past the run size and double the peak memory.
    let mut run = Run {
        arena: Vec::with_capacity(spec.run_bytes + 2048),
        recs: Vec::with_capacity(spec.run_bytes / 24),
    };
    let mut spilled: Vec<File> = Vec::new();
    let mut seen = 0usize;
    let mut eof = false;
    // Runs spill next to the map: same file system, and no assumption that /tmp is large.
    let tmp_dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    while !eof {
        let old = pending.len();
        pending.resize(old + READ_CHUNK, 0);
        let n = loop {
            match input.read(&mut pending[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BuildError::Input(e)),
            }
        };
        pending.truncate(old + n);
        eof = n == 0;
        let used = parser.feed(&mut pending, eof, |it| items.push(it));
        for it in items.drain(..) {
            match it {
                Item::Record(r) => {
                    let (k, v) = (&pending[r.key], &pending[r.value]);
                    if let Some(f) = on_record.as_mut() {
                        f(k, v);
                    }
                    run.push(k, v, r.line);
                    seen += 1;
                }
                Item::Error { line, error } => out.diagnostics.push(Diagnostic {
                    line,
                    text: error.message(),
                }),
            }
        }
        pending.drain(..used);
        if run.arena.len() >= spec.run_bytes {
            spilled.push(run.spill(&tmp_dir).map_err(BuildError::Temp)?);
        }
        if let Some(p) = progress.as_mut() {
            p(seen);
        }
    }

    let mut sources = Vec::with_capacity(spilled.len() + 1);
    if spilled.is_empty() {
        run.sort();
        sources.push(Source::Mem { run, next: 0 });
    } else {
        if !run.recs.is_empty() {
            spilled.push(run.spill(&tmp_dir).map_err(BuildError::Temp)?);
        }
        for f in spilled {
            sources.push(Source::file(f).map_err(BuildError::Temp)?);
        }
    }

    let mut builder = Builder::create(target, meta)?;
    let mut prev: Vec<u8> = Vec::new();
    let mut have_prev = false;
    // For -r: the newest value of the current key, written when the key changes.
    let mut held: Option<Vec<u8>> = None;
    // A min-heap of (key, line, source); each popped key buffer is reused for the source's
    // next record, so the merge allocates nothing per record.
    let mut heap: BinaryHeap<Reverse<(Vec<u8>, u32, usize)>> =
        BinaryHeap::with_capacity(sources.len());
    for (i, s) in sources.iter().enumerate() {
        if let Some((k, _, l)) = s.current() {
            heap.push(Reverse((k.to_vec(), l, i)));
        }
    }
    while let Some(Reverse((mut key, line, b))) = heap.pop() {
        let Some((k, v, _)) = sources[b].current() else {
            continue;
        };
        let same = have_prev && k == prev.as_slice();
        match spec.policy {
            DupPolicy::FirstWins if same => out.diagnostics.push(Diagnostic {
                line,
                text: format!("key {}: duplicate key", String::from_utf8_lossy(k)),
            }),
            DupPolicy::FirstWins | DupPolicy::Keep => builder.push(k, v)?,
            DupPolicy::Replace => {
                if !same && let Some(val) = held.take() {
                    builder.push(&prev, &val)?;
                }
                held = Some(v.to_vec());
            }
        }
        if !same {
            prev.clear();
            prev.extend_from_slice(k);
            have_prev = true;
        }
        sources[b].advance().map_err(BuildError::Temp)?;
        if let Some((k, _, l)) = sources[b].current() {
            key.clear();
            key.extend_from_slice(k);
            heap.push(Reverse((key, l, b)));
        }
    }
    if let Some(val) = held.take() {
        builder.push(&prev, &val)?;
    }
    out.stored = builder.count();
    builder.commit()?;
    out.diagnostics.sort_by_key(|d| d.line);
    Ok(out)
}

/// `makemap -o`: adds records to an existing map in one transaction, in line order.
pub fn update(
    target: &Path,
    input: &mut dyn Read,
    spec: &Spec,
    hooks: Hooks<'_>,
) -> Result<Outcome, BuildError> {
    let Hooks { mut on_record, .. } = hooks;
    let mut text = Vec::new();
    input.read_to_end(&mut text).map_err(BuildError::Input)?;
    let mut out = Outcome::default();
    let mut items = Vec::new();
    Parser::new(spec.opts).feed(&mut text, true, |it| items.push(it));
    let mut up = Updater::open(target)?;
    for it in items {
        match it {
            Item::Record(r) => {
                let (k, v) = (&text[r.key], &text[r.value]);
                if let Some(f) = on_record.as_mut() {
                    f(k, v);
                }
                if up.add(k, v, spec.policy)? {
                    out.stored += 1;
                } else {
                    out.diagnostics.push(Diagnostic {
                        line: r.line,
                        text: format!("key {}: duplicate key", String::from_utf8_lossy(k)),
                    });
                }
            }
            Item::Error { line, error } => out.diagnostics.push(Diagnostic {
                line,
                text: error.message(),
            }),
        }
    }
    up.commit()?;
    Ok(out)
}

/// Builds (or with `append`, adds to) a map in any [`MutableMap`], a backend table in
/// practice: the input parsed as for a map file, with the same line errors and duplicate
/// reports. A key or value that the store cannot hold (PostgreSQL's `text` takes UTF-8 without
/// NUL) is reported with its line and left out; the good lines are still written. A rebuild is
/// one `replace_all`, so readers see the old map or the new one.
pub fn build_into(
    table: &dyn crate::maps::table::MutableMap,
    input: &mut dyn Read,
    spec: &Spec,
    append: bool,
    text_only: bool,
) -> Result<Outcome, RemoteBuildError> {
    use crate::maps::backend::Put;
    let mut data = Vec::new();
    input
        .read_to_end(&mut data)
        .map_err(RemoteBuildError::Input)?;
    let mut out = Outcome::default();
    let mut order: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut index: hashbrown::HashMap<Vec<u8>, usize> = hashbrown::HashMap::new();
    let items = super::source::makemap::parse(&mut data, &spec.opts);
    let mut lines: Vec<u32> = Vec::new();
    for item in items {
        let r = match item {
            Item::Record(r) => r,
            Item::Error { line, error } => {
                out.diagnostics.push(Diagnostic {
                    line,
                    text: error.message(),
                });
                continue;
            }
        };
        let (k, v) = (&data[r.key.clone()], &data[r.value.clone()]);
        if text_only && !(crate::maps::backend::text_ok(k) && crate::maps::backend::text_ok(v)) {
            out.diagnostics.push(Diagnostic {
                line: r.line,
                text: format!(
                    "key {}: not UTF-8 text, which a backend table holds",
                    String::from_utf8_lossy(k)
                ),
            });
            continue;
        }
        match index.get(k) {
            Some(&i) => match spec.policy {
                DupPolicy::FirstWins => out.diagnostics.push(Diagnostic {
                    line: r.line,
                    text: format!("key {}: duplicate key", String::from_utf8_lossy(k)),
                }),
                DupPolicy::Replace => order[i].1 = v.to_vec(),
                // A table keeps one value per key; lookups see the first, as with -d.
                DupPolicy::Keep => {}
            },
            None => {
                index.insert(k.to_vec(), order.len());
                order.push((k.to_vec(), v.to_vec()));
                lines.push(r.line);
            }
        }
    }
    if append {
        for ((k, v), &line) in order.iter().zip(&lines) {
            let how = match spec.policy {
                DupPolicy::Replace => Put::Replace,
                DupPolicy::FirstWins | DupPolicy::Keep => Put::IfAbsent,
            };
            let new = table.put(k, v, how)?;
            if !new && spec.policy == DupPolicy::FirstWins {
                out.diagnostics.push(Diagnostic {
                    line,
                    text: format!("key {}: duplicate key", String::from_utf8_lossy(k)),
                });
            }
            out.stored += usize::from(new || spec.policy == DupPolicy::Replace);
        }
    } else {
        out.stored = table.replace_all(order)?;
    }
    out.diagnostics.sort_by_key(|d| d.line);
    Ok(out)
}

/// Why [`build_into`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum RemoteBuildError {
    #[error("reading the input: {}", crate::util::io_message(.0))]
    Input(io::Error),
    #[error(transparent)]
    Map(#[from] crate::maps::MapError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::Map;
    use crate::maps::store::SqliteMap;

    fn spec(policy: DupPolicy, run_bytes: usize) -> Spec {
        Spec {
            opts: ParseOptions::default(),
            policy,
            run_bytes,
        }
    }

    fn build(text: &str, s: Spec) -> (tempfile::TempDir, SqliteMap, Outcome) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        let out = build_new(
            &p,
            Meta {
                kind: "hash".into(),
                nul: false,
            },
            &mut text.as_bytes(),
            &s,
            Hooks::none(),
        )
        .unwrap();
        let m = SqliteMap::open(&p).unwrap();
        (dir, m, out)
    }

    fn dump(m: &SqliteMap) -> Vec<String> {
        let mut v = vec![];
        m.for_each(|k, val| {
            v.push(format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(val)
            ))
        })
        .unwrap();
        v
    }

    #[test]
    fn first_value_wins_with_a_message() {
        // docs/sendmail-compat.md §1.5: keys compare after folding; the later line is reported.
        let (_d, m, out) = build(
            "a 1\nb 2\nA 3\n leading\n",
            spec(DupPolicy::FirstWins, RUN_BYTES),
        );
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(
            out.diagnostics,
            vec![
                Diagnostic {
                    line: 3,
                    text: "key a: duplicate key".into()
                },
                Diagnostic {
                    line: 4,
                    text: "syntax error (leading space)".into()
                },
            ]
        );
        assert_eq!(out.stored, 2);
    }

    #[test]
    fn replace_and_keep() {
        // §1.5 -r and -d.
        let (_d, m, out) = build("a 1\nA 3\nb 4\n", spec(DupPolicy::Replace, RUN_BYTES));
        assert_eq!(dump(&m), ["a=3", "b=4"]);
        assert!(out.diagnostics.is_empty());
        let (_d, m, out) = build("a 1\nA 3\n", spec(DupPolicy::Keep, RUN_BYTES));
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(dump(&m), ["a=1", "a=3"]);
        assert_eq!(out.stored, 2);
    }

    #[test]
    fn spilled_runs_merge_like_one_run() {
        // Tiny runs force the external merge; the result must not depend on the run size.
        let mut text = String::new();
        for i in 0..3000u32 {
            text.push_str(&format!("k{} v{i}\n", (i * 7919) % 1000));
        }
        for policy in [DupPolicy::FirstWins, DupPolicy::Replace, DupPolicy::Keep] {
            let (_a, big, out_big) = build(&text, spec(policy, RUN_BYTES));
            let (_b, small, out_small) = build(&text, spec(policy, 512));
            assert_eq!(dump(&big), dump(&small), "{policy:?}");
            assert_eq!(out_big.diagnostics, out_small.diagnostics);
            assert_eq!(out_big.stored, out_small.stored);
        }
    }

    #[test]
    fn update_keeps_existing_values() {
        let (dir, _m, _) = build("a 1\n", spec(DupPolicy::FirstWins, RUN_BYTES));
        let p = dir.path().join("m.db");
        let out = update(
            &p,
            &mut &b"a 2\nb 3\n"[..],
            &spec(DupPolicy::FirstWins, RUN_BYTES),
            Hooks::none(),
        )
        .unwrap();
        assert_eq!(out.stored, 1);
        assert_eq!(out.diagnostics[0].line, 1);
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(m.get(b"b").unwrap(), Some(b"3".to_vec()));
    }
}
