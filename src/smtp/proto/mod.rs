//! The pure SMTP codec: bytes in, events out. No sockets, no async, no policy.
//!
//! Four pieces, each usable on its own:
//!
//! * [`LineReader`] frames command lines (RFC 5321 §2.3.8, §4.1.1, §4.5.3.1.4).
//! * [`parse_command`] turns one line into a [`Command`], with sendmail's
//!   syntax-error texts (docs/sendmail-compat.md §6.5).
//! * [`Reply`] writes replies, with builders for sendmail's fixed texts.
//! * [`DataReader`] reads the DATA stream: dot-unstuffing (RFC 5321 §4.5.2),
//!   and **only `CRLF . CRLF` ends the message** (SMTP smuggling,
//!   CVE-2023-51764/51765/51766; docs/security.md §3).
//!
//! # Line endings: the decisions
//!
//! RFC 5321 §2.3.8 forbids a bare CR or bare LF from the client, and
//! §4.1.1.4 forbids treating `<LF>.<LF>` as the end of data. Servers differ in
//! what they do instead; this module picks, per mode:
//!
//! **Command mode** (sendmail 8.18 / Postfix `smtpd_forbid_bare_newline=reject`
//! style): a command line must end in CRLF and contain no other CR.
//! [`LineReader`] frames on LF (so an LF-only client gets an immediate error
//! instead of hanging until the command timeout) and reports
//! [`LineEvent::BareLf`] for a line ended by a lone LF and [`LineEvent::BareCr`]
//! for a CRLF-ended line that contains a CR elsewhere. The line's content is
//! not returned: the server must not execute it. Suggested reply:
//! [`Reply::bare_lf`] / [`Reply::bare_cr`] (Postfix's texts) and, like Postfix
//! and sendmail 8.18, closing the connection. Command mode is not where
//! smuggling happens (the relay in front of us wrote those commands itself),
//! so the point here is strictness, not safety.
//!
//! **DATA mode** (Postfix `normalize` style, the 3.9 default): a message
//! containing bare CR/LF is accepted, but
//!
//! * only a real `CRLF . CRLF` ends it (the `.` must be at the very start of
//!   the data or right after a CRLF);
//! * a bare LF is stored as CRLF, so that every consumer of the stored message
//!   (our outbound SMTP client dot-stuffs lines, mbox writes lines) sees a
//!   normal line and handles a leading `.` correctly — no bare LF ever leaves
//!   this server, so we cannot be the *outbound* half of a smuggling pair;
//! * a bare CR (a CR not followed by LF) is stored as a **space**, like
//!   sendmail 8.18 `srv_features` `u2` and Postfix `cleanup_replace_stray_cr_lf`.
//!   Unlike LF-only line ends (a common bug of Unix scripts, where the sender
//!   clearly meant "new line"), a lone CR has no legitimate meaning today, and
//!   a space can neither start a line nor form an end marker;
//! * **line-start status only follows a real CRLF.** This governs both end
//!   detection and dot-unstuffing. A `.` after a bare LF is therefore plain
//!   content and is *not* unstuffed: `x\n.\nmail FROM:…` is stored as
//!   `x\r\n.\r\nmail FROM:…`. That stored "." line is harmless because every
//!   writer of stored mail stuffs lines beginning with "." again. Treating the
//!   bare-LF line as a line start for unstuffing but not for ending (Postfix's
//!   choice) would make the two rules disagree, and a disagreement between two
//!   parsers of the same bytes is exactly what smuggling exploits.
//! * NUL and other octets are kept as they are (8BITMIME/binary content is the
//!   business of later stages).
//!
//! [`DataState::Done`] reports whether a bare CR or LF was seen, so a
//! `reject`-style server can still refuse the message after its end.
//!
//! # Non-UTF-8 in commands
//!
//! Arguments are returned as `String`. Valid UTF-8 (which SMTPUTF8, RFC 6531,
//! allows in addresses) passes through unchanged; whether it is acceptable is
//! the address parser's and the server's decision (SMTPUTF8 given or not).
//! Arguments of a known verb that are not UTF-8, or contain NUL, can never be
//! valid, so they become [`SyntaxError::InvalidCharacters`]
//! (`501 5.5.2 Invalid characters in parameters`) instead of being passed on
//! lossily. An unknown verb keeps the whole line, lossily decoded, only to be
//! echoed (sanitized) in `500 5.5.1 Command unrecognized: "…"`.
//!
//! # How a server drives this (pipelining, DATA, STARTTLS)
//!
//! ```text
//! loop {
//!     let n = socket.read(&mut buf)?;           // bounded read, e.g. 4 KiB
//!     lines.feed(&buf[..n]);
//!     loop {
//!         if let Some(data) = &mut data_reader { // in DATA
//!             let (used, st) = data.feed(lines.buffered_bytes());
//!             lines.consume(used);
//!             if st == DataState::NeedMore { break }
//!             // end of data: reply 250/552; bytes left in `lines` are
//!             // commands pipelined after the end (RFC 2920).
//!         }
//!         match lines.next_line() { None => break, Some(ev) => … }
//!     }
//! }
//! ```
//!
//! After replying `220 2.0.0 Ready to start TLS`, call
//! [`LineReader::discard_buffered`]: plaintext sent after `STARTTLS` must never
//! be executed inside TLS (CVE-2011-0411; RFC 3207 §4.2). [`LineReader::buffered`]
//! also tells the server whether the client talked before the greeting
//! (greet_pause, docs/sendmail-compat.md §6.5) or pipelined without PIPELINING.
//!
//! Memory: the reader holds the bytes fed and not yet taken; a line being
//! accumulated is capped at 512 octets (excess is dropped as soon as
//! [`LineReader::next_line`] sees it), so a server that drains the reader after
//! every bounded read holds O(read size + 512) bytes. [`DataReader`] never
//! stores more than `max_size` bytes (when `max_size > 0`).

use std::net::IpAddr;

mod command;
mod data;
mod received;
mod reply;

pub use crate::wire::lines::{LineEvent, LineReader};
pub use command::{Command, SyntaxError, parse_command};
pub use data::{DataReader, DataState};
pub use received::{count_hops, received_header};
pub use reply::{EhloCaps, Reply, sanitize, shorten};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets including CRLF.
pub const MAX_REPLY_LINE: usize = 512;
/// sendmail's `MAXSHORTSTR`: client text echoed in replies is shortened to
/// this many characters (`first 100...last 100`), which keeps every reply
/// line below [`MAX_REPLY_LINE`].
pub const MAX_SHORT_STR: usize = 203;

// ---------------------------------------------------------------------------
// Fuzzing invariants (shared by the cargo-fuzz target and the replay test)
// ---------------------------------------------------------------------------

/// What a simulated session produced; used to compare chunkings.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Line(LineEvent),
    Command(Command),
    Message(Vec<u8>, DataState),
}

/// Where the real end of data is (index just past `.CRLF`), by the plain
/// definition: `.\r\n` at offset 0 or right after `\r\n`. Independent of
/// [`DataReader`]'s state machine, for cross-checking.
#[doc(hidden)]
pub fn reference_data_end(input: &[u8]) -> Option<usize> {
    (0..input.len()).find_map(|i| {
        let at_line_start = i == 0 || (i >= 2 && &input[i - 2..i] == b"\r\n");
        (at_line_start && input[i..].starts_with(b".\r\n")).then_some(i + 3)
    })
}

#[doc(hidden)]
pub fn simulate_session<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    max: u64,
) -> Vec<SessionEvent> {
    let mut lines = LineReader::new();
    let mut data: Option<DataReader> = None;
    let mut events = Vec::new();
    for chunk in chunks {
        lines.feed(chunk);
        loop {
            if let Some(d) = data.as_mut() {
                let avail = lines.buffered();
                let (used, st) = d.feed(lines.buffered_bytes());
                lines.consume(used);
                if st == DataState::NeedMore {
                    assert_eq!(used, avail, "DataReader must use all input before the end");
                    break;
                }
                events.push(SessionEvent::Message(d.take_message(), st));
                data = None;
            }
            match lines.next_line() {
                None => break,
                Some(LineEvent::Line(l)) => {
                    assert!(l.len() <= MAX_COMMAND_LINE - 2);
                    assert!(!l.contains(&b'\n') && !l.contains(&b'\r'));
                    let c = parse_command(&l);
                    if c == Command::Data {
                        data = Some(DataReader::new(max));
                    }
                    events.push(SessionEvent::Command(c));
                }
                Some(ev) => events.push(SessionEvent::Line(ev)),
            }
        }
    }
    events
}

fn check_reply(r: &Reply) {
    let bytes = r.to_bytes();
    assert!(bytes.ends_with(b"\r\n"));
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        assert!(line.len() <= MAX_REPLY_LINE, "reply line too long");
        assert!(line.ends_with(b"\r\n"));
        assert!(
            !line[..line.len() - 2].contains(&b'\r') && !line[..line.len() - 2].contains(&b'\n')
        );
    }
}

fn run_data(chunks: &[&[u8]], max: u64) -> (usize, DataState, Vec<u8>, u64) {
    let mut d = DataReader::new(max);
    let mut used = 0;
    for c in chunks {
        let (n, _) = d.feed(c);
        used += n;
        if n < c.len() {
            break;
        }
    }
    let st = d.state();
    (used, st, d.take_message(), d.size())
}

/// Panics if an invariant fails. The split point and the size limit are
/// derived from the input (FNV-1a) so plain SMTP transcripts work as seeds.
#[doc(hidden)]
pub fn fuzz_invariants(input: &[u8]) {
    let h = input.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let split = usize::try_from(h % (input.len() as u64 + 1)).unwrap_or(0);
    let max = [0, 0, 7, 64, 4096][usize::try_from((h >> 32) % 5).unwrap_or(0)];
    let (a, b) = input.split_at(split);

    // 1. The whole input as a DATA stream.
    let one = run_data(&[input], max);
    let two = run_data(&[a, b], max);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let each = run_data(&bytes, max);
    assert_eq!(one, two, "split feed differs");
    assert_eq!(one, each, "byte-by-byte feed differs");
    let (used, st, msg, size) = one;
    match reference_data_end(input) {
        Some(end) => {
            assert_eq!(used, end, "ended elsewhere than the first real CRLF.CRLF");
            assert!(matches!(st, DataState::Done { .. }));
        }
        None => {
            assert_eq!(used, input.len());
            assert_eq!(st, DataState::NeedMore);
        }
    }
    // Stored content is normalized: every CR is followed by LF and every LF
    // preceded by CR. (A message cut at the size limit may end inside a CRLF.)
    let checked = if max > 0 && size > max {
        msg.strip_suffix(b"\r").unwrap_or(&msg)
    } else {
        &msg[..]
    };
    for (i, &c) in checked.iter().enumerate() {
        if c == b'\r' {
            assert_eq!(checked.get(i + 1), Some(&b'\n'), "bare CR stored");
        }
        if c == b'\n' {
            assert!(i > 0 && msg[i - 1] == b'\r', "bare LF stored");
        }
    }
    if max > 0 {
        assert!(msg.len() as u64 <= max);
        if let DataState::Done { size_exceeded, .. } = st {
            assert_eq!(size_exceeded, size > max);
        }
    }
    if max == 0 || size <= max {
        assert_eq!(msg.len() as u64, size);
    }
    let _ = count_hops(&msg);

    // 2. The input as a session; chunking must not matter.
    let s_one = simulate_session([input], max);
    let s_two = simulate_session([a, b], max);
    let s_each = simulate_session(input.chunks(1), max);
    assert_eq!(s_one, s_two, "session differs with split feed");
    assert_eq!(s_one, s_each, "session differs byte-by-byte");
    for ev in &s_one {
        match ev {
            SessionEvent::Command(Command::Unknown(l)) => check_reply(&Reply::unrecognized(l)),
            SessionEvent::Command(Command::Syntax(e)) => check_reply(&Reply::syntax(e)),
            SessionEvent::Command(Command::Help(t)) => check_reply(&Reply::help(t.as_deref())),
            SessionEvent::Command(Command::Helo(h) | Command::Ehlo(h)) => {
                check_reply(&Reply::helo("mx.test", h));
                let r = received_header(
                    h,
                    Some(h),
                    IpAddr::from([127, 0, 0, 1]),
                    "mx",
                    "ESMTP",
                    "q",
                    Some(h),
                    "d",
                );
                assert_eq!(r.matches("\r\n").count(), 3);
                assert_eq!(r.matches('\n').count(), 3);
            }
            SessionEvent::Command(Command::Mail(a) | Command::Rcpt(a)) => {
                check_reply(&Reply::sender_ok(a));
            }
            _ => {}
        }
    }

    // 3. STARTTLS injection: whatever follows a STARTTLS line is dropped.
    let mut lr = LineReader::new();
    lr.feed(input);
    while let Some(ev) = lr.next_line() {
        if let LineEvent::Line(l) = ev
            && parse_command(&l) == Command::StartTls
        {
            lr.discard_buffered();
            assert_eq!(lr.buffered(), 0);
            assert_eq!(lr.next_line(), None);
            break;
        }
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    // Every split point gives the same result (pipelined TCP segments may
    // cut anywhere).
    #[test]
    fn all_split_points() {
        let inputs: [&[u8]; 3] = [
            b"TESTING\r\n\n.\r\nmail FROM:<s@x>\r\n..x\r\n\r\r\n.\r\r\n\r\n.\r\nNOOP\r\n",
            b"EHLO a\r\nMAIL FROM: <a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r.\r\n.\r\nRSET\nQUIT\r\n",
            b"\r\n.\x00\r\n.\r\n",
        ];
        for input in inputs {
            for max in [0, 5] {
                let whole = simulate_session([input], max);
                for k in 0..=input.len() {
                    let (a, b) = input.split_at(k);
                    assert_eq!(simulate_session([a, b], max), whole, "split at {k}");
                }
                assert_eq!(simulate_session(input.chunks(1), max), whole);
                fuzz_invariants(input);
            }
        }
    }
}
