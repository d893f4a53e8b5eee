//! The server's decisions, as sendmail's rulesets make them (docs/sendmail-compat.md §4, §6.2, §7):
//! who may connect, which senders and recipients are accepted, and who may relay.
//!
//! Everything here is synchronous and works on maps and the facts about the client that the
//! server gathered (its verified name, DNSBL answers), so it can be tested without sockets.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::address::{Domain, Path};
use crate::config::{Config, PtrCheck};
use crate::dns::ClientResolve;
use crate::maps::access::{Access, AccessOptions, Verdict};
use crate::maps::backend::Backends;
use crate::maps::class::{self, ClassR, ClassW, LocalIp};
use crate::maps::table::ServerMap;
use crate::maps::{Map, MapError};
use crate::reply::Rejection;
use crate::route::{Route, Router};

/// What the server knows about the client.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    /// `${client_resolve}` and the PTR name.
    pub resolve: ClientResolve,
    /// Connected to the submission port: relaying needs AUTH.
    pub submission: bool,
    /// The SASL user, once authenticated.
    pub authenticated: Option<String>,
}

impl Client {
    /// `${client_name}`: the PTR name, else `[ip]`.
    pub fn name(&self) -> String {
        self.resolve.client_name(self.ip)
    }

    /// `${client_addr}` as sendmail writes it (`IPv6:` prefix for IPv6).
    pub fn addr(&self) -> String {
        match canonical(self.ip) {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("IPv6:{v6}"),
        }
    }

    /// sendmail's `$_`: `name [ip]`, or `[ip]` without a PTR, plus ` (may be forged)`.
    pub fn hello_text(&self) -> String {
        let ip = canonical(self.ip);
        match &self.resolve {
            ClientResolve::Ok(n) => format!("{n} [{ip}]"),
            ClientResolve::Forged(n) => format!("{n} [{ip}] (may be forged)"),
            _ => format!("[{ip}]"),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The class files, reread on SIGHUP.
#[derive(Debug, Clone, Default)]
pub struct Classes {
    pub w: ClassW,
    pub r: ClassR,
}

/// Settings that decisions depend on, reloaded with the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub access_temp_fail: bool,
    pub pop_before_smtp_ttl: Duration,
    pub ptr_check: PtrCheck,
    /// 127.0.0.1 and ::1 may relay, as sendmail's Relay_ok allows; doctor's self-test turns
    /// this off to probe the server as an outsider would.
    pub relay_from_loopback: bool,
    pub system_users: bool,
    /// AUTH is offered somewhere, so relay denials say "Proper authentication required."
    pub auth_offered: bool,
}

/// The decision maker shared by every session.
pub struct Policy {
    pub access: ServerMap,
    pub virtuser: ServerMap,
    pub aliases: ServerMap,
    pub localip: ServerMap,
    pub popip: ServerMap,
    pub users: ServerMap,
    /// The `[backends]` the maps above may live in, connected on first use.
    pub backends: Backends,
    classes: RwLock<Arc<Classes>>,
    settings: RwLock<Arc<Settings>>,
}

/// A connection-time (check_relay) outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connect {
    /// Nothing special: go on with DNSBL checks.
    Continue,
    /// `Connect:` OK or RELAY: DNSBL is skipped (docs/sendmail-compat.md §4.4, §7).
    Accept,
    /// Refuse every command but QUIT/HELO/EHLO/NOOP/RSET with this reply (§6.6).
    Reject(Rejection),
}

/// An accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptOk {
    pub route: Route,
    /// access `To:` DISCARD: accept, then throw the whole message away.
    pub discard: bool,
}

/// An accepted sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MailOk {
    /// access `From:` DISCARD: accept, then throw the message away (`$#discard`).
    pub discard: bool,
}

/// Why a lookup failed, as a reply: with `-T<TMPF>` a map error is a temporary failure.
fn map_error(temp_fail: bool, e: &MapError) -> Option<Rejection> {
    tracing::warn!("map lookup failed: {e}");
    temp_fail.then(Rejection::temp_failure)
}

impl Policy {
    pub fn new(cfg: &Config) -> Policy {
        let m = &cfg.settings.maps;
        let backends = Backends::new(cfg);
        let open = |name: &str| ServerMap::open(cfg, &backends, name);
        Policy {
            access: open(&m.access),
            virtuser: open(&m.virtusertable),
            aliases: open(&m.aliases),
            localip: open(&m.localip),
            popip: open(&m.popip),
            users: open(&m.users),
            backends,
            classes: RwLock::new(Arc::new(load_classes(cfg))),
            settings: RwLock::new(Arc::new(settings_from(cfg))),
        }
    }

    /// SIGHUP: reread the class files and the settings (maps reload by themselves).
    pub fn reload(&self, cfg: &Config) {
        *self.classes.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(load_classes(cfg));
        *self.settings.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(settings_from(cfg));
    }

    /// Runs `f` with a router over the current maps, classes and settings.
    pub fn with_router<T>(&self, f: impl FnOnce(&Router<'_>) -> T) -> T {
        let classes = self.classes();
        let s = self.settings();
        f(&self.router(&classes, &s))
    }

    fn router<'a>(&'a self, classes: &'a Classes, s: &'a Settings) -> Router<'a> {
        Router {
            w: &classes.w,
            virtuser: &self.virtuser,
            aliases: &self.aliases,
            users: &self.users,
            hostname: &s.hostname,
            system_users: s.system_users,
        }
    }

    /// Delivery-time routing of a queued recipient, with the rules RCPT used.
    pub fn route(&self, address: &str) -> Result<Route, MapError> {
        let (local, domain) = match address.rsplit_once('@') {
            Some((l, d)) => (l, Some(d)),
            None => (address, None),
        };
        self.with_router(|r| r.resolve(local, domain, address))
    }

    pub fn classes(&self) -> Arc<Classes> {
        self.classes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn access(&self) -> Access<'_> {
        Access::new(&self.access, AccessOptions::default())
    }

    /// The seed's Local_check_relay PTR rules, run before the access checks.
    pub fn ptr_rule(&self, c: &Client) -> Option<Rejection> {
        let s = self.settings();
        let ip = canonical(c.ip);
        match (s.ptr_check, &c.resolve) {
            (PtrCheck::Off, _) => None,
            (_, ClientResolve::Temp) => Some(Rejection::new(
                450,
                "4.7.1",
                format!("Access denied. Cannot resolve PTR record for {ip}"),
            )),
            (_, ClientResolve::Fail) => Some(Rejection::new(
                450,
                "4.7.1",
                format!("Access denied. IP name lookup failed {}", c.name()),
            )),
            (PtrCheck::Forged, ClientResolve::Forged(n)) => Some(Rejection::new(
                450,
                "4.7.1",
                format!("Access denied. IP name possibly forged {n}"),
            )),
            _ => None,
        }
    }

    /// check_relay's access part: `Connect:` (and untagged) entries for the client.
    pub fn connect(&self, c: &Client) -> Connect {
        let name = c.resolve.name().unwrap_or("");
        match self.access().check_relay(name, &c.addr()) {
            Ok(Verdict::Accept | Verdict::Relay) => Connect::Accept,
            Ok(Verdict::Reject(r)) => Connect::Reject(r),
            Ok(_) => Connect::Continue,
            Err(e) => match map_error(self.settings().access_temp_fail, &e) {
                Some(r) => Connect::Reject(r),
                None => Connect::Continue,
            },
        }
    }

    /// The DNSBL rejection for a listed client (FEATURE(dnsbl), docs/sendmail-compat.md §7).
    pub fn dnsbl_reply(ip: IpAddr, zone: &str, message: Option<&str>) -> Rejection {
        match message {
            Some(m) => Rejection::from_error(Some("5.7.1"), m),
            None => Rejection::new(
                550,
                "5.7.1",
                format!("Rejected: {} listed at {zone}", canonical(ip)),
            ),
        }
    }

    /// check_mail: `From:` entries for the sender. `arg` is the MAIL argument as typed.
    pub fn check_mail(&self, _c: &Client, arg: &str) -> Result<MailOk, Rejection> {
        match self.access().check_mail(arg) {
            Ok(Verdict::Reject(r)) => Err(r),
            Ok(Verdict::Discard) => Ok(MailOk { discard: true }),
            Ok(_) => Ok(MailOk::default()),
            Err(e) => {
                map_error(self.settings().access_temp_fail, &e).map_or(Ok(MailOk::default()), Err)
            }
        }
    }

    /// check_rcpt: the recipient blacklist, then Rcpt_ok / Relay_ok (docs/sendmail-compat.md §6.2), then
    /// whether a local recipient exists. `arg` is the RCPT argument as typed.
    pub fn check_rcpt(&self, c: &Client, rcpt: &Path, arg: &str) -> Result<RcptOk, Rejection> {
        let s = self.settings();
        let classes = self.classes();
        // Maps other than access have no -T<TMPF>: a failure there is always temporary, since
        // accepting a recipient we could not check would lose mail later.
        let tf = |e: MapError| map_error(true, &e).unwrap_or_else(Rejection::temp_failure);
        let Some(mbox) = &rcpt.mailbox else {
            return Err(Rejection::new(553, "5.0.0", "User address required").with_addr(arg));
        };
        // Asked only when it matters, so that a backend holding popip being down refuses
        // relaying (451) but not mail to our own users.
        let trusted = || self.client_may_relay(c, &s, &classes).map_err(tf);
        // Sender-specified routing (source routes, %, !, quoted @) is never relayed for an
        // untrusted client, whatever the final domain: the relay decision must not be made on
        // a name that is not where the mail would go.
        if rcpt.routing_trick().is_some() && !trusted()? {
            return Err(self.relay_denied(c, &s, arg));
        }
        let local_part = mbox.local_unquoted();
        let (domain, domain_is_local) = match &mbox.domain {
            None => (None, true),
            Some(Domain::Name(n)) => {
                let n = n.trim_end_matches('.').to_ascii_lowercase();
                let local = classes.w.contains_domain(&n) || n == s.hostname.to_ascii_lowercase();
                (Some(n), local)
            }
            Some(d @ (Domain::V4(_) | Domain::V6(_))) => {
                let lit = format!("[{d}]");
                let lit = lit.replace("[IPv6:", "[ipv6:").to_ascii_lowercase();
                (Some(lit.clone()), classes.w.contains_domain(&lit))
            }
            Some(Domain::General { .. }) => (Some(mbox.to_string()), false),
        };
        let mut discard = false;
        match self.access().check_rcpt(arg, domain_is_local) {
            Ok(Verdict::Reject(r)) => return Err(r),
            Ok(Verdict::Discard) => discard = true,
            Ok(_) => {}
            Err(e) => {
                if let Some(r) = map_error(s.access_temp_fail, &e) {
                    return Err(r);
                }
            }
        }
        let router = self.router(&classes, &s);
        let literal_local =
            domain_is_local && matches!(mbox.domain, Some(Domain::V4(_) | Domain::V6(_)));
        let route_domain = if literal_local {
            None
        } else {
            domain.as_deref()
        };
        let route = router.resolve(&local_part, route_domain, arg).map_err(tf)?;
        if let Route::Reject(r) = route {
            return Err(r);
        }
        // Rcpt_ok: the recipient is ours (class w, a virtusertable entry), or its domain is
        // one we relay to (class R, access To: RELAY).
        let ours = domain_is_local
            || matches!(route, Route::Local(_))
            || self
                .virtual_match(&local_part, domain.as_deref())
                .map_err(tf)?;
        let relay_to = match &domain {
            Some(d) if !ours => {
                classes.r.matches_domain(d) || self.access().relay_to_domain(d).map_err(tf)?
            }
            _ => false,
        };
        if ours || relay_to || trusted()? {
            if c.submission && c.authenticated.is_none() && !ours {
                return Err(Rejection::new(530, "5.7.0", "Authentication required"));
            }
            return Ok(RcptOk { route, discard });
        }
        Err(self.relay_denied(c, &s, arg))
    }

    /// Whether virtusertable handles this address (a virtual domain not in class w).
    fn virtual_match(&self, local: &str, domain: Option<&str>) -> Result<bool, MapError> {
        match domain {
            Some(d) => Ok(crate::maps::virtuser::lookup(&self.virtuser, local, d)?.is_some()),
            None => Ok(false),
        }
    }

    /// Relay_ok: may this client relay to anywhere? (docs/sendmail-compat.md §6.2, the seed's
    /// poprelay.mc, POP-before-SMTP, AUTH.)
    pub fn client_may_relay(
        &self,
        c: &Client,
        s: &Settings,
        classes: &Classes,
    ) -> Result<bool, MapError> {
        if c.authenticated.is_some() {
            return Ok(true);
        }
        if c.submission {
            // The submission port relays for authenticated users only.
            return Ok(false);
        }
        let ip = canonical(c.ip);
        if s.relay_from_loopback
            && (ip == IpAddr::from([127, 0, 0, 1])
                || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
        {
            return Ok(true);
        }
        let addr = c.addr();
        if classes.r.matches_client_addr(&addr) {
            return Ok(true);
        }
        let name = c.resolve.name().unwrap_or("");
        if self.access().relay_from_client(name, &addr)? {
            return Ok(true);
        }
        if classes
            .w
            .contains_domain(&format!("[{addr}]").to_ascii_lowercase())
        {
            return Ok(true);
        }
        if let ClientResolve::Ok(n) = &c.resolve
            && (classes.w.contains_domain(n) || classes.r.matches_domain(n))
        {
            return Ok(true);
        }
        if let LocalIp::Matched(_) = class::localip_lookup(&self.localip, &addr)? {
            return Ok(true);
        }
        self.popip_fresh(&addr, s.pop_before_smtp_ttl)
    }

    /// True if `ip` is in the localip map (a lookup error counts as no).
    /// Whether relay-domains (class R) lists the client, by address or by its resolved name.
    pub fn is_relay_domains_client(&self, c: &Client) -> bool {
        let classes = self.classes();
        classes.r.matches_client_addr(&c.addr())
            || matches!(&c.resolve, ClientResolve::Ok(n) if classes.r.matches_domain(n))
    }

    pub fn is_localip(&self, ip: std::net::IpAddr) -> bool {
        let addr = ip.to_canonical().to_string();
        matches!(
            class::localip_lookup(&self.localip, &addr),
            Ok(LocalIp::Matched(_))
        )
    }

    /// POP-before-SMTP: the popip key is present and, when its value is a time stamp (as
    /// mailtool's POP3 server writes it), younger than the TTL. `0s` turns the check off.
    fn popip_fresh(&self, addr: &str, ttl: Duration) -> Result<bool, MapError> {
        if ttl.is_zero() {
            return Ok(false);
        }
        let Some(v) = self.popip.get(addr.to_ascii_lowercase().as_bytes())? else {
            return Ok(false);
        };
        let text = String::from_utf8_lossy(&v);
        match text.trim().parse::<u64>() {
            Ok(when) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                Ok(now.saturating_sub(when) < ttl.as_secs())
            }
            // poprelayd's own entries: only the key's presence matters (docs/sendmail-compat.md §9).
            Err(_) => Ok(true),
        }
    }

    fn relay_denied(&self, c: &Client, s: &Settings, arg: &str) -> Rejection {
        let ip = canonical(c.ip);
        let r = match &c.resolve {
            ClientResolve::Temp if s.ptr_check != PtrCheck::Off => Rejection::new(
                450,
                "4.4.0",
                format!("Relaying temporarily denied. Cannot resolve PTR record for {ip}"),
            ),
            ClientResolve::Fail if s.ptr_check != PtrCheck::Off => Rejection::new(
                550,
                "5.7.1",
                format!("Relaying denied. IP name lookup failed {}", c.name()),
            ),
            ClientResolve::Forged(n) if s.ptr_check != PtrCheck::Off => Rejection::new(
                550,
                "5.7.1",
                format!("Relaying denied. IP name possibly forged {n}"),
            ),
            _ if s.auth_offered => Rejection::new(
                550,
                "5.7.1",
                "Relaying denied. Proper authentication required.",
            ),
            _ => Rejection::new(550, "5.7.1", "Relaying denied"),
        };
        r.with_addr(arg)
    }

    /// AUTH PLAIN/LOGIN against the users map.
    pub fn authenticate(&self, user: &str, password: &[u8]) -> Result<bool, MapError> {
        crate::users::authenticate(&self.users, user, password)
    }
}

fn load_classes(cfg: &Config) -> Classes {
    let read = |name: &str| std::fs::read_to_string(cfg.map_path(name)).unwrap_or_default();
    let m = &cfg.settings.maps;
    let mut w_text = read(&m.local_host_names);
    w_text.push('\n');
    w_text.push_str(&cfg.hostname());
    // sendmail always puts localhost in class w: `mail user@localhost` from cron is local.
    w_text.push_str("\nlocalhost\n");
    Classes {
        w: ClassW::parse(&w_text),
        r: ClassR::parse(&read(&m.relay_domains)),
    }
}

fn settings_from(cfg: &Config) -> Settings {
    let s = &cfg.settings;
    Settings {
        hostname: cfg.hostname(),
        access_temp_fail: s.maps.access_temp_fail,
        pop_before_smtp_ttl: s.pop3.pop_before_smtp_ttl.0,
        ptr_check: s.smtp.ptr_check,
        relay_from_loopback: s.smtp.relay_from_loopback,
        system_users: s.smtp.system_users,
        auth_offered: !s.tls.cert.is_empty()
            || s.smtp.allow_plaintext_auth != crate::config::PlaintextAuth::Never,
    }
}
