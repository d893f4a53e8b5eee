//! Fixture tests (databases made by perl DB_File, db5.3_load, sendmail
//! makemap and Postfix postmap; see tests/fixtures/bdb/make-fixtures.sh)
//! and malformed-input tests.

use super::*;
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bdb")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Undo dump-expected.pl's escaping: `\xHH` for any byte outside 0x21-0x7e
/// and for backslash.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("utf8");
            out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn expected(db_name: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let name = db_name.replace(".db", ".expected");
    let text = String::from_utf8(fixture(&name)).expect("expected file is ASCII");
    text.lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').expect("key<TAB>value");
            (unescape(k), unescape(v))
        })
        .collect()
}

fn db_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".db"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_fixture_matches_its_expected_dump() {
    let names = db_fixtures();
    assert!(names.len() >= 20, "fixtures missing: {names:?}");
    for name in names {
        let map =
            BdbMap::open(&fixture_dir().join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want_kind = if name.contains("-hash-") {
            BdbKind::Hash
        } else {
            BdbKind::Btree
        };
        let want_order = if name.ends_with("-be.db") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        assert_eq!(map.kind(), want_kind, "{name}");
        assert_eq!(map.byte_order(), want_order, "{name}");
        let want = expected(&name);
        assert_eq!(map.records().len(), want.len(), "{name}: record count");
        for (i, (got, want)) in map.records().iter().zip(&want).enumerate() {
            assert_eq!(got, want, "{name}: record {i}");
        }
        assert_eq!(
            sniff(&fixture(&name)),
            Some((want_kind, want_order)),
            "{name}"
        );
    }
}

#[test]
fn access_map_lookups() {
    for name in [
        "access-hash-le.db",
        "access-hash-be.db",
        "access-btree-le.db",
        "access-btree-be.db",
        "makemap-access-hash-le.db",
    ] {
        let map = BdbMap::parse(&fixture(name)).expect(name);
        assert_eq!(map.get(b"connect:relay.com"), Some(&b"RELAY"[..]), "{name}");
        assert_eq!(map.get(b"connect:192.168"), Some(&b"REJECT"[..]), "{name}");
        assert_eq!(map.get(b"from:false@junk.com"), Some(&b"REJECT"[..]));
        assert_eq!(map.get(b"connect:relay.co"), None, "{name}");
        assert_eq!(map.get_adaptive(b"to:true.com"), Some(&b"OK"[..]), "{name}");
        assert_eq!(map.records().len(), 6, "{name}");
    }
}

#[test]
fn btree_is_in_key_order() {
    let map = BdbMap::parse(&fixture("big5000-btree-be.db")).expect("parse");
    assert_eq!(map.records().len(), 5000);
    assert!(map.records().windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(
        map.get(b"user04321@example53.com"),
        Some(&b"mailbox4321"[..])
    );
}

#[test]
fn adaptive_nul_lookups() {
    for name in [
        "nul-hash-le.db",
        "nul-btree-be.db",
        "makemap-nul-hash-le.db",
        "postfix-access-hash-le.db",
        "postfix-access-btree-le.db",
    ] {
        let map = BdbMap::parse(&fixture(name)).expect(name);
        assert_eq!(map.get(b"reject.com"), None, "{name}");
        assert_eq!(map.get(b"reject.com\0"), Some(&b"REJECT\0"[..]), "{name}");
        assert_eq!(
            map.get_adaptive(b"reject.com"),
            Some(&b"REJECT"[..]),
            "{name}"
        );
        assert_eq!(map.get_adaptive(b"nope.com"), None, "{name}");
    }
    let aliases = BdbMap::parse(&fixture("postalias-aliases-hash-le.db")).expect("aliases");
    assert_eq!(
        aliases.get_adaptive(b"root"),
        Some(&b"admin@example.com, other@example.com"[..])
    );
}

#[test]
fn duplicates_come_back_in_order_and_get_returns_the_first() {
    for name in [
        "dups-btree-le.db",
        "dups-btree-be.db",
        "hashdups-hash-be.db",
    ] {
        let map = BdbMap::parse(&fixture(name)).expect(name);
        let alpha: Vec<&[u8]> = map
            .records()
            .iter()
            .filter(|(k, _)| k == b"alpha")
            .map(|(_, v)| v.as_slice())
            .collect();
        assert_eq!(alpha, [&b"one"[..], b"two", b"three"], "{name}");
        let many = map.records().iter().filter(|(k, _)| k == b"many").count();
        assert_eq!(many, 600, "{name}");
        assert_eq!(map.get(b"many"), Some(&b"dup0001"[..]), "{name}");
    }
}

#[test]
fn overflow_values_are_complete() {
    for name in ["overflow-hash-le.db", "overflow-btree-be.db"] {
        let map = BdbMap::parse(&fixture(name)).expect(name);
        assert_eq!(map.get(b"huge-value").map(<[u8]>::len), Some(50000));
        assert_eq!(map.get(b"big-value").map(<[u8]>::len), Some(10000));
        let big_key = map.records().iter().find(|(_, v)| v == b"big-key");
        assert_eq!(big_key.map(|(k, _)| k.len()), Some(3000), "{name}");
    }
}

// ---- malformed input ----

/// An access-map fixture as a mutable image plus its page size.
fn image(name: &str) -> (Vec<u8>, usize) {
    (fixture(name), 4096)
}

fn put_u32(b: &mut [u8], off: usize, v: u32, order: ByteOrder) {
    let bytes = match order {
        ByteOrder::Little => v.to_le_bytes(),
        ByteOrder::Big => v.to_be_bytes(),
    };
    b[off..off + 4].copy_from_slice(&bytes);
}

#[test]
fn short_and_garbage_inputs_are_errors() {
    assert!(matches!(BdbMap::parse(b""), Err(BdbError::TooShort { .. })));
    assert!(matches!(
        BdbMap::parse(&[0u8; 100]),
        Err(BdbError::TooShort { .. })
    ));
    assert!(matches!(
        BdbMap::parse(&[0u8; 8192]),
        Err(BdbError::BadMagic)
    ));
    assert!(sniff(b"SQLite format 3\0").is_none());
    assert!(sniff(&[0u8; 4096]).is_none());
}

#[test]
fn db185_is_recognised_and_refused() {
    let mut b = vec![0u8; 4096];
    put_u32(&mut b, 0, 0x061561, ByteOrder::Big);
    put_u32(&mut b, 4, 2, ByteOrder::Big);
    assert_eq!(sniff(&b), Some((BdbKind::Hash, ByteOrder::Big)));
    assert!(matches!(
        BdbMap::parse(&b),
        Err(BdbError::Db185 {
            kind: BdbKind::Hash
        })
    ));
}

#[test]
fn bad_meta_fields_are_errors() {
    let (orig, _) = image("access-hash-le.db");
    let mut b = orig.clone();
    put_u32(&mut b, 16, 3, ByteOrder::Little);
    assert!(matches!(
        BdbMap::parse(&b),
        Err(BdbError::UnsupportedVersion { version: 3, .. })
    ));
    let mut b = orig.clone();
    put_u32(&mut b, 20, 1000, ByteOrder::Little);
    assert!(matches!(
        BdbMap::parse(&b),
        Err(BdbError::BadPageSize(1000))
    ));
    let mut b = orig.clone();
    b[24] = 1;
    assert!(matches!(BdbMap::parse(&b), Err(BdbError::Unsupported(_))));
    // max_bucket far beyond the file.
    let mut b = orig;
    put_u32(&mut b, 72, u32::MAX, ByteOrder::Little);
    assert!(matches!(BdbMap::parse(&b), Err(BdbError::Corrupt { .. })));
}

#[test]
fn truncated_files_are_errors() {
    for name in [
        "big5000-hash-le.db",
        "big5000-btree-be.db",
        "overflow-hash-be.db",
    ] {
        let b = fixture(name);
        for len in [512, 4096, 4097, 8192, b.len() / 2, b.len() - 4096] {
            assert!(BdbMap::parse(&b[..len]).is_err(), "{name} cut to {len}");
        }
    }
}

#[test]
fn page_loops_are_detected() {
    // Leaf chain pointing back at itself.
    let (mut b, ps) = image("big5000-btree-le.db");
    let map = BdbMap::parse(&b).expect("parse");
    assert_eq!(map.records().len(), 5000);
    let npages = b.len() / ps;
    let leaf = (1..npages)
        .find(|&p| b[p * ps + 25] == page::P_LBTREE && b[p * ps + 16..p * ps + 20] != [0; 4])
        .expect("a leaf with a successor");
    put_u32(&mut b, leaf * ps + 16, leaf as u32, ByteOrder::Little);
    assert!(matches!(BdbMap::parse(&b), Err(BdbError::PageLoop { .. })));

    // Overflow chain looping on itself.
    let (mut b, ps) = image("overflow-hash-le.db");
    let ov = (1..b.len() / ps)
        .find(|&p| b[p * ps + 25] == page::P_OVERFLOW)
        .expect("an overflow page");
    put_u32(&mut b, ov * ps + 16, ov as u32, ByteOrder::Little);
    assert!(BdbMap::parse(&b).is_err());
}

#[test]
fn oversized_lengths_are_errors() {
    // Set every overflow page's data length to the maximum.
    let (mut b, ps) = image("overflow-btree-be.db");
    for p in 1..b.len() / ps {
        if b[p * ps + 25] == page::P_OVERFLOW {
            b[p * ps + 22] = 0xff;
            b[p * ps + 23] = 0xff;
        }
    }
    assert!(matches!(BdbMap::parse(&b), Err(BdbError::Corrupt { .. })));
    // Claim an enormous entry count on the first bucket page.
    let (mut b, ps) = image("access-hash-be.db");
    b[ps + 20] = 0xff;
    b[ps + 21] = 0xff;
    assert!(matches!(BdbMap::parse(&b), Err(BdbError::Corrupt { .. })));
}

/// xorshift64: deterministic, dependency-free randomness for the fuzz loop.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let names = [
        "access-hash-le.db",
        "access-btree-be.db",
        "dups-btree-le.db",
        "hashdups-hash-be.db",
        "overflow-hash-le.db",
        "overflow-btree-be.db",
        "chksum-btree-le.db",
        "deleted-hash-le.db",
        "sorteddups-hash-be.db",
        "big5000-btree-be.db",
    ];
    let originals: Vec<Vec<u8>> = names.iter().map(|n| fixture(n)).collect();
    for iter in 0..3000 {
        let orig = &originals[iter % originals.len()];
        let mut b = orig.clone();
        match rng.below(4) {
            // Flip a few random bytes anywhere.
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(b.len());
                    b[i] ^= 1 << rng.below(8);
                }
            }
            // Overwrite a byte in a page header (where the links live).
            1 => {
                let page = rng.below(b.len() / 4096);
                let i = page * 4096 + rng.below(32);
                b[i] = rng.next() as u8;
            }
            // Overwrite a whole u32 with an extreme value.
            2 => {
                let i = rng.below(b.len() - 4);
                let v = [0u32, 1, 0xffff, u32::MAX, 0x8000_0000][rng.below(5)];
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            // Truncate.
            _ => b.truncate(rng.below(orig.len())),
        }
        // Must return (Ok or Err) without panicking.
        let _ = BdbMap::parse(&b);
        let _ = sniff(&b);
    }
}
