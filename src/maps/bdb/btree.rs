//! Btree walking: the main tree (`P_IBTREE` internal pages, `P_LBTREE`
//! leaves holding key/data pairs) and off-page duplicate trees (`P_LDUP` or
//! `P_LRECNO` leaves holding data items only), which hash databases use too.
//!
//! Like a DB cursor, we descend to the leftmost leaf and then follow the
//! leaves' `next_pgno` links, which yields key order.
//!
//! Btree metadata (`BTMETA`): root page number at offset 88; flags at 48.
//! Leaf items (`BKEYDATA`): u16 len, u8 type (0x80 = deleted), data.
//! Overflow/duplicate references (`BOVERFLOW`): u16 pad, u8 type, u8 pad,
//! u32 pgno, u32 tlen. Internal items: `BINTERNAL` (u16 len, u8 type,
//! u8 pad, u32 pgno, ...) and `RINTERNAL` (u32 pgno, u32 nrecs).

use super::page::{
    Db, P_IBTREE, P_IRECNO, P_LBTREE, P_LDUP, P_LRECNO, Page, Visited, corrupt, u32_at,
};
use super::{BdbError, Sink};

const B_KEYDATA: u8 = 1;
const B_DUPLICATE: u8 = 2;
const B_OVERFLOW: u8 = 3;
const B_BLOB: u8 = 4;
const B_DELETE: u8 = 0x80;

/// Btree metadata flags we must refuse (`BTM_*`).
const BTM_RECNO: u32 = 0x02;
const BTM_SUBDB: u32 = 0x20;
const BTM_COMPRESS: u32 = 0x80;

pub(crate) fn walk(db: &Db, meta: &[u8], sink: &mut Sink) -> Result<(), BdbError> {
    let flags = u32_at(meta, 48, db.order).unwrap_or(0);
    if flags & BTM_RECNO != 0 {
        return Err(BdbError::Unsupported("recno database"));
    }
    if flags & BTM_SUBDB != 0 {
        return Err(BdbError::Unsupported("database with sub-databases"));
    }
    if flags & BTM_COMPRESS != 0 {
        return Err(BdbError::Unsupported("compressed btree"));
    }
    let root = u32_at(meta, 88, db.order).unwrap_or(0);
    if root == 0 {
        return Err(corrupt(0, "btree root page number is 0"));
    }
    // One visited set for the whole walk: every page belongs to exactly one
    // tree, so this also bounds total work by the page count.
    let mut visited = Visited::new(db.npages);
    let mut cur = descend(db, root, &mut visited, &[P_LBTREE])?;
    loop {
        visited.mark(cur)?;
        let page = leaf(db, cur, &[P_LBTREE])?;
        leaf_pairs(db, &page, &mut visited, sink)?;
        cur = page.next();
        if cur == 0 {
            return Ok(());
        }
    }
}

/// Follow leftmost children from `root` down to a leaf of one of
/// `leaf_types`; returns the leaf's page number (not yet marked visited).
fn descend(db: &Db, root: u32, visited: &mut Visited, leaf_types: &[u8]) -> Result<u32, BdbError> {
    let mut cur = root;
    loop {
        let page = db.page(cur)?;
        let t = page.ptype();
        if leaf_types.contains(&t) {
            return Ok(cur);
        }
        visited.mark(cur)?;
        check_self(&page)?;
        if page.entries() == 0 {
            return Err(corrupt(cur, "internal page has no entries"));
        }
        let off = page.inp(0)?;
        cur = match t {
            P_IBTREE => page.item_u32(off + 4, "internal item")?,
            P_IRECNO => page.item_u32(off, "recno internal item")?,
            _ => {
                return Err(corrupt(
                    cur,
                    format!("expected a btree page, found page type {t}"),
                ));
            }
        };
    }
}

/// Fetch a leaf page and check it is one of the expected types.
fn leaf<'a>(db: &Db<'a>, pgno: u32, types: &[u8]) -> Result<Page<'a>, BdbError> {
    let page = db.page(pgno)?;
    if !types.contains(&page.ptype()) {
        return Err(corrupt(
            pgno,
            format!(
                "expected a btree leaf page, found page type {}",
                page.ptype()
            ),
        ));
    }
    check_self(&page)?;
    Ok(page)
}

/// A page must carry its own number; anything else is a stray link.
fn check_self(page: &Page) -> Result<(), BdbError> {
    if page.self_pgno() != page.pgno {
        return Err(corrupt(
            page.pgno,
            format!("page header claims to be page {}", page.self_pgno()),
        ));
    }
    Ok(())
}

/// Item type byte (with the delete flag) of the item at `off`.
fn item_type(page: &Page, off: usize) -> Result<u8, BdbError> {
    Ok(page.slice(off + 2, 1, "item type")?[0])
}

/// Decode a `B_KEYDATA` or `B_OVERFLOW` item at `off`.
pub(crate) fn item(db: &Db, page: &Page, off: usize, sink: &Sink) -> Result<Vec<u8>, BdbError> {
    match item_type(page, off)? & !B_DELETE {
        B_KEYDATA => {
            let len = page.item_u16(off, "item length")?;
            Ok(page.slice(off + 3, usize::from(len), "item")?.to_vec())
        }
        B_OVERFLOW => {
            let pgno = page.item_u32(off + 4, "overflow reference")?;
            let tlen = page.item_u32(off + 8, "overflow length")?;
            db.overflow(page.pgno, pgno, tlen, &sink.budget)
        }
        B_BLOB => Err(BdbError::Unsupported("external (blob) items")),
        t => Err(corrupt(
            page.pgno,
            format!("unexpected item type {t} at offset {off}"),
        )),
    }
}

/// Emit every non-deleted key/data pair of a `P_LBTREE` leaf. On-page
/// duplicates are consecutive pairs whose key indexes share one key item.
fn leaf_pairs(
    db: &Db,
    page: &Page,
    visited: &mut Visited,
    sink: &mut Sink,
) -> Result<(), BdbError> {
    let n = usize::from(page.entries());
    if n % 2 != 0 {
        return Err(corrupt(page.pgno, format!("odd item count {n} on a leaf")));
    }
    for i in (0..n).step_by(2) {
        let data_off = page.inp(i + 1)?;
        let dtype = item_type(page, data_off)?;
        // A deleted pair is flagged on its data item (`IS_DELETED`).
        if dtype & B_DELETE != 0 {
            continue;
        }
        let key_off = page.inp(i)?;
        if item_type(page, key_off)? & !B_DELETE == B_DUPLICATE {
            return Err(corrupt(page.pgno, "duplicate reference in a key position"));
        }
        let key = item(db, page, key_off, sink)?;
        if dtype == B_DUPLICATE {
            let root = page.item_u32(data_off + 4, "duplicate reference")?;
            dup_tree(db, root, &key, visited, sink)?;
        } else {
            let value = item(db, page, data_off, sink)?;
            sink.push(key, value)?;
        }
    }
    Ok(())
}

/// Emit `key` with every value of the off-page duplicate tree at `root`
/// (sorted duplicates: btree of `P_LDUP`; unsorted: recno of `P_LRECNO`).
pub(crate) fn dup_tree(
    db: &Db,
    root: u32,
    key: &[u8],
    visited: &mut Visited,
    sink: &mut Sink,
) -> Result<(), BdbError> {
    const LEAVES: [u8; 2] = [P_LDUP, P_LRECNO];
    let mut cur = descend(db, root, visited, &LEAVES)?;
    loop {
        visited.mark(cur)?;
        let page = leaf(db, cur, &LEAVES)?;
        for i in 0..usize::from(page.entries()) {
            let off = page.inp(i)?;
            if item_type(&page, off)? & B_DELETE != 0 {
                continue;
            }
            let value = item(db, &page, off, sink)?;
            sink.push(key.to_vec(), value)?;
        }
        cur = page.next();
        if cur == 0 {
            return Ok(());
        }
    }
}
