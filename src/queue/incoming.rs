//! A message on its way into the spool, kept in bounded memory: small messages stay in a
//! buffer, and once a message passes [`SPILL_AT`] its `df` file is created under the queue id
//! chosen in advance and written as the data arrives. [`Incoming::finish`] hands the result to
//! [`Spool::store`](super::Spool::store), which adds the `qf` and makes both durable before the
//! 250; an `Incoming` dropped before that removes its `df`.
//!
//! The server's memory per message is therefore at most `SPILL_AT` plus one network read,
//! whatever the message size, and a 1 KB message never touches the disk before the commit.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use super::id::QueueId;
use super::spool::{SpoolError, create_excl, remove_quiet};

/// Messages up to this size stay in memory until the commit; larger ones go to the `df` file in
/// writes of about this size.
pub const SPILL_AT: usize = 256 * 1024;

/// How much of the message's start is kept for header checks (hop count, Message-ID) after the
/// rest has gone to disk. sendmail refuses header sections over 32 KiB (`MaxHeadersLength`);
/// twice that is plenty for any header a check looks at.
pub const HEAD_KEPT: usize = 64 * 1024;

/// The data of a [`NewMessage`](super::NewMessage).
#[derive(Debug)]
pub enum Payload {
    /// The whole message in memory.
    Bytes(Vec<u8>),
    /// Already written to `df<id>` (not yet synced); only its `qf` is missing.
    Spilled(Spilled),
}

impl Payload {
    /// The message size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Payload::Bytes(b) => b.len() as u64,
            Payload::Spilled(s) => s.len,
        }
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Payload {
    fn from(v: Vec<u8>) -> Self {
        Payload::Bytes(v)
    }
}

/// A `df` file written by an [`Incoming`]. Dropping it removes the file: until its `qf` exists
/// it is not a message.
#[derive(Debug)]
pub struct Spilled {
    pub(super) id: QueueId,
    pub(super) path: PathBuf,
    file: Option<File>,
    len: u64,
}

impl Spilled {
    /// The queue id the file was created under.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// The `df` file's path (its content may be read while it is being stored).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Overwrites bytes at `at` without changing the size (the stage renames a field).
    pub fn overwrite(&mut self, at: u64, bytes: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if at + bytes.len() as u64 > self.len {
            return Err(std::io::Error::other("overwrite past the end"));
        }
        match &self.file {
            Some(f) => f.write_all_at(bytes, at),
            None => Err(std::io::Error::other("file already handed over")),
        }
    }

    /// Replaces the content with what `write` makes of the old file (a milter changed the
    /// header or the body). The new content goes to the id's `tf` name and is renamed over
    /// the `df`, so a failure leaves the old message; the qf is written later under the same
    /// `tf` name, and recovery removes a leftover one.
    pub fn rewrite(
        &mut self,
        write: impl FnOnce(&File, &mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self.file.is_none() {
            return Err(std::io::Error::other("file already handed over"));
        }
        // Our own handle is write-only; the old content is read through a new one.
        let old = File::open(&self.path)?;
        let tmp = self.path.with_file_name(format!("tf{}", self.id));
        let new = create_excl(&tmp)?;
        let written = (|| {
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, &new);
            write(&old, &mut w)?;
            w.flush()?;
            drop(w);
            std::fs::rename(&tmp, &self.path)?;
            new.metadata().map(|m| m.len())
        })();
        match written {
            Ok(len) => {
                self.len = len;
                self.file = Some(new);
                Ok(())
            }
            Err(e) => {
                remove_quiet(&tmp);
                Err(e)
            }
        }
    }

    /// Hands the open file over; from then on the caller removes it on failure. `None` only
    /// if it was taken before, which the spool never does.
    pub(super) fn take_file(&mut self) -> Option<File> {
        self.file.take()
    }
}

impl Drop for Spilled {
    fn drop(&mut self) {
        if self.file.is_some() {
            remove_quiet(&self.path);
        }
    }
}

/// A message being received. See the module docs.
#[derive(Debug)]
pub struct Incoming {
    id: QueueId,
    path: PathBuf,
    buf: Vec<u8>,
    head: Vec<u8>,
    file: Option<File>,
    written: u64,
    spill_at: usize,
}

impl Incoming {
    /// Starts a message that will be stored as `id` in the spool directory whose `df` path for
    /// that id is `df_path` ([`Spool::data_path`](super::Spool::data_path)).
    pub fn new(id: QueueId, df_path: PathBuf) -> Incoming {
        Incoming::with_spill(id, df_path, SPILL_AT)
    }

    /// [`Incoming::new`] with another spill size (tests use tiny ones).
    pub fn with_spill(id: QueueId, df_path: PathBuf, spill_at: usize) -> Incoming {
        Incoming {
            id,
            path: df_path,
            buf: Vec::new(),
            head: Vec::new(),
            file: None,
            written: 0,
            spill_at: spill_at.max(1),
        }
    }

    /// The queue id the message will have.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// Appends bytes exactly as they are to be stored. No I/O: call [`Incoming::flush`] (which
    /// blocks) when [`Incoming::wants_flush`] says so.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.head.len() < HEAD_KEPT {
            let take = (HEAD_KEPT - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True once the buffer is large enough to go to disk.
    pub fn wants_flush(&self) -> bool {
        self.buf.len() >= self.spill_at
    }

    /// Bytes received so far.
    pub fn len(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// True if nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the message has gone to its `df` ([`Incoming::finish`] then blocks).
    pub fn is_spilled(&self) -> bool {
        self.file.is_some()
    }

    /// The first [`HEAD_KEPT`] bytes of the message.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Writes the buffer to the `df` file, creating it (`O_EXCL`) on the first call. Blocking.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let f =
                    create_excl(&self.path).map_err(|e| SpoolError::io("create", &self.path, e))?;
                self.file.insert(f)
            }
        };
        file.write_all(&self.buf)
            .map_err(|e| SpoolError::io("write", &self.path, e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        if self.buf.capacity() > 2 * self.spill_at {
            self.buf.shrink_to(self.spill_at);
        }
        Ok(())
    }

    /// The finished message: in memory if it never spilled, else the rest is written out
    /// (blocking) and the `df` file handed on.
    pub fn finish(mut self) -> Result<Payload, SpoolError> {
        if self.file.is_none() {
            return Ok(Payload::Bytes(std::mem::take(&mut self.buf)));
        }
        self.flush()?;
        let file = self.file.take();
        Ok(Payload::Spilled(Spilled {
            id: self.id.clone(),
            path: std::mem::take(&mut self.path),
            file,
            len: self.written,
        }))
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Abandoned (size exceeded, client gone, discard): the df is not a message.
        if self.file.is_some() {
            remove_quiet(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(dir: &std::path::Path, spill: usize) -> Incoming {
        let id = QueueId::allocate();
        let path = dir.join(format!("df{id}"));
        Incoming::with_spill(id, path, spill)
    }

    #[test]
    fn small_messages_stay_in_memory() {
        let d = tempfile::tempdir().unwrap();
        let mut m = incoming(d.path(), 100);
        m.push(b"Subject: x\n\nhello\n");
        assert!(!m.wants_flush());
        assert_eq!(m.len(), 18);
        match m.finish().unwrap() {
            Payload::Bytes(b) => assert_eq!(b, b"Subject: x\n\nhello\n"),
            Payload::Spilled(_) => panic!("spilled"),
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn large_messages_go_to_the_df_and_keep_their_head() {
        let d = tempfile::tempdir().unwrap();
        let mut m = incoming(d.path(), 10);
        let path = m.path.clone();
        let mut want = Vec::new();
        for i in 0..50u8 {
            let chunk = vec![b'a' + (i % 26); 7];
            m.push(&chunk);
            want.extend_from_slice(&chunk);
            if m.wants_flush() {
                m.flush().unwrap();
                assert!(m.buf.is_empty());
            }
        }
        assert_eq!(m.len(), 350);
        assert_eq!(m.head(), &want[..]);
        let p = m.finish().unwrap();
        assert_eq!(p.len(), 350);
        assert!(matches!(p, Payload::Spilled(_)));
        assert_eq!(std::fs::read(&path).unwrap(), want);
        // Not committed: dropping it removes the df.
        drop(p);
        assert!(!path.exists());
    }

    #[test]
    fn an_abandoned_message_leaves_nothing_and_an_id_clash_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let mut m = incoming(d.path(), 4);
        let path = m.path.clone();
        m.push(b"0123456789");
        m.flush().unwrap();
        assert!(path.exists());
        drop(m);
        assert!(!path.exists());

        std::fs::write(d.path().join("dfTAKEN"), b"x").unwrap();
        let mut m = Incoming::with_spill(QueueId::allocate(), d.path().join("dfTAKEN"), 4);
        m.push(b"0123456789");
        let e = m.flush().unwrap_err();
        assert!(e.to_string().contains("create"), "{e}");
        drop(m);
        assert_eq!(std::fs::read(d.path().join("dfTAKEN")).unwrap(), b"x");
    }

    #[test]
    fn head_is_capped() {
        let d = tempfile::tempdir().unwrap();
        let mut m = incoming(d.path(), usize::MAX);
        m.push(&vec![b'x'; HEAD_KEPT + 10]);
        m.push(b"tail");
        assert_eq!(m.head().len(), HEAD_KEPT);
        assert_eq!(m.len(), HEAD_KEPT as u64 + 14);
    }
}
