//! The DATA stream: dot-unstuffing (RFC 5321 §4.5.2), normalization of bare CR/LF, and only
//! `CRLF . CRLF` ends the message. The decisions are in the module docs of `smtp::proto`.

/// Result of [`DataReader::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataState {
    NeedMore,
    /// The real `CRLF . CRLF` was read. `size_exceeded`: reply
    /// [`Reply::message_exceeds_fixed`]; the bare flags allow a
    /// `reject`-style policy.
    Done {
        size_exceeded: bool,
        bare_lf_seen: bool,
        bare_cr_seen: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DState {
    /// At the start of the data or right after a real CRLF.
    LineStart,
    /// Inside a line (also after a bare LF: line start only follows CRLF).
    Mid,
    /// A CR was read; CRLF or bare CR depends on the next byte.
    Cr,
    /// A `.` at line start was read.
    Dot,
    /// `.` CR at line start: LF next means the end.
    DotCr,
    Done,
}

/// Reads the DATA stream up to the real `CRLF . CRLF`. See the module docs.
#[derive(Debug)]
pub struct DataReader {
    max_size: u64,
    state: DState,
    message: Vec<u8>,
    size: u64,
    /// Bytes stored so far, including those already taken with [`DataReader::take_message`].
    stored: u64,
    bare_lf: bool,
    bare_cr: bool,
}

impl DataReader {
    /// `max_size`: the most octets stored (after unstuffing and
    /// normalization); 0 means unlimited. The reader holds only what was
    /// stored since the last [`DataReader::take_message`], so a caller that
    /// takes after every feed keeps memory bounded whatever the size.
    pub fn new(max_size: u64) -> Self {
        Self {
            max_size,
            state: DState::LineStart,
            message: Vec::new(),
            size: 0,
            stored: 0,
            bare_lf: false,
            bare_cr: false,
        }
    }

    /// Process input; returns how many bytes were used. Bytes after the end
    /// of data are not used: they are the next (pipelined) commands. After
    /// the end, further calls use nothing and return the same `Done`.
    pub fn feed(&mut self, input: &[u8]) -> (usize, DataState) {
        let mut i = 0;
        while i < input.len() && self.state != DState::Done {
            if self.state == DState::Mid {
                // Fast path: copy a run of ordinary bytes at once.
                let run = input[i..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    self.push(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            self.step(b);
        }
        (i, self.state())
    }

    fn step(&mut self, b: u8) {
        use DState::*;
        self.state = match (self.state, b) {
            (Done, _) => Done,
            (DotCr, b'\n') => Done,
            // `.` CR then anything else: the dot was stuffing (the line has
            // more characters) and the CR is bare.
            (DotCr, _) => {
                self.bare_cr_char();
                self.state = Mid;
                self.step(b);
                self.state
            }
            (Cr, _) => self.after_cr(b),
            // ".." -> "."; "." + other -> other (RFC 5321 §4.5.2).
            (Dot, b'.') => {
                self.push(b".");
                Mid
            }
            (Dot, b'\r') => DotCr,
            (Dot, _) | (LineStart, _) | (Mid, _) if b == b'\r' => Cr,
            (LineStart, b'.') => Dot,
            (Dot | LineStart | Mid, b'\n') => {
                // Bare LF: stored as CRLF, but it does NOT start a line.
                self.bare_lf = true;
                self.push(b"\r\n");
                Mid
            }
            (Dot | LineStart | Mid, _) => {
                self.push(&[b]);
                Mid
            }
        };
    }

    /// The byte after a CR that was not preceded by a line-start dot.
    fn after_cr(&mut self, b: u8) -> DState {
        match b {
            b'\n' => {
                self.push(b"\r\n");
                DState::LineStart
            }
            // CR CR: the first is bare, the second may still pair with LF.
            b'\r' => {
                self.bare_cr_char();
                DState::Cr
            }
            _ => {
                self.bare_cr_char();
                self.state = DState::Mid;
                self.step(b);
                self.state
            }
        }
    }

    fn bare_cr_char(&mut self) {
        self.bare_cr = true;
        self.push(b" ");
    }

    fn push(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len() as u64);
        let take = if self.max_size == 0 {
            bytes.len()
        } else {
            let room = self.max_size.saturating_sub(self.stored);
            usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len())
        };
        self.message.extend_from_slice(&bytes[..take]);
        self.stored += take as u64;
    }

    /// Current state without feeding.
    pub fn state(&self) -> DataState {
        if self.state == DState::Done {
            DataState::Done {
                size_exceeded: self.size_exceeded(),
                bare_lf_seen: self.bare_lf,
                bare_cr_seen: self.bare_cr,
            }
        } else {
            DataState::NeedMore
        }
    }

    fn size_exceeded(&self) -> bool {
        self.max_size > 0 && self.size > self.max_size
    }

    /// Total message size in octets (as stored, counting what was dropped
    /// over the limit): for logs.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The unstuffed, normalized message, or the part of it stored since the
    /// last call (truncated at `max_size` if it was exceeded). Leaves the
    /// reader empty.
    pub fn take_message(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::smtp_proto::{SessionEvent, simulate_session};
    use crate::smtp::proto::*;

    /// Feed a whole DATA stream; returns (consumed, state, message).
    fn data(input: &[u8], max: u64) -> (usize, DataState, Vec<u8>) {
        let mut d = DataReader::new(max);
        let (n, st) = d.feed(input);
        (n, st, d.take_message())
    }

    const SMUGGLED: &[u8] = b"mail FROM:<smuggled@x>\r\nrcpt TO:<r@x>\r\ndata\r\nsmuggled\r\n";

    /// docs/security.md §3: hannob/smtpsmug's tests (lflf, crcr, crlf, lfcr,
    /// lfcrlf, crlflf, crcrlf, crlfcr, nullbefore, nullafter), The-Login
    /// scanner's inbound and outbound lists, suuhm's extras (`\r\n.`,
    /// `\n\n.\r\n`) and the blog's exotic ones.
    const BAD_ENDINGS: &[&[u8]] = &[
        b"\n.\n",
        b"\n.\r",
        b"\r.\n",
        b"\r.\r",
        b"\n.\r\n",
        b"\r.\r\n",
        b"\r\n\x00.\r\n",
        b"\r\n.\x00\r\n",
        b"\r\n.\r",
        b"\r\n.\n",
        b"\n\n.\r\n",
        b"\r\n.\r\r\n",
        b"\r\r\n.\r\r\n",
        b"\r\n.",
    ];

    // RFC 5321 §4.1.1.4 and §4.5.2, docs/security.md §3: only CRLF.CRLF
    // ends DATA; each bad ending stays content and the smuggled commands are
    // part of the one message.
    #[test]
    fn smuggling_endings_do_not_end_data() {
        for seq in BAD_ENDINGS {
            let mut input = b"TESTING\r\n".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(SMUGGLED);
            input.extend_from_slice(b"\r\n.\r\n");
            input.extend_from_slice(b"QUIT\r\n"); // pipelined after the end
            let (n, st, msg) = data(&input, 0);
            assert_eq!(n, input.len() - 6, "seq {seq:?}: wrong end");
            assert!(matches!(st, DataState::Done { .. }), "seq {seq:?}");
            let text = String::from_utf8_lossy(&msg);
            assert!(
                text.contains("mail FROM:<smuggled@x>\r\n"),
                "seq {seq:?}: {text:?}"
            );
            assert!(text.contains("smuggled\r\n"), "seq {seq:?}");
            assert!(text.starts_with("TESTING\r\n"));
            // Same result byte by byte.
            let mut d = DataReader::new(0);
            let mut used = 0;
            for b in input.chunks(1) {
                let (k, _) = d.feed(b);
                used += k;
                if k == 0 {
                    break;
                }
            }
            assert_eq!(used, n, "seq {seq:?} byte-by-byte");
            assert_eq!(d.take_message(), msg);
        }
    }

    // Same in the header section ("end-of-data inside the headers", SEC
    // Consult blog, docs/security.md §3), driven through a whole session.
    #[test]
    fn smuggling_inside_headers_one_message() {
        for seq in BAD_ENDINGS {
            let mut input =
                b"EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nFrom: a@x".to_vec();
            input.extend_from_slice(seq);
            input.extend_from_slice(SMUGGLED);
            input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
            let events = simulate_session([input.as_slice()], 0);
            let msgs: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    SessionEvent::Message(m, _) => Some(m),
                    _ => None,
                })
                .collect();
            assert_eq!(msgs.len(), 1, "seq {seq:?}");
            assert!(String::from_utf8_lossy(msgs[0]).contains("smuggled@x"));
            let cmds: Vec<_> = events
                .iter()
                .filter(|e| matches!(e, SessionEvent::Command(Command::Mail(_))))
                .collect();
            assert_eq!(cmds.len(), 1, "seq {seq:?}: smuggled MAIL executed");
            assert_eq!(events.last(), Some(&SessionEvent::Command(Command::Quit)));
        }
    }

    // The module-doc decisions: bare LF -> CRLF without line start, bare CR ->
    // space, no unstuffing after a bare LF (RFC 5321 §2.3.8, §4.5.2).
    #[test]
    fn normalization_decisions() {
        let (_, st, m) = data(b"a\n.\nb\r\n.\r\n", 0);
        assert_eq!(m, b"a\r\n.\r\nb\r\n");
        assert_eq!(
            st,
            DataState::Done {
                size_exceeded: false,
                bare_lf_seen: true,
                bare_cr_seen: false
            }
        );
        let (_, st, m) = data(b"a\r.\rb\r\n.\r\n", 0);
        assert_eq!(m, b"a . b\r\n");
        assert!(matches!(
            st,
            DataState::Done {
                bare_cr_seen: true,
                bare_lf_seen: false,
                ..
            }
        ));
        let (_, _, m) = data(b"a\n..\r\n.\r\n", 0);
        assert_eq!(m, b"a\r\n..\r\n");
        let (_, _, m) = data(b"\r\n.\r\r\nx\r\n.\r\n", 0);
        assert_eq!(m, b"\r\n \r\nx\r\n");
    }

    // RFC 5321 §4.5.2: a leading dot is removed; `..` -> `.`; the data may
    // be empty (".\r\n" right away).
    #[test]
    fn dot_unstuffing() {
        let (_, _, m) = data(b"..\r\n.x\r\n...\r\na.b\r\n.\r\n", 0);
        assert_eq!(m, b".\r\nx\r\n..\r\na.b\r\n");
        let (n, st, m) = data(b".\r\nRSET\r\n", 0);
        assert_eq!((n, m.len()), (3, 0));
        assert!(matches!(st, DataState::Done { .. }));
        let (n, st, _) = data(b"x\r\n.\r", 0);
        assert_eq!((n, st), (5, DataState::NeedMore));
    }

    // RFC 2920 §3.1: bytes after the end are not consumed; after Done the
    // reader consumes nothing more.
    #[test]
    fn bytes_after_end_not_consumed() {
        let mut d = DataReader::new(0);
        let (n, _) = d.feed(b"hi\r\n.\r\nMAIL FROM:<x>\r\n");
        assert_eq!(n, 7);
        assert_eq!(d.feed(b"more").0, 0);
        assert_eq!(d.take_message(), b"hi\r\n");
    }

    // Taking the message after every feed gives the same bytes as taking it once, the size
    // limit counts what was already taken, and the reader never holds more than one feed.
    #[test]
    fn taking_as_it_goes_is_the_same_message() {
        let input = b"0123456789\r\n..abc\r\nline\n\r\n.\r\n";
        for max in [0u64, 5, 13, 1000] {
            let (_, st_whole, whole) = data(input, max);
            for step in 1..input.len() {
                let mut d = DataReader::new(max);
                let mut got = Vec::new();
                let mut st = DataState::NeedMore;
                for chunk in input.chunks(step) {
                    let (_, s) = d.feed(chunk);
                    st = s;
                    let part = d.take_message();
                    assert!(part.len() <= 2 * chunk.len(), "max {max} step {step}");
                    got.extend_from_slice(&part);
                }
                assert_eq!(got, whole, "max {max} step {step}");
                assert_eq!(st, st_whole, "max {max} step {step}");
            }
        }
    }

    // docs/sendmail-compat.md §7 confMAX_MESSAGE_SIZE: read to the real end, store at
    // most N, then 552 5.2.3 Message exceeds maximum fixed size (N).
    #[test]
    fn size_limit() {
        let (n, st, m) = data(b"0123456789\r\nabc\r\n.\r\nQUIT\r\n", 8);
        assert_eq!(n, 20);
        assert!(matches!(
            st,
            DataState::Done {
                size_exceeded: true,
                ..
            }
        ));
        assert_eq!(m, b"01234567");
        let (_, st, m) = data(b"0123456\r\n.\r\n", 9);
        assert!(matches!(
            st,
            DataState::Done {
                size_exceeded: false,
                ..
            }
        ));
        assert_eq!(m.len(), 9);
        assert_eq!(
            Reply::message_exceeds_fixed(8).to_bytes(),
            b"552 5.2.3 Message exceeds maximum fixed size (8)\r\n"
        );
    }
}
