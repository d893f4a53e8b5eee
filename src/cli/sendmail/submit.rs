//! Handing a message to the running daemon over SMTP on loopback, the way sendmail's
//! submission program relays to its MTA. Only transport trouble and 4xx replies count as
//! "daemon unavailable"; the caller then drops the message into the client spool.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::address::Notify;
use crate::config::Config;
use crate::queue::{Body, Ret};
use crate::smtp::client::{Client, Said};
use crate::smtp::proto::Reply;

/// How long to wait for the daemon to answer a connect or a command.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// One submission.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub data: &'a [u8],
    pub body: Option<Body>,
    pub notify: Option<Notify>,
    pub ret: Option<Ret>,
    pub envid: Option<&'a str>,
    /// `-v`: print the conversation on stdout, as sendmail -v does.
    pub verbose: bool,
}

/// What the daemon said.
#[derive(Debug)]
pub enum Outcome {
    /// Accepted for every recipient not listed in `rejected`.
    Accepted { rejected: Vec<(String, Reply)> },
    /// Every recipient was refused permanently.
    NoRecipients { rejected: Vec<(String, Reply)> },
    /// The sender or the message was refused permanently (5xx to MAIL or DATA).
    Refused(Reply),
    /// Down, unreachable, or a temporary failure: queue it locally. `rejected` holds the
    /// recipients already refused permanently (not to be queued).
    Unavailable {
        reason: String,
        rejected: Vec<(String, Reply)>,
    },
}

/// The address `sendmail` talks to: the first `[smtp] listen` address, a wildcard one
/// replaced by the loopback address of its family.
pub fn daemon_addr(cfg: &Config) -> Option<SocketAddr> {
    let a = *cfg.settings.smtp.listen.first()?;
    let ip = match a.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(SocketAddr::new(ip, a.port()))
}

/// Submits `s` to the daemon at `addr`.
pub fn submit(addr: SocketAddr, s: &Submission<'_>) -> Outcome {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome::Unavailable {
                reason: format!("cannot start the I/O runtime: {e}"),
                rejected: Vec::new(),
            };
        }
    };
    rt.block_on(session(addr, s))
}

use crate::wire::xtext::encode as xtext;

async fn session(addr: SocketAddr, s: &Submission<'_>) -> Outcome {
    let mut rejected: Vec<(String, Reply)> = Vec::new();
    let unavailable =
        |reason: String, rejected: Vec<(String, Reply)>| Outcome::Unavailable { reason, rejected };
    let mut c = match Client::connect(addr, None, CONNECT_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => return unavailable(e.to_string(), rejected),
    };
    c.set_timeout(REPLY_TIMEOUT);
    if s.verbose {
        c.set_observer(Box::new(|said, line| match said {
            Said::Client => println!(">>> {line}"),
            Said::Server => println!("{line}"),
            Said::Note => println!("*** {line}"),
        }));
    }
    macro_rules! step {
        ($e:expr) => {
            match $e.await {
                Ok(r) => r,
                Err(e) => return unavailable(e.to_string(), rejected),
            }
        };
    }
    let greeting = step!(c.read_reply());
    if greeting.code != 220 {
        return unavailable(format!("greeting: {}", show(&greeting)), rejected);
    }
    let mut ehlo = step!(c.ehlo("localhost"));
    if ehlo.code != 250 {
        ehlo = step!(c.helo("localhost"));
        if ehlo.code != 250 {
            return unavailable(format!("HELO: {}", show(&ehlo)), rejected);
        }
    }
    let caps = c.caps().cloned().unwrap_or_default();
    let mut mail = format!("MAIL FROM:<{}>", s.sender);
    let body = s.body.or_else(|| {
        s.data
            .iter()
            .any(|b| *b >= 0x80)
            .then_some(Body::EightBitMime)
    });
    if let Some(b) = body
        && caps.eight_bit_mime
    {
        mail.push_str(&format!(" BODY={}", b.as_str()));
    }
    if caps.dsn {
        if let Some(r) = s.ret {
            mail.push_str(&format!(" RET={}", r.as_str()));
        }
        if let Some(e) = s.envid {
            mail.push_str(&format!(" ENVID={}", xtext(e)));
        }
    }
    let r = step!(c.command(&mail));
    match r.code / 100 {
        2 => {}
        5 => return Outcome::Refused(r),
        _ => return unavailable(format!("MAIL: {}", show(&r)), rejected),
    }
    let mut accepted = 0;
    let mut deferred = None;
    for rcpt in s.recipients {
        let mut line = format!("RCPT TO:<{rcpt}>");
        if caps.dsn
            && let Some(n) = s.notify
        {
            line.push_str(&format!(" NOTIFY={n}"));
        }
        let r = step!(c.command(&line));
        match r.code / 100 {
            2 => accepted += 1,
            5 => rejected.push((rcpt.clone(), r)),
            _ => deferred = Some(format!("RCPT {rcpt}: {}", show(&r))),
        }
    }
    if let Some(reason) = deferred {
        // The whole message goes to the client spool; the daemon sorts it out at import.
        let _ = c.command("RSET").await;
        let _ = c.quit().await;
        return unavailable(reason, rejected);
    }
    if accepted == 0 {
        let _ = c.quit().await;
        return Outcome::NoRecipients { rejected };
    }
    let r = step!(c.data(s.data));
    let _ = c.quit().await;
    match r.code / 100 {
        2 => Outcome::Accepted { rejected },
        5 => Outcome::Refused(r),
        _ => unavailable(format!("DATA: {}", show(&r)), rejected),
    }
}

fn show(r: &Reply) -> String {
    format!("{} {}", r.code, r.lines.join(" / "))
}

/// The text sendmail prints for a refused address: the reply text without its codes and
/// without the server's own `<addr>... ` prefix.
pub fn reply_text(r: &Reply) -> String {
    let first = r.lines.first().map(String::as_str).unwrap_or("");
    let text = match first.split_once(' ') {
        Some((code, rest)) if crate::reply::is_enhanced_code(code) => rest,
        _ => first,
    };
    match text.split_once("... ") {
        Some((addr, rest)) if addr.starts_with('<') && addr.ends_with('>') => rest.to_string(),
        _ => text.to_string(),
    }
}

/// sysexits for a refused recipient: unknown users and mailboxes (5.1.x) are EX_NOUSER, the
/// rest (relaying denied, policy) EX_UNAVAILABLE.
pub fn exit_for(r: &Reply) -> i32 {
    let dsn = crate::smtp::client::codec::enhanced_code(r).unwrap_or("");
    if dsn.starts_with("5.1.") || r.code == 550 && dsn.is_empty() {
        crate::sysexits::EX_NOUSER
    } else {
        crate::sysexits::EX_UNAVAILABLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, line: &str) -> Reply {
        Reply {
            code,
            lines: vec![line.to_string()],
        }
    }

    #[test]
    fn refusal_texts_and_codes() {
        let r = reply(550, "5.1.1 <nobody@mail.example1.com>... User unknown");
        assert_eq!(reply_text(&r), "User unknown");
        assert_eq!(exit_for(&r), 67);
        let r = reply(550, "5.7.1 <x@elsewhere.test>... Relaying denied");
        assert_eq!(reply_text(&r), "Relaying denied");
        assert_eq!(exit_for(&r), 69);
        let r = reply(552, "5.3.4 Message size exceeds fixed maximum message size");
        assert_eq!(
            reply_text(&r),
            "Message size exceeds fixed maximum message size"
        );
    }

    #[test]
    fn xtext_encodes_specials() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
    }
}
