//! One POP3 client connection over tokio: plain TCP, STLS (RFC 2595) or implicit TLS, with a
//! timeout on the connect, the handshake and every read and write. The bytes are parsed by
//! [`super::response`]; this module only moves them and keeps the transcript.
//!
//! Secrets never reach the transcript: every command is sent with the text to show for it, and
//! the callers that send a password show `********` instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::response::{self, BodyDecoder, Indicator, ResponseError, Status};

/// The largest multi-line response read into memory (a RETR of a huge message fails cleanly
/// instead of exhausting memory).
pub const MAX_BODY: usize = 256 << 20;

/// A password or other credential. Its `Debug` shows nothing, so it cannot leak into a log
/// line or an error by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// What is shown in place of a secret.
pub const MASK: &str = "********";

#[derive(Debug, thiserror::Error)]
pub enum Pop3Error {
    #[error("cannot resolve {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("cannot connect to {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("timed out after {after} {during}")]
    Timeout {
        during: &'static str,
        after: crate::duration::Span,
    },
    #[error("connection error: {0}")]
    Io(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("the server closed the connection")]
    Closed,
    #[error("bad response from the server: {0}")]
    Response(#[from] ResponseError),
    /// `-ERR` (or an unexpected `+`) to a command that had to succeed. `command` is the
    /// command as shown in the transcript, so it never holds a secret.
    #[error("{command}: {}", reply.render())]
    Refused { command: String, reply: Status },
    #[error("{0}")]
    Argument(String),
}

impl Pop3Error {
    /// Whether the connection can no longer carry a command (so QUIT is pointless).
    pub fn connection_lost(&self) -> bool {
        matches!(
            self,
            Pop3Error::Resolve { .. }
                | Pop3Error::Connect { .. }
                | Pop3Error::Timeout { .. }
                | Pop3Error::Io(_)
                | Pop3Error::Tls(_)
                | Pop3Error::Closed
        )
    }
}

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Client,
    Server,
    /// Something the client did that is not a line on the wire (connected, TLS started).
    Note,
}

/// Receives every transcript line as it happens, so a hung session still shows how far it got.
pub type Transcript = Box<dyn FnMut(Direction, &str) + Send>;

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the TCP stream is being moved into TLS, or after a failed handshake.
    Gone,
}

pub struct Client {
    conn: Conn,
    buf: Vec<u8>,
    timeout: Duration,
    transcript: Option<Transcript>,
    peer: SocketAddr,
    alive: bool,
}

impl Client {
    /// Resolves `host` and connects to the first address that answers.
    pub async fn connect(
        host: &str,
        port: u16,
        timeout: Duration,
        mut transcript: Option<Transcript>,
    ) -> Result<Client, Pop3Error> {
        let after = crate::duration::Span(timeout);
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
                Err(_) => {
                    return Err(Pop3Error::Timeout {
                        during: "resolving the host name",
                        after,
                    });
                }
                Ok(Err(e)) => {
                    return Err(Pop3Error::Resolve {
                        host: host.into(),
                        message: e.to_string(),
                    });
                }
                Ok(Ok(a)) => a.collect(),
            };
        let mut last = Pop3Error::Resolve {
            host: host.into(),
            message: "no addresses".into(),
        };
        for addr in addrs {
            match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    if let Some(t) = transcript.as_mut() {
                        t(Direction::Note, &format!("connected to {addr}"));
                    }
                    return Ok(Client {
                        conn: Conn::Plain(tcp),
                        buf: Vec::new(),
                        timeout,
                        transcript,
                        peer: addr,
                        alive: true,
                    });
                }
                Ok(Err(e)) => {
                    last = Pop3Error::Connect {
                        addr: addr.to_string(),
                        message: crate::util::io_message(&e),
                    }
                }
                Err(_) => {
                    last = Pop3Error::Timeout {
                        during: "connecting",
                        after,
                    }
                }
            }
        }
        Err(last)
    }

    /// The address connected to (the one the plaintext policy looks at).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.conn, Conn::Tls(_))
    }

    /// Whether a command can still be sent.
    pub fn is_alive(&self) -> bool {
        self.alive
    }

    fn note(&mut self, dir: Direction, line: &str) {
        if let Some(t) = self.transcript.as_mut() {
            t(dir, line);
        }
    }

    /// Runs the TLS handshake on the current connection: right after connecting for implicit
    /// TLS (POP3S), or after `+OK` to STLS. Anything the server sent before the handshake is
    /// discarded unread, so nothing injected in plaintext is taken as a reply over TLS.
    pub async fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), Pop3Error> {
        self.buf.clear();
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            self.alive = false;
            return Err(Pop3Error::Tls("TLS is already active".into()));
        };
        let handshake = TlsConnector::from(config).connect(name, tcp);
        let tls = match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.alive = false;
                return Err(Pop3Error::Tls(e.to_string()));
            }
            Err(_) => {
                self.alive = false;
                return Err(Pop3Error::Timeout {
                    during: "in the TLS handshake",
                    after: crate::duration::Span(self.timeout),
                });
            }
        };
        let (_, session) = tls.get_ref();
        let what = format!(
            "TLS started: {}, {}",
            session
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("?"),
            session
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("?")
        );
        self.conn = Conn::Tls(Box::new(tls));
        self.note(Direction::Note, &what);
        Ok(())
    }

    /// Reads more bytes into the buffer; a read that waits longer than the timeout fails.
    async fn fill(&mut self) -> Result<(), Pop3Error> {
        let mut chunk = [0u8; 16 * 1024];
        let read = async {
            match &mut self.conn {
                Conn::Plain(s) => s.read(&mut chunk).await,
                Conn::Tls(s) => s.read(&mut chunk).await,
                Conn::Gone => Ok(0),
            }
        };
        let n = match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(0)) => Err(Pop3Error::Closed),
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(Pop3Error::Io(crate::util::io_message(&e))),
            Err(_) => Err(Pop3Error::Timeout {
                during: "waiting for the server",
                after: crate::duration::Span(self.timeout),
            }),
        };
        match n {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => {
                self.alive = false;
                Err(e)
            }
        }
    }

    /// Reads one status line (the greeting, or the reply to a command).
    pub async fn read_status(&mut self) -> Result<Status, Pop3Error> {
        loop {
            match response::parse_status_line(&self.buf) {
                Ok(Some((status, used))) => {
                    let shown = String::from_utf8_lossy(&self.buf[..used]);
                    let shown = shown.trim_end_matches(['\r', '\n']).to_string();
                    self.buf.drain(..used);
                    self.note(Direction::Server, &shown);
                    return Ok(status);
                }
                Ok(None) => self.fill().await?,
                Err(e) => {
                    // A non-POP3 peer (an SMTP or HTTP server on the wrong port) ends here;
                    // show what it said.
                    let shown = String::from_utf8_lossy(&self.buf).into_owned();
                    if let Some(first) = shown.lines().next() {
                        let first = first.to_string();
                        self.note(Direction::Server, &first);
                    }
                    return Err(e.into());
                }
            }
        }
    }

    /// Reads a multi-line body after a `+OK`. With `show`, its lines go to the transcript;
    /// otherwise (message text) only its size does.
    pub async fn read_body(&mut self, show: bool) -> Result<Vec<u8>, Pop3Error> {
        let mut dec = BodyDecoder::new(MAX_BODY);
        loop {
            let used = dec.feed(&self.buf)?;
            self.buf.drain(..used);
            if dec.is_done() {
                break;
            }
            self.fill().await?;
        }
        let body = dec.into_body();
        if show {
            let lines: Vec<String> = response::body_lines(&body).collect();
            for l in lines {
                // Show the line as it was on the wire, stuffing included.
                let l = if l.starts_with('.') {
                    format!(".{l}")
                } else {
                    l
                };
                self.note(Direction::Server, &l);
            }
            self.note(Direction::Server, ".");
        } else {
            self.note(
                Direction::Note,
                &format!("{} octets of message text, not shown", body.len()),
            );
        }
        Ok(body)
    }

    /// Sends `line` (CRLF added) and shows `shown` in the transcript instead of it.
    pub async fn send_masked(&mut self, line: &str, shown: &str) -> Result<(), Pop3Error> {
        if line.contains(['\r', '\n', '\0']) {
            return Err(Pop3Error::Argument(format!(
                "{shown}: a command argument contains a line break or NUL"
            )));
        }
        self.note(Direction::Client, shown);
        let wire = format!("{line}\r\n");
        let write = async {
            match &mut self.conn {
                Conn::Plain(s) => {
                    s.write_all(wire.as_bytes()).await?;
                    s.flush().await
                }
                Conn::Tls(s) => {
                    s.write_all(wire.as_bytes()).await?;
                    s.flush().await
                }
                Conn::Gone => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        let r = match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Pop3Error::Io(crate::util::io_message(&e))),
            Err(_) => Err(Pop3Error::Timeout {
                during: "sending a command",
                after: crate::duration::Span(self.timeout),
            }),
        };
        if r.is_err() {
            self.alive = false;
        }
        r
    }

    /// Sends a command whose text may be shown and reads its status line.
    pub async fn command(&mut self, line: &str) -> Result<Status, Pop3Error> {
        self.send_masked(line, line).await?;
        self.read_status().await
    }

    /// Sends a command holding a secret, showing `shown`, and reads its status line.
    pub async fn command_masked(&mut self, line: &str, shown: &str) -> Result<Status, Pop3Error> {
        self.send_masked(line, shown).await?;
        self.read_status().await
    }

    /// A command that must answer `+OK`: `-ERR` becomes [`Pop3Error::Refused`].
    pub async fn expect_ok(&mut self, line: &str) -> Result<Status, Pop3Error> {
        let st = self.command(line).await?;
        ok_or_refused(line, st)
    }

    /// A command with a multi-line answer (CAPA, LIST, UIDL, RETR, TOP): the body on `+OK`,
    /// [`Pop3Error::Refused`] on `-ERR`.
    pub async fn multiline(&mut self, line: &str, show: bool) -> Result<Vec<u8>, Pop3Error> {
        let st = self.command(line).await?;
        ok_or_refused(line, st)?;
        self.read_body(show).await
    }

    /// Ends the session: QUIT, its reply, then a clean close (TLS close_notify). Failures here
    /// change nothing about the result, so they are only shown.
    pub async fn quit(&mut self) {
        if self.alive
            && let Err(e) = self.command("QUIT").await
        {
            self.note(Direction::Note, &format!("QUIT: {e}"));
        }
        let close = async {
            match &mut self.conn {
                Conn::Plain(s) => s.shutdown().await,
                Conn::Tls(s) => s.shutdown().await,
                Conn::Gone => Ok(()),
            }
        };
        let _ = tokio::time::timeout(self.timeout, close).await;
        self.alive = false;
        self.conn = Conn::Gone;
    }
}

/// `Ok(status)` for `+OK`; anything else (`-ERR`, a stray `+` challenge) is refused.
pub fn ok_or_refused(shown: &str, st: Status) -> Result<Status, Pop3Error> {
    if st.indicator == Indicator::Ok {
        Ok(st)
    } else {
        Err(Pop3Error::Refused {
            command: shown.to_string(),
            reply: st,
        })
    }
}

/// The APOP digest (RFC 1939 §7): MD5 of the greeting's timestamp followed by the secret, as
/// 32 lower-case hex digits.
pub fn apop_digest(timestamp: &str, secret: &Secret) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(timestamp.as_bytes());
    h.update(secret.expose().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The SASL PLAIN initial response (RFC 4616): `\0user\0password`, base64.
pub fn sasl_plain(user: &str, secret: &Secret) -> String {
    use base64::Engine;
    let raw = format!("\0{user}\0{}", secret.expose());
    base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apop_digest_matches_rfc1939() {
        // RFC 1939 §7's example.
        assert_eq!(
            apop_digest(
                "<1896.697170952@dbc.mtview.ca.us>",
                &Secret::new("tanstaaf")
            ),
            "c4c9334bac560ecc979e58001b3e22fb"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(sasl_plain("u", &s), "AHUAaHVudGVyMg==");
    }

    #[test]
    fn refusals_show_the_masked_command() {
        let st = response::parse_status(b"-ERR [AUTH] Authentication failed.").unwrap();
        let e = ok_or_refused("PASS ********", st).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PASS ********: -ERR [AUTH] Authentication failed."
        );
        assert!(!e.connection_lost());
    }
}
