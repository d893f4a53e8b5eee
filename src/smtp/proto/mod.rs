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
