//! Thin async DNS layer over hickory-resolver 0.26 (tokio).
//!
//! Every lookup returns a small enum that the SMTP policy and the delivery
//! code can use directly: a definite negative answer (NXDOMAIN or NODATA) is
//! [`Resolve::NotFound`], while SERVFAIL, REFUSED, timeouts and network
//! errors are [`Resolve::TempFail`].
//!
//! * [`Dns::client_resolve`] implements sendmail's `${client_resolve}` macro
//!   (`OK` / `FORGED` / `FAIL` / `TEMP`, docs/sendmail-compat.md §6.2, §6.4 and the
//!   seed's `Local_check_relay` rules).
//! * [`Dns::dnsbl`] / [`Dns::dnsbl_txt`] implement FEATURE(`dnsbl`) lookups
//!   (§7): `d.c.b.a.zone.` A records, IPv4 only.
//! * [`Dns::mx`] / [`Dns::addresses`] serve outbound delivery, including the
//!   RFC 7505 null MX.
//!
//! Caching is off, so a change on the name server is seen by the next lookup.
//! With an explicit server list `/etc/hosts` is not consulted either (the
//! answers come from those servers only); with the system configuration
//! (`servers` empty) hickory's default hosts-file handling applies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

/// Number of tries per name server query (like resolv.conf `attempts`).
const ATTEMPTS: usize = 2;

/// Errors while setting the resolver up.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// `/etc/resolv.conf` (or the platform equivalent) could not be read.
    #[error("cannot read the system DNS configuration: {0}")]
    SystemConfig(String),
    /// hickory refused the configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
}

/// Result of one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolve<T> {
    /// The name exists and has records of the wanted type.
    Found(T),
    /// NXDOMAIN, or the name exists without records of that type (NODATA).
    NotFound,
    /// SERVFAIL, REFUSED, timeout, network error… (try again later).
    TempFail(String),
}

impl<T> Resolve<T> {
    /// The found value, if any.
    pub fn found(self) -> Option<T> {
        match self {
            Resolve::Found(v) => Some(v),
            _ => None,
        }
    }

    /// True for [`Resolve::Found`].
    pub fn is_found(&self) -> bool {
        matches!(self, Resolve::Found(_))
    }

    /// True for [`Resolve::TempFail`].
    pub fn is_temp(&self) -> bool {
        matches!(self, Resolve::TempFail(_))
    }

    /// Maps the found value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Resolve<U> {
        match self {
            Resolve::Found(v) => Resolve::Found(f(v)),
            Resolve::NotFound => Resolve::NotFound,
            Resolve::TempFail(e) => Resolve::TempFail(e),
        }
    }
}

/// sendmail's `${client_resolve}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientResolve {
    /// `OK`: the PTR name's forward lookup contains the client address.
    Ok(String),
    /// `FORGED`: a PTR name exists but its A/AAAA records do not contain the
    /// client address (or the name does not resolve at all).
    Forged(String),
    /// `FAIL`: the address has no PTR record.
    Fail,
    /// `TEMP`: a temporary DNS failure at any step.
    Temp,
}

impl ClientResolve {
    /// The macro value: `OK`, `FORGED`, `FAIL` or `TEMP`.
    pub fn as_macro(&self) -> &'static str {
        match self {
            ClientResolve::Ok(_) => "OK",
            ClientResolve::Forged(_) => "FORGED",
            ClientResolve::Fail => "FAIL",
            ClientResolve::Temp => "TEMP",
        }
    }

    /// The PTR name (lower case, no trailing dot) for `Ok` and `Forged`.
    pub fn name(&self) -> Option<&str> {
        match self {
            ClientResolve::Ok(n) | ClientResolve::Forged(n) => Some(n),
            ClientResolve::Fail | ClientResolve::Temp => None,
        }
    }

    /// `${client_name}` as sendmail sets it: the PTR name when there is one,
    /// else the address in brackets (`[1.2.3.4]`, `[IPv6:…]` for IPv6).
    pub fn client_name(&self, ip: IpAddr) -> String {
        match self.name() {
            Some(n) => n.to_string(),
            None => match canonical_ip(ip) {
                IpAddr::V4(v4) => format!("[{v4}]"),
                IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
            },
        }
    }
}

/// Answer of an MX lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mx {
    /// Exchanges as `(preference, host)`, sorted by preference (stable for
    /// ties: server order kept); hosts lower case without trailing dot.
    Hosts(Vec<(u16, String)>),
    /// RFC 7505 null MX (`MX 0 .`): the domain accepts no mail.
    Null,
}

/// How long the SPF/DKIM/DMARC resolver keeps an answer at most, whatever its TTL, and how
/// many it keeps: a changed record is seen within a few minutes, as with any resolver.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(300);
const AUTH_CACHE_ENTRIES: u64 = 4096;

/// The resolver handle. Cheap to clone; needs a tokio runtime to run
/// lookups (building it does not). Clones share one resolver, which
/// [`Dns::reload`] replaces for all of them (SIGHUP).
#[derive(Clone)]
pub struct Dns {
    current: Arc<RwLock<Arc<Resolver>>>,
}

/// One built resolver and the settings it was built from.
struct Resolver {
    resolver: TokioResolver,
    /// The same servers with hickory's cache on (record TTLs, at most [`AUTH_CACHE_TTL`]),
    /// for SPF/DKIM/DMARC: a sender's records are asked for on every message it sends.
    caching: TokioResolver,
    timeout: Duration,
    /// The configured servers (empty: /etc/resolv.conf).
    servers: Vec<SocketAddr>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("timeout", &self.current().timeout)
            .finish_non_exhaustive()
    }
}

impl Dns {
    /// Builds a resolver as [`Dns::new`] does and puts it in place of the old one for every
    /// clone of this handle; lookups already running finish on the old one. On error the
    /// old resolver stays.
    pub fn reload(&self, servers: &[SocketAddr], timeout: Duration) -> Result<(), DnsError> {
        let fresh = Dns::build(servers, timeout)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    fn current(&self) -> Arc<Resolver> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Builds a resolver querying `servers` (UDP, TCP on truncation), or the
    /// servers of `/etc/resolv.conf` when `servers` is empty. `timeout` is
    /// the per-query timeout (`[dns] timeout`); each query is tried
    /// [`ATTEMPTS`] times at most.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Dns, DnsError> {
        Ok(Dns {
            current: Arc::new(RwLock::new(Arc::new(Dns::build(servers, timeout)?))),
        })
    }

    fn build(servers: &[SocketAddr], timeout: Duration) -> Result<Resolver, DnsError> {
        Ok(Resolver {
            resolver: Dns::build_one(servers, timeout, false)?,
            caching: Dns::build_one(servers, timeout, true)?,
            timeout,
            servers: servers.to_vec(),
        })
    }

    fn build_one(
        servers: &[SocketAddr],
        timeout: Duration,
        cache: bool,
    ) -> Result<TokioResolver, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| DnsError::SystemConfig(e.to_string()))?
        } else {
            let name_servers = servers
                .iter()
                .map(|sa| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = sa.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = sa.port();
                    NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
                })
                .collect();
            let mut b = TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                provider,
            );
            let mut opts = ResolverOpts::default();
            opts.use_hosts_file = ResolveHosts::Never;
            *b.options_mut() = opts;
            b
        };
        let opts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = ATTEMPTS;
        if cache {
            opts.cache_size = AUTH_CACHE_ENTRIES;
            opts.positive_max_ttl = Some(AUTH_CACHE_TTL);
            opts.negative_max_ttl = Some(AUTH_CACHE_TTL);
        } else {
            // No caching: every lookup goes to the server.
            opts.cache_size = 0;
            opts.positive_max_ttl = Some(Duration::ZERO);
            opts.negative_max_ttl = Some(Duration::ZERO);
        }
        // Names are always passed fully qualified; no search list games.
        opts.ndots = 0;
        builder.build().map_err(|e| DnsError::Build(e.to_string()))
    }

    /// The caching resolver for mail-auth's SPF/DKIM/DMARC lookups (same servers, timeout
    /// and attempts as every other lookup).
    pub fn tokio_resolver(&self) -> TokioResolver {
        self.current().caching.clone()
    }

    /// The configured per-query timeout.
    pub fn timeout(&self) -> Duration {
        self.current().timeout
    }

    /// One raw lookup with an overall time bound.
    async fn lookup(&self, name: &str, rtype: RecordType) -> Resolve<Lookup> {
        let name = match fqdn(name) {
            Some(n) => n,
            // A name that cannot exist in the DNS.
            None => return Resolve::NotFound,
        };
        let cur = self.current();
        let bound = cur.timeout * ATTEMPTS as u32 + Duration::from_millis(500);
        match tokio::time::timeout(bound, cur.resolver.lookup(name, rtype)).await {
            Err(_) => Resolve::TempFail(format!("{rtype} lookup timed out")),
            Ok(Ok(lookup)) => Resolve::Found(lookup),
            Ok(Err(e)) => classify(&e),
        }
    }

    /// PTR names of `ip` (lower case, no trailing dot, in server order).
    pub async fn ptr(&self, ip: IpAddr) -> Resolve<Vec<String>> {
        let ip = canonical_ip(ip);
        if ip.is_loopback() && !self.current().servers.is_empty() {
            // hickory answers every 127/8 PTR with "localhost" itself (RFC 6761), without
            // asking; with explicit servers (tests use 127.0.0.x as separate hosts) ask them.
            return self.raw_ptr(ip).await;
        }
        match self.lookup(&reverse_name(ip), RecordType::PTR).await {
            Resolve::Found(l) => ptr_names(l.answers()),
            Resolve::NotFound => Resolve::NotFound,
            Resolve::TempFail(e) => Resolve::TempFail(e),
        }
    }

    /// A PTR query sent straight to the configured servers over UDP.
    async fn raw_ptr(&self, ip: IpAddr) -> Resolve<Vec<String>> {
        use hickory_resolver::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
        let Ok(name) = Name::from_ascii(reverse_name(ip)) else {
            return Resolve::NotFound;
        };
        let id: u16 = rand_id();
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name, RecordType::PTR));
        let Ok(bytes) = msg.to_vec() else {
            return Resolve::TempFail("encode".into());
        };
        let cur = self.current();
        let mut last = String::from("no server answered");
        for _ in 0..ATTEMPTS {
            for server in &cur.servers {
                let bind: SocketAddr = if server.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                }
                .parse()
                .unwrap_or(*server);
                let Ok(sock) = tokio::net::UdpSocket::bind(bind).await else {
                    continue;
                };
                if sock.send_to(&bytes, server).await.is_err() {
                    continue;
                }
                let mut buf = vec![0u8; 4096];
                match tokio::time::timeout(cur.timeout, sock.recv_from(&mut buf)).await {
                    Ok(Ok((n, _))) => {
                        let Ok(reply) = Message::from_vec(&buf[..n]) else {
                            continue;
                        };
                        if reply.metadata.id != id {
                            continue;
                        }
                        return match reply.metadata.response_code {
                            ResponseCode::NoError => ptr_names(&reply.answers),
                            ResponseCode::NXDomain => Resolve::NotFound,
                            other => Resolve::TempFail(format!("{other}")),
                        };
                    }
                    Ok(Err(e)) => last = e.to_string(),
                    Err(_) => last = "timeout".into(),
                }
            }
        }
        Resolve::TempFail(last)
    }

    /// sendmail's `${client_resolve}` for a connecting client.
    ///
    /// The forward lookup uses the client's address family (A for IPv4,
    /// AAAA for IPv6) as sendmail does. With several PTR names the first
    /// one whose forward lookup contains the address wins; if none does the
    /// result is `Forged(first name)`, or `Temp` if a forward lookup failed
    /// temporarily.
    pub async fn client_resolve(&self, ip: IpAddr) -> ClientResolve {
        let ip = canonical_ip(ip);
        let names = match self.ptr(ip).await {
            Resolve::Found(n) => n,
            Resolve::NotFound => return ClientResolve::Fail,
            Resolve::TempFail(_) => return ClientResolve::Temp,
        };
        let rtype = match ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        let mut temp = false;
        for name in &names {
            match self.lookup(name, rtype).await {
                Resolve::Found(l) => {
                    if ips_of(&l).any(|a| a == ip) {
                        return ClientResolve::Ok(name.clone());
                    }
                }
                Resolve::NotFound => {}
                Resolve::TempFail(_) => temp = true,
            }
        }
        if temp {
            ClientResolve::Temp
        } else {
            ClientResolve::Forged(names[0].clone())
        }
    }

    /// FEATURE(`dnsbl`): the A records of `d.c.b.a.zone.` for an IPv4
    /// client. IPv6 clients are never looked up (`NotFound`), as in
    /// sendmail 8.13.
    pub async fn dnsbl(&self, ip: IpAddr, zone: &str) -> Resolve<Vec<Ipv4Addr>> {
        let IpAddr::V4(v4) = canonical_ip(ip) else {
            return Resolve::NotFound;
        };
        match self
            .lookup(&dnsbl_query_name(v4, zone), RecordType::A)
            .await
        {
            Resolve::Found(l) => {
                let v: Vec<Ipv4Addr> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect();
                if v.is_empty() {
                    Resolve::NotFound
                } else {
                    Resolve::Found(v)
                }
            }
            Resolve::NotFound => Resolve::NotFound,
            Resolve::TempFail(e) => Resolve::TempFail(e),
        }
    }

    /// The TXT records of `d.c.b.a.zone.` (each record's strings joined),
    /// for a listing's explanation text. IPv6 → `NotFound`.
    pub async fn dnsbl_txt(&self, ip: IpAddr, zone: &str) -> Resolve<Vec<String>> {
        let IpAddr::V4(v4) = canonical_ip(ip) else {
            return Resolve::NotFound;
        };
        self.txt(&dnsbl_query_name(v4, zone)).await
    }

    /// TXT records of `name`, each record's character-strings concatenated.
    pub async fn txt(&self, name: &str) -> Resolve<Vec<String>> {
        match self.lookup(name, RecordType::TXT).await {
            Resolve::Found(l) => {
                let v: Vec<String> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                if v.is_empty() {
                    Resolve::NotFound
                } else {
                    Resolve::Found(v)
                }
            }
            Resolve::NotFound => Resolve::NotFound,
            Resolve::TempFail(e) => Resolve::TempFail(e),
        }
    }

    /// MX records of `domain`, sorted by preference (ties keep the server's
    /// order). `NotFound` means no MX (NXDOMAIN or NODATA): the caller
    /// falls back to the domain's own addresses (RFC 5321 §5.1).
    pub async fn mx(&self, domain: &str) -> Resolve<Mx> {
        match self.lookup(domain, RecordType::MX).await {
            Resolve::Found(l) => {
                let mut v: Vec<(u16, String)> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                        _ => None,
                    })
                    .map(|(p, n)| {
                        (
                            p,
                            if n.is_root() {
                                String::new()
                            } else {
                                display_name(&n)
                            },
                        )
                    })
                    .collect();
                if v.is_empty() {
                    return Resolve::NotFound;
                }
                if v.len() == 1 && v[0].1.is_empty() {
                    return Resolve::Found(Mx::Null);
                }
                // A root exchange mixed with real ones is bogus: skip it.
                v.retain(|(_, n)| !n.is_empty());
                v.sort_by_key(|(p, _)| *p);
                Resolve::Found(Mx::Hosts(v))
            }
            Resolve::NotFound => Resolve::NotFound,
            Resolve::TempFail(e) => Resolve::TempFail(e),
        }
    }

    /// A and AAAA records of `host` (A first, then AAAA). `Found` when either
    /// family has addresses; `TempFail` when neither has and one lookup
    /// failed temporarily; `NotFound` when both are negative.
    pub async fn addresses(&self, host: &str) -> Resolve<Vec<IpAddr>> {
        // A literal address resolves to itself.
        let lit = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let lit = lit.map(|h| h.strip_prefix("IPv6:").unwrap_or(h));
        if let Ok(ip) = lit.unwrap_or(host).parse::<IpAddr>() {
            return Resolve::Found(vec![ip]);
        }
        let (a, aaaa) = tokio::join!(
            self.lookup(host, RecordType::A),
            self.lookup(host, RecordType::AAAA)
        );
        let mut out = Vec::new();
        let mut temp = None;
        for r in [a, aaaa] {
            match r {
                Resolve::Found(l) => {
                    for ip in ips_of(&l) {
                        if !out.contains(&ip) {
                            out.push(ip);
                        }
                    }
                }
                Resolve::NotFound => {}
                Resolve::TempFail(e) => temp = Some(e),
            }
        }
        match (out.is_empty(), temp) {
            (false, _) => Resolve::Found(out),
            (true, Some(e)) => Resolve::TempFail(e),
            (true, None) => Resolve::NotFound,
        }
    }
}

/// Maps a hickory error onto [`Resolve`].
fn classify<T>(e: &NetError) -> Resolve<T> {
    if e.is_no_records_found() || e.is_nx_domain() {
        Resolve::NotFound
    } else {
        Resolve::TempFail(e.to_string())
    }
}

/// A fully-qualified hickory name, or `None` when `name` is not a valid
/// domain name.
fn fqdn(name: &str) -> Option<Name> {
    let name = name.trim();
    if name.is_empty() || name.contains("..") {
        return None;
    }
    let mut n = Name::from_str_relaxed(name).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// Lower case, no trailing dot.
fn display_name(n: &Name) -> String {
    let s = n.to_lowercase().to_ascii();
    s.trim_end_matches('.').to_string()
}

/// The A and AAAA addresses in a lookup's answer section.
fn ips_of(l: &Lookup) -> impl Iterator<Item = IpAddr> + '_ {
    l.answers().iter().filter_map(|r| match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    })
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) → IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The reverse-lookup name of `ip`, with trailing dot:
/// `4.3.2.1.in-addr.arpa.` or the 32-nibble `….ip6.arpa.`.
/// The PTR names in an answer section; none is NotFound (NODATA).
fn ptr_names(answers: &[hickory_resolver::proto::rr::Record]) -> Resolve<Vec<String>> {
    let names: Vec<String> = answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(display_name(&p.0)),
            _ => None,
        })
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        Resolve::NotFound
    } else {
        Resolve::Found(names)
    }
}

/// A query id that is hard to guess (RFC 5452), from the OS random source via std's hasher.
fn rand_id() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() as u16
}

pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa.")
        }
        IpAddr::V6(v6) => ip6_reverse(v6),
    }
}

fn ip6_reverse(v6: Ipv6Addr) -> String {
    let mut s = String::with_capacity(73);
    for byte in v6.octets().iter().rev() {
        s.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        s.push('.');
        s.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        s.push('.');
    }
    s.push_str("ip6.arpa.");
    s
}

/// The DNSBL query name for `ip` in `zone`: `d.c.b.a.zone.` (the zone's
/// own leading/trailing dots are ignored).
pub fn dnsbl_query_name(ip: Ipv4Addr, zone: &str) -> String {
    let [a, b, c, d] = ip.octets();
    let zone = zone.trim().trim_matches('.');
    format!("{d}.{c}.{b}.{a}.{zone}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_v4() {
        assert_eq!(
            reverse_name("192.0.2.10".parse().unwrap()),
            "10.2.0.192.in-addr.arpa."
        );
    }

    #[test]
    fn reverse_v6() {
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa."
        );
    }

    #[test]
    fn dnsbl_name() {
        let ip: Ipv4Addr = "127.0.0.2".parse().unwrap();
        assert_eq!(
            dnsbl_query_name(ip, "relays.ordb.org"),
            "2.0.0.127.relays.ordb.org."
        );
        assert_eq!(dnsbl_query_name(ip, "dnsbl.test."), "2.0.0.127.dnsbl.test.");
        assert_eq!(dnsbl_query_name(ip, ".dnsbl.test"), "2.0.0.127.dnsbl.test.");
    }

    #[test]
    fn mapped_addresses_are_v4() {
        let ip: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(canonical_ip(ip), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    }

    #[test]
    fn client_name_forms() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ClientResolve::Fail.client_name(v4), "[192.0.2.1]");
        assert_eq!(ClientResolve::Temp.client_name(v6), "[IPv6:2001:db8::1]");
        assert_eq!(
            ClientResolve::Forged("a.example".into()).client_name(v4),
            "a.example"
        );
        assert_eq!(ClientResolve::Ok("x".into()).as_macro(), "OK");
        assert_eq!(ClientResolve::Forged("x".into()).as_macro(), "FORGED");
        assert_eq!(ClientResolve::Fail.as_macro(), "FAIL");
        assert_eq!(ClientResolve::Temp.as_macro(), "TEMP");
    }

    #[test]
    fn fqdn_parsing() {
        assert!(fqdn("example.com").unwrap().is_fqdn());
        assert!(fqdn("example.com.").unwrap().is_fqdn());
        assert!(fqdn("").is_none());
        assert!(fqdn("a..b").is_none());
    }

    #[test]
    fn resolve_helpers() {
        let r: Resolve<u8> = Resolve::Found(1);
        assert!(r.is_found());
        assert_eq!(r.map(|x| x + 1).found(), Some(2));
        assert!(Resolve::<u8>::TempFail("x".into()).is_temp());
        assert_eq!(Resolve::<u8>::NotFound.found(), None);
    }

    #[test]
    fn builds_outside_a_runtime() {
        let d = Dns::new(&["127.0.0.1:53".parse().unwrap()], Duration::from_secs(1));
        assert!(d.is_ok());
        // The system configuration may be missing (then an error), but
        // reading it must not panic.
        let _ = Dns::new(&[], Duration::from_secs(1));
    }
}
