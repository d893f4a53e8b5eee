//! The table seam: where a map named in `[maps]` (or on a command line) lives, and one set of
//! operations over it whatever the store, as OpenSMTPD's table backends and maddy's
//! `Table`/`MutableTable` have it.
//!
//! * [`ServerMap`]: what the server reads: a map file (picked up when it appears or is
//!   rebuilt) or a table in a backend.
//! * [`MutableMap`]: what the tools and the POP3 server write through: [`FileTable`] (the
//!   SQLite map file) or [`RemoteTable`] (PostgreSQL, Redis).
//!
//! makemap and newaliases keep their own builder for map files, which holds sendmail's exact
//! rules (`-N`, `-d`, line-numbered duplicates); into a backend they write through here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backend::{Backend, Backends, Put, Row};
use super::lazy::LazyMap;
use super::open::AnyMap;
use super::store::{self, DupPolicy, Meta, Updater};
use super::{Map, MapError};
use crate::config::{Config, MapPlace};

/// A table in a backend.
#[derive(Debug, Clone)]
pub struct RemoteTable {
    backend: Arc<Backend>,
    table: String,
}

impl RemoteTable {
    pub fn new(backend: Arc<Backend>, table: &str) -> RemoteTable {
        RemoteTable {
            backend,
            table: table.to_string(),
        }
    }
}

impl Map for RemoteTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self
            .backend
            .get_many(&self.table, &[key])?
            .into_iter()
            .next()
            .flatten())
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, MapError> {
        Ok(self.backend.get_many(&self.table, keys)?)
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// A map the server reads.
pub enum ServerMap {
    File(LazyMap),
    Remote(RemoteTable),
    /// Named but unusable (an unknown backend): every lookup fails, so the server answers
    /// 451 rather than skipping the rules.
    Broken(String),
}

impl ServerMap {
    /// The map `name` of `[maps]`.
    pub fn open(cfg: &Config, backends: &Backends, name: &str) -> ServerMap {
        match cfg.map_place(name) {
            Ok(MapPlace::File(path)) => ServerMap::File(LazyMap::new(store::db_path(&path))),
            Ok(MapPlace::Backend { backend, table }) => match backends.get(&backend) {
                Ok(b) => ServerMap::Remote(RemoteTable::new(b, &table)),
                Err(e) => ServerMap::Broken(e.to_string()),
            },
            Err(e) => ServerMap::Broken(e),
        }
    }

    /// Where it lives, for logs and doctor: the `.db` path or `BACKEND:TABLE`.
    pub fn describe(&self) -> String {
        match self {
            ServerMap::File(m) => m.path().display().to_string(),
            ServerMap::Remote(t) => format!("{}:{}", t.backend.name(), t.table),
            ServerMap::Broken(e) => e.clone(),
        }
    }

    /// The map file, for a map that is one.
    pub fn file(&self) -> Option<&LazyMap> {
        match self {
            ServerMap::File(m) => Some(m),
            _ => None,
        }
    }
}

impl ServerMap {
    /// The `map` label of `mailtool_map_lookup_errors_total`: the file's name without `.db`
    /// (`access`), or `BACKEND:TABLE`.
    pub fn label(&self) -> String {
        match self {
            ServerMap::File(m) => m
                .path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ServerMap::Remote(t) => format!("{}:{}", t.backend.name(), t.table),
            ServerMap::Broken(_) => "unusable".into(),
        }
    }

    fn counted<T>(&self, r: Result<T, MapError>) -> Result<T, MapError> {
        if r.is_err() {
            crate::metrics::map_lookup_error(&self.label());
        }
        r
    }
}

impl Map for ServerMap {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let r = match self {
            ServerMap::File(m) => m.get(key),
            ServerMap::Remote(t) => t.get(key),
            ServerMap::Broken(e) => Err(MapError::Io {
                path: "(map)".into(),
                message: e.clone(),
            }),
        };
        self.counted(r)
    }

    fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, MapError> {
        match self {
            ServerMap::Remote(t) => self.counted(t.get_many(keys)),
            other => keys.iter().map(|k| other.get(k)).collect(),
        }
    }

    fn is_remote(&self) -> bool {
        matches!(self, ServerMap::Remote(_))
    }
}

/// A map that can be written: the operations every store offers.
pub trait MutableMap: Map {
    /// Stores one record; returns whether the key was new.
    fn put(&self, key: &[u8], value: &[u8], how: Put) -> Result<bool, MapError>;
    /// Removes a key; returns whether it was there.
    fn delete(&self, key: &[u8]) -> Result<bool, MapError>;
    /// Every record in key order; an absent map has none.
    fn iterate(&self) -> Result<Vec<Row>, MapError>;
    /// Replaces every record at once (readers see the old map or the new one). The first of
    /// several values for one key wins. Returns the number of records.
    fn replace_all(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<usize, MapError>;
    /// Where it lives: the `.db` path or `BACKEND:TABLE`.
    fn describe(&self) -> String;
}

impl MutableMap for RemoteTable {
    fn put(&self, key: &[u8], value: &[u8], how: Put) -> Result<bool, MapError> {
        Ok(self.backend.put(&self.table, key, value, how)?)
    }

    fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        Ok(self.backend.delete(&self.table, key)?)
    }

    fn iterate(&self) -> Result<Vec<Row>, MapError> {
        Ok(self.backend.iterate(&self.table)?)
    }

    fn replace_all(&self, entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<usize, MapError> {
        Ok(self.backend.replace_all(&self.table, entries)?)
    }

    fn describe(&self) -> String {
        format!("{}:{}", self.backend.name(), self.table)
    }
}

/// A mailtool map file (`NAME.db`), created on the first write.
#[derive(Debug, Clone)]
pub struct FileTable {
    db: PathBuf,
    /// Keep SQLite's rollback journal in memory: for a writer that may not create files in
    /// the map's directory (the server's popip in a root-owned /etc/mail).
    memory_journal: bool,
}

impl FileTable {
    /// `db` is the `.db` file.
    pub fn new(db: PathBuf) -> FileTable {
        FileTable {
            db,
            memory_journal: false,
        }
    }

    pub fn with_memory_journal(mut self) -> FileTable {
        self.memory_journal = true;
        self
    }

    pub fn path(&self) -> &Path {
        &self.db
    }

    fn meta() -> Meta {
        Meta {
            kind: "hash".into(),
            nul: false,
        }
    }

    fn updater(&self) -> Result<Updater, MapError> {
        Ok(Updater::open_with(&self.db, self.memory_journal)?)
    }
}

impl Map for FileTable {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        match AnyMap::open(&self.db) {
            Ok(m) => m.get(key),
            Err(_) if !self.db.exists() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl MutableMap for FileTable {
    fn put(&self, key: &[u8], value: &[u8], how: Put) -> Result<bool, MapError> {
        store::create_if_missing(&self.db, Self::meta())?;
        let mut up = self.updater()?;
        let had = up.get(key)?.is_some();
        let policy = match how {
            Put::IfAbsent => DupPolicy::FirstWins,
            // A map file has no expiry: the reader judges the time stamp in the value.
            Put::Replace | Put::Expiring(_) => DupPolicy::Replace,
        };
        let written = up.add(key, value, policy)?;
        if written {
            up.commit()?;
        }
        Ok(!had)
    }

    fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        if !self.db.exists() {
            return Ok(false);
        }
        let mut up = self.updater()?;
        let found = up.delete(key)?;
        if found {
            up.commit()?;
        }
        Ok(found)
    }

    fn iterate(&self) -> Result<Vec<Row>, MapError> {
        let map = match AnyMap::open(&self.db) {
            Ok(m) => m,
            Err(_) if !self.db.exists() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut rows = Vec::new();
        map.for_each(|k, v| {
            rows.push(Row {
                key: k.to_vec(),
                value: v.to_vec(),
                expires_in: None,
            })
        })?;
        Ok(rows)
    }

    fn replace_all(&self, mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<usize, MapError> {
        // The builder takes keys in order; a stable sort keeps the first of equal keys first.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, first| later.0 == first.0);
        let mut b = store::Builder::create(&self.db, Self::meta())?;
        for (k, v) in &entries {
            b.push(k, v)?;
        }
        b.commit()?;
        Ok(entries.len())
    }

    fn describe(&self) -> String {
        self.db.display().to_string()
    }
}

/// The writable map `name` of `[maps]` (or a makemap NAME): a map file or a backend table.
pub fn open_mutable(
    cfg: &Config,
    backends: &Backends,
    name: &str,
) -> Result<Box<dyn MutableMap>, MapError> {
    match cfg.map_place(name).map_err(|message| MapError::Io {
        path: name.to_string(),
        message,
    })? {
        MapPlace::File(path) => Ok(Box::new(FileTable::new(store::db_path(&path)))),
        MapPlace::Backend { backend, table } => {
            Ok(Box::new(RemoteTable::new(backends.get(&backend)?, &table)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_table_does_every_operation() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTable::new(dir.path().join("users.db"));
        assert_eq!(t.get(b"a").unwrap(), None);
        assert!(t.iterate().unwrap().is_empty());
        assert!(!t.delete(b"a").unwrap());
        assert!(t.put(b"a", b"1", Put::Replace).unwrap());
        assert!(!t.put(b"a", b"2", Put::IfAbsent).unwrap());
        assert_eq!(t.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert!(!t.put(b"a", b"3", Put::Replace).unwrap());
        assert_eq!(t.get(b"a").unwrap(), Some(b"3".to_vec()));
        t.put(b"b", b"x", Put::Expiring(std::time::Duration::from_secs(1)))
            .unwrap();
        let keys: Vec<Vec<u8>> = t.iterate().unwrap().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(t.delete(b"a").unwrap());
        assert_eq!(t.get(b"a").unwrap(), None);
        let n = t
            .replace_all(vec![
                (b"z".to_vec(), b"1".to_vec()),
                (b"c".to_vec(), b"first".to_vec()),
                (b"c".to_vec(), b"second".to_vec()),
            ])
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(t.get(b"c").unwrap(), Some(b"first".to_vec()));
        assert_eq!(t.get(b"b").unwrap(), None, "replaced, not merged");
        assert_eq!(
            t.describe(),
            dir.path().join("users.db").display().to_string()
        );
    }

    #[test]
    fn unknown_backend_is_a_broken_map() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config::from_settings(Default::default(), dir.path().to_path_buf());
        let backends = Backends::new(&cfg);
        let m = ServerMap::open(&cfg, &backends, "nosuch:access");
        assert!(m.get(b"k").is_err());
        assert!(m.describe().contains("nosuch"), "{}", m.describe());
        assert!(open_mutable(&cfg, &backends, "nosuch:access").is_err());
        let f = ServerMap::open(&cfg, &backends, "access");
        assert!(!f.is_remote());
        assert!(f.file().is_some());
        assert!(
            f.describe().ends_with("etc/mail/access.db"),
            "{}",
            f.describe()
        );
        assert_eq!(f.get(b"k").unwrap(), None);
    }

    // A table whose backend is down: every operation is an error, never an empty answer.
    #[test]
    fn a_remote_table_never_answers_empty_when_its_backend_is_down() {
        let conf = crate::config::Backend {
            kind: crate::config::BackendKind::Redis,
            url: "redis://127.0.0.1:9/0".into(),
            password_file: String::new(),
            timeout: crate::duration::Span(std::time::Duration::from_millis(300)),
            pool: 1,
        };
        let t = RemoteTable::new(Backend::start("dead", &conf, None), "access");
        assert!(t.is_remote());
        assert_eq!(MutableMap::describe(&t), "dead:access");
        assert!(t.get(b"k").is_err());
        assert!(t.get_many(&[b"a", b"b"]).is_err());
        assert!(t.get_first(&[b"a"]).is_err());
        assert!(t.put(b"k", b"v", Put::Replace).is_err());
        assert!(t.delete(b"k").is_err());
        assert!(t.iterate().is_err());
        assert!(t.replace_all(vec![(b"k".to_vec(), b"v".to_vec())]).is_err());
        let m = ServerMap::Remote(t);
        assert!(m.is_remote());
        assert_eq!(m.describe(), "dead:access");
        assert!(m.get(b"k").is_err());
        assert!(m.get_many(&[b"k"]).is_err());
        assert!(m.file().is_none());
    }
}
