//! The client half of the SMTP codec, pure: reply framing, EHLO keyword parsing, and the DATA
//! encoding. No sockets, so the fuzzer and the unit tests drive it directly.

use crate::smtp::proto::{EhloCaps, Reply};
use crate::wire::dot;

/// RFC 5321 §4.5.3.1.5 allows 512 octets; real servers send longer banners, so be lenient
/// but bounded (a hostile server must not make us buffer without limit).
pub const MAX_REPLY_LINE: usize = 4096;
/// Lines in one multi-line reply (a huge EHLO list is the only legitimate long one).
pub const MAX_REPLY_LINES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed reply line from the server: \"{}\"", crate::address::echo_text(.0))]
    Malformed(String),
    #[error("reply line longer than {MAX_REPLY_LINE} octets")]
    TooLong,
    #[error("reply of more than {MAX_REPLY_LINES} lines")]
    TooManyLines,
    #[error("multi-line reply changed its code from {0} to {1}")]
    CodeChanged(u16, u16),
}

/// Frames replies from a byte stream: feed bytes, take complete replies.
#[derive(Debug, Default)]
pub struct ReplyParser {
    buf: Vec<u8>,
    pending: Option<Reply>,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a complete reply.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Drops everything buffered: what arrived before a TLS handshake must not be read as
    /// if it came through TLS (STARTTLS response injection, CVE-2011-0411 in reverse).
    pub fn discard(&mut self) -> usize {
        let n = self.buf.len();
        self.buf.clear();
        self.pending = None;
        n
    }

    /// The next complete reply, `Ok(None)` if more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_REPLY_LINE {
                    return Err(ReplyError::TooLong);
                }
                return Ok(None);
            };
            if nl > MAX_REPLY_LINE {
                return Err(ReplyError::TooLong);
            }
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let (code, more, text) = parse_reply_line(&line)?;
            let reply = self.pending.get_or_insert_with(|| Reply {
                code,
                lines: Vec::new(),
            });
            if reply.code != code {
                return Err(ReplyError::CodeChanged(reply.code, code));
            }
            if reply.lines.len() >= MAX_REPLY_LINES {
                return Err(ReplyError::TooManyLines);
            }
            reply.lines.push(text);
            if !more {
                return Ok(self.pending.take());
            }
        }
    }
}

/// One reply line: `250-text` / `250 text` / bare `250`, ended by LF or CRLF. Returns the
/// code, whether more lines follow, and the text (lossy UTF-8, control characters removed so
/// that a transcript can't be forged by a hostile server).
pub fn parse_reply_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let malformed = || ReplyError::Malformed(String::from_utf8_lossy(body).into_owned());
    if body.len() < 3
        || !body[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&body[0])
    {
        return Err(malformed());
    }
    let code =
        (body[0] - b'0') as u16 * 100 + (body[1] - b'0') as u16 * 10 + (body[2] - b'0') as u16;
    let (more, rest) = match body.get(3) {
        None => (false, &body[3..3]),
        Some(b' ') => (false, &body[4..]),
        Some(b'-') => (true, &body[4..]),
        Some(_) => return Err(malformed()),
    };
    let text: String = String::from_utf8_lossy(rest)
        .chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .collect();
    Ok((code, more, text))
}

/// The EHLO reply's keywords (RFC 5321 §4.1.1.1): every line after the first.
pub fn parse_ehlo(reply: &Reply) -> EhloCaps {
    let mut caps = EhloCaps::default();
    for line in reply.lines.iter().skip(1) {
        let mut words = line.split_ascii_whitespace();
        let Some(kw) = words.next() else { continue };
        match kw.to_ascii_uppercase().as_str() {
            "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
            "PIPELINING" => caps.pipelining = true,
            "EXPN" => caps.expn = true,
            "VERB" => caps.verb = true,
            "8BITMIME" => caps.eight_bit_mime = true,
            "SMTPUTF8" => caps.smtputf8 = true,
            "SIZE" => caps.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
            "DSN" => caps.dsn = true,
            "ETRN" => caps.etrn = true,
            "STARTTLS" => caps.starttls = true,
            "HELP" => caps.help = true,
            "DELIVERBY" => {
                caps.deliverby = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0))
            }
            "AUTH" => {
                for m in words {
                    let m = m.to_ascii_uppercase();
                    if !caps.auth.contains(&m) {
                        caps.auth.push(m);
                    }
                }
            }
            _ => {}
        }
    }
    caps
}

/// The DATA payload for a message: lines ended by CRLF (a bare LF or bare CR becomes CRLF,
/// so that nothing we send can be half of a smuggling pair), lines beginning with "." get
/// another "." (RFC 5321 §4.5.2), and the terminating `.CRLF`.
pub fn encode_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 32 + 8);
    let mut e = dot::DotEncoder::new();
    e.feed(message, &mut out);
    e.finish(&mut out);
    out
}

/// The enhanced status code at the start of a reply's text (RFC 3463), if any: `5.7.1`.
pub fn enhanced_code(reply: &Reply) -> Option<&str> {
    let first = reply.lines.first()?;
    let word = first.split_ascii_whitespace().next()?;
    let mut parts = word.split('.');
    let class = parts.next()?;
    let ok = matches!(class, "2" | "4" | "5")
        && parts.clone().count() == 2
        && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(bytes: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut p = ReplyParser::new();
        p.feed(bytes);
        let mut out = Vec::new();
        while let Some(r) = p.next_reply()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn frames_single_and_multi_line_replies() {
        let r = replies(b"220 mx ESMTP\r\n250-mx hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n354\n")
            .unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], Reply::new(220, "mx ESMTP"));
        assert_eq!(r[1].lines, ["mx hello", "PIPELINING", "SIZE 100"]);
        assert_eq!(r[2], Reply::new(354, ""));
        let caps = parse_ehlo(&r[1]);
        assert!(caps.pipelining && caps.size == Some(100) && !caps.starttls);
    }

    #[test]
    fn partial_input_waits_and_bad_input_fails() {
        let mut p = ReplyParser::new();
        p.feed(b"250-a\r\n250 b");
        assert_eq!(p.next_reply(), Ok(None));
        p.feed(b"\r\n");
        assert_eq!(p.next_reply().unwrap().unwrap().lines, ["a", "b"]);
        assert!(matches!(
            replies(b"hello\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            replies(b"250x\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            replies(b"650 no\r\n"),
            Err(ReplyError::Malformed(_))
        ));
        assert_eq!(
            replies(b"250-a\r\n251 b\r\n"),
            Err(ReplyError::CodeChanged(250, 251))
        );
        assert_eq!(
            replies(&[b'2'; MAX_REPLY_LINE + 2]),
            Err(ReplyError::TooLong)
        );
        // Control characters from a hostile server never reach a transcript.
        assert_eq!(replies(b"250 a\x1b[2Jb\r\n").unwrap()[0].lines, ["a[2Jb"]);
    }

    #[test]
    fn discard_forgets_everything_buffered() {
        let mut p = ReplyParser::new();
        p.feed(b"250-half\r\n250 inj");
        assert!(p.next_reply().unwrap().is_none());
        assert_eq!(p.discard(), 7);
        p.feed(b"220 fresh\r\n");
        assert_eq!(p.next_reply().unwrap().unwrap(), Reply::new(220, "fresh"));
    }

    #[test]
    fn data_is_stuffed_and_normalized() {
        assert_eq!(encode_data(b""), b".\r\n");
        assert_eq!(encode_data(b"a\n.b\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(encode_data(b".\r\nx"), b"..\r\nx\r\n.\r\n");
        // Bare LF and bare CR become line ends, so "\n.\n" can't end our DATA early.
        assert_eq!(encode_data(b"x\n.\ny"), b"x\r\n..\r\ny\r\n.\r\n");
        assert_eq!(encode_data(b"x\r.\r"), b"x\r\n..\r\n.\r\n");
    }

    #[test]
    fn enhanced_codes() {
        assert_eq!(
            enhanced_code(&Reply::new(550, "5.7.1 Relaying denied")),
            Some("5.7.1")
        );
        assert_eq!(enhanced_code(&Reply::new(250, "ok")), None);
        assert_eq!(enhanced_code(&Reply::new(250, "2.1.0.1 x")), None);
    }
}
