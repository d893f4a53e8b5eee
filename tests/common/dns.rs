//! An in-process authoritative test DNS server (hickory-server 0.26) for the
//! black-box tests.
//!
//! It serves every name it is asked about from a flat list of [`Rec`]s, on
//! `127.0.0.1:<ephemeral>` over UDP and TCP (same port), from a std thread
//! running its own tokio runtime, so both sync and async tests can use it.
//! Names are matched case-insensitively, with or without trailing dot:
//!
//! * a `ServFail(name)` entry answers SERVFAIL for every type of that name;
//! * a `Timeout(name)` entry never answers (to test timeouts);
//! * a name with records of the asked type gets them (authoritative answer);
//! * a name with records of other types only gets NODATA (NOERROR, empty);
//! * any other name gets NXDOMAIN.
//!
//! ```ignore
//! let dns = TestDns::start(&[
//!     Rec::a("mail.example1.com", "192.0.2.10"),
//!     Rec::ptr("192.0.2.10", "mail.example1.com"),
//!     Rec::servfail("20.2.0.192.in-addr.arpa"),
//! ]);
//! // [dns] servers = [dns.addr]  (e.g. format!("servers = [\"{}\"]", dns.addr))
//! dns.set(&[...]); // replace the records while running
//! ```
//!
//! The server stops (and its sockets close) when the `TestDns` is dropped.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// One entry of the test zone data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    A(String, Ipv4Addr),
    Aaaa(String, Ipv6Addr),
    /// PTR for an address; served at its in-addr.arpa / ip6.arpa name.
    Ptr(IpAddr, String),
    /// `Mx(domain, preference, exchange)`; exchange `"."` makes a null MX.
    Mx(String, u16, String),
    Txt(String, String),
    /// Answer SERVFAIL for every query of this name.
    ServFail(String),
    /// Never answer queries for this name.
    Timeout(String),
}

impl Rec {
    pub fn a(name: &str, ip: &str) -> Rec {
        Rec::A(name.into(), ip.parse().expect("IPv4 address"))
    }
    pub fn aaaa(name: &str, ip: &str) -> Rec {
        Rec::Aaaa(name.into(), ip.parse().expect("IPv6 address"))
    }
    pub fn ptr(ip: &str, name: &str) -> Rec {
        Rec::Ptr(ip.parse().expect("IP address"), name.into())
    }
    pub fn mx(domain: &str, pref: u16, exchange: &str) -> Rec {
        Rec::Mx(domain.into(), pref, exchange.into())
    }
    pub fn txt(name: &str, text: &str) -> Rec {
        Rec::Txt(name.into(), text.into())
    }
    pub fn servfail(name: &str) -> Rec {
        Rec::ServFail(name.into())
    }
    /// SERVFAIL for the reverse name of `ip`.
    pub fn ptr_servfail(ip: &str) -> Rec {
        Rec::ServFail(reverse(ip.parse().expect("IP address")))
    }
    pub fn timeout(name: &str) -> Rec {
        Rec::Timeout(name.into())
    }

    /// The (normalised) owner name of the entry.
    fn owner(&self) -> String {
        match self {
            Rec::A(n, _)
            | Rec::Aaaa(n, _)
            | Rec::Mx(n, _, _)
            | Rec::Txt(n, _)
            | Rec::ServFail(n)
            | Rec::Timeout(n) => norm(n),
            Rec::Ptr(ip, _) => norm(&reverse(*ip)),
        }
    }

    fn rtype(&self) -> Option<RecordType> {
        match self {
            Rec::A(..) => Some(RecordType::A),
            Rec::Aaaa(..) => Some(RecordType::AAAA),
            Rec::Ptr(..) => Some(RecordType::PTR),
            Rec::Mx(..) => Some(RecordType::MX),
            Rec::Txt(..) => Some(RecordType::TXT),
            Rec::ServFail(_) | Rec::Timeout(_) => None,
        }
    }

    fn rdata(&self) -> Option<RData> {
        Some(match self {
            Rec::A(_, ip) => RData::A(A(*ip)),
            Rec::Aaaa(_, ip) => RData::AAAA(AAAA(*ip)),
            Rec::Ptr(_, n) => RData::PTR(PTR(name(n))),
            Rec::Mx(_, p, x) => RData::MX(MX::new(*p, name(x))),
            // One character-string holds at most 255 bytes (RFC 1035 §3.3): a DKIM key's
            // record is published as several, which resolvers join.
            Rec::Txt(_, t) => RData::TXT(TXT::new(
                t.as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect(),
            )),
            Rec::ServFail(_) | Rec::Timeout(_) => return None,
        })
    }
}

/// Lower case, no trailing dot.
fn norm(n: &str) -> String {
    n.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn name(n: &str) -> Name {
    let mut name = Name::from_ascii(n.trim()).expect("valid domain name");
    name.set_fqdn(true);
    name
}

/// The reverse-lookup name of `ip` (in-addr.arpa / ip6.arpa).
pub fn reverse(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for byte in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            s + "ip6.arpa."
        }
    }
}

/// What the handler shares with the [`TestDns`] handle.
#[derive(Default)]
struct State {
    records: RwLock<Vec<Rec>>,
    /// Every query received, as `"name TYPE"` (name normalised).
    log: Mutex<Vec<String>>,
}

struct Handler(Arc<State>);

enum Outcome {
    Answer(Vec<Record>),
    NoData,
    NxDomain,
    ServFail,
    Silent,
}

impl Handler {
    fn resolve(&self, qname: &Name, qtype: RecordType) -> Outcome {
        let key = norm(&qname.to_ascii());
        let recs = self.0.records.read().unwrap_or_else(|e| e.into_inner());
        let mine: Vec<&Rec> = recs.iter().filter(|r| r.owner() == key).collect();
        if mine.iter().any(|r| matches!(r, Rec::Timeout(_))) {
            return Outcome::Silent;
        }
        if mine.iter().any(|r| matches!(r, Rec::ServFail(_))) {
            return Outcome::ServFail;
        }
        if mine.is_empty() {
            return Outcome::NxDomain;
        }
        let answers: Vec<Record> = mine
            .iter()
            .filter(|r| r.rtype() == Some(qtype) || qtype == RecordType::ANY)
            .filter_map(|r| r.rdata())
            .map(|d| Record::from_rdata(qname.clone(), 60, d))
            .collect();
        if answers.is_empty() {
            Outcome::NoData
        } else {
            Outcome::Answer(answers)
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let fallback = |m: Metadata| {
            ResponseInfo::from(Header {
                metadata: m,
                counts: HeaderCounts::default(),
            })
        };
        let outcome = match request.request_info() {
            Ok(info) => {
                let q = info.query.original();
                self.0
                    .log
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{} {}", norm(&q.name().to_ascii()), q.query_type()));
                self.resolve(q.name(), q.query_type())
            }
            Err(_) => {
                metadata.response_code = ResponseCode::FormErr;
                Outcome::Answer(Vec::new())
            }
        };
        let answers = match outcome {
            Outcome::Silent => return fallback(metadata),
            Outcome::Answer(a) => a,
            Outcome::NoData => Vec::new(),
            Outcome::NxDomain => {
                metadata.response_code = ResponseCode::NXDomain;
                Vec::new()
            }
            Outcome::ServFail => {
                metadata.response_code = ResponseCode::ServFail;
                metadata.authoritative = false;
                Vec::new()
            }
        };
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            std::iter::empty(),
            std::iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => fallback(metadata),
        }
    }
}

/// A running test DNS server; see the module docs.
pub struct TestDns {
    /// UDP and TCP address of the server (127.0.0.1:<port>).
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestDns {
    /// Starts a server answering from `records`.
    pub fn start(records: &[Rec]) -> TestDns {
        let state = Arc::new(State::default());
        *state.records.write().unwrap() = records.to_vec();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("test-dns".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let (udp, tcp) = bind_pair().await;
                    let addr = udp.local_addr().expect("local addr");
                    let mut server = Server::new(Handler(st));
                    server.register_socket(udp);
                    server.register_listener(tcp, Duration::from_secs(5), 64);
                    addr_tx.send(addr).expect("report address");
                    let _ = stop_rx.await;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), server.shutdown_gracefully())
                            .await;
                });
            })
            .expect("spawn test DNS thread");
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("test DNS server did not start");
        TestDns {
            addr,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Replaces all records (takes effect for the next query).
    pub fn set(&self, records: &[Rec]) {
        *self
            .state
            .records
            .write()
            .unwrap_or_else(|e| e.into_inner()) = records.to_vec();
    }

    /// Adds one record.
    pub fn add(&self, record: Rec) {
        self.state
            .records
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// Every query received so far, as `"name TYPE"` (lower case, no
    /// trailing dot), e.g. `"10.2.0.192.in-addr.arpa PTR"`.
    pub fn queries(&self) -> Vec<String> {
        self.state
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `servers = ["127.0.0.1:PORT"]` for a `[dns]` config section.
    pub fn config_servers(&self) -> String {
        format!("servers = [\"{}\"]", self.addr)
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same 127.0.0.1 port.
async fn bind_pair() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    let mut last = None;
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind UDP 127.0.0.1");
        let port = udp.local_addr().expect("local addr").port();
        match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(tcp) => return (udp, tcp),
            Err(e) => last = Some(e),
        }
    }
    panic!("no free UDP+TCP port pair on 127.0.0.1: {last:?}");
}
