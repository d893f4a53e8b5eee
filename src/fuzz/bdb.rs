//! The `bdb` target: Berkeley DB hash/btree file images into `BdbMap::parse`, with a
//! page-aware binary mutator in the replay.

use std::collections::HashMap;

use crate::maps::bdb::{self, BdbMap};

/// Whatever `parse` accepts is consistent: `sniff` agrees, the decoded size stays in budget,
/// and `get` finds every key with its first value.
pub fn invariants(data: &[u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// The corpus and page-aware mutations of it (pages are 512 bytes in the corpus).
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        let files = Plan {
            iterations: 4000,
            page: Some(512),
            min_files: 10,
            ..Plan::new("bdb")
        }
        .run(invariants);
        // The valid seeds must stay valid, or the mutations start from nothing but errors.
        let parsed = files
            .iter()
            .filter(|(_, b)| BdbMap::parse(b).is_ok())
            .count();
        assert!(parsed >= 8, "only {parsed} corpus files parse");
    }
}
