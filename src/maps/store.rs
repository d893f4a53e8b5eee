//! Map files: one SQLite database per map, the stand-in for sendmail's Berkeley DB files.
//!
//! Layout (format version 1):
//! - `map(key BLOB, dup INTEGER, value BLOB, PRIMARY KEY (key, dup)) WITHOUT ROWID`: `dup` is 0
//!   for the first value of a key and counts up for `makemap -d` duplicates, so a lookup takes
//!   the lowest `dup`, as sendmail returns the first duplicate.
//! - `meta(name TEXT PRIMARY KEY, value TEXT)`: `format=mailtool-map`, `version=1`, `type`
//!   (the makemap type word), `nul` (1 when built with `-N`: keys and values carry a trailing
//!   NUL byte, which lookups add and dumps hide, as sendmail's `%.*s` does).
//!
//! A new map is built in a temp file in the same directory, fsynced, then renamed over the old
//! one, so a reader (the server) sees the old map or the new one, never a partial one; a failed
//! build leaves the old file untouched. `makemap -o` updates in place in one transaction.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{Map, MapError};
use crate::util::io_message;

pub const FORMAT: &str = "mailtool-map";
pub const VERSION: &str = "1";
/// sendmail 8.12.4+ creates map files 0640.
pub const MODE: u32 = 0o640;
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening or creating the file failed; `message` is strerror-style.
    #[error("{path}: {message}")]
    Open { path: String, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: database error: {message}")]
    Sqlite { path: String, message: String },
    #[error("{path}: not a mailtool map ({message})")]
    NotAMap { path: String, message: String },
}

impl StoreError {
    fn sqlite(path: &Path, e: rusqlite::Error) -> Self {
        StoreError::Sqlite { path: path.display().to_string(), message: e.to_string() }
    }
    fn io(path: &Path, e: &io::Error) -> Self {
        StoreError::Io { path: path.display().to_string(), message: io_message(e) }
    }
    /// The bare reason, for messages that name the file themselves (makemap's wording).
    pub fn reason(&self) -> &str {
        match self {
            StoreError::Open { message, .. }
            | StoreError::Io { message, .. }
            | StoreError::Sqlite { message, .. }
            | StoreError::NotAMap { message, .. } => message,
        }
    }
}

impl From<StoreError> for MapError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotAMap { path, message } => MapError::Format { path, message },
            other => MapError::Io { path: String::new(), message: other.to_string() },
        }
    }
}

/// sendmail's naming rule (SENDMAIL-SPEC §1.3): `NAME.db`, unless NAME already ends in `.db`.
pub fn db_path(mapname: &Path) -> PathBuf {
    if mapname.extension().is_some_and(|e| e == "db") {
        mapname.to_path_buf()
    } else {
        let mut s = mapname.as_os_str().to_os_string();
        s.push(".db");
        PathBuf::from(s)
    }
}

/// Whether the first bytes of a file are a SQLite header.
pub fn is_sqlite(head: &[u8]) -> bool {
    head.starts_with(SQLITE_MAGIC)
}

/// Header fields of a map file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: String,
    pub nul: bool,
}

/// One stored row, for building.
pub struct Row<'a> {
    pub key: &'a [u8],
    pub dup: u32,
    pub value: &'a [u8],
}

/// A new map being written to a temp file. Dropping it without [`Builder::commit`] removes the
/// temp file and leaves any existing map untouched.
pub struct Builder {
    conn: Option<Connection>,
    tmp: PathBuf,
    target: PathBuf,
    meta: Meta,
}

impl Builder {
    /// Starts a build that will replace `target` (the `.db` path) on commit.
    pub fn create(target: &Path, meta: Meta) -> Result<Builder, StoreError> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&tmp)
            .map_err(|e| StoreError::Open { path: target.display().to_string(), message: io_message(&e) })?;
        // The mode given to open() is filtered by the umask; makemap promises 0640.
        let _ = file.set_permissions(fs::Permissions::from_mode(MODE));
        drop(file);
        let mut b = Builder { conn: None, tmp, target: target.to_path_buf(), meta };
        let conn = Connection::open(&b.tmp).map_err(|e| StoreError::sqlite(target, e))?;
        // Nothing else sees the temp file, so durability comes from the explicit fsync in
        // commit(), not from a journal.
        conn.execute_batch(
            "PRAGMA page_size = 8192;
             PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -16384;
             BEGIN;
             CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE map (key BLOB NOT NULL, dup INTEGER NOT NULL, value BLOB NOT NULL,
                               PRIMARY KEY (key, dup)) WITHOUT ROWID;",
        )
        .map_err(|e| StoreError::sqlite(target, e))?;
        b.conn = Some(conn);
        Ok(b)
    }

    /// Inserts rows. Rows in key order make the B-tree append-only, which is the fast path.
    pub fn insert<'a>(&mut self, rows: impl IntoIterator<Item = Row<'a>>) -> Result<(), StoreError> {
        let target = self.target.clone();
        let conn = self.conn.as_ref().ok_or_else(|| StoreError::Io {
            path: target.display().to_string(),
            message: "builder already closed".into(),
        })?;
        let mut stmt = conn
            .prepare_cached("INSERT INTO map (key, dup, value) VALUES (?1, ?2, ?3)")
            .map_err(|e| StoreError::sqlite(&target, e))?;
        let nul = self.meta.nul;
        let mut kbuf = Vec::new();
        let mut vbuf = Vec::new();
        for row in rows {
            let (k, v) = if nul {
                with_nul(&mut kbuf, row.key);
                with_nul(&mut vbuf, row.value);
                (&kbuf[..], &vbuf[..])
            } else {
                (row.key, row.value)
            };
            stmt.execute(params![k, row.dup, v]).map_err(|e| StoreError::sqlite(&target, e))?;
        }
        Ok(())
    }

    /// Writes the header, fsyncs the file, renames it into place and fsyncs the directory.
    pub fn commit(mut self) -> Result<(), StoreError> {
        let target = self.target.clone();
        let Some(conn) = self.conn.take() else {
            return Err(StoreError::Io { path: target.display().to_string(), message: "builder already closed".into() });
        };
        write_meta(&conn, &self.meta).map_err(|e| StoreError::sqlite(&target, e))?;
        conn.execute_batch("COMMIT; PRAGMA journal_mode = DELETE;")
            .map_err(|e| StoreError::sqlite(&target, e))?;
        conn.close().map_err(|(_, e)| StoreError::sqlite(&target, e))?;
        File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::io(&target, &e))?;
        fs::rename(&self.tmp, &target).map_err(|e| StoreError::io(&target, &e))?;
        sync_dir(&target);
        Ok(())
    }
}

impl Drop for Builder {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn);
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

fn with_nul(buf: &mut Vec<u8>, b: &[u8]) {
    buf.clear();
    buf.extend_from_slice(b);
    buf.push(0);
}

fn write_meta(conn: &Connection, meta: &Meta) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)")?;
    for (k, v) in [
        ("format", FORMAT),
        ("version", VERSION),
        ("type", meta.kind.as_str()),
        ("nul", if meta.nul { "1" } else { "0" }),
    ] {
        stmt.execute(params![k, v])?;
    }
    Ok(())
}

/// fsync the directory that holds `path`, so the rename itself is durable.
pub fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// How a duplicate key is treated when adding to an existing map (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DupPolicy {
    /// Keep the first value; report the later line (sendmail's default).
    FirstWins,
    /// `-r`: the later value replaces the earlier one silently.
    Replace,
    /// `-d`: store both; lookups return the first.
    Keep,
}

/// An existing map opened for `makemap -o`: every change happens in one transaction.
pub struct Updater {
    conn: Connection,
    path: PathBuf,
    nul: bool,
}

impl Updater {
    pub fn open(path: &Path) -> Result<Updater, StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| StoreError::Open { path: path.display().to_string(), message: e.to_string() })?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| StoreError::sqlite(path, e))?;
        let meta = read_meta(&conn, path)?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| StoreError::sqlite(path, e))?;
        Ok(Updater { conn, path: path.to_path_buf(), nul: meta.nul })
    }

    pub fn meta_nul(&self) -> bool {
        self.nul
    }

    /// Adds one record; returns false when it was a duplicate that the policy refused.
    pub fn add(&mut self, key: &[u8], value: &[u8], policy: DupPolicy) -> Result<bool, StoreError> {
        let (k, v) = if self.nul {
            let mut k = key.to_vec();
            k.push(0);
            let mut v = value.to_vec();
            v.push(0);
            (k, v)
        } else {
            (key.to_vec(), value.to_vec())
        };
        let p = self.path.clone();
        let err = |e| StoreError::sqlite(&p, e);
        match policy {
            DupPolicy::FirstWins => {
                let n = self
                    .conn
                    .prepare_cached("INSERT OR IGNORE INTO map (key, dup, value) VALUES (?1, 0, ?2)")
                    .and_then(|mut s| s.execute(params![k, v]))
                    .map_err(err)?;
                Ok(n == 1)
            }
            DupPolicy::Replace => {
                self.conn
                    .prepare_cached("DELETE FROM map WHERE key = ?1")
                    .and_then(|mut s| s.execute(params![k]))
                    .map_err(err)?;
                self.conn
                    .prepare_cached("INSERT INTO map (key, dup, value) VALUES (?1, 0, ?2)")
                    .and_then(|mut s| s.execute(params![k, v]))
                    .map_err(err)?;
                Ok(true)
            }
            DupPolicy::Keep => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO map (key, dup, value)
                         VALUES (?1, (SELECT COALESCE(MAX(dup) + 1, 0) FROM map WHERE key = ?1), ?2)",
                    )
                    .and_then(|mut s| s.execute(params![k, v]))
                    .map_err(err)?;
                Ok(true)
            }
        }
    }

    /// Removes every value of `key`; returns whether it was present.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let mut k = key.to_vec();
        if self.nul {
            k.push(0);
        }
        let n = self
            .conn
            .prepare_cached("DELETE FROM map WHERE key = ?1")
            .and_then(|mut s| s.execute(params![k]))
            .map_err(|e| StoreError::sqlite(&self.path, e))?;
        Ok(n > 0)
    }

    pub fn commit(self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT").map_err(|e| StoreError::sqlite(&self.path, e))
    }
}

fn read_meta(conn: &Connection, path: &Path) -> Result<Meta, StoreError> {
    let get = |name: &str| -> Result<Option<String>, StoreError> {
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(|e| StoreError::NotAMap { path: path.display().to_string(), message: e.to_string() })
    };
    match get("format")? {
        Some(f) if f == FORMAT => {}
        _ => {
            return Err(StoreError::NotAMap {
                path: path.display().to_string(),
                message: "no mailtool map header".into(),
            });
        }
    }
    if get("version")?.as_deref() != Some(VERSION) {
        return Err(StoreError::NotAMap {
            path: path.display().to_string(),
            message: "unsupported map format version".into(),
        });
    }
    Ok(Meta {
        kind: get("type")?.unwrap_or_else(|| "hash".into()),
        nul: get("nul")?.as_deref() == Some("1"),
    })
}

/// Identity of a file on disk, to notice a map rebuilt (renamed over) behind our back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    size: u64,
}

fn file_id(path: &Path) -> io::Result<FileId> {
    let m = fs::metadata(path)?;
    Ok(FileId {
        dev: m.dev(),
        ino: m.ino(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        size: m.size(),
    })
}

struct Open {
    conn: Connection,
    id: FileId,
    meta: Meta,
}

/// A map opened read-only. Every lookup first checks whether the file was replaced (makemap
/// renames a new file into place) and reopens it, so a rebuilt map is used without a restart.
pub struct SqliteMap {
    path: PathBuf,
    inner: Mutex<Open>,
}

impl SqliteMap {
    pub fn open(path: &Path) -> Result<SqliteMap, StoreError> {
        let open = open_ro(path)?;
        Ok(SqliteMap { path: path.to_path_buf(), inner: Mutex::new(open) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn meta(&self) -> Meta {
        match self.inner.lock() {
            Ok(g) => g.meta.clone(),
            Err(p) => p.into_inner().meta.clone(),
        }
    }

    /// Calls `f` for every record in key order (duplicates in insertion order), with the NUL
    /// of `-N` maps removed.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        let guard = self.lock_fresh()?;
        let nul = guard.meta.nul;
        let mut stmt = guard
            .conn
            .prepare("SELECT key, value FROM map ORDER BY key, dup")
            .map_err(|e| StoreError::sqlite(&self.path, e))?;
        let mut rows = stmt.query([]).map_err(|e| StoreError::sqlite(&self.path, e))?;
        while let Some(row) = rows.next().map_err(|e| StoreError::sqlite(&self.path, e))? {
            let k = row.get_ref(0).and_then(|v| Ok(v.as_bytes()?)).map_err(|e| StoreError::sqlite(&self.path, e))?;
            let v = row.get_ref(1).and_then(|v| Ok(v.as_bytes()?)).map_err(|e| StoreError::sqlite(&self.path, e))?;
            if nul {
                f(strip_nul(k), strip_nul(v));
            } else {
                f(k, v);
            }
        }
        Ok(())
    }

    /// Looks up many keys at once (`makemap -q -`), in the order given. Sorting the probes
    /// first walks the B-tree in order, which keeps its pages hot.
    pub fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let guard = self.lock_fresh()?;
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(keys[b]));
        let mut out = vec![None; keys.len()];
        let mut stmt = guard
            .conn
            .prepare_cached("SELECT value FROM map WHERE key = ?1 ORDER BY dup LIMIT 1")
            .map_err(|e| StoreError::sqlite(&self.path, e))?;
        let mut kbuf = Vec::new();
        for i in order {
            let k: &[u8] = if guard.meta.nul {
                with_nul(&mut kbuf, keys[i]);
                &kbuf
            } else {
                keys[i]
            };
            let v: Option<Vec<u8>> = stmt
                .query_row([k], |r| r.get(0))
                .optional()
                .map_err(|e| StoreError::sqlite(&self.path, e))?;
            out[i] = v.map(|mut v| {
                if guard.meta.nul && v.last() == Some(&0) {
                    v.pop();
                }
                v
            });
        }
        Ok(out)
    }

    fn lock_fresh(&self) -> Result<std::sync::MutexGuard<'_, Open>, StoreError> {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Ok(id) = file_id(&self.path)
            && id != guard.id
        {
            *guard = open_ro(&self.path)?;
        }
        Ok(guard)
    }
}

impl Map for SqliteMap {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.get_many(&[key])?.pop().flatten())
    }
}

fn strip_nul(b: &[u8]) -> &[u8] {
    // sendmail prints with %.*s, which stops at the first NUL.
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

fn open_ro(path: &Path) -> Result<Open, StoreError> {
    let id = file_id(path).map_err(|e| StoreError::Open { path: path.display().to_string(), message: io_message(&e) })?;
    let mut head = [0u8; 16];
    let n = File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .map_err(|e| StoreError::Open { path: path.display().to_string(), message: io_message(&e) })?;
    if !is_sqlite(&head[..n]) {
        return Err(StoreError::NotAMap { path: path.display().to_string(), message: "not a SQLite file".into() });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open { path: path.display().to_string(), message: e.to_string() })?;
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let meta = read_meta(&conn, path)?;
    Ok(Open { conn, id, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(path: &Path, rows: &[(&str, u32, &str)], nul: bool) {
        let mut b = Builder::create(path, Meta { kind: "hash".into(), nul }).unwrap();
        b.insert(rows.iter().map(|(k, d, v)| Row { key: k.as_bytes(), dup: *d, value: v.as_bytes() }))
            .unwrap();
        b.commit().unwrap();
    }

    #[test]
    fn naming_rule() {
        // SENDMAIL-SPEC §1.3: no .db.db.
        assert_eq!(db_path(Path::new("/etc/mail/access")), PathBuf::from("/etc/mail/access.db"));
        assert_eq!(db_path(Path::new("access.db")), PathBuf::from("access.db"));
        assert_eq!(db_path(Path::new("a.b")), PathBuf::from("a.b.db"));
    }

    #[test]
    fn build_lookup_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.db");
        build(&p, &[("a", 0, "1"), ("b", 0, "2"), ("b", 1, "3")], false);
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(m.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(m.get(b"c").unwrap(), None);
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let mut all = vec![];
        m.for_each(|k, v| all.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(all.len(), 3);
        // No temp file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn rebuilt_map_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        build(&p, &[("k", 0, "old")], false);
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"k").unwrap(), Some(b"old".to_vec()));
        build(&p, &[("k", 0, "new")], false);
        assert_eq!(m.get(b"k").unwrap(), Some(b"new".to_vec()));
    }

    #[test]
    fn abandoned_build_leaves_old_map() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        build(&p, &[("k", 0, "old")], false);
        {
            let mut b = Builder::create(&p, Meta { kind: "hash".into(), nul: false }).unwrap();
            b.insert([Row { key: b"k", dup: 0, value: b"new" }]).unwrap();
            // dropped without commit
        }
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"k").unwrap(), Some(b"old".to_vec()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn nul_maps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.db");
        build(&p, &[("k", 0, "v")], true);
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"k").unwrap(), Some(b"v".to_vec()));
        let mut all = vec![];
        m.for_each(|k, v| all.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(all, vec![(b"k".to_vec(), b"v".to_vec())]);
    }

    #[test]
    fn update_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.db");
        build(&p, &[("a", 0, "1")], false);
        let mut u = Updater::open(&p).unwrap();
        assert!(!u.add(b"a", b"2", DupPolicy::FirstWins).unwrap());
        assert!(u.add(b"b", b"3", DupPolicy::FirstWins).unwrap());
        assert!(u.add(b"b", b"4", DupPolicy::Keep).unwrap());
        assert!(u.add(b"c", b"5", DupPolicy::Replace).unwrap());
        assert!(u.delete(b"c").unwrap());
        u.commit().unwrap();
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(m.get(b"b").unwrap(), Some(b"3".to_vec()));
        assert_eq!(m.get(b"c").unwrap(), None);
        let mut n = 0;
        m.for_each(|_, _| n += 1).unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn non_map_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        fs::write(&p, b"hello").unwrap();
        assert!(matches!(SqliteMap::open(&p), Err(StoreError::NotAMap { .. })));
        assert!(matches!(SqliteMap::open(&dir.path().join("none.db")), Err(StoreError::Open { .. })));
    }
}
