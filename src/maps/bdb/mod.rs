//! Read-only, pure-Rust reader for Berkeley DB hash and btree files, as built
//! by sendmail's `makemap hash|btree` and Postfix's `postmap`/`postalias`
//! against libdb 4.x/5.x (Debian: libdb5.3).
//!
//! The whole file is decoded into memory at open: maps are small, and a flat
//! record list makes dumping (`makemap -u`) and lookups trivial. Every length,
//! offset and page link read from the file is bounds-checked and every walk
//! is bounded (visited-page set, chain step limits, a decoded-size budget),
//! so malformed input yields a [`BdbError`] rather than a panic or a hang.
//!
//! Supported: metadata versions 7–10 (DB 3.x–6.x layouts), both byte orders,
//! page checksums (skipped, not verified). Not supported (typed errors):
//! DB 1.85 files, encryption, sub-databases, recno/queue/heap, btree
//! compression and DB 6 external "blob" items.

mod btree;
mod hash;
mod page;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use page::{Budget, Db, RECORD_OVERHEAD, u32_at};

/// Access method of a database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BdbKind {
    Hash,
    Btree,
}

/// Byte order every integer in the file is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    Little,
    Big,
}

/// Everything that can go wrong reading a database file.
#[derive(Debug, thiserror::Error)]
pub enum BdbError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("file is {len} bytes, too short to hold a Berkeley DB metadata page")]
    TooShort { len: usize },
    #[error("not a Berkeley DB hash or btree file (no known magic number in the metadata page)")]
    BadMagic,
    #[error(
        "this is an old Berkeley DB 1.85 {kind:?} file, which is not supported; rebuild the map from its source text"
    )]
    Db185 { kind: BdbKind },
    #[error("unsupported Berkeley DB {kind:?} format version {version} (supported: 7 to 10)")]
    UnsupportedVersion { kind: BdbKind, version: u32 },
    #[error("invalid page size {0} in the metadata page")]
    BadPageSize(u32),
    #[error("unsupported Berkeley DB feature: {0}")]
    Unsupported(&'static str),
    #[error("corrupt database at page {pgno}: {what}")]
    Corrupt { pgno: u32, what: String },
    #[error("corrupt database: page {pgno} is referenced but the file has only {npages} pages")]
    PageOutOfRange { pgno: u32, npages: u32 },
    #[error("corrupt database: page {pgno} is reached twice (page chain loop)")]
    PageLoop { pgno: u32 },
    #[error("corrupt database: decoded records would exceed {limit} bytes")]
    TooLarge { limit: usize },
}

/// Magic numbers at offset 12 of the metadata page (`DB_HASHMAGIC`, `DB_BTREEMAGIC`).
const HASH_MAGIC: u32 = 0x0006_1561;
const BTREE_MAGIC: u32 = 0x0005_3162;
/// Metadata page types (`P_HASHMETA`, `P_BTREEMETA`).
const P_HASHMETA: u8 = 8;
const P_BTREEMETA: u8 = 9;
/// Smallest page size Berkeley DB allows; also the minimum metadata page.
const MIN_PAGESIZE: usize = 512;
const MAX_PAGESIZE: usize = 65536;
/// `DBMETA_CHKSUM` in the metadata `metaflags` byte.
const DBMETA_CHKSUM: u8 = 0x01;

/// Decoded records may use at most this multiple of the file size (plus a
/// constant). Real maps decode to well under 2x; this leaves room for on-page
/// duplicates sharing one long key while stopping crafted amplification.
const BUDGET_FACTOR: usize = 64;
const BUDGET_SLACK: usize = 1 << 20;

/// A Berkeley DB hash or btree map decoded into memory.
#[derive(Debug, Clone)]
pub struct BdbMap {
    kind: BdbKind,
    order: ByteOrder,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Key -> index of its first record, for `get`.
    index: HashMap<Vec<u8>, usize>,
}

/// Where the walkers deliver records; enforces the size budget.
pub(crate) struct Sink {
    records: Vec<(Vec<u8>, Vec<u8>)>,
    pub(crate) budget: Budget,
}

impl Sink {
    pub(crate) fn push(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), BdbError> {
        self.budget
            .charge(key.len() + value.len() + RECORD_OVERHEAD)?;
        self.records.push((key, value));
        Ok(())
    }
}

/// Read the magic at offset 12 in both byte orders. Also used by `sniff`,
/// so it only needs the first 26 bytes.
fn detect(b: &[u8]) -> Option<(BdbKind, ByteOrder)> {
    let page_type = *b.get(25)?;
    for order in [ByteOrder::Little, ByteOrder::Big] {
        match (u32_at(b, 12, order)?, page_type) {
            (HASH_MAGIC, P_HASHMETA) => return Some((BdbKind::Hash, order)),
            (BTREE_MAGIC, P_BTREEMETA) => return Some((BdbKind::Btree, order)),
            _ => {}
        }
    }
    None
}

/// DB 1.85 keeps its magic at offset 0 (hash version 2, btree version 3).
fn detect_185(b: &[u8]) -> Option<(BdbKind, ByteOrder)> {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        match (u32_at(b, 0, order)?, u32_at(b, 4, order)?) {
            (HASH_MAGIC, 2) => return Some((BdbKind::Hash, order)),
            (BTREE_MAGIC, 3) => return Some((BdbKind::Btree, order)),
            _ => {}
        }
    }
    None
}

/// Cheap check of a file's first bytes (4 KiB is plenty): is it a Berkeley
/// DB hash or btree file, and in which byte order? DB 1.85 files are
/// recognised too, so callers route them to [`BdbMap::parse`] and get a clear
/// "unsupported" error rather than "unknown format".
pub fn sniff(first_bytes: &[u8]) -> Option<(BdbKind, ByteOrder)> {
    detect(first_bytes).or_else(|| detect_185(first_bytes))
}

impl BdbMap {
    /// Decode a whole database image.
    pub fn parse(bytes: &[u8]) -> Result<BdbMap, BdbError> {
        if bytes.len() < MIN_PAGESIZE {
            return Err(BdbError::TooShort { len: bytes.len() });
        }
        let Some((kind, order)) = detect(bytes) else {
            return Err(match detect_185(bytes) {
                Some((kind, _)) => BdbError::Db185 { kind },
                None => BdbError::BadMagic,
            });
        };
        // Metadata fields (`DBMETA`): 16 version, 20 pagesize, 24 encrypt_alg,
        // 26 metaflags; the length check above keeps these in bounds.
        let version = u32_at(bytes, 16, order).unwrap_or(0);
        if !(7..=10).contains(&version) {
            return Err(BdbError::UnsupportedVersion { kind, version });
        }
        let pagesize = u32_at(bytes, 20, order).unwrap_or(0);
        let ps = pagesize as usize;
        if !ps.is_power_of_two() || !(MIN_PAGESIZE..=MAX_PAGESIZE).contains(&ps) {
            return Err(BdbError::BadPageSize(pagesize));
        }
        if bytes.get(24).copied().unwrap_or(0) != 0 {
            return Err(BdbError::Unsupported("encrypted database"));
        }
        let chksum = bytes.get(26).copied().unwrap_or(0) & DBMETA_CHKSUM != 0;
        let db = Db::new(bytes, order, ps, chksum);
        if db.npages == 0 {
            return Err(BdbError::TooShort { len: bytes.len() });
        }
        let meta = &bytes[..ps];
        let limit = bytes
            .len()
            .saturating_mul(BUDGET_FACTOR)
            .saturating_add(BUDGET_SLACK);
        let mut sink = Sink {
            records: Vec::new(),
            budget: Budget::new(limit),
        };
        match kind {
            BdbKind::Hash => hash::walk(&db, meta, &mut sink)?,
            BdbKind::Btree => btree::walk(&db, meta, &mut sink)?,
        }
        let records = sink.records;
        let mut index = HashMap::with_capacity(records.len());
        for (i, (k, _)) in records.iter().enumerate() {
            index.entry(k.clone()).or_insert(i);
        }
        Ok(BdbMap {
            kind,
            order,
            records,
            index,
        })
    }

    /// Read the file at `path` and [`parse`](Self::parse) it.
    pub fn open(path: &Path) -> Result<BdbMap, BdbError> {
        let bytes = std::fs::read(path).map_err(|source| BdbError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes)
    }

    pub fn kind(&self) -> BdbKind {
        self.kind
    }

    pub fn byte_order(&self) -> ByteOrder {
        self.order
    }

    /// All records in the database's own order (hash: bucket order as a DB
    /// cursor walks it; btree: key order). Duplicates are separate records.
    pub fn records(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.records
    }

    /// First value stored under exactly `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.index
            .get(key)
            .and_then(|&i| self.records.get(i))
            .map(|(_, v)| v.as_slice())
    }

    /// sendmail/Postfix "adaptive NUL" lookup: maps built with `makemap -N`
    /// or `postmap` store keys and values with a trailing NUL. Try `key` as
    /// is, then `key` + NUL; in the latter case one trailing NUL is stripped
    /// from the value.
    pub fn get_adaptive(&self, key: &[u8]) -> Option<&[u8]> {
        if let Some(v) = self.get(key) {
            return Some(v);
        }
        let mut nul_key = Vec::with_capacity(key.len() + 1);
        nul_key.extend_from_slice(key);
        nul_key.push(0);
        self.get(&nul_key)
            .map(|v| v.strip_suffix(&[0u8]).unwrap_or(v))
    }
}
