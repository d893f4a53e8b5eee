//! Lookup tables: the makemap/newaliases sources, their SQLite store, the read-only Berkeley DB
//! importer, and the sendmail lookup semantics (access db, virtusertable, aliases, class files).
//!
//! Every lookup goes through the [`Map`] trait, so the semantics modules are pure functions over
//! a table and the store behind it can change (SQLite today, a Berkeley DB file during migration,
//! an in-memory table in tests).

pub mod access;
pub mod aliases;
pub mod backend;
pub mod bdb;
pub mod build;
pub mod class;
pub mod lazy;
pub mod open;
pub mod rebuild;
pub mod source;
pub mod store;
pub mod table;
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
    /// A map in a backend that is down, slow, or answering errors.
    #[error(transparent)]
    Backend(#[from] backend::BackendError),
}

/// A read-only key/value table. Keys are raw bytes exactly as stored: makemap folds keys to
/// lower case at build time (unless `-f`), and the semantics modules fold at lookup time, the
/// way a sendmail `K` line without `-f` does.
pub trait Map: Send + Sync {
    /// The first value stored for `key`, or `None` when the key is absent.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError>;

    /// The values of `keys`, `None` where absent. A map in a backend answers in one round trip.
    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, MapError> {
        keys.iter().map(|k| self.get(k)).collect()
    }

    /// The first of `keys` that is present, with its index.
    fn get_first(&self, keys: &[&[u8]]) -> Result<Option<(usize, Vec<u8>)>, MapError> {
        if self.is_remote() {
            let values = self.get_many(keys)?;
            return Ok(values
                .into_iter()
                .enumerate()
                .find_map(|(i, v)| v.map(|v| (i, v))));
        }
        for (i, k) in keys.iter().enumerate() {
            if let Some(v) = self.get(k)? {
                return Ok(Some((i, v)));
            }
        }
        Ok(None)
    }

    /// Whether a lookup costs a network round trip, so that a walk over candidate keys should
    /// ask for them all at once ([`batched`]).
    fn is_remote(&self) -> bool {
        false
    }
}

/// Runs a lookup walk (the access db's, virtusertable's) so that a remote map is asked once:
/// a dry run against a table that has nothing collects every key the walk may ask for (a hit
/// only ends a walk early), one [`Map::get_many`] fetches them, and the walk runs again over
/// the answers. A local map is walked directly, where stopping at the first hit is cheaper.
pub fn batched<T>(
    map: &dyn Map,
    walk: impl Fn(&dyn Map) -> Result<T, MapError>,
) -> Result<T, MapError> {
    if !map.is_remote() {
        return walk(map);
    }
    let asked = Recorder::default();
    walk(&asked)?;
    let keys = asked.keys.into_inner().unwrap_or_else(|p| p.into_inner());
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let values = map.get_many(&refs)?;
    let mut fetched = MemMap::new();
    for (k, v) in keys.iter().zip(values) {
        if let Some(v) = v {
            fetched.insert(k.clone(), v);
        }
    }
    walk(&fetched)
}

/// A table that has nothing and remembers what was asked (for [`batched`]).
#[derive(Default)]
struct Recorder {
    keys: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Map for Recorder {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_vec());
        }
        Ok(None)
    }
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
