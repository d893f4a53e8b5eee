//! Page-level access shared by the hash and btree walkers: bounds-checked
//! integer decoding in the file's byte order, page headers, item offsets,
//! overflow chains, loop detection and the decoded-size budget.
//!
//! Layout reference (Berkeley DB 5.3 `dbinc/db_page.h`), generic page header:
//! ```text
//! 00-07 lsn   08-11 pgno   12-15 prev_pgno   16-19 next_pgno
//! 20-21 entries   22-23 hf_offset   24 level   25 type
//! ```
//! The item index array (`inp`, one u16 offset per item) follows at byte 26,
//! or at byte 32 when the database was created with checksums.

use super::{BdbError, ByteOrder};

/// Page types we read (`P_*` in db_page.h).
pub(crate) const P_INVALID: u8 = 0;
pub(crate) const P_HASH_UNSORTED: u8 = 2;
pub(crate) const P_IBTREE: u8 = 3;
pub(crate) const P_IRECNO: u8 = 4;
pub(crate) const P_LBTREE: u8 = 5;
pub(crate) const P_LRECNO: u8 = 6;
pub(crate) const P_OVERFLOW: u8 = 7;
pub(crate) const P_LDUP: u8 = 12;
pub(crate) const P_HASH: u8 = 13;

/// Size of the plain page header (`SIZEOF_PAGE`).
const SIZEOF_PAGE: usize = 26;
/// Header size when page checksums are on (`PG_CHKSUM`: 2 pad bytes + 4-byte sum).
const SIZEOF_PAGE_CHKSUM: usize = 32;

/// Decode a u16 at `off` in `order`, or `None` when out of bounds.
pub(crate) fn u16_at(b: &[u8], off: usize, order: ByteOrder) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    let a = [s[0], s[1]];
    Some(match order {
        ByteOrder::Little => u16::from_le_bytes(a),
        ByteOrder::Big => u16::from_be_bytes(a),
    })
}

/// Decode a u32 at `off` in `order`, or `None` when out of bounds.
pub(crate) fn u32_at(b: &[u8], off: usize, order: ByteOrder) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let a = [s[0], s[1], s[2], s[3]];
    Some(match order {
        ByteOrder::Little => u32::from_le_bytes(a),
        ByteOrder::Big => u32::from_be_bytes(a),
    })
}

/// Build a [`BdbError::Corrupt`] for page `pgno`.
pub(crate) fn corrupt(pgno: u32, what: impl Into<String>) -> BdbError {
    BdbError::Corrupt {
        pgno,
        what: what.into(),
    }
}

/// The whole file viewed as an array of fixed-size pages.
pub(crate) struct Db<'a> {
    bytes: &'a [u8],
    pub(crate) order: ByteOrder,
    pub(crate) pagesize: usize,
    /// Number of complete pages in the file; any page number >= this is invalid.
    pub(crate) npages: u32,
    /// Offset of the item index array on every non-meta page.
    header_len: usize,
}

impl<'a> Db<'a> {
    pub(crate) fn new(bytes: &'a [u8], order: ByteOrder, pagesize: usize, chksum: bool) -> Self {
        // A partial trailing page can't hold a valid page, so it is ignored;
        // saturate so a huge file can't overflow the u32 page count.
        let npages = u32::try_from(bytes.len() / pagesize).unwrap_or(u32::MAX);
        Db {
            bytes,
            order,
            pagesize,
            npages,
            header_len: if chksum {
                SIZEOF_PAGE_CHKSUM
            } else {
                SIZEOF_PAGE
            },
        }
    }

    /// Fetch page `pgno` and validate its header enough that item access
    /// can't run off the page.
    pub(crate) fn page(&self, pgno: u32) -> Result<Page<'a>, BdbError> {
        if pgno >= self.npages {
            return Err(BdbError::PageOutOfRange {
                pgno,
                npages: self.npages,
            });
        }
        // pgno < npages guarantees the whole page lies inside `bytes`.
        let start = pgno as usize * self.pagesize;
        let data =
            self.bytes
                .get(start..start + self.pagesize)
                .ok_or(BdbError::PageOutOfRange {
                    pgno,
                    npages: self.npages,
                })?;
        let page = Page {
            pgno,
            data,
            order: self.order,
            header_len: self.header_len,
        };
        let index_end = self.header_len + 2 * usize::from(page.entries());
        if page.ptype() != P_OVERFLOW && index_end > self.pagesize {
            return Err(corrupt(
                pgno,
                format!("{} entries do not fit on the page", page.entries()),
            ));
        }
        Ok(page)
    }

    /// Read a complete overflow item of `tlen` bytes starting at page `pgno`
    /// (`B_OVERFLOW` / `H_OFFPAGE`). `from` names the referring page for errors.
    pub(crate) fn overflow(
        &self,
        from: u32,
        pgno: u32,
        tlen: u32,
        budget: &Budget,
    ) -> Result<Vec<u8>, BdbError> {
        let tlen = tlen as usize;
        // Check the budget before allocating so a forged tlen can't make us
        // reserve gigabytes; the bytes are charged when the record is stored.
        budget.check(tlen)?;
        let mut out = Vec::with_capacity(tlen);
        let mut cur = pgno;
        // A chain can't be longer than the file has pages; more steps means a loop.
        let mut steps: u32 = 0;
        while out.len() < tlen {
            if cur == 0 {
                return Err(corrupt(
                    from,
                    format!(
                        "overflow chain from page {pgno} ends after {} of {tlen} bytes",
                        out.len()
                    ),
                ));
            }
            steps += 1;
            if steps > self.npages {
                return Err(BdbError::PageLoop { pgno: cur });
            }
            let p = self.page(cur)?;
            if p.ptype() != P_OVERFLOW {
                return Err(corrupt(
                    cur,
                    format!("expected an overflow page, found page type {}", p.ptype()),
                ));
            }
            // On overflow pages hf_offset holds the number of data bytes.
            let len = usize::from(p.hf_offset());
            // Real overflow pages always carry data; an empty one would let
            // a forged chain spin without making progress.
            if len == 0 {
                return Err(corrupt(cur, "empty overflow page"));
            }
            let chunk = p
                .data
                .get(self.header_len..self.header_len + len)
                .ok_or_else(|| corrupt(cur, format!("overflow length {len} exceeds the page")))?;
            if out.len() + chunk.len() > tlen {
                return Err(corrupt(
                    cur,
                    format!("overflow chain from page {pgno} holds more than {tlen} bytes"),
                ));
            }
            out.extend_from_slice(chunk);
            cur = p.next();
        }
        Ok(out)
    }
}

/// One page of the file.
#[derive(Clone, Copy)]
pub(crate) struct Page<'a> {
    pub(crate) pgno: u32,
    pub(crate) data: &'a [u8],
    order: ByteOrder,
    header_len: usize,
}

impl<'a> Page<'a> {
    // Header fields: `page()` guarantees data.len() == pagesize >= 512, so
    // these in-header reads can't fail; 0 is a harmless fallback.
    fn hdr_u32(&self, off: usize) -> u32 {
        u32_at(self.data, off, self.order).unwrap_or(0)
    }
    fn hdr_u16(&self, off: usize) -> u16 {
        u16_at(self.data, off, self.order).unwrap_or(0)
    }
    /// Page number recorded in the page itself.
    pub(crate) fn self_pgno(&self) -> u32 {
        self.hdr_u32(8)
    }
    pub(crate) fn next(&self) -> u32 {
        self.hdr_u32(16)
    }
    pub(crate) fn entries(&self) -> u16 {
        self.hdr_u16(20)
    }
    pub(crate) fn hf_offset(&self) -> u16 {
        self.hdr_u16(22)
    }
    pub(crate) fn ptype(&self) -> u8 {
        self.data.get(25).copied().unwrap_or(P_INVALID)
    }

    /// Offset of item `i`, checked to lie past the index array and inside the page.
    pub(crate) fn inp(&self, i: usize) -> Result<usize, BdbError> {
        let off = u16_at(self.data, self.header_len + 2 * i, self.order)
            .ok_or_else(|| corrupt(self.pgno, format!("item index {i} out of range")))?;
        let off = usize::from(off);
        let index_end = self.header_len + 2 * usize::from(self.entries());
        if off < index_end || off >= self.data.len() {
            return Err(corrupt(
                self.pgno,
                format!("item {i} offset {off} lies outside the item area"),
            ));
        }
        Ok(off)
    }

    /// `len` bytes at `off`, or a corruption error naming `what`.
    pub(crate) fn slice(&self, off: usize, len: usize, what: &str) -> Result<&'a [u8], BdbError> {
        off.checked_add(len)
            .and_then(|end| self.data.get(off..end))
            .ok_or_else(|| {
                corrupt(
                    self.pgno,
                    format!("{what} at offset {off} (length {len}) runs off the page"),
                )
            })
    }

    /// u32 inside an item, bounds-checked.
    pub(crate) fn item_u32(&self, off: usize, what: &str) -> Result<u32, BdbError> {
        u32_at(self.data, off, self.order).ok_or_else(|| {
            corrupt(
                self.pgno,
                format!("{what} at offset {off} runs off the page"),
            )
        })
    }

    /// u16 inside an item, bounds-checked.
    pub(crate) fn item_u16(&self, off: usize, what: &str) -> Result<u16, BdbError> {
        u16_at(self.data, off, self.order).ok_or_else(|| {
            corrupt(
                self.pgno,
                format!("{what} at offset {off} runs off the page"),
            )
        })
    }
}

/// Pages already walked, so a forged `next_pgno`/child link that points
/// back into the structure is reported instead of looping forever.
pub(crate) struct Visited(Vec<bool>);

impl Visited {
    pub(crate) fn new(npages: u32) -> Self {
        Visited(vec![false; npages as usize])
    }
    /// Mark `pgno`; error if it was already seen. Out-of-range pages are
    /// rejected later by `Db::page`, so they are simply not tracked here.
    pub(crate) fn mark(&mut self, pgno: u32) -> Result<(), BdbError> {
        if let Some(seen) = self.0.get_mut(pgno as usize) {
            if *seen {
                return Err(BdbError::PageLoop { pgno });
            }
            *seen = true;
        }
        Ok(())
    }
}

/// Upper bound on decoded bytes, so crafted files (many items sharing one
/// overflow chain, forged lengths) can't blow up memory.
pub(crate) struct Budget {
    pub(crate) limit: usize,
    used: usize,
}

/// Bookkeeping cost charged per record on top of its key and value bytes
/// (two Vec headers plus the index entry).
pub(crate) const RECORD_OVERHEAD: usize = 64;

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Budget { limit, used: 0 }
    }
    /// Would `n` more bytes still fit?
    pub(crate) fn check(&self, n: usize) -> Result<(), BdbError> {
        match self.used.checked_add(n) {
            Some(total) if total <= self.limit => Ok(()),
            _ => Err(BdbError::TooLarge { limit: self.limit }),
        }
    }
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), BdbError> {
        match self.used.checked_add(n) {
            Some(total) if total <= self.limit => {
                self.used = total;
                Ok(())
            }
            _ => Err(BdbError::TooLarge { limit: self.limit }),
        }
    }
}
