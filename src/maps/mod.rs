//! Lookup tables: the makemap/newaliases sources, their SQLite store, the read-only Berkeley DB
//! importer, and the sendmail lookup semantics (access db, virtusertable, aliases, class files).
//!
//! Every lookup goes through the [`Map`] trait, so the semantics modules are pure functions over
//! a table and the store behind it can change (SQLite today, a Berkeley DB file during migration,
//! an in-memory table in tests).

pub mod access;
pub mod aliases;
pub mod bdb;
pub mod build;
pub mod class;
pub mod lazy;
pub mod open;
pub mod rebuild;
pub mod source;
pub mod store;
pub mod virtuser;

use std::collections::HashMap;

/// Why a lookup could not be answered. Distinct from "not found": with access_db's `-T<TMPF>`
/// a lookup error becomes a temporary failure instead of a silent pass.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: not a map file ({message})")]
    Format { path: String, message: String },
}

/// A read-only key/value table. Keys are raw bytes exactly as stored: makemap folds keys to
/// lower case at build time (unless `-f`), and the semantics modules fold at lookup time, the
/// way a sendmail `K` line without `-f` does.
pub trait Map: Send + Sync {
    /// The first value stored for `key`, or `None` when the key is absent.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError>;
}

/// An in-memory table, for tests and for maps assembled at run time.
#[derive(Debug, Default, Clone)]
pub struct MemMap {
    entries: HashMap<Vec<u8>, Vec<u8>>,
}

impl MemMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts unless the key is already present (makemap's first-wins rule).
    pub fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.entries
            .entry(key.into())
            .or_insert_with(|| value.into());
    }

    /// Builds a table from `key value` pairs, folding keys to lower case as makemap does.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut m = Self::new();
        for (k, v) in pairs {
            m.insert(k.to_ascii_lowercase().into_bytes(), v.as_bytes().to_vec());
        }
        m
    }
}

impl Map for MemMap {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.entries.get(key).cloned())
    }
}

/// A table whose every lookup fails, for testing `-T<TMPF>` handling.
#[derive(Debug, Default, Clone, Copy)]
pub struct FailingMap;

impl Map for FailingMap {
    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Err(MapError::Io {
            path: "(failing map)".into(),
            message: "lookup failed".into(),
        })
    }
}
