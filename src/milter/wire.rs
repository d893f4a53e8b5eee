//! The milter protocol's packets, as libmilter 8.14+ speaks version 6: every packet is a
//! 4-byte big-endian length (the command byte included), the command byte, then its data.
//! Pure code: encoding what the MTA sends, framing and decoding what a milter answers.
//! The constants are libmilter's (`mfdef.h`), and their values are what Debian's
//! python3-milter exports.

use crate::smtp::proto::Reply;

/// The protocol version we speak.
pub const VERSION: u32 = 6;

/// The largest body chunk sent in one SMFIC_BODY (libmilter's MILTER_CHUNK_SIZE).
pub const CHUNK: usize = 65535;

/// A milter packet larger than this is an error: the largest legal one is a body
/// replacement chunk of 1 MiB (SMFIP_MDS_1M), which we never negotiate.
pub const MAX_PACKET: usize = 1024 * 1024 + 64;

/// SMFIF_*: what a milter may do to a message. We offer all of these.
pub mod action {
    pub const ADDHDRS: u32 = 0x01;
    pub const CHGBODY: u32 = 0x02;
    pub const ADDRCPT: u32 = 0x04;
    pub const DELRCPT: u32 = 0x08;
    pub const CHGHDRS: u32 = 0x10;
    pub const QUARANTINE: u32 = 0x20;
    pub const CHGFROM: u32 = 0x40;
    pub const ADDRCPT_PAR: u32 = 0x80;
    /// Every action we carry out (SETSYMLIST, 0x100, is not offered: the macro set is fixed).
    pub const OFFERED: u32 =
        ADDHDRS | CHGBODY | ADDRCPT | DELRCPT | CHGHDRS | QUARANTINE | CHGFROM | ADDRCPT_PAR;
}

/// SMFIP_*: the callbacks a milter does not want, and those it will not answer.
pub mod proto {
    pub const NOCONNECT: u32 = 0x1;
    pub const NOHELO: u32 = 0x2;
    pub const NOMAIL: u32 = 0x4;
    pub const NORCPT: u32 = 0x8;
    pub const NOBODY: u32 = 0x10;
    pub const NOHDRS: u32 = 0x20;
    pub const NOEOH: u32 = 0x40;
    pub const NR_HDR: u32 = 0x80;
    pub const NOUNKNOWN: u32 = 0x100;
    pub const NODATA: u32 = 0x200;
    pub const SKIP: u32 = 0x400;
    pub const NR_CONN: u32 = 0x1000;
    pub const NR_HELO: u32 = 0x2000;
    pub const NR_MAIL: u32 = 0x4000;
    pub const NR_RCPT: u32 = 0x8000;
    pub const NR_DATA: u32 = 0x10000;
    pub const NR_UNKN: u32 = 0x20000;
    pub const NR_EOH: u32 = 0x40000;
    pub const NR_BODY: u32 = 0x80000;
    pub const HDR_LEADSPC: u32 = 0x100000;
    /// Every step we can leave out or not wait for. SMFIP_RCPT_REJ (rejected recipients
    /// passed on) is not offered.
    pub const OFFERED: u32 = NOCONNECT
        | NOHELO
        | NOMAIL
        | NORCPT
        | NOBODY
        | NOHDRS
        | NOEOH
        | NR_HDR
        | NOUNKNOWN
        | NODATA
        | SKIP
        | NR_CONN
        | NR_HELO
        | NR_MAIL
        | NR_RCPT
        | NR_DATA
        | NR_UNKN
        | NR_EOH
        | NR_BODY
        | HDR_LEADSPC;
}

/// The macro stages of SMFIC_MACRO: which command the macros belong to.
pub mod stage {
    pub const CONNECT: u8 = b'C';
    pub const HELO: u8 = b'H';
    pub const MAIL: u8 = b'M';
    pub const RCPT: u8 = b'R';
    pub const DATA: u8 = b'T';
    pub const EOH: u8 = b'N';
    pub const EOM: u8 = b'E';
}

/// What the MTA sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// Macros for the command `stage` names, sent just before it.
    Macro {
        stage: u8,
        pairs: &'a [(String, String)],
    },
    Connect {
        hostname: &'a str,
        /// `4`, `6`, `L` (unix) or `U` (unknown).
        family: u8,
        port: u16,
        address: &'a str,
    },
    Helo(&'a str),
    /// The reverse-path in angle brackets, then the ESMTP parameters.
    Mail(&'a [String]),
    Rcpt(&'a [String]),
    Data,
    Header {
        name: &'a str,
        value: &'a str,
    },
    Eoh,
    Body(&'a [u8]),
    BodyEob,
    Abort,
    Quit,
}

impl Command<'_> {
    /// The command byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::OptNeg { .. } => b'O',
            Command::Macro { .. } => b'D',
            Command::Connect { .. } => b'C',
            Command::Helo(_) => b'H',
            Command::Mail(_) => b'M',
            Command::Rcpt(_) => b'R',
            Command::Data => b'T',
            Command::Header { .. } => b'L',
            Command::Eoh => b'N',
            Command::Body(_) => b'B',
            Command::BodyEob => b'E',
            Command::Abort => b'A',
            Command::Quit => b'Q',
        }
    }

    /// Appends the whole packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.push(self.code());
        fn cstr(out: &mut Vec<u8>, s: &[u8]) {
            // A NUL inside would end the string early at the milter; it cannot come from
            // SMTP (the codec refuses it), so it is dropped rather than sent.
            out.extend(s.iter().copied().filter(|&b| b != 0));
            out.push(0);
        }
        match self {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&actions.to_be_bytes());
                out.extend_from_slice(&protocol.to_be_bytes());
            }
            Command::Macro { stage, pairs } => {
                out.push(*stage);
                for (k, v) in pairs.iter() {
                    cstr(out, k.as_bytes());
                    cstr(out, v.as_bytes());
                }
            }
            Command::Connect {
                hostname,
                family,
                port,
                address,
            } => {
                cstr(out, hostname.as_bytes());
                out.push(*family);
                if *family != b'U' {
                    out.extend_from_slice(&port.to_be_bytes());
                    cstr(out, address.as_bytes());
                }
            }
            Command::Helo(h) => cstr(out, h.as_bytes()),
            Command::Mail(args) | Command::Rcpt(args) => {
                for a in args.iter() {
                    cstr(out, a.as_bytes());
                }
            }
            Command::Header { name, value } => {
                cstr(out, name.as_bytes());
                cstr(out, value.as_bytes());
            }
            Command::Body(b) => out.extend_from_slice(b),
            Command::Data | Command::Eoh | Command::BodyEob | Command::Abort | Command::Quit => {}
        }
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// What a milter answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// Accept the message (or, at connect, the connection) without further callbacks.
    Accept,
    Continue,
    /// Refuse with the default reply of the step.
    Reject,
    Tempfail,
    /// Accept and throw away.
    Discard,
    /// Refuse with the milter's own reply.
    ReplyCode(Reply),
    /// No more body chunks, please (SMFIP_SKIP).
    Skip,
    /// Still working: the end-of-message timer starts again.
    Progress,
    /// The milter is going away: treated as a failure.
    Shutdown,
    ConnFail,
    AddHeader {
        name: String,
        value: String,
    },
    /// Insert at `index` (0 = first field).
    InsHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Change the `index`-th (1-based) field called `name`; an empty value deletes it.
    ChgHeader {
        index: u32,
        name: String,
        value: String,
    },
    AddRcpt(String),
    /// A recipient with ESMTP parameters; the parameters are not used.
    AddRcptPar(String, String),
    DelRcpt(String),
    /// One chunk of the new body (CRLF lines).
    ReplBody(Vec<u8>),
    Quarantine(String),
    ChgFrom(String),
    SetSymList,
}

/// A packet that is not the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet of length {0}")]
    BadLength(usize),
    #[error("unknown reply code {0:?}")]
    UnknownCode(char),
    #[error("malformed {0:?} reply")]
    Malformed(char),
}

/// Reassembles packets from a byte stream.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole packet as (command, data), `Ok(None)` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<(u8, Vec<u8>)>, WireError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(WireError::BadLength(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let cmd = self.buf[4];
        let data = self.buf[5..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some((cmd, data)))
    }

    /// Bytes of a packet not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// NUL-terminated strings of `d`; the last may lack its NUL.
fn strings(d: &[u8]) -> Vec<String> {
    let d = d.strip_suffix(&[0]).unwrap_or(d);
    d.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn one(d: &[u8], code: u8) -> Result<String, WireError> {
    let mut s = strings(d);
    if s.is_empty() || s[0].is_empty() {
        return Err(WireError::Malformed(code as char));
    }
    Ok(s.swap_remove(0))
}

fn pair(d: &[u8], code: u8) -> Result<(String, String), WireError> {
    let s = strings(d);
    match s.as_slice() {
        [n, v, ..] if !n.is_empty() => Ok((n.clone(), v.clone())),
        [n] if !n.is_empty() => Ok((n.clone(), String::new())),
        _ => Err(WireError::Malformed(code as char)),
    }
}

/// Decodes one reply packet.
pub fn decode(code: u8, d: &[u8]) -> Result<Response, WireError> {
    let bad = || WireError::Malformed(code as char);
    Ok(match code {
        b'O' => Response::OptNeg {
            version: u32_at(d, 0).ok_or_else(bad)?,
            actions: u32_at(d, 4).ok_or_else(bad)?,
            protocol: u32_at(d, 8).ok_or_else(bad)?,
        },
        b'a' => Response::Accept,
        b'c' => Response::Continue,
        b'r' => Response::Reject,
        b't' => Response::Tempfail,
        b'd' => Response::Discard,
        b's' => Response::Skip,
        b'p' => Response::Progress,
        b'4' => Response::Shutdown,
        b'f' => Response::ConnFail,
        b'l' => Response::SetSymList,
        b'y' => Response::ReplyCode(reply_code(d).ok_or_else(bad)?),
        b'h' => {
            let (name, value) = pair(d, code)?;
            Response::AddHeader { name, value }
        }
        b'i' | b'm' => {
            let index = u32_at(d, 0).ok_or_else(bad)?;
            let (name, value) = pair(&d[4..], code)?;
            if code == b'i' {
                Response::InsHeader { index, name, value }
            } else {
                Response::ChgHeader { index, name, value }
            }
        }
        b'+' => Response::AddRcpt(one(d, code)?),
        b'2' => {
            let (r, args) = pair(d, code)?;
            Response::AddRcptPar(r, args)
        }
        b'-' => Response::DelRcpt(one(d, code)?),
        b'b' => Response::ReplBody(d.to_vec()),
        b'q' => Response::Quarantine(strings(d).into_iter().next().unwrap_or_default()),
        b'e' => Response::ChgFrom(one(d, code)?),
        other => return Err(WireError::UnknownCode(other as char)),
    })
}

/// SMFIR_REPLYCODE's text: `NNN[ -]text`, lines separated by CRLF, each with the same 4xx
/// or 5xx code (libmilter's smfi_setmlreply builds it so). Anything else is refused, as
/// sendmail's MILTER_CHECK_REPLYCODE does, and the step's default reply is used.
pub fn reply_code(d: &[u8]) -> Option<Reply> {
    let d = d.strip_suffix(&[0]).unwrap_or(d);
    let text = std::str::from_utf8(d).ok()?;
    let mut code: Option<u16> = None;
    let mut lines = Vec::new();
    let raw: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    for (i, l) in raw.iter().enumerate() {
        let b = l.as_bytes();
        if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) || !matches!(b[0], b'4' | b'5') {
            return None;
        }
        let c: u16 = l[..3].parse().ok()?;
        if code.is_some_and(|k| k != c) {
            return None;
        }
        code = Some(c);
        let last = i + 1 == raw.len();
        let rest = match b.get(3) {
            None => "",
            Some(b' ') if last => &l[4..],
            Some(b'-') if !last => &l[4..],
            _ => return None,
        };
        if rest.bytes().any(|b| b < 0x20 && b != b'\t') {
            return None;
        }
        lines.push(rest.to_string());
    }
    let code = code?;
    Some(if lines.len() == 1 {
        Reply::new(code, lines.swap_remove(0))
    } else {
        Reply::multi(code, lines)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: u8, data: &[u8]) -> Vec<u8> {
        let mut v = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        v.push(code);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn commands_encode_as_libmilter_reads_them() {
        let mut out = Vec::new();
        Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1fffff,
        }
        .encode(&mut out);
        assert_eq!(
            out,
            [
                0, 0, 0, 13, b'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xff, 0xff
            ]
        );
        out.clear();
        Command::Connect {
            hostname: "mx.example",
            family: b'4',
            port: 25,
            address: "192.0.2.1",
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'C', b"mx.example\x004\x00\x19192.0.2.1\x00"));
        out.clear();
        let pairs = vec![("j".to_string(), "mx".to_string())];
        Command::Macro {
            stage: stage::CONNECT,
            pairs: &pairs,
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'D', b"Cj\x00mx\x00"));
        out.clear();
        let args = vec!["<a@b>".to_string(), "SIZE=10".to_string()];
        Command::Mail(&args).encode(&mut out);
        assert_eq!(out, packet(b'M', b"<a@b>\x00SIZE=10\x00"));
        out.clear();
        Command::Header {
            name: "Sub\0ject",
            value: "hi",
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'L', b"Subject\x00hi\x00"));
        out.clear();
        Command::Connect {
            hostname: "x",
            family: b'U',
            port: 0,
            address: "",
        }
        .encode(&mut out);
        assert_eq!(out, packet(b'C', b"x\x00U"));
        for (c, code) in [
            (Command::Data, b'T'),
            (Command::Eoh, b'N'),
            (Command::BodyEob, b'E'),
            (Command::Abort, b'A'),
            (Command::Quit, b'Q'),
            (Command::Helo("h"), b'H'),
            (Command::Body(b"x"), b'B'),
        ] {
            out.clear();
            c.encode(&mut out);
            assert_eq!(out[4], code);
            assert_eq!(
                out.len(),
                4 + u32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize
            );
        }
    }

    #[test]
    fn the_framer_waits_for_whole_packets_and_refuses_absurd_lengths() {
        let mut f = Framer::default();
        let p = packet(b'c', b"");
        f.feed(&p[..3]);
        assert_eq!(f.next_packet(), Ok(None));
        f.feed(&p[3..]);
        f.feed(&packet(b'h', b"X\0y\0")[..6]);
        assert_eq!(f.next_packet(), Ok(Some((b'c', vec![]))));
        assert_eq!(f.next_packet(), Ok(None));
        assert_eq!(f.pending(), 6);
        let mut g = Framer::default();
        g.feed(&[0, 0, 0, 0]);
        assert_eq!(g.next_packet(), Err(WireError::BadLength(0)));
        let mut g = Framer::default();
        g.feed(&((MAX_PACKET + 1) as u32).to_be_bytes());
        assert!(g.next_packet().is_err());
        let mut g = Framer::default();
        g.feed(&(MAX_PACKET as u32).to_be_bytes());
        assert_eq!(g.next_packet(), Ok(None));
    }

    #[test]
    fn replies_decode() {
        assert_eq!(
            decode(b'O', &[0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0x80]),
            Ok(Response::OptNeg {
                version: 6,
                actions: 1,
                protocol: 0x80
            })
        );
        assert!(decode(b'O', &[0, 0, 0, 6]).is_err());
        for (c, r) in [
            (b'a', Response::Accept),
            (b'c', Response::Continue),
            (b'r', Response::Reject),
            (b't', Response::Tempfail),
            (b'd', Response::Discard),
            (b's', Response::Skip),
            (b'p', Response::Progress),
            (b'4', Response::Shutdown),
            (b'f', Response::ConnFail),
            (b'l', Response::SetSymList),
        ] {
            assert_eq!(decode(c, b""), Ok(r));
        }
        assert_eq!(
            decode(b'h', b"X-Spam\0yes\0"),
            Ok(Response::AddHeader {
                name: "X-Spam".into(),
                value: "yes".into()
            })
        );
        assert_eq!(
            decode(b'i', b"\0\0\0\x02DKIM-Signature\0v=1\0"),
            Ok(Response::InsHeader {
                index: 2,
                name: "DKIM-Signature".into(),
                value: "v=1".into()
            })
        );
        assert_eq!(
            decode(b'm', b"\0\0\0\x01Subject\0\0"),
            Ok(Response::ChgHeader {
                index: 1,
                name: "Subject".into(),
                value: String::new()
            })
        );
        assert!(decode(b'm', b"\0\0").is_err());
        assert!(decode(b'h', b"\0v\0").is_err());
        assert_eq!(
            decode(b'+', b"<x@y>\0"),
            Ok(Response::AddRcpt("<x@y>".into()))
        );
        assert_eq!(
            decode(b'-', b"<x@y>\0"),
            Ok(Response::DelRcpt("<x@y>".into()))
        );
        assert!(decode(b'-', b"\0").is_err());
        assert_eq!(
            decode(b'2', b"<x@y>\0NOTIFY=NEVER\0"),
            Ok(Response::AddRcptPar("<x@y>".into(), "NOTIFY=NEVER".into()))
        );
        assert_eq!(
            decode(b'b', b"new\r\n"),
            Ok(Response::ReplBody(b"new\r\n".to_vec()))
        );
        assert_eq!(
            decode(b'q', b"spam\0"),
            Ok(Response::Quarantine("spam".into()))
        );
        assert_eq!(
            decode(b'e', b"<s@x>\0"),
            Ok(Response::ChgFrom("<s@x>".into()))
        );
        assert_eq!(decode(b'Z', b""), Err(WireError::UnknownCode('Z')));
    }

    #[test]
    fn reply_codes_are_the_milters_own_text_or_refused() {
        let r = reply_code(b"550 5.7.1 go away\0").unwrap();
        assert_eq!(
            (r.code, r.lines.clone()),
            (550, vec!["5.7.1 go away".to_string()])
        );
        let r = reply_code(b"451-4.7.1 first\r\n451 4.7.1 second\0").unwrap();
        assert_eq!(r.code, 451);
        assert_eq!(r.lines, vec!["4.7.1 first", "4.7.1 second"]);
        assert_eq!(reply_code(b"550").unwrap().lines, vec![String::new()]);
        for bad in [
            &b"250 ok\0"[..],
            b"55 x",
            b"abc x",
            b"550-only a continuation",
            b"550 a\r\n451 b",
            b"550xno space",
            b"550 a\x01b",
            b"",
            b"\xff\xfe",
            b"550 last\r\n550 not last",
        ] {
            assert_eq!(reply_code(bad), None, "{bad:?}");
        }
    }
}
