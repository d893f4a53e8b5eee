//! Opening an existing map file whatever built it: a mailtool (SQLite) map, or a Berkeley DB
//! file left by sendmail's makemap or Postfix, read-only, so a site can switch before it
//! rebuilds its maps.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::store::{SqliteMap, StoreError};
use super::{Map, MapError};
use crate::util::io_message;

/// Any map file mailtool can read.
pub enum AnyMap {
    Sqlite(SqliteMap),
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
        Err(StoreError::NotAMap {
            path: path.display().to_string(),
            message: "neither a mailtool (SQLite) map nor a Berkeley DB hash/btree file".into(),
        })
    }

    /// A short description of the file's format, for `makemap -u --json` and doctor.
    pub fn format(&self) -> String {
        match self {
            AnyMap::Sqlite(m) => format!("mailtool {}", m.meta().kind),
        }
    }

    /// Every record, in the map's dump order.
    pub fn for_each(&self, f: impl FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        match self {
            AnyMap::Sqlite(m) => m.for_each(f),
        }
    }

    /// Looks up many keys; `None` where absent.
    pub fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match self {
            AnyMap::Sqlite(m) => m.get_many(keys),
        }
    }
}

impl Map for AnyMap {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        match self {
            AnyMap::Sqlite(m) => m.get(key),
        }
    }
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
