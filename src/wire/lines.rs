//! Line framing for the text protocols: SMTP commands (strict: only CRLF ends a line, RFC 5321
//! §2.3.8) and POP3 commands (lenient: CRLF or a bare LF). The bytes after the last line stay
//! available raw, for SMTP's DATA reader and for discarding at STARTTLS/STLS. The line-ending
//! decisions are explained in `smtp::proto`'s module docs.

/// The strict framing's limit: RFC 5321 §4.5.3.1.4's 512 octets, line end included.
pub const STRICT_MAX: usize = 512;

/// One framed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// A well-formed line, without its CRLF.
    Line(Vec<u8>),
    /// The line was longer than the limit (512 octets including CRLF for SMTP). It has
    /// been discarded through its terminating LF. Reply `500 5.5.2 Line too long`.
    TooLong,
    /// The line ended in a lone LF (RFC 5321 §2.3.8). Content withheld.
    BareLf,
    /// The line ended in CRLF but contained another CR. Content withheld.
    BareCr,
}

/// Frames command lines out of a byte stream. See the module docs for the
/// line-ending rules.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf` (avoids shifting on every line).
    pos: usize,
    /// We are inside a too-long line and drop bytes until its LF.
    discarding: bool,
    /// The longest line, its line end included.
    max: usize,
    /// Any LF ends a line and a CR before it is dropped (POP3); otherwise only CRLF does
    /// (SMTP: [`LineEvent::BareLf`], [`LineEvent::BareCr`]).
    lenient: bool,
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader {
            buf: Vec::new(),
            pos: 0,
            discarding: false,
            max: STRICT_MAX,
            lenient: false,
        }
    }
}

impl LineReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// POP3's framing: lines of up to `max` octets with their line end, ended by CRLF or a
    /// bare LF; never [`LineEvent::BareLf`] or [`LineEvent::BareCr`].
    pub fn lenient(max: usize) -> Self {
        LineReader {
            max,
            lenient: true,
            ..Self::default()
        }
    }

    /// Append bytes received from the client. Framing happens lazily in
    /// [`next_line`](Self::next_line), so the raw bytes stay available for
    /// [`DataReader`](crate::smtp::proto::DataReader) and for [`discard_buffered`](Self::discard_buffered).
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line event, or `None` when more input is needed.
    pub fn next_line(&mut self) -> Option<LineEvent> {
        loop {
            let avail = &self.buf[self.pos..];
            if self.discarding {
                // Rest of a too-long line: drop through the next LF. Any LF
                // ends it (we frame on LF), and the event is reported once.
                return match avail.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        self.pos += i + 1;
                        self.discarding = false;
                        self.compact_if_empty();
                        Some(LineEvent::TooLong)
                    }
                    None => {
                        self.buf.clear();
                        self.pos = 0;
                        None
                    }
                };
            }
            // Only the first `max` octets can hold a legal terminator.
            let window = &avail[..avail.len().min(self.max)];
            match window.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line = &avail[..i];
                    let event = match line.split_last() {
                        Some((b'\r', content)) if self.lenient => LineEvent::Line(content.to_vec()),
                        _ if self.lenient => LineEvent::Line(line.to_vec()),
                        Some((b'\r', content)) if content.contains(&b'\r') => LineEvent::BareCr,
                        Some((b'\r', content)) => LineEvent::Line(content.to_vec()),
                        _ => LineEvent::BareLf,
                    };
                    self.pos += i + 1;
                    self.compact_if_empty();
                    return Some(event);
                }
                None if window.len() >= self.max => {
                    // `max` octets without LF: with its terminator the line
                    // would be longer. Drop what we have now so an endless
                    // line costs no memory.
                    self.pos += window.len();
                    self.discarding = true;
                }
                None => return None,
            }
        }
    }

    /// Bytes received and not yet returned as a line (including a partial
    /// line). Non-zero right after a command that must be the last of its
    /// group means the client pipelined (RFC 2920 §3.1); non-zero before the
    /// greeting means it talked first.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unconsumed raw bytes (for handing to [`DataReader::feed`](crate::smtp::proto::DataReader::feed)).
    pub fn buffered_bytes(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Mark `n` raw bytes as used (by [`DataReader`](crate::smtp::proto::DataReader)). Call only at a line
    /// boundary, i.e. right after a line event; it resets the too-long state.
    pub fn consume(&mut self, n: usize) {
        self.pos += n.min(self.buffered());
        self.discarding = false;
        self.compact_if_empty();
    }

    /// Throw away everything buffered and any partial line; returns how many
    /// bytes were dropped. Used after `220 Ready to start TLS` (RFC 3207 §4.2,
    /// CVE-2011-0411) and for pre-greeting traffic.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.buffered();
        self.buf.clear();
        self.pos = 0;
        self.discarding = false;
        n
    }

    /// Take the unconsumed raw bytes out of the reader.
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let out = self.buf[self.pos..].to_vec();
        self.discard_buffered();
        out
    }

    fn compact_if_empty(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn lines_of(input: &[u8]) -> Vec<LineEvent> {
        let mut r = LineReader::new();
        r.feed(input);
        std::iter::from_fn(|| r.next_line()).collect()
    }

    #[test]
    fn lenient_framing_takes_bare_lf_and_a_longer_limit() {
        let mut r = LineReader::lenient(20);
        r.feed(b"USER a\r\nPASS b\nNOOP x\ry\r\nST");
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"USER a".to_vec())));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"PASS b".to_vec())));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"NOOP x\ry".to_vec())));
        assert_eq!(r.next_line(), None);
        r.feed(b"AT\r\n");
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"STAT".to_vec())));
        // 18 octets and CRLF fit in 20; 19 do not.
        r.feed(&[b'x'; 18]);
        r.feed(b"\r\n");
        assert_eq!(r.next_line(), Some(LineEvent::Line(vec![b'x'; 18])));
        r.feed(&[b'x'; 300]);
        assert_eq!(r.next_line(), None);
        r.feed(b"yyy\r\nNOOP\r\n");
        assert_eq!(r.next_line(), Some(LineEvent::TooLong));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"NOOP".to_vec())));
        r.feed(b"QUIT\r\n");
        assert_eq!(r.discard_buffered(), 6);
        assert_eq!(r.next_line(), None);
    }
}
