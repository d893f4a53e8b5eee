//! A POP3 session's maildrop: the same mbox or Maildir local delivery writes.
//!
//! **One session per mailbox.** Qpopper's `.USER.pop` next to the spool file is the session
//! lock (`flock`, non-blocking): a second login gets `-ERR [IN-USE]`.
//!
//! **mbox.** At login the mailbox lock (dotlock + fcntl, the one delivery takes) is held only
//! while the file is indexed; the session then reads the snapshot `[0, len)` through its own
//! descriptor. Delivery only appends past `len`, so new mail never disturbs a session, and
//! deliveries are not held up for the length of a POP3 session. At QUIT with deletions the lock
//! is taken again, the snapshot is checked (same inode, every message still starts where it
//! did), and the kept messages plus whatever arrived since are written to a new file that is
//! fsynced and renamed over the mbox: a crash leaves the old or the new mailbox, never a
//! half-written one. The index is cached per mailbox (inode, size, mtime), so a login after new
//! mail indexes only the new messages.
//!
//! **UIDs** (RFC 1939 UIDL) are stored nowhere. For mbox a UID is a SHA-256 digest of the
//! message's From_ line, its headers and its length; delivery's `Received:` header carries the
//! queue id, so two deliveries never look alike. Byte-identical messages get `-2`, `-3`, … in
//! mailbox order. For Maildir the UID is the file's unique name (before `:2,`), as the
//! Maildir spec intends. Either way a UID survives other messages' deletion, new mail and
//! server restarts.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::MailboxFormat;
use crate::mailbox::{LocalError, MboxLock, mailbox_path};

use super::session::Listed;

/// How long login waits for a delivery (or a mail reader) to release the mbox lock.
const LOGIN_LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long QUIT waits for it; the client is waiting for its `+OK`, but losing the update
/// means the deleted mail comes back.
const UPDATE_LOCK_WAIT: Duration = Duration::from_secs(30);
/// Header bytes that go into an mbox UID.
const UID_HEADER_BYTES: usize = 8192;
/// Mailboxes whose index is kept in memory.
const CACHE_ENTRIES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum DropError {
    /// Another POP3 session holds the mailbox.
    #[error("mailbox {0} is in use by another POP3 session")]
    InUse(String),
    /// Delivery or a mail reader holds the mailbox lock for too long.
    #[error("mailbox {0} is locked by another program")]
    Locked(String),
    /// Another program rewrote the mbox during the session.
    #[error("mailbox {0} was changed by another program during the session")]
    Changed(String),
    #[error("{0}")]
    Io(String),
}

impl DropError {
    fn io(what: &str, path: &Path, e: io::Error) -> DropError {
        DropError::Io(format!(
            "{what} {}: {}",
            path.display(),
            crate::util::io_message(&e)
        ))
    }
    fn local(path: &Path, e: LocalError) -> DropError {
        match e {
            LocalError::LockTimeout { .. } => DropError::Locked(path.display().to_string()),
            other => DropError::Io(other.to_string()),
        }
    }
}

/// Where a message's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Loc {
    /// `from` is the From_ line, `start..start+len` the message itself.
    Mbox { from: u64, start: u64, len: u64 },
    /// A Maildir file, by its name under `new/` or `cur/`.
    File { sub: &'static str, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub size: u64,
    /// The UID before duplicates are numbered.
    key: String,
    pub(crate) loc: Loc,
}

/// One mailbox's messages as last indexed, with the listing sessions share (sizes and
/// numbered UIDs), so a login copies nothing. For Maildir the file identity is unused.
#[derive(Debug)]
struct MboxIndex {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    msgs: Vec<Message>,
    listing: Arc<Vec<Listed>>,
}

impl MboxIndex {
    fn new(dev: u64, ino: u64, len: u64, mtime: (i64, i64), msgs: Vec<Message>) -> MboxIndex {
        let listing = msgs
            .iter()
            .zip(number_duplicates(&msgs))
            .map(|(m, uid)| Listed { size: m.size, uid })
            .collect();
        MboxIndex {
            dev,
            ino,
            len,
            mtime,
            msgs,
            listing: Arc::new(listing),
        }
    }
}

/// Indexes shared by every session of the server.
#[derive(Default)]
pub struct IndexCache {
    mbox: Mutex<HashMap<PathBuf, Arc<MboxIndex>>>,
    /// Maildir wire sizes by file name (a Maildir file never changes once delivered).
    maildir: Mutex<HashMap<PathBuf, HashMap<String, u64>>>,
}

impl IndexCache {
    fn get(&self, path: &Path) -> Option<Arc<MboxIndex>> {
        self.mbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .cloned()
    }
    fn put(&self, path: &Path, idx: Arc<MboxIndex>) {
        let mut m = self.mbox.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= CACHE_ENTRIES && !m.contains_key(path) {
            m.clear();
        }
        m.insert(path.to_path_buf(), idx);
    }
}

/// The per-mailbox POP3 session lock, released on drop (closing the descriptor).
struct SessionLock {
    _file: File,
}

fn session_lock(mailboxes: &Path, mailbox: &Path) -> Result<SessionLock, DropError> {
    let name = mailbox.file_name().unwrap_or_default().to_string_lossy();
    let path = mailboxes.join(format!(".{name}.pop"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| DropError::io("open session lock", &path, e))?;
    match crate::sys::lock::try_flock_exclusive(&file) {
        Ok(true) => Ok(SessionLock { _file: file }),
        Ok(false) => Err(DropError::InUse(mailbox.display().to_string())),
        Err(e) => Err(DropError::io("lock", &path, e)),
    }
}

/// An open maildrop, held from login to the end of the session.
pub struct Maildrop {
    path: PathBuf,
    index: Arc<MboxIndex>,
    /// mbox: the descriptor reads go through (`index` is the snapshot it was indexed as).
    mbox: Option<File>,
    _lock: SessionLock,
}

fn mtime(m: &fs::Metadata) -> (i64, i64) {
    (m.mtime(), m.mtime_nsec())
}

impl Maildrop {
    /// Opens `user`'s mailbox for a session (blocking: call it off the async runtime).
    pub fn open(
        mailboxes: &Path,
        format: MailboxFormat,
        user: &str,
        cache: &IndexCache,
    ) -> Result<Maildrop, DropError> {
        let path = mailbox_path(mailboxes, user).map_err(|e| DropError::Io(e.to_string()))?;
        let lock = session_lock(mailboxes, &path)?;
        let (index, mbox) = match format {
            MailboxFormat::Mbox => match open_mbox(&path, cache)? {
                Some((file, idx)) => (idx, Some(file)),
                None => (Arc::new(MboxIndex::new(0, 0, 0, (0, 0), Vec::new())), None),
            },
            MailboxFormat::Maildir => (
                Arc::new(MboxIndex::new(0, 0, 0, (0, 0), list_maildir(&path, cache)?)),
                None,
            ),
        };
        Ok(Maildrop {
            path,
            index,
            mbox,
            _lock: lock,
        })
    }

    /// Sizes and UIDs, shared with the index cache.
    pub fn listing(&self) -> Arc<Vec<Listed>> {
        self.index.listing.clone()
    }

    /// The wire size of message `i` (0 if there is none).
    pub fn size(&self, i: usize) -> u64 {
        self.index.msgs.get(i).map_or(0, |m| m.size)
    }

    pub fn len(&self) -> usize {
        self.index.msgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.msgs.is_empty()
    }

    /// Message `i` as stored (LF line ends; no From_ line).
    pub fn read(&self, i: usize) -> Result<Vec<u8>, DropError> {
        self.with_message(i, |file, start, len| {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, start)?;
            Ok(buf)
        })
    }

    /// Message `i` for reading in pieces: a descriptor and the byte range of the message in it.
    pub fn open_message(&self, i: usize) -> Result<(File, u64, u64), DropError> {
        self.with_message(i, |file, start, len| Ok((file.try_clone()?, start, len)))
    }

    /// Calls `f` with a descriptor holding message `i` and the message's byte range in it: the
    /// session's mbox descriptor, or the Maildir file (wherever a mail reader moved it).
    fn with_message<T>(
        &self,
        i: usize,
        f: impl FnOnce(&File, u64, u64) -> io::Result<T>,
    ) -> Result<T, DropError> {
        let m = self
            .index
            .msgs
            .get(i)
            .ok_or_else(|| DropError::Io(format!("no message {}", i + 1)))?;
        match &m.loc {
            Loc::Mbox { start, len, .. } => {
                let file = self
                    .mbox
                    .as_ref()
                    .ok_or_else(|| DropError::Io("mbox not open".into()))?;
                f(file, *start, *len).map_err(|e| DropError::io("read", &self.path, e))
            }
            Loc::File { sub, name } => {
                let p = self.path.join(sub).join(name);
                // A mail reader may have moved it from new/ to cur/ (adding flags).
                let file = File::open(&p)
                    .or_else(|e| {
                        find_maildir_file(&self.path, name)
                            .and_then(|q| File::open(q).ok())
                            .ok_or(e)
                    })
                    .map_err(|e| DropError::io("open", &p, e))?;
                let len = file
                    .metadata()
                    .map_err(|e| DropError::io("stat", &p, e))?
                    .len();
                f(&file, 0, len).map_err(|e| DropError::io("read", &p, e))
            }
        }
    }

    /// RFC 1939 UPDATE: removes the `deleted` messages (0-based) and releases the mailbox.
    /// Returns how many were removed.
    pub fn update(self, deleted: &[usize], cache: &IndexCache) -> Result<usize, DropError> {
        if deleted.is_empty() {
            return Ok(0);
        }
        let mut gone = vec![false; self.index.msgs.len()];
        for &i in deleted {
            if let Some(g) = gone.get_mut(i) {
                *g = true;
            }
        }
        match &self.mbox {
            Some(_) => rewrite_mbox(&self.path, &self.index, &gone, cache),
            None => {
                let mut n = 0;
                for (m, _) in self.index.msgs.iter().zip(&gone).filter(|(_, g)| **g) {
                    if let Loc::File { sub, name } = &m.loc {
                        let p = self.path.join(sub).join(name);
                        let p = if p.exists() {
                            Some(p)
                        } else {
                            find_maildir_file(&self.path, name)
                        };
                        match p.map(fs::remove_file) {
                            Some(Ok(())) => n += 1,
                            Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => {
                                return Err(DropError::io("remove", &self.path.join(name), e));
                            }
                            _ => {}
                        }
                    }
                }
                for sub in ["new", "cur"] {
                    let _ = File::open(self.path.join(sub)).and_then(|d| d.sync_all());
                }
                Ok(n)
            }
        }
    }
}

/// A Maildir message by unique name, wherever it is now (`new/NAME` or `cur/NAME:2,FLAGS`).
fn find_maildir_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let base = name.split(':').next().unwrap_or(name);
    for sub in ["cur", "new"] {
        if let Ok(rd) = fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                let n = e.file_name();
                let n = n.to_string_lossy();
                if n.split(':').next() == Some(base) {
                    return Some(e.path());
                }
            }
        }
    }
    None
}

/// `-2`, `-3`, … for repeated keys, in mailbox order.
fn number_duplicates(msgs: &[Message]) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    msgs.iter()
        .map(|m| {
            let n = seen.entry(m.key.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                m.key.clone()
            } else {
                format!("{}-{n}", m.key)
            }
        })
        .collect()
}

/// Locks the mbox, brings its cached index up to date, and opens a read descriptor on the
/// snapshot. `None` when there is no mbox yet.
fn open_mbox(path: &Path, cache: &IndexCache) -> Result<Option<(File, Arc<MboxIndex>)>, DropError> {
    let lock = MboxLock::acquire(path, LOGIN_LOCK_WAIT).map_err(|e| DropError::local(path, e))?;
    let Some(locked) = lock.file() else {
        return Ok(None);
    };
    let meta = locked
        .metadata()
        .map_err(|e| DropError::io("stat", path, e))?;
    // Our own descriptor: the lock's is closed when the lock is dropped, which (with OFD
    // locks) is what releases it.
    let file = File::open(path).map_err(|e| DropError::io("open", path, e))?;
    let idx =
        index_mbox(&file, &meta, cache.get(path)).map_err(|e| DropError::io("read", path, e))?;
    drop(lock);
    cache.put(path, idx.clone());
    Ok(Some((file, idx)))
}

/// Whether `at` in `file` is the start of a From_ line.
fn starts_from_line(file: &File, at: u64) -> bool {
    let mut b = [0u8; 5];
    file.read_exact_at(&mut b, at).is_ok() && &b == b"From "
}

fn index_mbox(
    file: &File,
    meta: &fs::Metadata,
    cached: Option<Arc<MboxIndex>>,
) -> io::Result<Arc<MboxIndex>> {
    let len = meta.len();
    let (dev, ino, mtime) = (meta.dev(), meta.ino(), mtime(meta));
    if let Some(c) = cached
        && c.dev == dev
        && c.ino == ino
    {
        if c.len == len && c.mtime == mtime {
            return Ok(c);
        }
        // Delivery only appends: if the old messages are where they were and new text starts
        // with a From_ line where the old file ended, index only the new part.
        let at_from = |m: Option<&Message>| {
            m.is_none_or(
                |m| matches!(m.loc, Loc::Mbox { from, .. } if starts_from_line(file, from)),
            )
        };
        let intact = len > c.len
            && starts_from_line(file, c.len)
            && at_from(c.msgs.first())
            && at_from(c.msgs.last());
        if intact {
            let mut msgs = c.msgs.clone();
            let mut r = BufReader::with_capacity(256 * 1024, file);
            r.seek(SeekFrom::Start(c.len))?;
            msgs.extend(scan_mbox(r.take(len - c.len), c.len)?);
            return Ok(Arc::new(MboxIndex::new(dev, ino, len, mtime, msgs)));
        }
    }
    let mut r = BufReader::with_capacity(256 * 1024, file);
    r.rewind()?;
    let msgs = scan_mbox(r.take(len), 0)?;
    Ok(Arc::new(MboxIndex::new(dev, ino, len, mtime, msgs)))
}

/// A message being read by [`scan_mbox`].
struct Partial {
    from: u64,
    start: u64,
    size: u64,
    /// Bytes of the message so far, without a trailing blank line that may be the separator.
    end: u64,
    /// The size of a trailing blank line not yet counted (it may be the separator).
    pending_blank: bool,
    hasher: Sha256,
    hashed: usize,
    in_headers: bool,
}

impl Partial {
    fn finish(self, out: &mut Vec<Message>) {
        let mut h = self.hasher;
        h.update((self.end - self.start).to_string().as_bytes());
        let digest = h.finalize();
        let key: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        out.push(Message {
            size: self.size,
            key,
            loc: Loc::Mbox {
                from: self.from,
                start: self.start,
                len: self.end - self.start,
            },
        });
    }
}

/// The wire size of a Maildir message, read in pieces.
fn maildir_wire_size(path: &Path) -> io::Result<u64> {
    let mut w = super::session::WireSize::default();
    crate::content::read_chunks(File::open(path)?, 64 * 1024, |c| {
        w.feed(c);
        Ok(())
    })?;
    Ok(w.finish())
}

/// Indexes mbox text that starts at file offset `base`. A message begins at each line that
/// starts with `From ` (mboxo: delivery quotes such lines in bodies as `>From `); one blank
/// line before the next From_ line is the separator, not part of the message. Text before the
/// first From_ line is not a message and is skipped.
pub fn scan_mbox(mut r: impl BufRead, base: u64) -> io::Result<Vec<Message>> {
    let mut out = Vec::new();
    let mut cur: Option<Partial> = None;
    let mut pos = base;
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        let line_start = pos;
        pos += n as u64;
        if line.starts_with(b"From ") {
            if let Some(p) = cur.take() {
                p.finish(&mut out);
            }
            let mut hasher = Sha256::new();
            hasher.update(&line);
            cur = Some(Partial {
                from: line_start,
                start: pos,
                size: 0,
                end: pos,
                pending_blank: false,
                hasher,
                hashed: 0,
                in_headers: true,
            });
            continue;
        }
        let Some(p) = cur.as_mut() else { continue };
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if p.in_headers && p.hashed < UID_HEADER_BYTES {
            let take = line.len().min(UID_HEADER_BYTES - p.hashed);
            p.hasher.update(&line[..take]);
            p.hashed += take;
        }
        if text.is_empty() {
            p.in_headers = false;
        }
        if p.pending_blank {
            p.size += 2;
            p.pending_blank = false;
        }
        if text.is_empty() && line.ends_with(b"\n") {
            // Maybe the separator: counted only if more of the message follows.
            p.pending_blank = true;
            p.end = line_start;
            continue;
        }
        p.size += text.len() as u64 + 2;
        p.end = pos;
    }
    if let Some(p) = cur.take() {
        p.finish(&mut out);
    }
    Ok(out)
}

/// Writes the kept messages and the mail that arrived since the snapshot to a new file and
/// renames it over the mbox, under the mailbox lock.
fn rewrite_mbox(
    path: &Path,
    snap: &MboxIndex,
    gone: &[bool],
    cache: &IndexCache,
) -> Result<usize, DropError> {
    let lock = MboxLock::acquire(path, UPDATE_LOCK_WAIT).map_err(|e| DropError::local(path, e))?;
    let changed = || DropError::Changed(path.display().to_string());
    let Some(locked) = lock.file() else {
        return Err(changed());
    };
    let meta = locked
        .metadata()
        .map_err(|e| DropError::io("stat", path, e))?;
    if meta.dev() != snap.dev || meta.ino() != snap.ino || meta.len() < snap.len {
        return Err(changed());
    }
    for m in &snap.msgs {
        if let Loc::Mbox { from, .. } = m.loc
            && !starts_from_line(locked, from)
        {
            return Err(changed());
        }
    }
    if snap.len < meta.len() && !starts_from_line(locked, snap.len) {
        return Err(changed());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.pop-update"));
    let _ = fs::remove_file(&tmp);
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| DropError::io("create", &tmp, e))?;
    let written = (|| -> io::Result<(Vec<Message>, u64)> {
        let mut w = io::BufWriter::with_capacity(256 * 1024, &out);
        let mut kept = Vec::new();
        let mut at = 0u64;
        // Each message's extent runs to the next From_ line (its separator included).
        let bounds: Vec<u64> = snap
            .msgs
            .iter()
            .filter_map(|m| match m.loc {
                Loc::Mbox { from, .. } => Some(from),
                Loc::File { .. } => None,
            })
            .chain(std::iter::once(snap.len))
            .collect();
        for (i, m) in snap.msgs.iter().enumerate() {
            if gone[i] {
                continue;
            }
            let Loc::Mbox { from, start, len } = m.loc else {
                continue;
            };
            let extent = bounds[i + 1] - from;
            copy_range(locked, from, extent, &mut w)?;
            let mut moved = m.clone();
            moved.loc = Loc::Mbox {
                from: at,
                start: at + (start - from),
                len,
            };
            kept.push(moved);
            at += extent;
        }
        copy_range(locked, snap.len, meta.len() - snap.len, &mut w)?;
        w.flush()?;
        drop(w);
        out.sync_all()?;
        Ok((kept, at))
    })();
    let (kept, kept_len) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(DropError::io("write", &tmp, e));
        }
    };
    // Same owner and mode as before; the owner only when permitted (not root: best effort).
    let _ = out.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777));
    let _ = std::os::unix::fs::fchown(&out, Some(meta.uid()), Some(meta.gid()));
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(DropError::io("rename", path, e));
    }
    let _ = File::open(dir).and_then(|d| d.sync_all());
    let removed = gone.iter().filter(|g| **g).count();
    if let Ok(nm) = out.metadata() {
        // The tail copied after `kept_len` is indexed by the next login, as new mail.
        cache.put(
            path,
            Arc::new(MboxIndex::new(
                nm.dev(),
                nm.ino(),
                kept_len,
                mtime(&nm),
                kept,
            )),
        );
    }
    drop(lock);
    Ok(removed)
}

fn copy_range(src: &File, from: u64, len: u64, w: &mut impl Write) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = ((len - done) as usize).min(buf.len());
        let n = src.read_at(&mut buf[..want], from + done)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "mailbox shorter than indexed",
            ));
        }
        w.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// A Maildir UID: the unique part of the name, or its digest when that is not a valid UID
/// (RFC 1939: 1–70 characters 0x21–0x7E).
fn maildir_uid(name: &str) -> String {
    let base = name.split(':').next().unwrap_or(name);
    if !base.is_empty() && base.len() <= 70 && base.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return base.to_string();
    }
    let d = Sha256::digest(base.as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a Maildir message goes in delivery order: the seconds, microseconds (`M`) and
/// per-process counter (`Q`) of its name, parsed as numbers so that old names with unpadded
/// microseconds sort too (cr.yp.to/proto/maildir.html: `secs.MusecPpid…`). A name without
/// leading seconds (not written by a Maildir MDA) goes by its mtime.
fn maildir_order(name: &str, mtime: i64) -> (i64, u64, u64) {
    let (secs, rest) = name.split_once('.').unwrap_or((name, ""));
    let Ok(secs) = secs.parse::<i64>() else {
        return (mtime, 0, 0);
    };
    let unique = rest.split(['.', ',', ':']).next().unwrap_or("");
    let field = |tag: char| -> u64 {
        unique
            .find(tag)
            .map(|i| &unique[i + 1..])
            .map(|t| {
                let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                t[..end].parse().unwrap_or(0)
            })
            .unwrap_or(0)
    };
    (secs, field('M'), field('Q'))
}

/// The messages in `new/` and `cur/`, oldest first. Sizes are counted once per file and
/// remembered.
fn list_maildir(dir: &Path, cache: &IndexCache) -> Result<Vec<Message>, DropError> {
    let mut entries: Vec<((i64, u64, u64), String, &'static str)> = Vec::new();
    for sub in ["new", "cur"] {
        let rd = match fs::read_dir(dir.join(sub)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(DropError::io("list", &dir.join(sub), e)),
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            entries.push((maildir_order(&name, meta.mtime()), name, sub));
        }
    }
    entries.sort();
    let mut sizes = cache.maildir.lock().unwrap_or_else(|p| p.into_inner());
    if sizes.len() >= CACHE_ENTRIES && !sizes.contains_key(dir) {
        sizes.clear();
    }
    let known = sizes.entry(dir.to_path_buf()).or_default();
    let mut out = Vec::with_capacity(entries.len());
    let mut live = std::collections::HashSet::new();
    for (_, name, sub) in entries {
        let uid = maildir_uid(&name);
        let size = match known.get(&uid) {
            Some(&s) => s,
            None => {
                let p = dir.join(sub).join(&name);
                let Ok(s) = maildir_wire_size(&p) else {
                    continue;
                };
                known.insert(uid.clone(), s);
                s
            }
        };
        live.insert(uid.clone());
        out.push(Message {
            size,
            key: uid,
            loc: Loc::File { sub, name },
        });
    }
    known.retain(|k, _| live.contains(k));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MBOX: &[u8] = b"From a@x Sat Nov 28 10:00:00 2026\nSubject: one\n\nbody\n>From quoted\n\nFrom b@x Sat Nov 28 10:00:01 2026\nSubject: two\n\n.dot\n\n";

    fn root() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn scan_finds_messages_sizes_and_separators() {
        let msgs = scan_mbox(MBOX, 0).unwrap();
        assert_eq!(msgs.len(), 2);
        let Loc::Mbox { start, len, .. } = msgs[0].loc else {
            panic!()
        };
        let body = &MBOX[start as usize..(start + len) as usize];
        assert_eq!(body, b"Subject: one\n\nbody\n>From quoted\n");
        assert_eq!(msgs[0].size, super::super::session::wire_size(body));
        assert_ne!(msgs[0].key, msgs[1].key);
        crate::fuzz::pop3_mbox::invariants(MBOX);
        crate::fuzz::pop3_mbox::invariants(b"junk\nFrom \n\n\nFrom x\nno newline");
    }

    #[test]
    fn uids_are_stable_and_duplicates_numbered() {
        let twice = [MBOX, MBOX].concat();
        let msgs = scan_mbox(&twice[..], 0).unwrap();
        let uids = number_duplicates(&msgs);
        assert_eq!(uids[2], format!("{}-2", uids[0]));
        let again = scan_mbox(MBOX, 0).unwrap();
        assert_eq!(number_duplicates(&again)[1], uids[1]);
    }

    #[test]
    fn second_session_is_in_use_and_update_keeps_new_mail() {
        let d = root();
        let mb = d.path().join("who");
        fs::write(&mb, MBOX).unwrap();
        let cache = IndexCache::default();
        let drop1 = Maildrop::open(d.path(), MailboxFormat::Mbox, "who", &cache).unwrap();
        assert_eq!(drop1.len(), 2);
        assert!(matches!(
            Maildrop::open(d.path(), MailboxFormat::Mbox, "who", &cache),
            Err(DropError::InUse(_))
        ));
        assert_eq!(drop1.read(1).unwrap(), b"Subject: two\n\n.dot\n");
        // Mail delivered during the session.
        let mut f = OpenOptions::new().append(true).open(&mb).unwrap();
        f.write_all(b"From c@x Sat Nov 28 10:00:02 2026\nSubject: three\n\nnew\n\n")
            .unwrap();
        let uid_two = drop1.listing()[1].uid.clone();
        assert_eq!(drop1.update(&[0], &cache).unwrap(), 1);
        let text = fs::read(&mb).unwrap();
        assert_eq!(
            text,
            b"From b@x Sat Nov 28 10:00:01 2026\nSubject: two\n\n.dot\n\nFrom c@x Sat Nov 28 10:00:02 2026\nSubject: three\n\nnew\n\n"
        );
        let drop2 = Maildrop::open(d.path(), MailboxFormat::Mbox, "who", &cache).unwrap();
        assert_eq!(drop2.len(), 2);
        assert_eq!(drop2.listing()[0].uid, uid_two, "UIDs survive an update");
        assert_eq!(drop2.read(1).unwrap(), b"Subject: three\n\nnew\n");
        // No mailbox yet: an empty maildrop.
        let none = Maildrop::open(d.path(), MailboxFormat::Mbox, "nobody", &cache).unwrap();
        assert!(none.is_empty());
        drop(drop2);
        // The cached index and a cold one agree.
        let warm = Maildrop::open(d.path(), MailboxFormat::Mbox, "who", &cache)
            .unwrap()
            .index
            .msgs
            .clone();
        let cold = Maildrop::open(d.path(), MailboxFormat::Mbox, "who", &IndexCache::default())
            .unwrap()
            .index
            .msgs
            .clone();
        assert_eq!(warm, cold);
    }

    #[test]
    fn an_mbox_rewritten_by_another_program_is_not_updated() {
        let d = root();
        let mb = d.path().join("who");
        fs::write(&mb, MBOX).unwrap();
        let cache = IndexCache::default();
        let drop1 = Maildrop::open(d.path(), MailboxFormat::Mbox, "who", &cache).unwrap();
        fs::write(
            &mb,
            b"From z@x Sat Nov 28 11:00:00 2026\nSubject: other\n\nx\n\n",
        )
        .unwrap();
        assert!(matches!(
            drop1.update(&[0], &cache),
            Err(DropError::Changed(_))
        ));
        assert!(fs::read(&mb).unwrap().starts_with(b"From z@x"));
    }

    #[test]
    fn maildir_order_parses_numbers() {
        // Unpadded microseconds (written before issue 12): 99 µs comes before 100000 µs.
        assert!(
            maildir_order("1700000000.M99P7Q1.h", 0) < maildir_order("1700000000.M100000P7Q2.h", 0)
        );
        assert!(
            maildir_order("1700000000.M000099P7Q1.h,S=3:2,S", 0)
                < maildir_order("1700000000.M99P7Q2.h", 0)
        );
        assert!(
            maildir_order("1700000001.M1P7Q1.h", 0) > maildir_order("1700000000.M999999P7Q1.h", 0)
        );
        assert_eq!(
            maildir_order("1700000000.M5P7Q12.h", 0),
            (1_700_000_000, 5, 12)
        );
        assert_eq!(maildir_order("odd-name", 42), (42, 0, 0));
        assert_eq!(
            maildir_order("1700000000.12345_1.h", 0),
            (1_700_000_000, 0, 0)
        );
    }

    #[test]
    fn maildir_messages_uids_and_deletion() {
        let d = root();
        let md = d.path().join("who");
        for sub in ["new", "cur", "tmp"] {
            fs::create_dir_all(md.join(sub)).unwrap();
        }
        fs::write(md.join("new/1700000000.M1P2Q3.host,S=10"), b"A: 1\n\nx\n").unwrap();
        fs::write(
            md.join("cur/1600000000.M1P2Q3.host,S=10:2,S"),
            b"A: 2\n\ny\n",
        )
        .unwrap();
        let cache = IndexCache::default();
        let m = Maildrop::open(d.path(), MailboxFormat::Maildir, "who", &cache).unwrap();
        let l = m.listing();
        assert_eq!(l.len(), 2);
        assert!(l.iter().any(|x| x.uid == "1600000000.M1P2Q3.host,S=10"));
        assert_eq!(l[0].size, 11);
        assert_eq!(m.update(&[0, 1], &cache).unwrap(), 2);
        let m = Maildrop::open(d.path(), MailboxFormat::Maildir, "who", &cache).unwrap();
        assert!(m.is_empty());
    }
}
