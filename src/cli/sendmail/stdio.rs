//! `-bs`: an SMTP conversation on stdin/stdout, relayed to the daemon one command at a time.
//!
//! A client of `sendmail -bs` may write the whole session at once (a pipe writes ahead, and
//! sendmail reads it happily). The daemon, rightly, refuses input that arrives before its
//! reply (RFC 5321 §4.3.1, RFC 2920 §3: 554 synchronization). So the relay reads one command
//! line, sends it, waits for the whole reply, prints it, and only then reads the next; after a
//! 354 it forwards the message up to the lone `.`. The daemon never sees input ahead of a reply,
//! and the client gets the replies in order. Line ends from stdin may be LF or CRLF (sendmail
//! accepts both on a pipe); the daemon gets CRLF.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::smtp::client::codec::{MAX_REPLY_LINE, MAX_REPLY_LINES, parse_reply_line};
use crate::smtp::proto::Reply;
use crate::sysexits::*;

/// A line from stdin is forwarded in pieces of at most this many bytes (the daemon refuses
/// over-long command lines itself; message lines are passed on unchanged).
const MAX_INPUT_PIECE: u64 = 64 * 1024;

/// Why the relay stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("lost the connection to the daemon: {0}")]
    Daemon(io::Error),
    #[error("the daemon closed the connection")]
    DaemonClosed,
    #[error("bad reply from the daemon: {0}")]
    BadReply(#[from] crate::smtp::client::codec::ReplyError),
    #[error("reading standard input: {0}")]
    Input(io::Error),
    #[error("writing standard output: {0}")]
    Output(io::Error),
}

/// The exit status a refused command gives `-bs` (sysexits, as the rest of `sendmail`).
fn exit_for(command: &str, r: &Reply) -> i32 {
    match r.code {
        0..=399 => EX_OK,
        400..=499 => EX_TEMPFAIL,
        // The message itself was refused at the final dot.
        _ if command == "." && matches!(r.code, 552 | 554) => EX_DATAERR,
        _ => super::submit::exit_for(r),
    }
}

/// One line from stdin: `(bytes without the line end, whether a line end followed)`; `None`
/// at EOF. A piece longer than [`MAX_INPUT_PIECE`] comes back without a line end.
fn read_piece(input: &mut impl BufRead) -> Result<Option<(Vec<u8>, bool)>, RelayError> {
    let mut buf = Vec::new();
    let n = input
        .take(MAX_INPUT_PIECE)
        .read_until(b'\n', &mut buf)
        .map_err(RelayError::Input)?;
    if n == 0 {
        return Ok(None);
    }
    let ended = buf.last() == Some(&b'\n');
    if ended {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(Some((buf, ended)))
}

/// Reads one (multi-line) reply from the daemon, copies its lines to `out` as they came.
fn relay_reply(daemon: &mut impl BufRead, out: &mut impl Write) -> Result<Reply, RelayError> {
    let mut reply: Option<Reply> = None;
    loop {
        let mut line = Vec::new();
        let n = daemon
            .take(MAX_REPLY_LINE as u64 + 2)
            .read_until(b'\n', &mut line)
            .map_err(RelayError::Daemon)?;
        if n == 0 {
            return Err(RelayError::DaemonClosed);
        }
        let (code, more, text) = parse_reply_line(&line)?;
        out.write_all(&line)
            .and_then(|()| if more { Ok(()) } else { out.flush() })
            .map_err(RelayError::Output)?;
        let r = reply.get_or_insert_with(|| Reply {
            code,
            lines: Vec::new(),
        });
        if r.code != code {
            return Err(crate::smtp::client::codec::ReplyError::CodeChanged(r.code, code).into());
        }
        if r.lines.len() >= MAX_REPLY_LINES {
            return Err(crate::smtp::client::codec::ReplyError::TooManyLines.into());
        }
        r.lines.push(text);
        if !more {
            return Ok(reply.take().unwrap_or(Reply {
                code,
                lines: Vec::new(),
            }));
        }
    }
}

fn send(daemon: &mut TcpStream, bytes: &[u8]) -> Result<(), RelayError> {
    daemon.write_all(bytes).map_err(RelayError::Daemon)
}

/// Relays the conversation; returns the exit status: 0 when every reply was 2xx/3xx and the
/// session ended cleanly, otherwise the worst sysexits code of the refused commands
/// (75 for a temporary failure or a lost daemon).
pub fn relay<R: Read + Send + 'static>(
    input: BufReader<R>,
    out: &mut impl Write,
    daemon: TcpStream,
) -> i32 {
    let mut status = EX_OK;
    match relay_inner(input, out, daemon, &mut status) {
        Ok(()) => status,
        Err(e) => {
            eprintln!("sendmail: -bs: {e}");
            status.max(EX_TEMPFAIL)
        }
    }
}

fn relay_inner<R: Read + Send + 'static>(
    mut input: BufReader<R>,
    out: &mut impl Write,
    mut daemon: TcpStream,
    status: &mut i32,
) -> Result<(), RelayError> {
    let mut replies = BufReader::new(daemon.try_clone().map_err(RelayError::Daemon)?);
    let greeting = relay_reply(&mut replies, out)?;
    if greeting.code != 220 {
        *status = (*status).max(exit_for("", &greeting));
        return Ok(());
    }
    // After a 334 the next line is an AUTH continuation (RFC 4954 §4), not a command.
    let mut continuation = false;
    loop {
        let Some((line, ended)) = read_piece(&mut input)? else {
            // EOF without QUIT: end the session politely; the reply is nobody's business.
            send(&mut daemon, b"QUIT\r\n")?;
            let _ = relay_reply(&mut replies, &mut io::sink());
            return Ok(());
        };
        send(&mut daemon, &line)?;
        if !ended {
            // An over-long line: pass it on as it comes, the daemon answers at its end.
            continue;
        }
        send(&mut daemon, b"\r\n")?;
        let verb = if continuation {
            String::new()
        } else {
            let l = String::from_utf8_lossy(&line);
            l.split_ascii_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
        };
        let reply = relay_reply(&mut replies, out)?;
        *status = (*status).max(exit_for(&verb, &reply));
        continuation = reply.code == 334;
        match (verb.as_str(), reply.code) {
            (_, 421) | ("QUIT", _) => return Ok(()),
            ("DATA", 354) => {
                forward_message(&mut input, &mut daemon)?;
                let end = relay_reply(&mut replies, out)?;
                *status = (*status).max(exit_for(".", &end));
                if end.code == 421 {
                    return Ok(());
                }
            }
            ("STARTTLS", 220) => return raw(input, out, daemon, replies),
            _ => {}
        }
    }
}

/// After 354: message lines up to and including the lone `.` (dot-stuffing is the client's,
/// RFC 5321 §4.5.2, and passes through untouched). EOF before the `.` is a failure: sendmail
/// does not deliver a message cut short either.
fn forward_message(input: &mut impl BufRead, daemon: &mut TcpStream) -> Result<(), RelayError> {
    let mut at_line_start = true;
    loop {
        let Some((line, ended)) = read_piece(input)? else {
            return Err(RelayError::Input(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "end of input inside DATA: message not sent",
            )));
        };
        send(daemon, &line)?;
        if !ended {
            at_line_start = false;
            continue;
        }
        send(daemon, b"\r\n")?;
        if at_line_start && line == b"." {
            return Ok(());
        }
        at_line_start = true;
    }
}

/// After STARTTLS's 220 the bytes are TLS, which only the client and the daemon understand:
/// copy both ways until either side ends.
fn raw<R: Read + Send + 'static>(
    mut input: BufReader<R>,
    out: &mut impl Write,
    daemon: TcpStream,
    mut replies: BufReader<TcpStream>,
) -> Result<(), RelayError> {
    let mut to_daemon = daemon;
    std::thread::spawn(move || {
        let pending = input.buffer().to_vec();
        input.consume(pending.len());
        let _ = to_daemon.write_all(&pending);
        let _ = io::copy(&mut input, &mut to_daemon);
        let _ = to_daemon.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 8192];
    loop {
        let n = match replies.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(RelayError::Daemon(e)),
        };
        out.write_all(&buf[..n])
            .and_then(|()| out.flush())
            .map_err(RelayError::Output)?;
    }
}
