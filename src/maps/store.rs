//! Map files: one SQLite database per map, the stand-in for sendmail's Berkeley DB files.
//!
//! Layout (format version 1):
//! - `blocks(id INTEGER PRIMARY KEY, first_key BLOB UNIQUE, data BLOB)`: the records, sorted
//!   by key and packed into blocks of about [`BLOCK_TARGET`] bytes, each entry
//!   `varint(key length) key varint(value length) value`. A lookup finds the block with the
//!   greatest `first_key` not above the key and scans it. Packing is what makes a million-line
//!   map build in well under a second: SQLite stores a few thousand rows, not a million.
//!   Equal keys (`makemap -d` duplicates) are adjacent and never split across blocks, so the
//!   first one found is the first one stored, as sendmail returns the first duplicate.
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
        StoreError::Sqlite {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
    pub(crate) fn io(path: &Path, e: &io::Error) -> Self {
        StoreError::Io {
            path: path.display().to_string(),
            message: io_message(e),
        }
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
            other => MapError::Io {
                path: String::new(),
                message: other.to_string(),
            },
        }
    }
}

/// sendmail's naming rule (docs/sendmail-compat.md §1.3): `NAME.db`, unless NAME already ends in `.db`.
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

/// Blocks are cut once they pass this many bytes (at a key boundary); with 8 KiB pages a block
/// fits in one table leaf, so a lookup reads one index page path and one data page.
pub const BLOCK_TARGET: usize = 6 * 1024;
/// An updated block larger than this is split in two.
const BLOCK_SPLIT: usize = 2 * BLOCK_TARGET;

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> Option<usize> {
    let mut v: usize = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_entry(block: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_varint(block, key.len());
    block.extend_from_slice(key);
    put_varint(block, value.len());
    block.extend_from_slice(value);
}

/// The entries of a block, in order. A malformed block ends the iteration early.
pub struct Entries<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let kl = get_varint(self.data, &mut self.pos)?;
        let k = self.data.get(self.pos..self.pos.checked_add(kl)?)?;
        self.pos += kl;
        let vl = get_varint(self.data, &mut self.pos)?;
        let v = self.data.get(self.pos..self.pos.checked_add(vl)?)?;
        self.pos += vl;
        Some((k, v))
    }
}

pub fn entries(data: &[u8]) -> Entries<'_> {
    Entries { data, pos: 0 }
}

/// A new map being written to a temp file. Records must arrive in key order (equal keys
/// adjacent). Dropping it without [`Builder::commit`] removes the temp file and leaves any
/// existing map untouched.
pub struct Builder {
    conn: Option<Connection>,
    tmp: PathBuf,
    target: PathBuf,
    meta: Meta,
    block: Vec<u8>,
    first_key: Vec<u8>,
    last_key: Vec<u8>,
    scratch: (Vec<u8>, Vec<u8>),
    count: usize,
}

impl Builder {
    /// Starts a build that will replace `target` (the `.db` path) on commit.
    pub fn create(target: &Path, meta: Meta) -> Result<Builder, StoreError> {
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&tmp)
            .map_err(|e| StoreError::Open {
                path: target.display().to_string(),
                message: io_message(&e),
            })?;
        // The mode given to open() is filtered by the umask; makemap promises 0640.
        let _ = file.set_permissions(fs::Permissions::from_mode(MODE));
        drop(file);
        let mut b = Builder {
            conn: None,
            tmp,
            target: target.to_path_buf(),
            meta,
            block: Vec::with_capacity(BLOCK_TARGET + 2048),
            first_key: Vec::new(),
            last_key: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
            count: 0,
        };
        let conn = Connection::open(&b.tmp).map_err(|e| StoreError::sqlite(target, e))?;
        // Nothing else sees the temp file, so durability comes from the explicit fsync in
        // commit(), not from a journal.
        conn.execute_batch(
            "PRAGMA page_size = 8192;
             PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -256;
             BEGIN;
             CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE blocks (id INTEGER PRIMARY KEY, first_key BLOB NOT NULL, data BLOB NOT NULL);",
        )
        .map_err(|e| StoreError::sqlite(target, e))?;
        b.conn = Some(conn);
        Ok(b)
    }

    /// Adds one record; keys must not decrease.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.meta.nul {
            let (mut k, mut v) = std::mem::take(&mut self.scratch);
            with_nul(&mut k, key);
            with_nul(&mut v, value);
            let r = self.push_stored(&k, &v);
            self.scratch = (k, v);
            r
        } else {
            self.push_stored(key, value)
        }
    }

    fn push_stored(&mut self, k: &[u8], v: &[u8]) -> Result<(), StoreError> {
        if !self.block.is_empty()
            && self.block.len() + k.len() + v.len() > BLOCK_TARGET
            && k != self.last_key.as_slice()
        {
            self.flush()?;
        }
        if self.block.is_empty() {
            self.first_key.clear();
            self.first_key.extend_from_slice(k);
        }
        put_entry(&mut self.block, k, v);
        self.last_key.clear();
        self.last_key.extend_from_slice(k);
        self.count += 1;
        Ok(())
    }

    /// Records stored so far.
    pub fn count(&self) -> usize {
        self.count
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let conn = self.conn.as_ref().ok_or_else(|| closed(&self.target))?;
        conn.prepare_cached("INSERT INTO blocks (first_key, data) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![self.first_key, self.block]))
            .map_err(|e| StoreError::sqlite(&self.target, e))?;
        self.block.clear();
        Ok(())
    }

    /// Writes the last block and the header, fsyncs the file, renames it into place and
    /// fsyncs the directory.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.flush()?;
        let target = self.target.clone();
        let conn = self.conn.take().ok_or_else(|| closed(&target))?;
        let done = (|| {
            write_meta(&conn, &self.meta)?;
            conn.execute_batch(
                "CREATE UNIQUE INDEX blocks_first_key ON blocks (first_key);
                 COMMIT;
                 PRAGMA journal_mode = DELETE;",
            )
        })();
        if let Err(e) = done {
            self.conn = Some(conn);
            return Err(StoreError::sqlite(&target, e));
        }
        if let Err((c, e)) = conn.close() {
            self.conn = Some(c);
            return Err(StoreError::sqlite(&target, e));
        }
        let synced = File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .and_then(|_| fs::rename(&self.tmp, &target));
        if let Err(e) = synced {
            let _ = fs::remove_file(&self.tmp);
            return Err(StoreError::io(&target, &e));
        }
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

fn closed(target: &Path) -> StoreError {
    StoreError::Io {
        path: target.display().to_string(),
        message: "map builder already closed".into(),
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
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
    // Best effort: the map is already in place, and a reader sees it either way.
    let _ = crate::sys::fs::sync_dir(&parent_dir(path));
}

/// Creates an empty map at `db` unless one exists; returns whether it did. The map is built
/// under a temp name and hard-linked into place, which fails if another writer got there
/// first, so a racing creator never replaces a map that already holds records (a rename
/// would). Used by writers that add to a map that may not exist yet (popip, users).
pub fn create_if_missing(db: &Path, meta: Meta) -> Result<bool, StoreError> {
    if db.exists() {
        return Ok(false);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".mailtool-new-")
        .tempfile_in(parent_dir(db))
        .map_err(|e| StoreError::Open {
            path: db.display().to_string(),
            message: io_message(&e),
        })?;
    // The builder renames its finished file over the temp name; dropping `tmp` then removes
    // that name, and the map stays under `db`.
    Builder::create(tmp.path(), meta)?.commit()?;
    match fs::hard_link(tmp.path(), db) {
        Ok(()) => {
            sync_dir(db);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(StoreError::io(db, &e)),
    }
}

/// How a duplicate key is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DupPolicy {
    /// Keep the first value; report the later line (sendmail's default).
    FirstWins,
    /// `-r`: the later value replaces the earlier one silently.
    Replace,
    /// `-d`: store both; lookups return the first.
    Keep,
}

const FIND_BLOCK: &str =
    "SELECT id, first_key, data FROM blocks WHERE first_key <= ?1 ORDER BY first_key DESC LIMIT 1";

type Block = (i64, Vec<u8>, Vec<u8>);

fn find_block(conn: &Connection, key: &[u8]) -> rusqlite::Result<Option<Block>> {
    conn.prepare_cached(FIND_BLOCK)?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
}

/// An existing map opened for `makemap -o` and `--delete`: every change happens in one
/// transaction, committed by [`Updater::commit`]; dropping it rolls back.
pub struct Updater {
    conn: Connection,
    path: PathBuf,
    nul: bool,
}

impl Updater {
    pub fn open(path: &Path) -> Result<Updater, StoreError> {
        Self::open_with(path, false)
    }

    /// `memory_journal`: keep the rollback journal in memory (`journal_mode = MEMORY`), so a
    /// writer that may not create files in the map's directory (the server updating popip in
    /// a root-owned /etc/mail) can still write. Only for maps whose loss is harmless: a crash
    /// in the middle of a write can damage the file (see [`crate::popip::prepare`]).
    pub fn open_with(path: &Path, memory_journal: bool) -> Result<Updater, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|e| {
                StoreError::Open {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }
            })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| StoreError::sqlite(path, e))?;
        let meta = read_meta(&conn, path)?;
        if memory_journal {
            conn.execute_batch("PRAGMA journal_mode = MEMORY")
                .map_err(|e| StoreError::sqlite(path, e))?;
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| StoreError::sqlite(path, e))?;
        Ok(Updater {
            conn,
            path: path.to_path_buf(),
            nul: meta.nul,
        })
    }

    fn stored(&self, b: &[u8]) -> Vec<u8> {
        let mut v = b.to_vec();
        if self.nul {
            v.push(0);
        }
        v
    }

    /// The block a key belongs in: the one whose range holds it, else the first block.
    fn block_for(&self, key: &[u8]) -> rusqlite::Result<Option<Block>> {
        if let Some(b) = find_block(&self.conn, key)? {
            return Ok(Some(b));
        }
        self.conn
            .prepare_cached("SELECT id, first_key, data FROM blocks ORDER BY first_key LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
    }

    /// Rewrites one block's entries (or deletes it when empty), splitting an oversized block.
    fn write_block(&self, id: Option<i64>, list: &[(Vec<u8>, Vec<u8>)]) -> rusqlite::Result<()> {
        if let Some(id) = id {
            self.conn
                .prepare_cached("DELETE FROM blocks WHERE id = ?1")?
                .execute([id])?;
        }
        let total: usize = list.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut parts: Vec<&[(Vec<u8>, Vec<u8>)]> = vec![list];
        if total > BLOCK_SPLIT && list.len() > 1 {
            // Split near the middle, but never between equal keys.
            let mut mid = list.len() / 2;
            while mid < list.len() && list[mid].0 == list[mid - 1].0 {
                mid += 1;
            }
            if mid < list.len() {
                parts = vec![&list[..mid], &list[mid..]];
            }
        }
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let mut data = Vec::new();
            for (k, v) in part {
                put_entry(&mut data, k, v);
            }
            self.conn
                .prepare_cached("INSERT INTO blocks (first_key, data) VALUES (?1, ?2)")?
                .execute(params![part[0].0, data])?;
        }
        Ok(())
    }

    /// Adds one record; returns false when it was a duplicate that the policy refused.
    pub fn add(&mut self, key: &[u8], value: &[u8], policy: DupPolicy) -> Result<bool, StoreError> {
        let (k, v) = (self.stored(key), self.stored(value));
        let p = self.path.clone();
        let err = |e| StoreError::sqlite(&p, e);
        let block = self.block_for(&k).map_err(err)?;
        let (id, mut list) = match &block {
            Some((id, _, data)) => (
                Some(*id),
                entries(data)
                    .map(|(a, b)| (a.to_vec(), b.to_vec()))
                    .collect::<Vec<_>>(),
            ),
            None => (None, Vec::new()),
        };
        let start = list.partition_point(|(ek, _)| ek.as_slice() < k.as_slice());
        let end = start + list[start..].iter().take_while(|(ek, _)| ek == &k).count();
        match policy {
            DupPolicy::FirstWins if end > start => return Ok(false),
            DupPolicy::FirstWins => list.insert(start, (k, v)),
            DupPolicy::Replace => {
                list.splice(start..end, [(k, v)]);
            }
            DupPolicy::Keep => list.insert(end, (k, v)),
        }
        self.write_block(id, &list).map_err(err)?;
        Ok(true)
    }

    /// Removes every value of `key`; returns whether it was present.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let k = self.stored(key);
        let p = self.path.clone();
        let err = |e| StoreError::sqlite(&p, e);
        let Some((id, _, data)) = find_block(&self.conn, &k).map_err(err)? else {
            return Ok(false);
        };
        let before = entries(&data).count();
        let list: Vec<(Vec<u8>, Vec<u8>)> = entries(&data)
            .filter(|(ek, _)| *ek != k.as_slice())
            .map(|(a, b)| (a.to_vec(), b.to_vec()))
            .collect();
        if list.len() == before {
            return Ok(false);
        }
        self.write_block(Some(id), &list).map_err(err)?;
        Ok(true)
    }

    /// The first value of `key` as this transaction sees it (NUL of `-N` maps removed).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = self.stored(key);
        let block = find_block(&self.conn, &k).map_err(|e| StoreError::sqlite(&self.path, e))?;
        Ok(block.and_then(|(_, _, data)| {
            entries(&data)
                .take_while(|(ek, _)| *ek <= k.as_slice())
                .find(|(ek, _)| *ek == k.as_slice())
                .map(|(_, v)| (if self.nul { strip_nul(v) } else { v }).to_vec())
        }))
    }

    /// Calls `f` for every record in key order as this transaction sees it (the NUL of `-N`
    /// maps removed). Reading under the write lock lets a caller decide what to change without
    /// another writer slipping in between (popip expiry).
    pub fn for_each(&self, f: impl FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        each_record(&self.conn, &self.path, self.nul, f)
    }

    pub fn commit(self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| StoreError::sqlite(&self.path, e))
    }
}

fn read_meta(conn: &Connection, path: &Path) -> Result<Meta, StoreError> {
    let get = |name: &str| -> Result<Option<String>, StoreError> {
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| StoreError::NotAMap {
            path: path.display().to_string(),
            message: e.to_string(),
        })
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

/// A block in hand, with its key range worked out once.
struct Cached {
    first: Vec<u8>,
    last: Vec<u8>,
    data: Vec<u8>,
}

struct Open {
    conn: Connection,
    id: FileId,
    meta: Meta,
    /// The block of the previous lookup: sorted bulk lookups mostly land in it again.
    cached: Option<Cached>,
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
        Ok(SqliteMap {
            path: path.to_path_buf(),
            inner: Mutex::new(open),
        })
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
    pub fn for_each(&self, f: impl FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        let guard = self.lock_fresh()?;
        each_record(&guard.conn, &self.path, guard.meta.nul, f)
    }

    /// Looks up many keys at once (`makemap -q -`), answering in the order given. The probes
    /// are made in key order, so consecutive ones mostly hit the block already in hand.
    pub fn get_many(&self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut guard = self.lock_fresh()?;
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(keys[b]));
        let mut out = vec![None; keys.len()];
        let mut kbuf = Vec::new();
        let open = &mut *guard;
        for i in order {
            let k: &[u8] = if open.meta.nul {
                with_nul(&mut kbuf, keys[i]);
                &kbuf
            } else {
                keys[i]
            };
            let hit = matches!(&open.cached,
                Some(c) if c.first.as_slice() <= k && k <= c.last.as_slice());
            if !hit {
                open.cached = find_block(&open.conn, k)
                    .map_err(|e| StoreError::sqlite(&self.path, e))?
                    .map(|(_, first, data)| Cached {
                        first,
                        last: last_key(&data).unwrap_or_default().to_vec(),
                        data,
                    });
            }
            // Entries are sorted, so the scan stops at the first key past the probe.
            if let Some(c) = &open.cached
                && let Some((_, v)) = entries(&c.data)
                    .take_while(|(ek, _)| *ek <= k)
                    .find(|(ek, _)| *ek == k)
            {
                out[i] = Some(if open.meta.nul {
                    strip_nul(v).to_vec()
                } else {
                    v.to_vec()
                });
            }
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

/// Every record of the map open on `conn`, in key order, the NUL of `-N` maps removed.
fn each_record(
    conn: &Connection,
    path: &Path,
    nul: bool,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let mut stmt = conn
        .prepare("SELECT data FROM blocks ORDER BY first_key")
        .map_err(sql)?;
    let mut rows = stmt.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let data = row
            .get_ref(0)
            .and_then(|v| Ok(v.as_bytes()?))
            .map_err(sql)?;
        for (k, v) in entries(data) {
            if nul {
                f(strip_nul(k), strip_nul(v));
            } else {
                f(k, v);
            }
        }
    }
    Ok(())
}

fn last_key(data: &[u8]) -> Option<&[u8]> {
    entries(data).last().map(|(k, _)| k)
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
    let id = file_id(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        message: io_message(&e),
    })?;
    let mut head = [0u8; 16];
    let n = File::open(path)
        .and_then(|mut f| io::Read::read(&mut f, &mut head))
        .map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: io_message(&e),
        })?;
    if !is_sqlite(&head[..n]) {
        return Err(StoreError::NotAMap {
            path: path.display().to_string(),
            message: "not a SQLite file".into(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
    let meta = read_meta(&conn, path)?;
    Ok(Open {
        conn,
        id,
        meta,
        cached: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(path: &Path, rows: &[(&str, u32, &str)], nul: bool) {
        let mut b = Builder::create(
            path,
            Meta {
                kind: "hash".into(),
                nul,
            },
        )
        .unwrap();
        for (k, _, v) in rows {
            b.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        b.commit().unwrap();
    }

    #[test]
    fn naming_rule() {
        // docs/sendmail-compat.md §1.3: no .db.db.
        assert_eq!(
            db_path(Path::new("/etc/mail/access")),
            PathBuf::from("/etc/mail/access.db")
        );
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
        m.for_each(|k, v| all.push((k.to_vec(), v.to_vec())))
            .unwrap();
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
            let mut b = Builder::create(
                &p,
                Meta {
                    kind: "hash".into(),
                    nul: false,
                },
            )
            .unwrap();
            b.push(b"k", b"new").unwrap();
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
        m.for_each(|k, v| all.push((k.to_vec(), v.to_vec())))
            .unwrap();
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
        // The transaction sees its own changes.
        assert_eq!(u.get(b"b").unwrap(), Some(b"3".to_vec()));
        assert_eq!(u.get(b"c").unwrap(), None);
        let mut seen = vec![];
        u.for_each(|k, v| seen.push((k.to_vec(), v.to_vec())))
            .unwrap();
        assert_eq!(
            seen,
            vec![
                (b"a".to_vec(), b"1".to_vec()),
                (b"b".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"4".to_vec())
            ]
        );
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
    fn create_if_missing_never_replaces_a_map() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        let meta = Meta {
            kind: "hash".into(),
            nul: false,
        };
        assert!(create_if_missing(&p, meta.clone()).unwrap());
        let mut u = Updater::open(&p).unwrap();
        assert!(u.add(b"k", b"v", DupPolicy::FirstWins).unwrap());
        u.commit().unwrap();
        assert!(!create_if_missing(&p, meta).unwrap());
        let m = SqliteMap::open(&p).unwrap();
        assert_eq!(m.get(b"k").unwrap(), Some(b"v".to_vec()));
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn many_blocks_lookup_dump_and_update() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.db");
        let keys: Vec<String> = (0..20_000).map(|i| format!("key{i:06}")).collect();
        let mut b = Builder::create(
            &p,
            Meta {
                kind: "btree".into(),
                nul: false,
            },
        )
        .unwrap();
        for k in &keys {
            b.push(k.as_bytes(), format!("value of {k}").as_bytes())
                .unwrap();
            if k == "key010000" {
                // A long run of duplicates must stay in one block.
                for d in 0..500 {
                    b.push(k.as_bytes(), format!("dup {d}").as_bytes()).unwrap();
                }
            }
        }
        b.commit().unwrap();
        let m = SqliteMap::open(&p).unwrap();
        for k in keys.iter().step_by(997) {
            assert_eq!(
                m.get(k.as_bytes()).unwrap(),
                Some(format!("value of {k}").into_bytes())
            );
        }
        assert_eq!(
            m.get(b"key010000").unwrap(),
            Some(b"value of key010000".to_vec())
        );
        assert_eq!(m.get(b"key").unwrap(), None);
        assert_eq!(m.get(b"zzz").unwrap(), None);
        assert_eq!(m.get(b"key010000x").unwrap(), None);
        let probes: Vec<&[u8]> = vec![b"key000002", b"nope", b"key019999", b"key000001"];
        let got = m.get_many(&probes).unwrap();
        assert_eq!(got[0], Some(b"value of key000002".to_vec()));
        assert_eq!(got[1], None);
        assert_eq!(got[3], Some(b"value of key000001".to_vec()));
        let mut n = 0;
        let mut prev: Vec<u8> = Vec::new();
        m.for_each(|k, _| {
            assert!(prev.as_slice() <= k);
            prev = k.to_vec();
            n += 1;
        })
        .unwrap();
        assert_eq!(n, 20_500);
        // In-place updates that grow blocks past the split size.
        let mut u = Updater::open(&p).unwrap();
        for i in 0..3000 {
            assert!(
                u.add(
                    format!("key000500-{i:04}").as_bytes(),
                    b"x",
                    DupPolicy::FirstWins
                )
                .unwrap()
            );
        }
        assert!(u.add(b"a-first", b"front", DupPolicy::FirstWins).unwrap());
        assert!(u.delete(b"key000001").unwrap());
        u.commit().unwrap();
        assert_eq!(m.get(b"key000500-2999").unwrap(), Some(b"x".to_vec()));
        assert_eq!(m.get(b"a-first").unwrap(), Some(b"front".to_vec()));
        assert_eq!(m.get(b"key000001").unwrap(), None);
        assert_eq!(
            m.get(b"key000002").unwrap(),
            Some(b"value of key000002".to_vec())
        );
        let mut n = 0;
        m.for_each(|_, _| n += 1).unwrap();
        assert_eq!(n, 20_500 + 3000 + 1 - 1);
    }

    #[test]
    fn non_map_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.db");
        fs::write(&p, b"hello").unwrap();
        assert!(matches!(
            SqliteMap::open(&p),
            Err(StoreError::NotAMap { .. })
        ));
        assert!(matches!(
            SqliteMap::open(&dir.path().join("none.db")),
            Err(StoreError::Open { .. })
        ));
    }
}
