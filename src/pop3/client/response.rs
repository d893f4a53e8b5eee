//! POP3 server responses as a client reads them: pure functions over bytes, no I/O, so the
//! fuzz target (`fuzz/fuzz_targets/pop3_response.rs`) and the unit tests drive them directly.
//!
//! * [`parse_status_line`] frames and parses one status line: `+OK`, `-ERR` (RFC 1939), with an
//!   optional `[RESP-CODE]` (RFC 2449 §8, RFC 3206), or a SASL `+ ` continuation (RFC 5034).
//! * [`BodyDecoder`] reads a multi-line body up to the lone `.` line, undoing the byte-stuffing
//!   of lines that begin with `.` (RFC 1939 §3). Lines keep their own line ends, so `RETR`
//!   output is the message as the server holds it. [`dot_stuff`] is its inverse.
//! * Small parsers for the bodies and texts a client reads: STAT, scan listings, UIDL, CAPA,
//!   the greeting's APOP timestamp and Qpopper's `USER has N visible messages …` login reply.

use serde::Serialize;

use crate::wire::dot;

/// The longest status line accepted. RFC 1939 allows 512 octets; servers in the wild send a
/// little more in greetings, and anything far beyond that is not POP3.
pub const MAX_STATUS_LINE: usize = 4096;

/// The longest body line accepted. RFC 5322 asks for 998, but old mail has longer lines and a
/// client should still be able to fetch it.
pub const MAX_BODY_LINE: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("response line longer than {0} octets")]
    LineTooLong(usize),
    #[error("not a POP3 status line: {0:?}")]
    NotStatus(String),
    #[error("multi-line response larger than {0} octets")]
    TooLarge(usize),
    #[error("malformed {what} line: {line:?}")]
    Malformed { what: &'static str, line: String },
}

/// Which of the three status indicators a line starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    /// `+OK`
    Ok,
    /// `-ERR`
    Err,
    /// `+` alone: a SASL challenge (RFC 5034 §4); the text is the base64 challenge.
    Continue,
}

/// One parsed status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub indicator: Indicator,
    /// The RFC 2449 response code without brackets, e.g. `IN-USE` or `SYS/TEMP`.
    pub code: Option<String>,
    /// The rest of the line after the code (and one space), possibly empty.
    pub text: String,
}

impl Status {
    pub fn is_ok(&self) -> bool {
        self.indicator == Indicator::Ok
    }

    /// The line as it would be sent (without CRLF); parsing it gives back `self`.
    pub fn render(&self) -> String {
        let mut s = String::from(match self.indicator {
            Indicator::Ok => "+OK",
            Indicator::Err => "-ERR",
            Indicator::Continue => "+",
        });
        if let Some(code) = &self.code {
            s.push_str(" [");
            s.push_str(code);
            s.push(']');
        }
        if !self.text.is_empty() || (self.code.is_none() && self.indicator == Indicator::Continue) {
            s.push(' ');
            s.push_str(&self.text);
        }
        s
    }
}

/// Splits off the first line of `buf` (ended by LF, an optional CR before it removed).
/// Returns the line and the number of bytes it used, or `None` if no LF is there yet.
pub fn take_line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let lf = buf.iter().position(|&b| b == b'\n')?;
    let line = &buf[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, lf + 1))
}

/// Frames and parses the status line at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_status_line(buf: &[u8]) -> Result<Option<(Status, usize)>, ResponseError> {
    match take_line(buf) {
        Some((line, _)) if line.len() > MAX_STATUS_LINE => {
            Err(ResponseError::LineTooLong(MAX_STATUS_LINE))
        }
        Some((line, used)) => Ok(Some((parse_status(line)?, used))),
        None if buf.len() > MAX_STATUS_LINE => Err(ResponseError::LineTooLong(MAX_STATUS_LINE)),
        None => Ok(None),
    }
}

/// Parses one status line without its line end.
pub fn parse_status(line: &[u8]) -> Result<Status, ResponseError> {
    let not_status = || ResponseError::NotStatus(String::from_utf8_lossy(line).into_owned());
    // The indicator ends at the first space or at the end of the line; servers that shout
    // `+ok` exist, so it is matched without regard to case.
    let (word, rest) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], Some(&line[sp + 1..])),
        None => (line, None),
    };
    let indicator = if word.eq_ignore_ascii_case(b"+OK") {
        Indicator::Ok
    } else if word.eq_ignore_ascii_case(b"-ERR") {
        Indicator::Err
    } else if word == b"+" {
        Indicator::Continue
    } else {
        return Err(not_status());
    };
    let rest = String::from_utf8_lossy(rest.unwrap_or_default()).into_owned();
    if indicator == Indicator::Continue {
        return Ok(Status {
            indicator,
            code: None,
            text: rest,
        });
    }
    let (code, text) = split_code(&rest);
    Ok(Status {
        indicator,
        code,
        text,
    })
}

/// RFC 2449 §8: `"[" resp-level *("/" resp-level) "]"`, where a level is printable ASCII but
/// `/` and `]`. Anything else in brackets is ordinary text.
fn split_code(rest: &str) -> (Option<String>, String) {
    let Some(inner) = rest.strip_prefix('[') else {
        return (None, rest.to_string());
    };
    let Some(end) = inner.find(']') else {
        return (None, rest.to_string());
    };
    let code = &inner[..end];
    let level_ok =
        |l: &str| !l.is_empty() && l.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b']');
    if !code.split('/').all(level_ok) {
        return (None, rest.to_string());
    }
    let after = &inner[end + 1..];
    let text = after.strip_prefix(' ').unwrap_or(after);
    (Some(code.to_string()), text.to_string())
}

/// Reads a multi-line body incrementally: feed it the bytes after the status line as they
/// arrive; it consumes whole lines only and stops after the terminating `.` line.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    body: Vec<u8>,
    max: usize,
    done: bool,
}

impl BodyDecoder {
    /// A decoder that refuses bodies larger than `max` octets (after unstuffing).
    pub fn new(max: usize) -> BodyDecoder {
        BodyDecoder {
            body: Vec::new(),
            max,
            done: false,
        }
    }

    /// Consumes as many whole lines of `buf` as it can; returns how many bytes it used. The
    /// caller drops those bytes and calls again with more once [`Self::is_done`] is false.
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, ResponseError> {
        let mut used = 0;
        while !self.done {
            let rest = &buf[used..];
            let Some(lf) = rest.iter().position(|&b| b == b'\n') else {
                if rest.len() > MAX_BODY_LINE {
                    return Err(ResponseError::LineTooLong(MAX_BODY_LINE));
                }
                break;
            };
            if lf > MAX_BODY_LINE {
                return Err(ResponseError::LineTooLong(MAX_BODY_LINE));
            }
            let line = &rest[..=lf];
            used += lf + 1;
            let content = line[..lf].strip_suffix(b"\r").unwrap_or(&line[..lf]);
            if content == b"." {
                self.done = true;
                break;
            }
            // A line starting with "." was stuffed by the server: drop exactly one dot.
            let line = line.strip_prefix(b".").unwrap_or(line);
            if self.body.len() + line.len() > self.max {
                return Err(ResponseError::TooLarge(self.max));
            }
            self.body.extend_from_slice(line);
        }
        Ok(used)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The unstuffed body so far (all of it once [`Self::is_done`]).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

/// One-shot parse of a whole multi-line response (status line and body) at the start of
/// `buf`: `Ok(None)` while incomplete. A `-ERR` status has no body and ends at its line.
pub fn parse_multiline(
    buf: &[u8],
    max: usize,
) -> Result<Option<(Status, Vec<u8>, usize)>, ResponseError> {
    let Some((status, used)) = parse_status_line(buf)? else {
        return Ok(None);
    };
    if !status.is_ok() {
        return Ok(Some((status, Vec::new(), used)));
    }
    let mut dec = BodyDecoder::new(max);
    let n = dec.feed(&buf[used..])?;
    Ok(dec.is_done().then(|| (status, dec.into_body(), used + n)))
}

/// Byte-stuffs `body` for sending as a multi-line response (the terminating `.` line is not
/// added). A last line without a line end gets CRLF, since a body is made of whole lines.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    for line in body.split_inclusive(|&b| b == b'\n') {
        dot::push_line(line, &mut out);
    }
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The lines of a body as text, without their line ends.
pub fn body_lines(body: &[u8]) -> impl Iterator<Item = String> + '_ {
    body.split_inclusive(|&b| b == b'\n').map(|l| {
        let l = l.strip_suffix(b"\n").unwrap_or(l);
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        String::from_utf8_lossy(l).into_owned()
    })
}

/// `+OK nn mm` (RFC 1939 §5 STAT): message count and maildrop size in octets.
pub fn parse_stat(text: &str) -> Result<(u64, u64), ResponseError> {
    let mut words = text.split_ascii_whitespace();
    let bad = || ResponseError::Malformed {
        what: "STAT",
        line: text.to_string(),
    };
    let count = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    let octets = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    Ok((count, octets))
}

/// One entry of a scan listing (`LIST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Listing {
    #[serde(rename = "msg")]
    pub number: u32,
    pub octets: u64,
}

/// One entry of a unique-id listing (`UIDL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UniqueId {
    #[serde(rename = "msg")]
    pub number: u32,
    pub uid: String,
}

/// The body of `LIST`: `n octets` per line; words after the size are allowed (RFC 1939 §7
/// discourages them but does not forbid them) and ignored.
pub fn parse_scan_listing(body: &[u8]) -> Result<Vec<Listing>, ResponseError> {
    body_lines(body)
        .map(|line| {
            let mut w = line.split_ascii_whitespace();
            match (
                w.next().and_then(|n| n.parse().ok()),
                w.next().and_then(|n| n.parse().ok()),
            ) {
                (Some(number), Some(octets)) => Ok(Listing { number, octets }),
                _ => Err(ResponseError::Malformed { what: "LIST", line }),
            }
        })
        .collect()
}

/// The body of `UIDL`: `n uid` per line, the uid being 1–70 printable characters (RFC 1939
/// §7); longer ids are accepted, ids with other characters are not.
pub fn parse_uidl(body: &[u8]) -> Result<Vec<UniqueId>, ResponseError> {
    body_lines(body)
        .map(|line| {
            let mut w = line.split(' ');
            let number = w.next().and_then(|n| n.parse().ok());
            let uid = w
                .next()
                .filter(|u| !u.is_empty() && u.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            match (number, uid, w.next()) {
                (Some(number), Some(uid), None) => Ok(UniqueId {
                    number,
                    uid: uid.to_string(),
                }),
                _ => Err(ResponseError::Malformed { what: "UIDL", line }),
            }
        })
        .collect()
}

/// The body of `CAPA` (RFC 2449 §5): one capability per line.
pub fn parse_capa(body: &[u8]) -> Vec<String> {
    body_lines(body)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether a CAPA listing names `cap` (the first word, case-insensitively).
pub fn has_capability(caps: &[String], cap: &str) -> bool {
    caps.iter().any(|c| {
        c.split_ascii_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(cap))
    })
}

/// The SASL mechanisms a CAPA listing offers (`SASL PLAIN LOGIN`).
pub fn sasl_mechanisms(caps: &[String]) -> Vec<String> {
    caps.iter()
        .filter_map(|c| {
            let mut w = c.split_ascii_whitespace();
            w.next()
                .filter(|k| k.eq_ignore_ascii_case("SASL"))
                .map(|_| w.map(str::to_string).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

/// The APOP timestamp of a greeting (RFC 1939 §7): the first `<…>` that looks like a msg-id,
/// angle brackets included, since the digest is computed over them.
pub fn apop_timestamp(greeting: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(open) = greeting[from..].find('<').map(|i| i + from) {
        let rest = &greeting[open + 1..];
        let close = rest.find('>')?;
        let inner = &rest[..close];
        if inner.contains('@')
            && !inner.contains('<')
            && inner.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Some(&greeting[open..open + close + 2]);
        }
        from = open + 1;
    }
    None
}

/// What a login found in the maildrop: Qpopper's login reply, or STAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub messages: u64,
    pub hidden: u64,
    pub octets: u64,
}

/// The seed's telnet check line: `UserID has 1 visible message (0 hidden) in 874 octets`
/// (Qpopper's reply to PASS, docs/sendmail-compat.md §10.1, without its final period).
pub fn summary_line(user: &str, s: &Summary) -> String {
    format!(
        "{user} has {} visible message{} ({} hidden) in {} octets",
        s.messages,
        if s.messages == 1 { "" } else { "s" },
        s.hidden,
        s.octets
    )
}

/// Parses Qpopper's reply to PASS/APOP: `USER has N visible message[s] (H hidden) in B
/// octets.`; returns the user as the server wrote it and the numbers.
pub fn parse_qpopper_summary(text: &str) -> Option<(String, Summary)> {
    let text = text.trim_end();
    let text = text.strip_suffix('.').unwrap_or(text);
    let rest = text.strip_suffix(" octets")?;
    let (rest, octets) = rest.rsplit_once(" in ")?;
    let rest = rest.strip_suffix(" hidden)")?;
    let (rest, hidden) = rest.rsplit_once(" (")?;
    let rest = rest
        .strip_suffix(" visible messages")
        .or_else(|| rest.strip_suffix(" visible message"))?;
    let (user, messages) = rest.rsplit_once(" has ")?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if user.is_empty() {
        return None;
    }
    Some((
        user.to_string(),
        Summary {
            messages: num(messages)?,
            hidden: num(hidden)?,
            octets: num(octets)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(line: &str) -> Status {
        parse_status(line.as_bytes()).unwrap()
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            st("+OK Qpopper (version 4.0.3) at popserv1 starting.  <1.2@popserv1>"),
            Status {
                indicator: Indicator::Ok,
                code: None,
                text: "Qpopper (version 4.0.3) at popserv1 starting.  <1.2@popserv1>".into()
            }
        );
        assert_eq!(st("+OK"), st("+OK "));
        assert_eq!(st("+ok fine").indicator, Indicator::Ok);
        let e = st("-ERR [IN-USE] Mailbox locked by another session");
        assert_eq!(e.indicator, Indicator::Err);
        assert_eq!(e.code.as_deref(), Some("IN-USE"));
        assert_eq!(e.text, "Mailbox locked by another session");
        let e = st("-ERR [SYS/TEMP] try later");
        assert_eq!(e.code.as_deref(), Some("SYS/TEMP"));
        assert_eq!(st("-ERR [AUTH]").code.as_deref(), Some("AUTH"));
        // Not response codes: spaces or an empty level inside, or no closing bracket.
        assert_eq!(st("-ERR [no such] thing").code, None);
        assert_eq!(st("-ERR [SYS/] x").code, None);
        assert_eq!(st("-ERR [open").text, "[open");
        let c = st("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+");
        assert_eq!(c.indicator, Indicator::Continue);
        assert_eq!(c.text, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2U+");
        for bad in [
            "",
            "OK",
            "+OKAY",
            "-ERROR x",
            "220 smtp ready",
            "HTTP/1.1 400",
        ] {
            assert!(parse_status(bad.as_bytes()).is_err(), "{bad}");
        }
        for line in ["+OK", "-ERR [IN-USE] x", "+ ", "+ abc", "-ERR  two spaces"] {
            assert_eq!(st(&st(line).render()), st(line), "{line}");
        }
    }

    #[test]
    fn status_framing() {
        assert_eq!(parse_status_line(b"+OK hi"), Ok(None));
        let (s, used) = parse_status_line(b"+OK hi\r\nnext").unwrap().unwrap();
        assert_eq!((s.text.as_str(), used), ("hi", 8));
        let (s, used) = parse_status_line(b"-ERR bare lf\nx").unwrap().unwrap();
        assert_eq!((s.text.as_str(), used), ("bare lf", 13));
        let long = vec![b'a'; MAX_STATUS_LINE + 1];
        assert!(matches!(
            parse_status_line(&long),
            Err(ResponseError::LineTooLong(_))
        ));
    }

    #[test]
    fn multiline_and_unstuffing() {
        let wire =
            b"+OK 45 octets\r\nSubject: x\r\n\r\n..dot line\r\n...\r\n.x\r\nend\r\n.\r\n+OK next";
        let (s, body, used) = parse_multiline(wire, 1000).unwrap().unwrap();
        assert_eq!(s.text, "45 octets");
        assert_eq!(
            body,
            b"Subject: x\r\n\r\n.dot line\r\n..\r\nx\r\nend\r\n".to_vec()
        );
        assert_eq!(&wire[used..], b"+OK next");
        // Incomplete until the lone dot arrives; "." followed by more text is not the end.
        assert_eq!(parse_multiline(b"+OK\r\na\r\n.x\r\n", 1000), Ok(None));
        assert_eq!(parse_multiline(b"+OK\r\na\r\n.", 1000), Ok(None));
        // -ERR has no body.
        let (s, body, used) = parse_multiline(b"-ERR no such message\r\n", 10)
            .unwrap()
            .unwrap();
        assert!(!s.is_ok() && body.is_empty() && used == 22);
        // LF-only servers are understood, and their line ends kept.
        let (_, body, _) = parse_multiline(b"+OK\na\n..b\n.\n", 100).unwrap().unwrap();
        assert_eq!(body, b"a\n.b\n");
        assert_eq!(
            parse_multiline(b"+OK\r\n0123456789\r\n.\r\n", 5),
            Err(ResponseError::TooLarge(5))
        );
    }

    #[test]
    fn decoder_is_incremental() {
        let wire = b"1 45\r\n2 34\r\n.\r\n";
        let mut dec = BodyDecoder::new(100);
        assert_eq!(dec.feed(b"1 4"), Ok(0));
        assert_eq!(dec.feed(b"1 45\r\n2"), Ok(6));
        assert!(!dec.is_done());
        assert_eq!(dec.feed(&wire[6..]), Ok(wire.len() - 6));
        assert!(dec.is_done());
        assert_eq!(dec.body(), b"1 45\r\n2 34\r\n");
    }

    #[test]
    fn stuffing_inverts_decoding() {
        assert_eq!(dot_stuff(b".a\r\nb\r\n.\r\n"), b"..a\r\nb\r\n..\r\n");
        assert_eq!(dot_stuff(b"no end"), b"no end\r\n");
        assert_eq!(dot_stuff(b""), b"");
    }

    #[test]
    fn listings() {
        assert_eq!(parse_stat("2 79"), Ok((2, 79)));
        assert_eq!(parse_stat("2 79 extra"), Ok((2, 79)));
        assert!(parse_stat("two 79").is_err());
        assert_eq!(
            parse_scan_listing(b"1 45\r\n2 34\r\n").unwrap(),
            vec![
                Listing {
                    number: 1,
                    octets: 45
                },
                Listing {
                    number: 2,
                    octets: 34
                }
            ]
        );
        assert!(parse_scan_listing(b"1\r\n").is_err());
        assert_eq!(
            parse_uidl(b"1 000000016b0aa91d\r\n").unwrap(),
            vec![UniqueId {
                number: 1,
                uid: "000000016b0aa91d".into()
            }]
        );
        assert!(parse_uidl(b"1 a b\r\n").is_err());
        assert!(parse_uidl(b"x abc\r\n").is_err());
        let caps = parse_capa(b"TOP\r\nUIDL\r\nSTLS\r\nSASL PLAIN LOGIN\r\nUSER\r\n");
        assert!(has_capability(&caps, "stls") && !has_capability(&caps, "PIPELINING"));
        assert_eq!(sasl_mechanisms(&caps), vec!["PLAIN", "LOGIN"]);
    }

    #[test]
    fn apop_timestamps() {
        assert_eq!(
            apop_timestamp("Qpopper (version 4.0.3) at popserv1 starting.  <12892.1001@popserv1>"),
            Some("<12892.1001@popserv1>")
        );
        assert_eq!(
            apop_timestamp("Dovecot (Debian) ready. <6010.1.6b0aa914.YJT+hy==@vm>"),
            Some("<6010.1.6b0aa914.YJT+hy==@vm>")
        );
        // RFC 1939's example; a bracketed word without '@' is not a timestamp.
        assert_eq!(
            apop_timestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>"),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        assert_eq!(apop_timestamp("ready <no-at> <x@y>"), Some("<x@y>"));
        assert_eq!(apop_timestamp("ready <a b@c>"), None);
        assert_eq!(apop_timestamp("Dovecot ready."), None);
        assert_eq!(apop_timestamp("<<x@y>"), Some("<x@y>"));
    }

    #[test]
    fn qpopper_summary() {
        let (user, s) =
            parse_qpopper_summary("UserID has 1 visible message (0 hidden) in 874 octets.")
                .unwrap();
        assert_eq!(user, "UserID");
        assert_eq!(
            s,
            Summary {
                messages: 1,
                hidden: 0,
                octets: 874
            }
        );
        assert_eq!(
            summary_line(&user, &s),
            "UserID has 1 visible message (0 hidden) in 874 octets"
        );
        let (_, s) =
            parse_qpopper_summary("who has 3 visible messages (2 hidden) in 10 octets.").unwrap();
        assert_eq!((s.messages, s.hidden, s.octets), (3, 2, 10));
        assert_eq!(
            summary_line(
                "who",
                &Summary {
                    messages: 0,
                    hidden: 0,
                    octets: 0
                }
            ),
            "who has 0 visible messages (0 hidden) in 0 octets"
        );
        assert_eq!(parse_qpopper_summary("Logged in."), None);
        assert_eq!(
            parse_qpopper_summary("x has -1 visible messages (0 hidden) in 1 octets."),
            None
        );
    }

    #[test]
    fn invariants_hold_on_samples() {
        for s in [
            &b""[..],
            b"+OK\r\n.\r\n",
            b"+OK 2 messages\r\n1 45\r\n2 34\r\n.\r\n",
            b"-ERR [IN-USE] locked\r\n",
            b".\r\n..\r\n...\r\n",
            b"\r\r\n.\r",
        ] {
            crate::fuzz::pop3_response::invariants(s);
        }
    }
}
