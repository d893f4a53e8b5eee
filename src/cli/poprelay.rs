//! `mailtool poprelay list|add|remove|expire`: the POP-before-SMTP table by hand, as
//! poprelayd's `-p`, `-a` and `-r` did (docs/sendmail-compat.md §9). The server records logins and
//! purges old entries by itself; this is for looking and for exceptions.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};

use super::{Fail, GlobalOpts, stdout_error};
use crate::config::Config;
use crate::duration::Span;
use crate::maps::MapError;
use crate::maps::backend::Backends;
use crate::maps::store::{self, StoreError};
use crate::popip::{Entry, PopipError, PopipMap};
use crate::sysexits::*;

#[derive(Debug, Clone, Args)]
#[command(
    about = "List, add, remove or expire POP-before-SMTP addresses (the popip map, poprelayd -p/-a/-r)",
    after_help = "Exit status: 0 ok; 1 remove: an address was not in the map; 64 usage (a bad \
address or duration); 73 cannot create or open the map; 74 I/O error."
)]
pub struct PoprelayArgs {
    #[command(subcommand)]
    pub action: PoprelayAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PoprelayAction {
    /// Show each address, its age and when it stops relaying (poprelayd -p)
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Let addresses relay as if they had just logged in to POP3 (poprelayd -a)
    Add {
        /// IPv4 or IPv6 addresses
        #[arg(value_name = "IP", required = true)]
        ips: Vec<String>,
    },
    /// Take addresses out of the map (poprelayd -r)
    Remove {
        /// IPv4 or IPv6 addresses
        #[arg(value_name = "IP", required = true)]
        ips: Vec<String>,
    },
    /// Remove entries older than the TTL now; entries without a time stay
    Expire {
        /// Age limit [default: [pop3] pop_before_smtp_ttl, 15m]
        #[arg(long, value_name = "DURATION", value_parser = parse_span)]
        ttl: Option<Span>,
    },
}

fn parse_span(s: &str) -> Result<Span, String> {
    Span::parse(s).map_err(|e| e.to_string())
}

pub fn run(global: &GlobalOpts, a: &PoprelayArgs) -> Result<i32, Fail> {
    let cfg = Config::load(&global.locate())?;
    let backends = Backends::new(&cfg);
    let map = PopipMap::open(&cfg, &backends).map_err(|e| fail(&e))?;
    let ttl = cfg.settings.pop3.pop_before_smtp_ttl.0;
    let now = SystemTime::now();
    match &a.action {
        PoprelayAction::List { json } => list(&map, ttl, now, *json),
        PoprelayAction::Add { ips } => {
            let ips = parse_ips(ips)?;
            let db = match &map {
                PopipMap::File(p) => Some(store::db_path(p)),
                PopipMap::Remote(_) => None,
            };
            let existed = db.as_ref().is_none_or(|d| d.exists());
            for ip in ips {
                map.record(ip, now, ttl).map_err(|e| fail(&e))?;
            }
            if !existed && let Some(db) = &db {
                give_to_server(&cfg, db);
            }
            Ok(EX_OK)
        }
        PoprelayAction::Remove { ips } => {
            let ips = parse_ips(ips)?;
            let mut code = EX_OK;
            for ip in ips {
                if !map.remove(ip).map_err(|e| fail(&e))? {
                    eprintln!("mailtool poprelay: {ip} is not in the map");
                    code = 1;
                }
            }
            Ok(code)
        }
        PoprelayAction::Expire { ttl: given } => {
            let ttl = given.map_or(ttl, |s| s.0);
            let n = map.expire(ttl, now).map_err(|e| fail(&e))?;
            writeln!(
                io::stdout(),
                "{n} expired {} removed",
                if n == 1 { "entry" } else { "entries" }
            )
            .map_err(stdout_error)?;
            Ok(EX_OK)
        }
    }
}

/// Every address or none: a typo must not leave half a list applied.
fn parse_ips(words: &[String]) -> Result<Vec<IpAddr>, Fail> {
    words
        .iter()
        .map(|w| {
            w.parse::<IpAddr>().map_err(|_| {
                Fail::new(
                    EX_USAGE,
                    format!("mailtool poprelay: {w:?} is not an IP address"),
                )
            })
        })
        .collect()
}

fn fail(e: &PopipError) -> Fail {
    let code = match e {
        PopipError::Store(StoreError::Open { .. } | StoreError::NotAMap { .. }) => EX_CANTCREAT,
        PopipError::Store(_) => EX_IOERR,
        PopipError::Map(MapError::Backend(_)) => EX_TEMPFAIL,
        PopipError::Map(MapError::Io { .. } | MapError::Format { .. }) => EX_CANTCREAT,
    };
    Fail::new(code, format!("mailtool poprelay: {e}"))
}

/// The server writes every login into the map, so a map that root creates here goes to the
/// server's user and group, not to root.
fn give_to_server(cfg: &Config, db: &Path) {
    if !crate::config::is_root() {
        return;
    }
    let Ok(id) = crate::server::privileges::lookup(&cfg.settings.user, &cfg.settings.group) else {
        return;
    };
    let _ = std::os::unix::fs::chown(db, Some(id.uid), Some(id.gid));
}

/// `3m12s`, `1h5m`, `2d3h`: the two largest units, as an age reads at a glance.
pub fn short_duration(secs: u64) -> String {
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let Some(first) = units.iter().position(|&(_, n)| secs >= n) else {
        return "0s".into();
    };
    let (u1, n1) = units[first];
    let mut s = format!("{}{u1}", secs / n1);
    if let Some(&(u2, n2)) = units.get(first + 1) {
        let rest = (secs % n1) / n2;
        if rest > 0 {
            s.push_str(&format!("{rest}{u2}"));
        }
    }
    s
}

#[derive(serde::Serialize)]
struct Row {
    ip: String,
    /// Unix time of the last login; null for a permanent entry.
    time: Option<u64>,
    /// Seconds since then.
    age: Option<u64>,
    /// Seconds until relaying stops; 0 once expired, null for a permanent entry.
    expires_in: Option<u64>,
}

fn list(map: &PopipMap, ttl: Duration, now: SystemTime, json: bool) -> Result<i32, Fail> {
    let mut entries: Vec<(Entry, Option<Duration>)> = map.list().map_err(|e| fail(&e))?;
    // Youngest first, permanent entries last.
    entries.sort_by_key(|(e, _)| (e.time.is_none(), e.age(now), e.ip.clone()));
    let rows: Vec<Row> = entries
        .iter()
        .map(|(e, kept)| {
            let age = e.age(now);
            Row {
                ip: e.ip.clone(),
                time: e.time,
                age,
                // Redis says how long it keeps the entry; otherwise the TTL from the login.
                expires_in: match kept {
                    Some(d) => Some(d.as_secs()),
                    None => age.map(|a| ttl.as_secs().saturating_sub(a)),
                },
            }
        })
        .collect();
    let mut out = io::stdout().lock();
    if json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| Fail::new(EX_SOFTWARE, e.to_string()))?;
        writeln!(out, "{text}").map_err(stdout_error)?;
        return Ok(EX_OK);
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(["ip", "age", "expires in"]);
    for r in &rows {
        let (age, expires) = match (r.age, r.expires_in) {
            (Some(a), Some(0)) => (short_duration(a), "expired".to_string()),
            (Some(a), Some(x)) => (short_duration(a), short_duration(x)),
            _ => ("permanent".to_string(), "never".to_string()),
        };
        t.add_row([r.ip.clone(), age, expires]);
    }
    writeln!(out, "{t}").map_err(stdout_error)?;
    Ok(EX_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_poprelayd() {
        assert_eq!(short_duration(0), "0s");
        assert_eq!(short_duration(59), "59s");
        assert_eq!(short_duration(192), "3m12s");
        assert_eq!(short_duration(900), "15m");
        assert_eq!(short_duration(3_900), "1h5m");
        assert_eq!(short_duration(3_601), "1h");
        assert_eq!(short_duration(2 * 86_400 + 3 * 3_600 + 7), "2d3h");
    }
}
