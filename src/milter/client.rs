//! One connection to one milter: connect, negotiate, send a command, read its answers, each
//! within the `[[milter]] timeouts` (sendmail's T=C, S, R and E).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::wire::{self, Command, Framer, Response, WireError};
use crate::config::{Milter, MilterSocket};

/// Why a milter could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MilterError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Wire(#[from] WireError),
    #[error("closed the connection")]
    Closed,
    #[error("answered {0} where {1} was expected")]
    Unexpected(String, &'static str),
    #[error("negotiation: {0}")]
    Negotiation(String),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What the milter asked for in negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u32,
    pub actions: u32,
    pub protocol: u32,
}

impl Negotiated {
    /// Whether the milter asked for `flag` (SMFIP_*).
    pub fn has(&self, flag: u32) -> bool {
        self.protocol & flag != 0
    }
}

pub struct Connection {
    stream: Box<dyn Stream>,
    framer: Framer,
    out: Vec<u8>,
    send: Duration,
    receive: Duration,
    pub negotiated: Negotiated,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("negotiated", &self.negotiated)
            .finish()
    }
}

impl Connection {
    /// Connects to `m` (a unix socket path relocated by `path`) and negotiates options.
    pub async fn open(
        m: &Milter,
        path: impl Fn(&std::path::Path) -> std::path::PathBuf,
    ) -> Result<Connection, MilterError> {
        let t = &m.timeouts;
        let socket = MilterSocket::parse(&m.socket).map_err(MilterError::Negotiation)?;
        let connect = async {
            Ok::<Box<dyn Stream>, std::io::Error>(match &socket {
                MilterSocket::Inet(host, port) => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                    s.set_nodelay(true)?;
                    Box::new(s)
                }
                MilterSocket::Unix(p) => Box::new(tokio::net::UnixStream::connect(path(p)).await?),
            })
        };
        let stream = tokio::time::timeout(t.connect.0, connect)
            .await
            .map_err(|_| MilterError::Timeout("connecting"))?
            .map_err(MilterError::Connect)?;
        let mut c = Connection {
            stream,
            framer: Framer::default(),
            out: Vec::new(),
            send: t.send.0,
            receive: t.receive.0,
            negotiated: Negotiated {
                version: 0,
                actions: 0,
                protocol: 0,
            },
        };
        c.send(&Command::OptNeg {
            version: wire::VERSION,
            actions: wire::action::OFFERED,
            protocol: wire::proto::OFFERED,
        })
        .await?;
        match c.read(c.receive).await? {
            Response::OptNeg {
                version,
                actions,
                protocol,
            } => {
                if version < 2 {
                    return Err(MilterError::Negotiation(format!("version {version}")));
                }
                // A milter asking for what we did not offer would act on an MTA it does not
                // have; sendmail gives up on it too.
                let extra_a = actions & !wire::action::OFFERED;
                // Bits of the protocol word above 0x0fffffff are size hints (SMFIP_MDS_*),
                // which we never exceed anyway.
                let extra_p = protocol & !wire::proto::OFFERED & 0x0fff_ffff;
                if extra_a != 0 || extra_p != 0 {
                    return Err(MilterError::Negotiation(format!(
                        "asks for actions {extra_a:#x}, protocol {extra_p:#x} not offered"
                    )));
                }
                c.negotiated = Negotiated {
                    version,
                    actions,
                    protocol,
                };
                Ok(c)
            }
            other => Err(MilterError::Unexpected(format!("{other:?}"), "options")),
        }
    }

    /// Sends one command within the send timeout.
    pub async fn send(&mut self, cmd: &Command<'_>) -> Result<(), MilterError> {
        self.out.clear();
        cmd.encode(&mut self.out);
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(self.send, write)
            .await
            .map_err(|_| MilterError::Timeout("sending"))??;
        Ok(())
    }

    /// Reads one reply within `timeout`.
    pub async fn read(&mut self, timeout: Duration) -> Result<Response, MilterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some((code, data)) = self.framer.next_packet()? {
                return Ok(wire::decode(code, &data)?);
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .map_err(|_| MilterError::Timeout("waiting for a reply"))??;
            if n == 0 {
                return Err(MilterError::Closed);
            }
            self.framer.feed(&buf[..n]);
        }
    }

    /// Reads a reply within the receive timeout.
    pub async fn reply(&mut self) -> Result<Response, MilterError> {
        self.read(self.receive).await
    }

    /// Tells the milter goodbye, without waiting for anything.
    pub async fn quit(mut self) {
        let _ = self.send(&Command::Quit).await;
        let _ = self.stream.shutdown().await;
    }
}
