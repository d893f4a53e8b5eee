//! Berkeley DB hash/btree file images into `BdbMap::parse`.
//!
//! Needs `mailtool::maps::bdb` (in since commit d06abe2). The checks are a copy of `check_bdb`
//! in the `tests/fuzz_replay_bdb.rs` snippet of `fuzz/README.md`: keep them in sync.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use mailtool::maps::bdb::{self, BdbMap};

fn check_bdb(data: &[u8]) {
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

fuzz_target!(|data: &[u8]| check_bdb(data));
