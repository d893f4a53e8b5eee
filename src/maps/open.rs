//! Opening an existing map file whatever built it: a mailtool (SQLite) map, or a Berkeley DB
//! file left by sendmail's makemap or Postfix, read-only, so a site can switch before it
//! rebuilds its maps.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::bdb::{self, BdbKind, BdbMap, ByteOrder};
use super::store::{SqliteMap, StoreError};
use super::{Map, MapError};
use crate::util::io_message;

/// Any map file mailtool can read.
#[allow(clippy::large_enum_variant)] // one per map, never in bulk
pub enum AnyMap {
    Sqlite(SqliteMap),
    /// Read-only: a Berkeley DB file from sendmail or Postfix, loaded whole into memory.
    Bdb(BdbMap),
}

impl AnyMap {
    /// Opens `path` (the `.db` file itself), choosing the reader by the file's magic number.
    pub fn open(path: &Path) -> Result<AnyMap, StoreError> {
        let mut head = [0u8; 4096];
        let n = File::open(path)
            .and_then(|mut f| read_full(&mut f, &mut head))
            .map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                message: io_message(&e),
            })?;
        if super::store::is_sqlite(&head[..n]) {
            return Ok(AnyMap::Sqlite(SqliteMap::open(path)?));
        }
        if bdb::sniff(&head[..n]).is_some() {
            return BdbMap::open(path)
                .map(AnyMap::Bdb)
                .map_err(|e| StoreError::NotAMap {
                    path: path.display().to_string(),
                    message: e.to_string(),
                });
        }
        Err(StoreError::NotAMap {
            path: path.display().to_string(),
            message: "neither a mailtool (SQLite) map nor a Berkeley DB hash/btree file".into(),
        })
    }

    /// A short description of the file's format, for `makemap -u --json` and doctor.
    pub fn format(&self) -> String {
        match self {
            AnyMap::Sqlite(m) => format!("mailtool {}", m.meta().kind),
            AnyMap::Bdb(m) => format!(
                "Berkeley DB {} ({})",
                match m.kind() {
                    BdbKind::Hash => "hash",
                    BdbKind::Btree => "btree",
                },
                match m.byte_order() {
                    ByteOrder::Little => "little-endian",
                    ByteOrder::Big => "big-endian",
                }
            ),
        }
    }

    /// Every record, in the map's dump order.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        match self {
            AnyMap::Sqlite(m) => m.for_each(f),
            AnyMap::Bdb(m) => {
                // In the database's own order, as sendmail's makemap -u walks its cursor, and
                // cut at a NUL the way its %.*s output is.
                for (k, v) in m.records() {
                    f(c_str(k), c_str(v));
                }
                Ok(())
            }
        }
    }

    /// Looks up many keys; `None` where absent.
    pub fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match self {
            AnyMap::Sqlite(m) => m.get_many(keys),
            AnyMap::Bdb(m) => Ok(keys.iter().map(|k| bdb_get(m, k)).collect()),
        }
    }
}

impl Map for AnyMap {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        match self {
            AnyMap::Sqlite(m) => m.get(key),
            AnyMap::Bdb(m) => Ok(bdb_get(m, key)),
        }
    }
}

/// sendmail's adaptive NUL handling: the key with or without a trailing NUL (makemap -N and
/// Postfix write one), the value without it.
fn bdb_get(m: &BdbMap, key: &[u8]) -> Option<Vec<u8>> {
    m.get_adaptive(key).map(|v| c_str(v).to_vec())
}

fn c_str(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
