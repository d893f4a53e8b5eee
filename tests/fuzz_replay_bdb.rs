//! Replays `fuzz/corpus/bdb/` through `BdbMap::parse` with the checks of
//! `fuzz/fuzz_targets/bdb.rs`, then mutates the corpus with a page-aware binary mutator.
//! Companion of `tests/fuzz_replay.rs`; see `fuzz/README.md`.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::Path;

use mailtool::maps::bdb::{self, BdbMap};

/// The `bdb` target. Keep in sync with `fuzz/fuzz_targets/bdb.rs`.
pub fn check_bdb(data: &[u8]) {
    let sniffed = bdb::sniff(data);
    match BdbMap::parse(data) {
        Ok(map) => {
            // What parse accepted, sniff recognises, with the same kind and byte order.
            assert_eq!(sniffed, Some((map.kind(), map.byte_order())));
            // The decoded size stays within the documented budget (64 x file + 1 MiB).
            let mut total = 0usize;
            let mut first: HashMap<&[u8], &[u8]> = HashMap::new();
            for (k, v) in map.records() {
                total = total
                    .checked_add(k.len() + v.len())
                    .expect("record sizes overflow");
                first.entry(k).or_insert(v);
            }
            assert!(
                total <= data.len() * 64 + (1 << 20),
                "{total} bytes decoded"
            );
            // get() finds every key and returns its first record's value.
            for (k, v) in &first {
                assert_eq!(map.get(k), Some(*v), "get({k:?})");
                assert!(map.get_adaptive(k).is_some(), "get_adaptive({k:?})");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn run_one(what: &str, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check_bdb(input))) {
        eprintln!(
            "fuzz_replay_bdb: {what} failed; input ({} bytes):\nb\"{}\"",
            input.len(),
            input.escape_ascii()
        );
        resume_unwind(panic);
    }
}

/// xorshift64*, as in `tests/fuzz_replay.rs`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that page numbers, counts, offsets and lengths go wrong with.
const INTERESTING: &[u32] = &[
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

/// One to four edits: bit flips, interesting 8/16/32-bit values in either byte order (mostly
/// in the 26-byte page headers and the metadata page), truncation at or near a page boundary,
/// and copying one 512-byte page over another.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            v.resize(512, 0);
        }
        let len = v.len();
        let at = if rng.below(2) == 0 {
            // A page header field (pages are 512 bytes in the corpus) or the metadata page.
            let page = rng.below(len.div_ceil(512)) * 512;
            (page + rng.below(if page == 0 { 128 } else { 26 })).min(len - 1)
        } else {
            rng.below(len)
        };
        let value = INTERESTING[rng.below(INTERESTING.len())];
        match rng.below(8) {
            0 => v[at] ^= 1 << rng.below(8),
            1 => v[at] = value as u8,
            2 | 3 => {
                let b = if rng.below(2) == 0 {
                    (value as u16).to_le_bytes()
                } else {
                    (value as u16).to_be_bytes()
                };
                for (i, x) in b.into_iter().enumerate() {
                    if let Some(slot) = v.get_mut(at + i) {
                        *slot = x;
                    }
                }
            }
            4 | 5 => {
                let b = if rng.below(2) == 0 {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                for (i, x) in b.into_iter().enumerate() {
                    if let Some(slot) = v.get_mut(at + i) {
                        *slot = x;
                    }
                }
            }
            6 => {
                let cut = (rng.below(len.div_ceil(512)) * 512 + rng.below(3)).saturating_sub(1);
                v.truncate(cut.max(1));
            }
            _ if len >= 1024 => {
                let pages = len / 512;
                let (from, to) = (rng.below(pages) * 512, rng.below(pages) * 512);
                let page = v[from..from + 512].to_vec();
                v[to..to + 512].copy_from_slice(&page);
            }
            _ => v[at] = rng.next() as u8,
        }
    }
    v
}

#[test]
fn bdb() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/bdb");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("read_dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read corpus file"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    let mut parsed = 0;
    for (name, bytes) in &files {
        run_one(&format!("corpus file {name}"), bytes);
        parsed += usize::from(BdbMap::parse(bytes).is_ok());
    }
    // The valid seeds must stay valid, or the mutations start from nothing but errors.
    assert!(parsed >= 8, "only {parsed} corpus files parse");

    let seeds: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..4000 {
        let base = if !pool.is_empty() && rng.below(3) == 0 {
            &pool[rng.below(pool.len())]
        } else {
            &seeds[rng.below(seeds.len())]
        };
        let input = mutate(&mut rng, base);
        run_one(&format!("mutation {i}"), &input);
        if pool.len() < 64 {
            pool.push(input);
        } else {
            let slot = rng.below(pool.len());
            pool[slot] = input;
        }
    }
}
