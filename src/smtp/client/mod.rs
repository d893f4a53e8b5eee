//! An async SMTP client over tokio: the part of outbound delivery, `smtp-send` and
//! `relaycheck` that talks to sockets. Framing and encoding live in [`codec`].
//!
//! It is deliberately low level: each call is one protocol step and returns the server's
//! [`Reply`] as is, because relaycheck must see 5xx replies as results, not as errors. Only
//! transport failures (connect, timeout, TLS, a malformed reply) are errors.

pub mod codec;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::content::Content;
use crate::smtp::proto::{EhloCaps, Reply};
use codec::{ReplyError, ReplyParser};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connect to {addr}: {message}")]
    Connect { addr: SocketAddr, message: String },
    #[error("{addr}: no reply within {secs}s")]
    Timeout { addr: SocketAddr, secs: u64 },
    #[error("{addr}: connection closed by the server")]
    Closed { addr: SocketAddr },
    #[error("{addr}: {message}")]
    Io { addr: SocketAddr, message: String },
    #[error("{addr}: {source}")]
    Reply {
        addr: SocketAddr,
        #[source]
        source: ReplyError,
    },
    #[error("{addr}: TLS handshake: {message}")]
    Tls { addr: SocketAddr, message: String },
    #[error(
        "{addr}: the server sent {0} octets after its STARTTLS reply; refusing them (possible \
         STARTTLS command injection)",
        octets
    )]
    TlsInjection { addr: SocketAddr, octets: usize },
    #[error("{addr}: TLS is already active")]
    AlreadyTls { addr: SocketAddr },
}

/// Who said a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Said {
    Client,
    Server,
    /// A note from the client itself, such as "TLS established".
    Note,
}

/// Receives every line of the conversation (secrets already masked), for `-v` transcripts.
pub type Observer = Box<dyn FnMut(Said, &str) + Send>;

/// SASL mechanisms the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMech {
    Plain,
    Login,
}

impl AuthMech {
    pub fn name(self) -> &'static str {
        match self {
            AuthMech::Plain => "PLAIN",
            AuthMech::Login => "LOGIN",
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while a STARTTLS handshake owns the socket.
    Gone,
}

/// One SMTP connection.
pub struct Client {
    io: Io,
    parser: ReplyParser,
    timeout: Duration,
    addr: SocketAddr,
    observer: Option<Observer>,
    caps: Option<EhloCaps>,
}

/// Opens a TCP connection, from `source` when given (multi-homed hosts, or probing from a
/// loopback address that the server does not trust).
async fn tcp_connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, ClientError> {
    let fail = |e: std::io::Error| ClientError::Connect {
        addr,
        message: crate::util::io_message(&e),
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(fail)?;
    if let Some(src) = source {
        socket
            .bind(SocketAddr::new(src, 0))
            .map_err(|e| ClientError::Connect {
                addr,
                message: format!("bind to {src}: {}", crate::util::io_message(&e)),
            })?;
    }
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(fail(e)),
        Err(_) => Err(ClientError::Connect {
            addr,
            message: format!("timed out after {}s", timeout.as_secs()),
        }),
    }
}

async fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let connector = TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ClientError::Tls {
            addr,
            message: e.to_string(),
        }),
        Err(_) => Err(ClientError::Timeout {
            addr,
            secs: timeout.as_secs(),
        }),
    }
}

impl Client {
    /// Connects in plain text. Read the greeting next with [`Client::read_reply`].
    pub async fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let tcp = tcp_connect(addr, source, timeout).await?;
        Ok(Client::new(Io::Plain(tcp), addr, timeout))
    }

    /// Connects with implicit TLS (SMTPS, port 465, RFC 8314).
    pub async fn connect_tls(
        addr: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Client, ClientError> {
        let tcp = tcp_connect(addr, source, timeout).await?;
        let tls = handshake(tcp, addr, config, name, timeout).await?;
        Ok(Client::new(Io::Tls(Box::new(tls)), addr, timeout))
    }

    fn new(io: Io, addr: SocketAddr, timeout: Duration) -> Client {
        Client {
            io,
            parser: ReplyParser::new(),
            timeout,
            addr,
            observer: None,
            caps: None,
        }
    }

    pub fn set_observer(&mut self, observer: Observer) {
        self.observer = Some(observer);
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    pub fn peer(&self) -> SocketAddr {
        self.addr
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// The TLS protocol version and cipher suite, for logs (`TLSv1.3:TLS13_AES_256_GCM_SHA384`).
    pub fn tls_info(&self) -> Option<String> {
        let Io::Tls(s) = &self.io else { return None };
        let (_, conn) = s.get_ref();
        let v = conn.protocol_version().map(|v| format!("{v:?}"))?;
        let c = conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default();
        Some(format!("{}:{c}", v.replace('_', ".")))
    }

    /// The extensions from the last successful EHLO (none after HELO or STARTTLS).
    pub fn caps(&self) -> Option<&EhloCaps> {
        self.caps.as_ref()
    }

    fn note(&mut self, said: Said, text: &str) {
        if let Some(o) = self.observer.as_mut() {
            o(said, text);
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let addr = self.addr;
        let timeout = self.timeout;
        let fut = async {
            match &mut self.io {
                Io::Plain(s) => s.write_all(bytes).await?,
                Io::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await?
                }
                Io::Gone => return Err(std::io::ErrorKind::NotConnected.into()),
            }
            Ok::<(), std::io::Error>(())
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(ClientError::Closed { addr })
            }
            Ok(Err(e)) => Err(ClientError::Io {
                addr,
                message: crate::util::io_message(&e),
            }),
            Err(_) => Err(ClientError::Timeout {
                addr,
                secs: timeout.as_secs(),
            }),
        }
    }

    /// Sends one command line (CRLF added).
    pub async fn send(&mut self, line: &str) -> Result<(), ClientError> {
        self.note(Said::Client, line);
        self.write(format!("{line}\r\n").as_bytes()).await
    }

    /// Sends several command lines in one write (a PIPELINING group, RFC 2920); read their
    /// replies in order with [`Client::read_reply`].
    pub async fn send_group(&mut self, lines: &[String]) -> Result<(), ClientError> {
        let mut wire = Vec::new();
        for line in lines {
            self.note(Said::Client, line);
            wire.extend_from_slice(line.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        self.write(&wire).await
    }

    /// Sends a line that carries a secret; the transcript shows `shown` instead.
    pub async fn send_secret(&mut self, line: &str, shown: &str) -> Result<(), ClientError> {
        self.note(Said::Client, shown);
        self.write(format!("{line}\r\n").as_bytes()).await
    }

    /// Reads the next complete reply.
    pub async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let addr = self.addr;
        loop {
            match self.parser.next_reply() {
                Ok(Some(r)) => {
                    for (i, l) in r.lines.iter().enumerate() {
                        let sep = if i + 1 == r.lines.len() { ' ' } else { '-' };
                        let shown = format!("{:03}{sep}{l}", r.code);
                        self.note(Said::Server, &shown);
                    }
                    return Ok(r);
                }
                Ok(None) => {}
                Err(source) => return Err(ClientError::Reply { addr, source }),
            }
            let mut buf = [0u8; 4096];
            let timeout = self.timeout;
            let fut = async {
                match &mut self.io {
                    Io::Plain(s) => s.read(&mut buf).await,
                    Io::Tls(s) => s.read(&mut buf).await,
                    Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
                }
            };
            let n = match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(0)) => return Err(ClientError::Closed { addr }),
                Ok(Ok(n)) => n,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(ClientError::Closed { addr });
                }
                Ok(Err(e)) => {
                    return Err(ClientError::Io {
                        addr,
                        message: crate::util::io_message(&e),
                    });
                }
                Err(_) => {
                    return Err(ClientError::Timeout {
                        addr,
                        secs: timeout.as_secs(),
                    });
                }
            };
            self.parser.feed(&buf[..n]);
        }
    }

    /// Sends a command and reads its reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.send(line).await?;
        self.read_reply().await
    }

    /// EHLO; on 250 the advertised extensions are kept (see [`Client::caps`]).
    pub async fn ehlo(&mut self, name: &str) -> Result<Reply, ClientError> {
        let r = self.command(&format!("EHLO {name}")).await?;
        self.caps = (r.code == 250).then(|| codec::parse_ehlo(&r));
        Ok(r)
    }

    pub async fn helo(&mut self, name: &str) -> Result<Reply, ClientError> {
        self.caps = None;
        self.command(&format!("HELO {name}")).await
    }

    /// STARTTLS (RFC 3207). On 220 the handshake follows and the old extensions are
    /// forgotten: send EHLO again. Anything the server sent after its 220 in plain text is an
    /// attack on the client (it would be read as if it came through TLS) and ends the session.
    pub async fn starttls(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Reply, ClientError> {
        let addr = self.addr;
        if self.is_tls() {
            return Err(ClientError::AlreadyTls { addr });
        }
        let r = self.command("STARTTLS").await?;
        if r.code != 220 {
            return Ok(r);
        }
        let extra = self.parser.discard();
        if extra > 0 {
            return Err(ClientError::TlsInjection {
                addr,
                octets: extra,
            });
        }
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(ClientError::AlreadyTls { addr });
        };
        let tls = handshake(tcp, addr, config, name, self.timeout).await?;
        self.io = Io::Tls(Box::new(tls));
        self.caps = None;
        let info = self.tls_info().unwrap_or_default();
        self.note(Said::Note, &format!("TLS started ({info})"));
        Ok(r)
    }

    /// AUTH with PLAIN (initial response) or LOGIN. The credentials never reach the observer.
    pub async fn auth(
        &mut self,
        mech: AuthMech,
        user: &str,
        password: &str,
    ) -> Result<Reply, ClientError> {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        match mech {
            AuthMech::Plain => {
                let token = b64(format!("\0{user}\0{password}").as_bytes());
                self.send_secret(&format!("AUTH PLAIN {token}"), "AUTH PLAIN ********")
                    .await?;
                self.read_reply().await
            }
            AuthMech::Login => {
                let r = self.command("AUTH LOGIN").await?;
                if r.code != 334 {
                    return Ok(r);
                }
                self.send_secret(&b64(user.as_bytes()), "********").await?;
                let r = self.read_reply().await?;
                if r.code != 334 {
                    return Ok(r);
                }
                self.send_secret(&b64(password.as_bytes()), "********")
                    .await?;
                self.read_reply().await
            }
        }
    }

    /// After a 354: sends the message, dot-stuffed and CRLF-normalized, and reads the reply.
    pub async fn send_message(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let wire = codec::encode_data(message);
        if self.observer.is_some() {
            let text = String::from_utf8_lossy(&wire).into_owned();
            for line in text.trim_end_matches("\r\n").split("\r\n") {
                self.note(Said::Client, line);
            }
        }
        self.write(&wire).await?;
        self.read_reply().await
    }

    /// DATA, then the message if the server says 354. Returns the last reply.
    pub async fn data(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let r = self.command("DATA").await?;
        if r.code != 354 {
            return Ok(r);
        }
        self.send_message(message).await
    }

    /// [`Client::data`] for queued content of any size: a message file is read, encoded and
    /// written a chunk at a time, each write under the timeout. If the file cannot be read the
    /// data is never ended, so the server discards it, and the error comes back.
    pub async fn data_content(&mut self, content: &Content) -> Result<Reply, ClientError> {
        if let Some(bytes) = content.as_bytes() {
            return self.data(bytes).await;
        }
        let r = self.command("DATA").await?;
        if r.code != 354 {
            return Ok(r);
        }
        let addr = self.addr;
        let io_err = |e: std::io::Error| ClientError::Io {
            addr,
            message: crate::util::io_message(&e),
        };
        let mut reader = content.async_reader().await.map_err(io_err)?;
        let mut buf = vec![0u8; crate::content::CHUNK];
        let mut wire = Vec::with_capacity(crate::content::CHUNK + crate::content::CHUNK / 8);
        let mut encoder = crate::wire::dot::DotEncoder::new();
        self.note(
            Said::Client,
            &format!("<{} bytes of message data>", content.len()),
        );
        loop {
            let n = reader.read(&mut buf).await.map_err(io_err)?;
            if n == 0 {
                break;
            }
            wire.clear();
            encoder.feed(&buf[..n], &mut wire);
            self.write(&wire).await?;
        }
        wire.clear();
        encoder.finish(&mut wire);
        self.write(&wire).await?;
        self.read_reply().await
    }

    /// QUIT and close. Errors are ignored: the transaction is already settled.
    pub async fn quit(mut self) -> Option<Reply> {
        let r = self.command("QUIT").await.ok();
        match &mut self.io {
            Io::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Io::Tls(s) => {
                let _ = s.shutdown().await;
            }
            Io::Gone => {}
        }
        r
    }
}

/// Splits `HOST[:PORT]`, `[IPv6]:PORT`, or a bare IPv6 address (more than one colon). Port 0
/// and host names with white space or control characters are refused: nothing can be reached
/// there. Every client tool, and the smart host, parse servers with this.
pub fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "{s}: bad port \"{}\"",
            crate::address::echo_text(p)
        )),
        Ok(n) => Ok(n),
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s}: missing ']'"))?;
        match after {
            "" => (host, default_port),
            a => match a.strip_prefix(':') {
                Some(p) => (host, port(p)?),
                None => return Err(format!("{s}: unexpected text after ']'")),
            },
        }
    } else if s.matches(':').count() > 1 {
        (s, default_port)
    } else if let Some((h, p)) = s.split_once(':') {
        (h, port(p)?)
    } else {
        (s, default_port)
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("{s}: invalid host name"));
    }
    Ok((host.to_string(), port))
}

/// Resolves a host name or address with the system resolver (for the command-line tools;
/// the server uses [`crate::dns`]).
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host}: {}", crate::util::io_message(&e)))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("{host}: no address"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("mx", 25), Ok(("mx".into(), 25)));
        assert_eq!(split_host_port("mx:2525", 25), Ok(("mx".into(), 2525)));
        assert_eq!(split_host_port("[::1]:26", 25), Ok(("::1".into(), 26)));
        assert_eq!(split_host_port("[::1]", 25), Ok(("::1".into(), 25)));
        assert_eq!(split_host_port("::1", 25), Ok(("::1".into(), 25)));
        assert!(split_host_port("mx:x", 25).is_err());
        assert!(split_host_port(":25", 25).is_err());
        assert!(split_host_port("", 25).is_err());
        assert!(split_host_port("mx:0", 25).is_err());
        assert!(split_host_port("[::1]:0", 25).is_err());
        assert!(split_host_port("m x:25", 25).is_err());
        assert!(split_host_port("[::1]x", 25).is_err());
    }

    /// A scripted server on loopback: what the client sends, and what it reads back.
    async fn script(server_says: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(server_says).await.unwrap();
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
            got
        });
        (addr, h)
    }

    #[tokio::test]
    async fn a_pipelined_transaction_against_a_scripted_server() {
        let (addr, h) = script(
            b"220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n\
              235 2.7.0 ok\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n250 2.0.0 queued\r\n221 bye\r\n",
        )
        .await;
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut c = Client::connect(
            addr,
            Some("127.0.0.1".parse().unwrap()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let s2 = seen.clone();
        c.set_observer(Box::new(move |w, l| {
            s2.lock().unwrap().push(format!("{w:?} {l}"))
        }));
        assert_eq!(c.read_reply().await.unwrap().code, 220);
        c.ehlo("client.test").await.unwrap();
        assert!(c.caps().unwrap().pipelining);
        assert_eq!(c.caps().unwrap().auth, ["PLAIN", "LOGIN"]);
        assert_eq!(
            c.auth(AuthMech::Plain, "u", "sekret").await.unwrap().code,
            235
        );
        assert_eq!(c.command("MAIL FROM:<a@b>").await.unwrap().code, 250);
        assert_eq!(c.command("RCPT TO:<c@d>").await.unwrap().code, 250);
        let r = c.data(b"Subject: x\n\n.hidden\n").await.unwrap();
        assert_eq!(r, Reply::new(250, "2.0.0 queued"));
        assert_eq!(c.quit().await.unwrap().code, 221);
        let got = String::from_utf8(h.await.unwrap()).unwrap();
        assert!(got.contains("AUTH PLAIN AHUAc2VrcmV0\r\n"), "{got}");
        assert!(
            got.contains("DATA\r\nSubject: x\r\n\r\n..hidden\r\n.\r\nQUIT\r\n"),
            "{got}"
        );
        let seen = seen.lock().unwrap().join("\n");
        assert!(seen.contains("Client AUTH PLAIN ********") && !seen.contains("AHUAc2VrcmV0"));
        assert!(seen.contains("Server 250-PIPELINING"));
    }

    #[tokio::test]
    async fn plaintext_after_the_starttls_reply_is_refused() {
        // The classic injection: the 220 and a forged reply arrive in one segment.
        let (addr, _h) = script(b"220 mx\r\n250 mx\r\n220 go ahead\r\n250 injected\r\n").await;
        let mut c = Client::connect(addr, None, Duration::from_secs(5))
            .await
            .unwrap();
        c.read_reply().await.unwrap();
        c.ehlo("x").await.unwrap();
        let cfg = crate::tls::client_config(&crate::tls::Verify::Nothing).unwrap();
        let name = crate::tls::server_name("mx").unwrap();
        assert!(matches!(
            c.starttls(cfg, name).await,
            Err(ClientError::TlsInjection { octets: 14, .. })
        ));
    }

    #[tokio::test]
    async fn closed_connections_and_silence_are_errors() {
        let (addr, _h) = script(b"220 mx\r\n").await;
        let mut c = Client::connect(addr, None, Duration::from_millis(300))
            .await
            .unwrap();
        c.read_reply().await.unwrap();
        assert!(matches!(
            c.read_reply().await,
            Err(ClientError::Timeout { .. })
        ));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert!(matches!(
            Client::connect(addr, None, Duration::from_secs(5)).await,
            Err(ClientError::Connect { .. })
        ));
    }
}
