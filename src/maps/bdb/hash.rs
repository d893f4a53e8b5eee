//! Hash walking, in the order a DB cursor returns records: buckets
//! 0..=max_bucket, each bucket's page chain via `next_pgno`, items in index
//! order.
//!
//! Hash metadata (`HMETA`): max_bucket at 72, flags at 48, `spares[32]` at
//! 96. Bucket `b` lives on page `b + spares[ceil_log2(b + 1)]`.
//! Hash pages hold alternating key and data items, laid out from the end of
//! the page downwards, so item `i` ends where item `i - 1` starts (the first
//! ends at the page end). Each item starts with a type byte:
//! `H_KEYDATA` (bytes follow), `H_DUPLICATE` (repeated u16 len, bytes, u16
//! len), `H_OFFPAGE` (3 pad bytes, u32 pgno, u32 tlen: overflow chain) and
//! `H_OFFDUP` (3 pad bytes, u32 pgno: off-page duplicate tree).

use super::btree::dup_tree;
use super::page::{Db, P_HASH, P_HASH_UNSORTED, P_INVALID, Page, Visited, corrupt, u32_at};
use super::{BdbError, Sink};

const H_KEYDATA: u8 = 1;
const H_DUPLICATE: u8 = 2;
const H_OFFPAGE: u8 = 3;
const H_OFFDUP: u8 = 4;
const H_BLOB: u8 = 5;

/// `DB_HASH_SUBDB` in the hash metadata flags.
const DB_HASH_SUBDB: u32 = 0x02;
const NCACHED: u32 = 32;

/// Smallest `i` with `2^i >= n` (`__db_log2`).
fn ceil_log2(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

pub(crate) fn walk(db: &Db, meta: &[u8], sink: &mut Sink) -> Result<(), BdbError> {
    let order = db.order;
    let flags = u32_at(meta, 48, order).unwrap_or(0);
    if flags & DB_HASH_SUBDB != 0 {
        return Err(BdbError::Unsupported("database with sub-databases"));
    }
    let max_bucket = u32_at(meta, 72, order).unwrap_or(0);
    // Every bucket owns at least one page, so this also bounds the loop.
    if max_bucket >= db.npages {
        return Err(corrupt(
            0,
            format!(
                "max_bucket {max_bucket} but the file has only {} pages",
                db.npages
            ),
        ));
    }
    let mut visited = Visited::new(db.npages);
    for bucket in 0..=max_bucket {
        let spare_idx = ceil_log2(bucket + 1);
        if spare_idx >= NCACHED {
            return Err(corrupt(0, format!("bucket {bucket} out of spares range")));
        }
        let spare = u32_at(meta, 96 + 4 * spare_idx as usize, order).unwrap_or(0);
        let pgno = bucket
            .checked_add(spare)
            .ok_or_else(|| corrupt(0, format!("bucket {bucket} page number overflows")))?;
        bucket_chain(db, bucket, pgno, &mut visited, sink)?;
    }
    Ok(())
}

fn bucket_chain(
    db: &Db,
    bucket: u32,
    first: u32,
    visited: &mut Visited,
    sink: &mut Sink,
) -> Result<(), BdbError> {
    let mut cur = first;
    loop {
        visited.mark(cur)?;
        let page = db.page(cur)?;
        match page.ptype() {
            P_HASH | P_HASH_UNSORTED => {}
            // A never-written bucket page reads back as zeros: empty bucket.
            P_INVALID if cur == first && page.self_pgno() == 0 && page.entries() == 0 => {
                return Ok(());
            }
            t => {
                return Err(corrupt(
                    cur,
                    format!("bucket {bucket}: expected a hash page, found page type {t}"),
                ));
            }
        }
        if page.self_pgno() != cur {
            return Err(corrupt(
                cur,
                format!("page header claims to be page {}", page.self_pgno()),
            ));
        }
        page_pairs(db, &page, visited, sink)?;
        cur = page.next();
        if cur == 0 {
            return Ok(());
        }
    }
}

/// Start offset and end offset (exclusive) of item `i`, including its type byte.
fn item_span(page: &Page, i: usize) -> Result<(usize, usize), BdbError> {
    let start = page.inp(i)?;
    let end = if i == 0 {
        page.data.len()
    } else {
        page.inp(i - 1)?
    };
    if end <= start {
        return Err(corrupt(
            page.pgno,
            format!("item {i} at offset {start} has no room before offset {end}"),
        ));
    }
    Ok((start, end))
}

fn page_pairs(
    db: &Db,
    page: &Page,
    visited: &mut Visited,
    sink: &mut Sink,
) -> Result<(), BdbError> {
    let n = usize::from(page.entries());
    if n % 2 != 0 {
        return Err(corrupt(
            page.pgno,
            format!("odd item count {n} on a hash page"),
        ));
    }
    for i in (0..n).step_by(2) {
        let key = match item(db, page, i, sink)? {
            Item::Value(k) => k,
            _ => {
                return Err(corrupt(
                    page.pgno,
                    format!("item {i}: duplicate set in a key position"),
                ));
            }
        };
        match item(db, page, i + 1, sink)? {
            Item::Value(v) => sink.push(key, v)?,
            Item::Dups(start, end) => on_page_dups(page, start, end, &key, sink)?,
            Item::OffDup(root) => dup_tree(db, root, &key, visited, sink)?,
        }
    }
    Ok(())
}

enum Item {
    /// A plain or overflow value.
    Value(Vec<u8>),
    /// `H_DUPLICATE`: byte range of the packed duplicate set.
    Dups(usize, usize),
    /// `H_OFFDUP`: root page of an off-page duplicate tree.
    OffDup(u32),
}

fn item(db: &Db, page: &Page, i: usize, sink: &Sink) -> Result<Item, BdbError> {
    let (start, end) = item_span(page, i)?;
    let t = page.data[start];
    match t {
        H_KEYDATA => Ok(Item::Value(page.data[start + 1..end].to_vec())),
        H_DUPLICATE => Ok(Item::Dups(start + 1, end)),
        H_OFFPAGE => {
            let pgno = page.item_u32(start + 4, "overflow reference")?;
            let tlen = page.item_u32(start + 8, "overflow length")?;
            Ok(Item::Value(db.overflow(
                page.pgno,
                pgno,
                tlen,
                &sink.budget,
            )?))
        }
        H_OFFDUP => Ok(Item::OffDup(
            page.item_u32(start + 4, "duplicate reference")?,
        )),
        H_BLOB => Err(BdbError::Unsupported("external (blob) items")),
        _ => Err(corrupt(page.pgno, format!("item {i} has unknown type {t}"))),
    }
}

/// Emit each value of an on-page duplicate set: repeated
/// `u16 len, len bytes, u16 len` (the trailing copy lets DB walk backwards).
fn on_page_dups(
    page: &Page,
    start: usize,
    end: usize,
    key: &[u8],
    sink: &mut Sink,
) -> Result<(), BdbError> {
    let mut pos = start;
    while pos < end {
        let len = usize::from(page.item_u16(pos, "duplicate length")?);
        let data_end = pos + 2 + len;
        if data_end + 2 > end {
            return Err(corrupt(
                page.pgno,
                format!("duplicate of length {len} at offset {pos} overruns its item"),
            ));
        }
        if usize::from(page.item_u16(data_end, "duplicate length")?) != len {
            return Err(corrupt(
                page.pgno,
                format!("duplicate at offset {pos}: leading and trailing lengths differ"),
            ));
        }
        sink.push(key.to_vec(), page.data[pos + 2..data_end].to_vec())?;
        pos = data_end + 2;
    }
    Ok(())
}
