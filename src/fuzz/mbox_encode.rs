//! The `mbox_encode` target: `mailbox::encode` (the mbox and Maildir encodings).
//!
//! Input layout (the files of `fuzz/corpus/mbox_encode/`): an
//! 8-byte header `[flags, offset, prepend_len, sender_len, t0, t1, t2, t3]`, then the sender
//! (`sender_len` bytes, lossy UTF-8; flags bit 0 = null sender instead), the prepended headers
//! (`prepend_len` bytes) and the message. `offset` is an i8 times 900 seconds of UTC offset;
//! `t0..t3` are the arrival time (u32 LE, unix seconds). Missing bytes read as 0.
//!
//! Invariants: the entry is one From_ line (7 fields, one newline) followed by lines none of
//! which starts with `From `, ends with a blank line, so an mbox reader finds exactly one
//! message; line for line it is the input with CRLF → LF and a `>` before each `From ` line
//! (mboxo), so un-quoting gives back the un-quoted input; the length helper agrees; the
//! Maildir encoding is the same without quoting.

use std::time::{Duration, UNIX_EPOCH};

use crate::mailbox::LocalMessage;
use crate::mailbox::encode::{LineEncoder, mbox_entry, mbox_entry_len, write_maildir_message};

/// CRLF → LF per line and a final newline, the way readers see each part (reference version).
fn lines_of(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let line = if rest.len() > line.len() && line.ends_with(b"\r") {
            &line[..line.len() - 1]
        } else {
            line
        };
        out.push(line.to_vec());
        rest = next;
    }
    out
}

fn unquote(line: &[u8]) -> &[u8] {
    if line.starts_with(b">From ") {
        &line[1..]
    } else {
        line
    }
}

/// The target's invariants (see the module docs for the input layout).
pub fn invariants(data: &[u8]) {
    let h = |i: usize| data.get(i).copied().unwrap_or(0);
    let rest = data.get(8..).unwrap_or(&[]);
    let slen = usize::from(h(3)).min(rest.len());
    let (sender_bytes, rest) = rest.split_at(slen);
    let plen = usize::from(h(2)).min(rest.len());
    let (prepend, body) = rest.split_at(plen);
    let sender = if h(0) & 1 == 1 {
        String::new()
    } else {
        String::from_utf8_lossy(sender_bytes).into_owned()
    };
    let offset = i32::from(h(1) as i8) * 900;
    let arrival =
        UNIX_EPOCH + Duration::from_secs(u64::from(u32::from_le_bytes([h(4), h(5), h(6), h(7)])));
    let msg = LocalMessage {
        envelope_sender: &sender,
        arrival,
        data: body.into(),
        prepend,
    };
    let entry = mbox_entry(&msg, offset);
    assert_eq!(mbox_entry_len(&msg, offset).ok(), Some(entry.len() as u64));
    check_entry(&msg, &entry);
    // The streaming encoder gives the same lines wherever the message is split.
    let split = usize::from(h(2)) * body.len() / 255;
    let mut whole = Vec::new();
    let mut e = LineEncoder::new(&mut whole, true);
    let _ = e.feed(body);
    let _ = e.finish();
    let mut pieces = Vec::new();
    let mut e = LineEncoder::new(&mut pieces, true);
    let _ = e.feed(&body[..split]);
    let _ = e.feed(&body[split..]);
    let _ = e.finish();
    assert_eq!(whole, pieces, "split at {split}");
}

/// The invariants of one mbox entry for `msg` (and of its Maildir encoding).
pub(crate) fn check_entry(msg: &LocalMessage<'_>, entry: &[u8]) {
    let prepend = msg.prepend;
    let body = msg.data.as_bytes().expect("fuzzed messages are in memory");
    let first_nl = entry
        .iter()
        .position(|&b| b == b'\n')
        .expect("From_ line ends");
    let from = std::str::from_utf8(&entry[..first_nl]).expect("From_ line is UTF-8");
    assert!(from.starts_with("From "), "{from:?}");
    assert_eq!(from.split_whitespace().count(), 7, "{from:?}");
    assert!(entry.ends_with(b"\n\n"));
    let after = &entry[first_nl + 1..];
    assert!(!after.starts_with(b"From ") && !after.windows(6).any(|w| w == b"\nFrom "));

    let got: Vec<&[u8]> = after[..after.len() - 1].split(|&b| b == b'\n').collect();
    let got = &got[..got.len() - 1];
    let mut want = lines_of(prepend);
    want.extend(lines_of(body));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        if w.starts_with(b"From ") {
            assert_eq!(&g[1..], &w[..]);
            assert_eq!(g[0], b'>');
        } else {
            assert_eq!(*g, &w[..]);
        }
        assert_eq!(unquote(g), unquote(w));
    }

    let mut md = Vec::new();
    let n = write_maildir_message(&mut md, msg).unwrap();
    assert_eq!(n, md.len() as u64);
    let mut joined = Vec::new();
    for w in &want {
        joined.extend_from_slice(w);
        joined.push(b'\n');
    }
    assert_eq!(md, joined);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// Fragments at the encoder's decision points: line ends, `From ` and its near misses.
    const TOKENS: &[&[u8]] = &[
        b"\n",
        b"\r\n",
        b"\r",
        b"From ",
        b"\nFrom ",
        b">From ",
        b"From",
        b"from ",
        b" From ",
        b"\n\n",
        b"\0",
        b" ",
        b"\t",
        b"\xc3\xa9",
        b"\xe2\x80\xa8",
        b"\xff",
    ];

    /// The corpus and deterministic mutations of it; the 8-byte header is mutated now and then.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan {
            iterations: 4_000,
            keep: 8,
            tokens: TOKENS,
            min_files: 10,
            ..Plan::new("mbox_encode")
        }
        .run(invariants);
    }

    /// The checks reject wrong encodings, so the replay cannot pass vacuously.
    #[test]
    fn check_rejects_broken_entries() {
        let msg = LocalMessage {
            envelope_sender: "a@b",
            arrival: UNIX_EPOCH,
            data: b"x\nFrom y\r\nz".into(),
            prepend: b"",
        };
        let good = mbox_entry(&msg, 0);
        check_entry(&msg, &good);
        let text = String::from_utf8(good).unwrap();
        let broken = [
            text.replace(">From y", "From y"), // unquoted: a second message
            text.replace("\nz\n\n", "\nz\n"),  // no blank separator
            text.replace("From y\n", "From y\r\n"), // CRLF kept
            text.replace("\nx\n", "\n>x\n"),   // quoted a line that needs none
            text.replace(" 1970\n", " 1970 extra\n"), // From_ line with a stray field
        ];
        for b in broken {
            assert_ne!(b, text);
            let r = catch_unwind(AssertUnwindSafe(|| check_entry(&msg, b.as_bytes())));
            assert!(r.is_err(), "accepted {b:?}");
        }
    }
}
