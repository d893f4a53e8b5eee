//! A queued message's data as the couriers read it: in memory when it is small, else its `df`
//! file, read in chunks of [`CHUNK`] bytes. Delivery, bounces and the SMTP client all take a
//! `Content`, so a message of any size costs the same few buffers.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// The size of one read from a message file, and of the largest message kept in memory.
pub const CHUNK: usize = 256 * 1024;

/// A message's bytes. Cloning is cheap (an `Arc` or a path).
#[derive(Debug, Clone)]
pub enum Content {
    Memory(Arc<[u8]>),
    /// A file that nobody rewrites while it is being read (a `df` under its message lock),
    /// behind `prefix` (header fields kept in the `qf`; usually empty). `len` counts both.
    File {
        path: PathBuf,
        len: u64,
        prefix: Arc<[u8]>,
    },
}

impl From<Vec<u8>> for Content {
    fn from(v: Vec<u8>) -> Self {
        Content::Memory(v.into())
    }
}

impl From<&[u8]> for Content {
    fn from(v: &[u8]) -> Self {
        Content::Memory(v.into())
    }
}

impl Content {
    /// The file at `path`, read into memory if it is at most `keep_in_memory` bytes (blocking).
    pub fn load(path: &Path, keep_in_memory: u64) -> io::Result<Content> {
        let len = std::fs::metadata(path)?.len();
        if len <= keep_in_memory {
            return Ok(Content::from(std::fs::read(path)?));
        }
        Ok(Content::File {
            path: path.to_path_buf(),
            len,
            prefix: Arc::from(&b""[..]),
        })
    }

    /// The same message with `prefix` (whole header fields) in front of it.
    pub fn with_prefix(self, prefix: &[u8]) -> Content {
        if prefix.is_empty() {
            return self;
        }
        match self {
            Content::Memory(b) => {
                let mut v = Vec::with_capacity(prefix.len() + b.len());
                v.extend_from_slice(prefix);
                v.extend_from_slice(&b);
                Content::from(v)
            }
            Content::File {
                path,
                len,
                prefix: old,
            } => {
                let mut p = prefix.to_vec();
                p.extend_from_slice(&old);
                Content::File {
                    path,
                    len: len + prefix.len() as u64,
                    prefix: p.into(),
                }
            }
        }
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Content::Memory(b) => b.len() as u64,
            Content::File { len, .. } => *len,
        }
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Content::Memory(b) => Some(b),
            Content::File { .. } => None,
        }
    }

    /// A blocking reader from the start.
    pub fn reader(&self) -> io::Result<ContentReader> {
        Ok(match self {
            Content::Memory(b) => ContentReader::Memory(io::Cursor::new(b.clone())),
            Content::File { path, prefix, .. } => {
                ContentReader::File(io::Cursor::new(prefix.clone()).chain(File::open(path)?))
            }
        })
    }

    /// An async reader from the start.
    pub async fn async_reader(&self) -> io::Result<AsyncContentReader> {
        Ok(match self {
            Content::Memory(b) => AsyncContentReader::Memory(io::Cursor::new(b.clone())),
            Content::File { path, prefix, .. } => {
                AsyncContentReader::File(tokio::io::AsyncReadExt::chain(
                    io::Cursor::new(prefix.clone()),
                    tokio::fs::File::open(path).await?,
                ))
            }
        })
    }

    /// At most the first `max` bytes (blocking for a file).
    pub fn head(&self, max: usize) -> io::Result<Vec<u8>> {
        if let Content::Memory(b) = self {
            return Ok(b[..b.len().min(max)].to_vec());
        }
        let mut out = Vec::new();
        self.reader()?.take(max as u64).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Calls `f` with each chunk in order (blocking for a file); stops at `f`'s first error.
    pub fn for_each_chunk(&self, f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        if let Content::Memory(b) = self {
            let mut f = f;
            return f(b);
        }
        read_chunks(self.reader()?, CHUNK, f)
    }

    /// True if any byte has the high bit set (for BODY=8BITMIME). Blocking for a file.
    pub fn has_8bit(&self) -> io::Result<bool> {
        let mut found = false;
        self.for_each_chunk(|c| {
            found |= c.iter().any(|&b| b >= 0x80);
            Ok(())
        })?;
        Ok(found)
    }
}

/// Reads `r` to its end in pieces of at most `size` bytes, calling `f` with each; stops at the
/// first error of either. The one read loop of the message files.
pub fn read_chunks(
    mut r: impl Read,
    size: usize,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; size.max(1)];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(&buf[..n])?;
    }
}

/// [`Content::reader`].
#[derive(Debug)]
pub enum ContentReader {
    Memory(io::Cursor<Arc<[u8]>>),
    File(io::Chain<io::Cursor<Arc<[u8]>>, File>),
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ContentReader::Memory(c) => c.read(buf),
            ContentReader::File(f) => f.read(buf),
        }
    }
}

/// [`Content::async_reader`].
#[derive(Debug)]
pub enum AsyncContentReader {
    Memory(io::Cursor<Arc<[u8]>>),
    File(tokio::io::Chain<io::Cursor<Arc<[u8]>>, tokio::fs::File>),
}

impl AsyncRead for AsyncContentReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AsyncContentReader::Memory(c) => Pin::new(c).poll_read(cx, buf),
            AsyncContentReader::File(f) => Pin::new(f).poll_read(cx, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn both(bytes: &[u8]) -> (tempfile::TempDir, [Content; 2]) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("df");
        std::fs::write(&p, bytes).unwrap();
        let file = Content::File {
            path: p,
            len: bytes.len() as u64,
            prefix: Arc::from(&b""[..]),
        };
        (d, [Content::from(bytes), file])
    }

    #[tokio::test]
    async fn a_prefix_reads_first_from_memory_and_file() {
        let body = b"Subject: x\n\nbody\n";
        let (_d, cs) = both(body);
        for c in cs {
            let c = c.with_prefix(b"X-A: 1\n").with_prefix(b"X-B: 2\n");
            let want = b"X-B: 2\nX-A: 1\nSubject: x\n\nbody\n";
            assert_eq!(c.len(), want.len() as u64);
            let mut all = Vec::new();
            c.reader().unwrap().read_to_end(&mut all).unwrap();
            assert_eq!(all, want);
            let mut all = Vec::new();
            c.async_reader()
                .await
                .unwrap()
                .read_to_end(&mut all)
                .await
                .unwrap();
            assert_eq!(all, want);
            assert_eq!(c.head(9).unwrap(), b"X-B: 2\nX-");
            assert_eq!(c.clone().with_prefix(b"").len(), c.len());
        }
    }

    #[test]
    fn memory_and_file_read_the_same() {
        let mut bytes = vec![b'a'; CHUNK * 2 + 17];
        bytes[CHUNK + 3] = 0xe9;
        let (_d, cs) = both(&bytes);
        for c in &cs {
            assert_eq!(c.len(), bytes.len() as u64);
            let mut all = Vec::new();
            c.reader().unwrap().read_to_end(&mut all).unwrap();
            assert_eq!(all, bytes);
            let mut chunks = Vec::new();
            let mut largest = 0;
            c.for_each_chunk(|x| {
                largest = largest.max(x.len());
                chunks.extend_from_slice(x);
                Ok(())
            })
            .unwrap();
            assert_eq!(chunks, bytes);
            assert_eq!(c.head(5).unwrap(), b"aaaaa");
            assert!(c.has_8bit().unwrap());
            if c.as_bytes().is_none() {
                assert!(largest <= CHUNK);
            }
        }
        let (_d, cs) = both(b"plain ascii\n");
        for c in &cs {
            assert!(!c.has_8bit().unwrap());
            assert_eq!(c.head(100).unwrap(), b"plain ascii\n");
        }
    }

    #[tokio::test]
    async fn load_keeps_small_files_in_memory_and_reads_async() {
        let (d, _) = both(b"0123456789");
        let p = d.path().join("df");
        let small = Content::load(&p, 10).unwrap();
        assert_eq!(small.as_bytes(), Some(&b"0123456789"[..]));
        let big = Content::load(&p, 9).unwrap();
        assert!(big.as_bytes().is_none());
        assert_eq!(big.len(), 10);
        assert!(Content::load(&d.path().join("missing"), 10).is_err());
        for c in [small, big] {
            let mut v = Vec::new();
            c.async_reader()
                .await
                .unwrap()
                .read_to_end(&mut v)
                .await
                .unwrap();
            assert_eq!(v, b"0123456789");
        }
    }
}
