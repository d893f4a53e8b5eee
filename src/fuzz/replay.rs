//! The one mutation engine of the stable replays: every file of `fuzz/corpus/TARGET/` goes
//! through the target's invariants, then a bounded, deterministic loop mutates the corpus
//! (byte edits, interesting bytes and words, tokens, line and page copies, splices of other
//! files, truncation) and checks every mutant. The seed is fixed, so a failure reproduces; the
//! failing input is printed as an escaped byte string.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

/// Bytes that text parsers tend to get wrong.
pub const TEXT_BYTES: &[u8] = b"\n \t\0:#\\\"\r@,%=[]{}'\x0b\x0c\x7f\xff\x80";

/// Values that page numbers, counts, offsets and lengths go wrong with.
pub const WORDS: &[u32] = &[
    0,
    1,
    2,
    3,
    7,
    8,
    9,
    10,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x1ff,
    0x200,
    0x3ff,
    0x400,
    0xfff,
    0x1000,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// Line lengths around the parsers' buffer sizes (makemap's 1024, aliases' 8192).
const RUNS: &[usize] = &[
    1, 2, 7, 510, 1021, 1022, 1023, 1024, 1025, 8189, 8190, 8191, 8192,
];

/// How to replay and mutate one corpus.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    /// The corpus directory under `fuzz/corpus/`.
    pub target: &'a str,
    pub iterations: usize,
    /// Mutants are cut to this length, so the loop stays fast in debug builds.
    pub max_len: usize,
    /// A leading options header that edits touch only now and then.
    pub keep: usize,
    /// Bytes worth inserting and overwriting with.
    pub bytes: &'a [u8],
    /// Whole words worth splicing in.
    pub tokens: &'a [&'a [u8]],
    /// For binary formats made of pages of this size: 8/16/32-bit [`WORDS`] in either byte
    /// order in page headers, truncation at page boundaries, pages copied over others.
    pub page: Option<usize>,
    /// The corpus must hold at least this many files.
    pub min_files: usize,
}

impl<'a> Plan<'a> {
    pub fn new(target: &'a str) -> Plan<'a> {
        Plan {
            target,
            iterations: 3_000,
            max_len: 20_000,
            keep: 0,
            bytes: TEXT_BYTES,
            tokens: &[],
            page: None,
            min_files: 1,
        }
    }

    /// A text target: 3,000 mutants of at most `max_len` bytes, with `bytes` as the bytes that
    /// matter to its parser.
    pub fn text(target: &'a str, bytes: &'a [u8], max_len: usize) -> Plan<'a> {
        Plan {
            bytes,
            max_len,
            ..Plan::new(target)
        }
    }

    /// Replays the corpus through `check`, then mutates it. Returns the corpus files.
    pub fn run(&self, check: fn(&[u8])) -> Vec<(String, Vec<u8>)> {
        let files = corpus(self.target);
        assert!(
            files.len() >= self.min_files,
            "fuzz/corpus/{}: only {} files",
            self.target,
            files.len()
        );
        for (name, bytes) in &files {
            run_one(self.target, &format!("corpus file {name}"), bytes, check);
        }
        let seeds: Vec<Vec<u8>> = files.iter().map(|(_, b)| b.clone()).collect();
        let mut pool: Vec<Vec<u8>> = Vec::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ self.target.len() as u64);
        for i in 0..self.iterations {
            // Sometimes stack mutations on an earlier mutant.
            let base = if !pool.is_empty() && rng.below(3) == 0 {
                rng.pick(&pool).clone()
            } else {
                rng.pick(&seeds).clone()
            };
            let input = self.mutate(&mut rng, &base, &seeds);
            run_one(self.target, &format!("mutation {i}"), &input, check);
            if pool.len() < 64 {
                pool.push(input);
            } else {
                let slot = rng.below(pool.len());
                pool[slot] = input;
            }
        }
        files
    }

    /// One to four random edits of `input`.
    fn mutate(&self, rng: &mut Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..1 + rng.below(4) {
            match self.page {
                Some(page) if rng.below(2) == 0 => binary_edit(rng, &mut v, page),
                _ => self.text_edit(rng, &mut v, others),
            }
        }
        v.truncate(self.max_len);
        v
    }

    fn text_edit(&self, rng: &mut Rng, v: &mut Vec<u8>, others: &[Vec<u8>]) {
        let len = v.len();
        let lo = if len > self.keep && rng.below(8) != 0 {
            self.keep
        } else {
            0
        };
        let at = lo + rng.below(len - lo + 1);
        match rng.below(12) {
            // Flip a bit.
            0 if at < len => v[at] ^= 1 << rng.below(8),
            // Overwrite a byte with an interesting or random one.
            1 if at < len => v[at] = *rng.pick(self.bytes),
            2 if at < len => v[at] = rng.next_u64() as u8,
            // Insert interesting bytes.
            3 | 4 => {
                for _ in 0..1 + rng.below(3) {
                    v.insert(at.min(v.len()), *rng.pick(self.bytes));
                }
            }
            // Delete a range.
            5 if at < len => {
                let end = (at + 1 + rng.below(16)).min(len);
                v.drain(at..end);
            }
            // Truncate.
            6 => v.truncate(at),
            // Duplicate a line.
            7 => {
                let start = v[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = v[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |i| at + i + 1);
                let line = v[start..end].to_vec();
                v.splice(end..end, line);
            }
            // A run of one byte, sized around a buffer boundary.
            8 => {
                let byte = *rng.pick(b"xv \t\\\0\n");
                let n = *rng.pick(RUNS);
                v.splice(at..at, std::iter::repeat_n(byte, n));
            }
            // Splice in a token.
            9 if !self.tokens.is_empty() => {
                let t = *rng.pick(self.tokens);
                v.splice(at..at, t.iter().copied());
            }
            // Splice in a slice of another corpus file.
            10 => {
                let other = rng.pick(others);
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(256)).min(other.len());
                    v.splice(at..at, other[a..b].iter().copied());
                }
            }
            // Replace the options header.
            11 if self.keep > 0 && len >= self.keep => {
                for b in &mut v[..self.keep] {
                    *b = rng.next_u64() as u8;
                }
            }
            _ => v.push(*rng.pick(self.bytes)),
        }
    }
}

/// A page-aware edit: interesting values in page headers (or anywhere), truncation at or near
/// a page boundary, one page copied over another.
fn binary_edit(rng: &mut Rng, v: &mut Vec<u8>, page: usize) {
    if v.is_empty() {
        v.resize(page, 0);
    }
    let len = v.len();
    let at = if rng.below(2) == 0 {
        // A page header field, or the first (metadata) page.
        let p = rng.below(len.div_ceil(page)) * page;
        (p + rng.below(if p == 0 { 128 } else { 26 })).min(len - 1)
    } else {
        rng.below(len)
    };
    let value = *rng.pick(WORDS);
    let cur = v[at];
    let mut put = |bytes: &[u8]| {
        for (i, x) in bytes.iter().enumerate() {
            if let Some(slot) = v.get_mut(at + i) {
                *slot = *x;
            }
        }
    };
    match rng.below(8) {
        0 => put(&[cur ^ (1 << rng.below(8))]),
        1 => put(&[value as u8]),
        2 | 3 => {
            if rng.below(2) == 0 {
                put(&(value as u16).to_le_bytes());
            } else {
                put(&(value as u16).to_be_bytes());
            }
        }
        4 | 5 => {
            if rng.below(2) == 0 {
                put(&value.to_le_bytes());
            } else {
                put(&value.to_be_bytes());
            }
        }
        6 => {
            let cut = (rng.below(len.div_ceil(page)) * page + rng.below(3)).saturating_sub(1);
            v.truncate(cut.max(1));
        }
        _ if len >= 2 * page => {
            let pages = len / page;
            let (from, to) = (rng.below(pages) * page, rng.below(pages) * page);
            let copy = v[from..from + page].to_vec();
            v[to..to + page].copy_from_slice(&copy);
        }
        _ => put(&[rng.next_u64() as u8]),
    }
}

/// Every file of `fuzz/corpus/TARGET/`, sorted by name so the loop is reproducible.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("read_dir entry").path();
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// One corpus file by name.
pub fn file(target: &str, name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs `check` on `input`; on a panic, prints the input first.
fn run_one(target: &str, what: &str, input: &[u8], check: fn(&[u8])) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
        eprintln!(
            "fuzz replay: {target}: {what} failed; input ({} bytes):\nb\"{}\"",
            input.len(),
            input.escape_ascii()
        );
        resume_unwind(panic);
    }
}

/// xorshift64*: small, fast and the same on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n`; `n` must be non-zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_is_deterministic_and_bounded() {
        let plan = Plan {
            max_len: 64,
            page: Some(16),
            ..Plan::new("x")
        };
        let seeds = vec![b"hello\nworld\n".to_vec(), vec![0u8; 48]];
        let run = || {
            let mut rng = Rng(7);
            (0..200)
                .map(|i| plan.mutate(&mut rng, &seeds[i % 2], &seeds))
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        assert!(a.iter().all(|m| m.len() <= 64));
        assert!(a.iter().any(|m| m != &seeds[0] && m != &seeds[1]));
    }
}
