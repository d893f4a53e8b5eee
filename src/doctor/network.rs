//! The network side: the hostname in the DNS (forward and reverse), the listeners, and the
//! relay policy as an outsider sees it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::Check;
use crate::config::Config;
use crate::dns::{Dns, Resolve};

/// The hostname has an address, and each address points back to it: remote servers check
/// both before they accept our mail.
pub async fn hostname(cfg: &Config, dns: &Dns) -> Check {
    let host = cfg.hostname();
    let ips = match dns.addresses(&host).await {
        Resolve::Found(ips) => ips,
        Resolve::NotFound => {
            return Check::fail(
                "hostname DNS",
                format!("{host} has no A or AAAA record"),
                format!("add an A record for {host}, or set `hostname`"),
            );
        }
        Resolve::TempFail(e) => {
            return Check::warn(
                "hostname DNS",
                format!("{host}: lookup failed ({e})"),
                "check [dns] servers",
            );
        }
    };
    let mut bad = Vec::new();
    for ip in &ips {
        match dns.ptr(*ip).await {
            Resolve::Found(names) if names.iter().any(|n| n.eq_ignore_ascii_case(&host)) => {}
            Resolve::Found(names) => bad.push(format!("{ip} → {}", names.join(", "))),
            Resolve::NotFound => bad.push(format!("{ip} has no PTR")),
            Resolve::TempFail(e) => bad.push(format!("{ip}: PTR lookup failed ({e})")),
        }
    }
    let shown: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    if bad.is_empty() {
        Check::pass("hostname DNS", format!("{host} ↔ {}", shown.join(", ")))
    } else {
        Check::warn(
            "hostname DNS",
            format!("{host} → {}; reverse: {}", shown.join(", "), bad.join("; ")),
            format!("ask whoever runs the reverse zone for a PTR to {host}"),
        )
    }
}

/// Where to reach a listener from this host: a wildcard address means loopback.
pub fn reachable_addr(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(v) if v.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port())
        }
        IpAddr::V6(v) if v.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port())
        }
        _ => a,
    }
}

/// The configured listeners, with the greeting each should start with (None: TLS first).
pub fn listeners(cfg: &Config) -> Vec<(&'static str, SocketAddr, Option<&'static str>)> {
    let s = &cfg.settings;
    let mut v = Vec::new();
    for a in &s.smtp.listen {
        v.push(("SMTP", *a, Some("220")));
    }
    for a in &s.smtp.submission {
        v.push(("submission", *a, Some("220")));
    }
    for a in &s.smtp.smtps {
        v.push(("SMTPS", *a, None));
    }
    for a in &s.pop3.listen {
        v.push(("POP3", *a, Some("+OK")));
    }
    for a in &s.pop3.pop3s {
        v.push(("POP3S", *a, None));
    }
    v
}

/// Each listener accepts a connection and greets as it should.
pub async fn reach(kind: &str, addr: SocketAddr, greeting: Option<&str>) -> Check {
    use tokio::io::AsyncReadExt;
    let name = format!("{kind} {addr}");
    let target = reachable_addr(addr);
    let fix = "start `mailtool serve` (or check the firewall)";
    let conn = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(target),
    )
    .await;
    let mut s = match conn {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Check::fail(
                name,
                format!("{target}: {}", crate::util::io_message(&e)),
                fix,
            );
        }
        Err(_) => return Check::fail(name, format!("{target}: no answer in 3 s"), fix),
    };
    let Some(want) = greeting else {
        return Check::pass(name, "accepts connections");
    };
    let mut buf = [0u8; 512];
    // Long enough for the seed's 5 s greet_pause.
    let n = match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    let line = String::from_utf8_lossy(&buf[..n]);
    let first = line.lines().next().unwrap_or("").trim().to_string();
    if first.starts_with(want) {
        Check::pass(name, first)
    } else {
        Check::fail(
            name,
            format!("unexpected greeting {first:?}"),
            "look at the server's log",
        )
    }
}

/// relaycheck against our own SMTP listener, from an untrusted loopback address (127.0.0.50),
/// so the loopback exemption does not hide an open relay.
pub async fn open_relay(cfg: &Config) -> Check {
    use crate::tools::relaycheck::runner::{Options, Target, TlsMode, check_host};
    let Some(addr) = cfg
        .settings
        .smtp
        .listen
        .first()
        .copied()
        .map(reachable_addr)
    else {
        return Check::pass("open relay", "no SMTP listener");
    };
    let source = match addr.ip() {
        IpAddr::V4(v) if v.is_loopback() => Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 50))),
        _ => None,
    };
    let opts = Options {
        domain: "relaytest.invalid".into(),
        from: "antispam".into(),
        to: "relaytest".into(),
        helo: "relaytest.invalid".into(),
        ip: None,
        source,
        tls: TlsMode::Plain,
        timeout: Duration::from_secs(10),
        data: false,
        transcript: None,
    };
    let target = Target {
        given: addr.to_string(),
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let report = check_host(&target, &opts).await;
    let summary = crate::tools::relaycheck::report::summary(&report).join(" ");
    if report.open_relay() {
        Check::fail(
            "open relay",
            summary,
            "remove RELAY entries for outside networks from access/localip/relay-domains",
        )
    } else if report.status != crate::tools::relaycheck::runner::Status::Failed {
        Check::pass("open relay", summary)
    } else {
        Check::warn(
            "open relay",
            summary,
            "start `mailtool serve`, then run doctor again",
        )
    }
}
