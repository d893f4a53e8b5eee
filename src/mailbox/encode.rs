//! The mbox encoding, pure: what mail.local appends for one message.
//!
//! ```text
//! From sender Sat Nov 28 10:00:00 2026     <- From_ line, asctime(3) date in local time
//! Return-Path: <sender>                    <- LocalMessage::prepend
//! ...message, "From " lines as ">From "...
//!                                          <- one blank line separates messages
//! ```
//!
//! Quoting is mboxo (only lines that begin with `From ` get a `>`), as mail.local and qpopper
//! write it; readers (mutt, mailx, Python's `mailbox.mbox`) do not unquote. CRLF line ends
//! become LF, a lone CR stays, and a missing final newline is added.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Data, LocalMessage};

/// The sender shown for the null sender, as sendmail and mail.local show it.
pub const NULL_SENDER: &str = "MAILER-DAEMON";

/// `From sender Sat Nov 28 10:00:00 2026\n`. `utc_offset` (seconds east of UTC) turns `when`
/// into local time, as ctime(3) would; [`local_utc_offset`] gives the system's.
///
/// Whitespace and control characters in the sender become `_`: a From_ line is split on
/// spaces by every reader, and a line break would forge a message boundary.
pub fn from_line(sender: &str, when: SystemTime, utc_offset: i32) -> String {
    let sender: String = if sender.is_empty() {
        NULL_SENDER.to_string()
    } else {
        sender
            .chars()
            .map(|c| {
                if c.is_whitespace() || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    format!("From {sender} {}\n", asctime(when, utc_offset))
}

/// asctime(3) without the newline: `Sat Nov 28 10:00:00 2026`, `Sun Nov  1 09:05:03 2026`.
pub fn asctime(when: SystemTime, utc_offset: i32) -> String {
    crate::dates::asctime(crate::dates::unix_secs(when) + i64::from(utc_offset))
}

/// The system's offset from UTC at `when` (seconds east), from localtime_r(3).
pub fn local_utc_offset(when: SystemTime) -> i32 {
    let t = when
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    i32::try_from(crate::sys::time::local_utc_offset(t)).unwrap_or(0)
}

/// The line rewriting of the mbox and Maildir writers, fed in pieces of any size: CRLF turned
/// into LF (a lone CR stays); with `quote`, lines that begin with `From ` get a `>`; a final
/// line without a newline gets one. The result does not depend on where the pieces split.
pub struct LineEncoder<'w, W: Write> {
    out: &'w mut W,
    quote: bool,
    /// The start of the current line, held back while it could still be `From `.
    held: Vec<u8>,
    /// At the start of a line (where quoting is decided).
    at_start: bool,
    /// The current line has content that still needs its newline.
    in_line: bool,
    /// A CR was read: dropped if an LF follows, else written.
    cr: bool,
    written: u64,
}

impl<'w, W: Write> LineEncoder<'w, W> {
    pub fn new(out: &'w mut W, quote: bool) -> Self {
        LineEncoder {
            out,
            quote,
            held: Vec::with_capacity(5),
            at_start: true,
            in_line: false,
            cr: false,
            written: 0,
        }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.written += b.len() as u64;
        self.out.write_all(b)
    }

    /// Writes the held line start, quoted if it is `From `.
    fn resolve(&mut self) -> io::Result<()> {
        self.at_start = false;
        if self.held.as_slice() == b"From " {
            self.put(b">")?;
        }
        let held = std::mem::take(&mut self.held);
        self.put(&held)?;
        self.held = held;
        self.held.clear();
        Ok(())
    }

    pub fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while let Some(&b) = data.first() {
            if self.quote && self.at_start {
                let candidate = self.held.len() < 5 && b"From "[self.held.len()] == b;
                if !candidate {
                    self.resolve()?;
                    continue;
                }
                self.held.push(b);
                self.in_line = true;
                data = &data[1..];
                if self.held.len() == 5 {
                    self.resolve()?;
                }
                continue;
            }
            if self.cr {
                self.cr = false;
                if b != b'\n' {
                    self.put(b"\r")?;
                }
            }
            let Some(pos) = data.iter().position(|&c| c == b'\r' || c == b'\n') else {
                self.put(data)?;
                self.in_line = true;
                self.at_start = false;
                return Ok(());
            };
            let run = &data[..pos];
            if !run.is_empty() {
                self.put(run)?;
                self.in_line = true;
                self.at_start = false;
            }
            if data[pos] == b'\n' {
                self.put(b"\n")?;
                self.in_line = false;
                self.at_start = true;
            } else {
                self.cr = true;
                self.in_line = true;
                self.at_start = false;
            }
            data = &data[pos + 1..];
        }
        Ok(())
    }

    /// Ends the text; returns the bytes written in all.
    pub fn finish(mut self) -> io::Result<u64> {
        if !self.held.is_empty() {
            self.resolve()?;
        }
        if self.cr {
            self.put(b"\r")?;
        }
        if self.in_line {
            self.put(b"\n")?;
        }
        Ok(self.written)
    }
}

/// Writes `text` through a [`LineEncoder`]. Returns the bytes written.
fn write_lines(out: &mut impl Write, text: &[u8], quote: bool) -> io::Result<u64> {
    let mut e = LineEncoder::new(out, quote);
    e.feed(text)?;
    e.finish()
}

/// Writes the message data through a [`LineEncoder`], a chunk at a time.
fn write_content(out: &mut impl Write, data: Data<'_>, quote: bool) -> io::Result<u64> {
    let mut e = LineEncoder::new(out, quote);
    data.for_each_chunk(|c| e.feed(c))?;
    e.finish()
}

/// Writes the whole mbox entry for `msg`: From_ line, prepended headers, quoted message, blank
/// separator line. Returns the bytes written.
pub fn write_mbox_entry(
    out: &mut impl Write,
    msg: &LocalMessage<'_>,
    utc_offset: i32,
) -> io::Result<u64> {
    let from = from_line(msg.envelope_sender, msg.arrival, utc_offset);
    out.write_all(from.as_bytes())?;
    let mut n = from.len() as u64;
    n += write_lines(out, msg.prepend, true)?;
    n += write_content(out, msg.data, true)?;
    out.write_all(b"\n")?;
    Ok(n + 1)
}

/// The mbox entry for `msg` as bytes (for tests, fuzzing and small messages).
pub fn mbox_entry(msg: &LocalMessage<'_>, utc_offset: i32) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg.data.len() as usize + msg.prepend.len() + 128);
    // Writing into a Vec cannot fail.
    let _ = write_mbox_entry(&mut v, msg, utc_offset);
    v
}

/// Size of the mbox entry without building it (for the quota check before locking).
pub fn mbox_entry_len(msg: &LocalMessage<'_>, utc_offset: i32) -> io::Result<u64> {
    write_mbox_entry(&mut io::sink(), msg, utc_offset)
}

/// Writes a Maildir message file: prepended headers then the message, CRLF turned into LF and
/// a missing final newline added, no quoting and no From_ line. Returns the bytes written.
pub fn write_maildir_message(out: &mut impl Write, msg: &LocalMessage<'_>) -> io::Result<u64> {
    Ok(write_lines(out, msg.prepend, false)? + write_content(out, msg.data, false)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Sat Nov 28 10:00:00 2026 UTC.
    fn t() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_860_000)
    }

    fn msg<'a>(sender: &'a str, data: &'a [u8], prepend: &'a [u8]) -> LocalMessage<'a> {
        LocalMessage {
            envelope_sender: sender,
            arrival: t(),
            data: data.into(),
            prepend,
        }
    }

    /// The slice-at-once line rewriting the encoder replaced: the oracle for split points.
    fn reference_lines(text: &[u8], quote: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for line in text.split_inclusive(|&b| b == b'\n') {
            if quote && line.starts_with(b"From ") {
                out.push(b'>');
            }
            let body = line
                .strip_suffix(b"\r\n")
                .or_else(|| line.strip_suffix(b"\n"))
                .unwrap_or(line);
            out.extend_from_slice(body);
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn encoder_is_independent_of_split_points() {
        let samples: &[&[u8]] = &[
            b"From a\r\nFrom\r\nFro\nFrom \n>From x\r\r\nx\r",
            b"\r\n\r\rFrom From \nFrom",
            b"F\nFr\nFro\nFrom\nFrom \n",
            b"",
            b"\r",
            b"From ",
            b"no newline at all",
        ];
        for text in samples {
            for quote in [true, false] {
                let want = reference_lines(text, quote);
                for step in 1..=text.len().max(1) {
                    let mut out = Vec::new();
                    let mut e = LineEncoder::new(&mut out, quote);
                    for c in text.chunks(step) {
                        e.feed(c).unwrap();
                    }
                    let n = e.finish().unwrap();
                    assert_eq!(out, want, "{text:?} quote {quote} step {step}");
                    assert_eq!(n, want.len() as u64);
                }
            }
        }
        // Every short string over the interesting alphabet, split at every point.
        let alphabet = b"From \r\nx";
        let mut text = Vec::new();
        for code in 0..(alphabet.len() as u32).pow(5) {
            text.clear();
            let mut c = code;
            for _ in 0..5 {
                text.push(alphabet[(c % alphabet.len() as u32) as usize]);
                c /= alphabet.len() as u32;
            }
            let want = reference_lines(&text, true);
            for split in 0..=text.len() {
                let mut out = Vec::new();
                let mut e = LineEncoder::new(&mut out, true);
                e.feed(&text[..split]).unwrap();
                e.feed(&text[split..]).unwrap();
                e.finish().unwrap();
                assert_eq!(out, want, "{text:?} split {split}");
            }
        }
    }

    #[test]
    fn from_line_format() {
        assert_eq!(
            from_line("joe@example.org", t(), 0),
            "From joe@example.org Sat Nov 28 10:00:00 2026\n"
        );
        // One day earlier and 2 hours west: day padded with a space like asctime.
        let early = UNIX_EPOCH + Duration::from_secs(1_793_523_903);
        assert_eq!(asctime(early, 0), "Sun Nov  1 09:05:03 2026");
        assert_eq!(asctime(t(), -7200), "Sat Nov 28 08:00:00 2026");
        assert_eq!(asctime(UNIX_EPOCH, 0), "Thu Jan  1 00:00:00 1970");
    }

    #[test]
    fn null_sender_and_odd_senders() {
        assert!(from_line("", t(), 0).starts_with("From MAILER-DAEMON Sat "));
        assert!(from_line("a b\nFrom x", t(), 0).starts_with("From a_b_From_x Sat "));
    }

    #[test]
    fn quoting() {
        let data = b"Subject: x\n\nFrom here\n>From there\nFrom\nFromage\n From a\nFrom ";
        let out = mbox_entry(&msg("s@x", data, b""), 0);
        let want = "From s@x Sat Nov 28 10:00:00 2026\nSubject: x\n\n>From here\n>From there\n\
                    From\nFromage\n From a\n>From \n\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn missing_final_newline_and_crlf() {
        let out = mbox_entry(&msg("s@x", b"A: b\r\n\r\nbody\r\nlast", b""), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From s@x Sat Nov 28 10:00:00 2026\nA: b\n\nbody\nlast\n\n"
        );
        // A lone CR is kept; CR CR LF loses only the CR before the LF.
        let out = mbox_entry(&msg("s@x", b"a\rb\r\r\n", b""), 0);
        assert!(out.ends_with(b"\na\rb\r\n\n"));
    }

    #[test]
    fn prepend_comes_first_and_gets_a_newline() {
        let out = mbox_entry(&msg("", b"Subject: s\n\nhi\n", b"Return-Path: <>"), 0);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From MAILER-DAEMON Sat Nov 28 10:00:00 2026\nReturn-Path: <>\nSubject: s\n\nhi\n\n"
        );
    }

    #[test]
    fn empty_message_and_lengths() {
        let m = msg("s@x", b"", b"");
        assert_eq!(
            mbox_entry(&m, 0),
            b"From s@x Sat Nov 28 10:00:00 2026\n\n".to_vec()
        );
        let m = msg("s@x", b"From a\r\nb", b"X: y\n");
        assert_eq!(
            mbox_entry_len(&m, 3600).unwrap(),
            mbox_entry(&m, 3600).len() as u64
        );
    }

    #[test]
    fn maildir_is_not_quoted() {
        let mut v = Vec::new();
        let n = write_maildir_message(
            &mut v,
            &msg("s@x", b"S: x\r\n\r\nFrom me\r\n", b"R: <s@x>\n"),
        )
        .unwrap();
        assert_eq!(v, b"R: <s@x>\nS: x\n\nFrom me\n");
        assert_eq!(n, v.len() as u64);
    }

    #[test]
    fn local_offset_is_sane() {
        let off = local_utc_offset(t());
        assert!((-14 * 3600..=14 * 3600).contains(&off));
    }
}
