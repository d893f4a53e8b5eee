//! POP-before-SMTP, poprelayd's job (docs/sendmail-compat.md §9): the `popip` map holds
//! `client IP -> unix time of its last POP3 login`.
//!
//! The POP3 server calls [`record`] after every successful login with the address of the
//! connection itself. Nothing here reads an address out of a log line: poprelayd scanned the mail
//! log and could be fed a forged login line (CVE-2001-1075). `policy::client_may_relay` honours
//! entries younger than `pop_before_smtp_ttl`; [`expire`] purges the older ones. A value that is
//! not a number (a hand-made map with `RELAY`, a poprelayd-era file) makes a permanent entry:
//! sendmail only checks the key's presence, so neither expiry nor a login touches it.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Config, MapPlace};
use crate::maps::backend::{Backends, Put};
use crate::maps::open::AnyMap;
use crate::maps::store::{self, DupPolicy, Meta, StoreError, Updater};
use crate::maps::table::{MutableMap, RemoteTable};
use crate::maps::{Map, MapError};

#[derive(Debug, thiserror::Error)]
pub enum PopipError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Map(#[from] MapError),
}

/// The popip map wherever `[maps] popip` puts it: a map file, or a backend table shared by
/// every host (Redis ends each entry itself, with an expiry of `pop_before_smtp_ttl`).
pub enum PopipMap {
    /// The map name (its file is `NAME.db`).
    File(std::path::PathBuf),
    Remote(RemoteTable),
}

impl PopipMap {
    pub fn open(cfg: &Config, backends: &Backends) -> Result<PopipMap, PopipError> {
        let name = &cfg.settings.maps.popip;
        match cfg.map_place(name) {
            Ok(MapPlace::File(path)) => Ok(PopipMap::File(path)),
            Ok(MapPlace::Backend { backend, table }) => Ok(PopipMap::Remote(RemoteTable::new(
                backends.get(&backend).map_err(MapError::from)?,
                &table,
            ))),
            Err(message) => Err(PopipError::Map(MapError::Io {
                path: name.clone(),
                message,
            })),
        }
    }

    /// Where it lives, for messages.
    pub fn describe(&self) -> String {
        match self {
            PopipMap::File(p) => store::db_path(p).display().to_string(),
            PopipMap::Remote(t) => t.describe(),
        }
    }

    /// [`record`]; in a backend the entry expires after `ttl` (Redis).
    pub fn record(&self, ip: IpAddr, when: SystemTime, ttl: Duration) -> Result<(), PopipError> {
        match self {
            PopipMap::File(p) => record(p, ip, when),
            PopipMap::Remote(t) => {
                let k = key(ip);
                let secs = unix(when);
                if let Some(old) = t.get(k.as_bytes())? {
                    match parse_time(&old) {
                        Some(t) if t < secs => {}
                        _ => return Ok(()),
                    }
                }
                let left = ttl.saturating_sub(now_age(when));
                let how = if left.is_zero() {
                    Put::Replace
                } else {
                    Put::Expiring(left)
                };
                t.put(k.as_bytes(), secs.to_string().as_bytes(), how)?;
                Ok(())
            }
        }
    }

    /// [`list`], with the time the store keeps each entry where it says (Redis).
    pub fn list(&self) -> Result<Vec<(Entry, Option<Duration>)>, PopipError> {
        match self {
            PopipMap::File(p) => Ok(list(p)?.into_iter().map(|e| (e, None)).collect()),
            PopipMap::Remote(t) => Ok(t
                .iterate()?
                .into_iter()
                .map(|r| {
                    (
                        Entry {
                            ip: shown(&r.key),
                            time: parse_time(&r.value),
                        },
                        r.expires_in,
                    )
                })
                .collect()),
        }
    }

    /// [`remove`].
    pub fn remove(&self, ip: IpAddr) -> Result<bool, PopipError> {
        match self {
            PopipMap::File(p) => remove(p, ip),
            PopipMap::Remote(t) => Ok(t.delete(key(ip).as_bytes())?),
        }
    }

    /// [`expire`]. In a backend an entry is read again just before it is deleted, so a login
    /// from another host meanwhile keeps it.
    pub fn expire(&self, ttl: Duration, now: SystemTime) -> Result<usize, PopipError> {
        match self {
            PopipMap::File(p) => expire(p, ttl, now),
            PopipMap::Remote(t) => {
                let mut n = 0;
                for r in t.iterate()? {
                    let stale = |v: &[u8]| {
                        Entry {
                            ip: String::new(),
                            time: parse_time(v),
                        }
                        .is_expired(ttl, now)
                    };
                    if stale(&r.value)
                        && t.get(&r.key)?.is_some_and(|v| stale(&v))
                        && t.delete(&r.key)?
                    {
                        n += 1;
                    }
                }
                Ok(n)
            }
        }
    }
}

/// How long ago `when` was (zero for a time in the future).
fn now_age(when: SystemTime) -> Duration {
    SystemTime::now().duration_since(when).unwrap_or_default()
}

/// One popip record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// The client address: a dotted quad, or IPv6 text (RFC 5952).
    pub ip: String,
    /// Unix time of the last login; `None` for a permanent entry.
    pub time: Option<u64>,
}

impl Entry {
    /// Seconds since the last login, `None` for a permanent entry.
    pub fn age(&self, now: SystemTime) -> Option<u64> {
        self.time.map(|t| unix(now).saturating_sub(t))
    }

    /// Whether the relay check no longer honours it. The same rule as the check itself:
    /// fresh while younger than the TTL.
    pub fn is_expired(&self, ttl: Duration, now: SystemTime) -> bool {
        self.age(now).is_some_and(|age| age >= ttl.as_secs())
    }
}

/// The map key for a client address, exactly as the relay check looks it up: sendmail's
/// `${client_addr}` lower-cased, so the dotted quad for IPv4 (also for an IPv4-mapped IPv6
/// peer) and `ipv6:` plus the RFC 5952 text for IPv6.
pub fn key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("ipv6:{v6}"),
        },
    }
}

/// The address shown for a key: the key without the `ipv6:` tag.
fn shown(key: &[u8]) -> String {
    let k = String::from_utf8_lossy(key);
    match k.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => k[5..].to_string(),
        _ => k.into_owned(),
    }
}

/// A login time, or `None` when the value is not a number (a permanent entry).
fn parse_time(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Tries of a write that failed with a database error (a lock held past the store's busy
/// timeout by a long `makemap -o`, say) before giving up.
const ATTEMPTS: u32 = 3;

/// Records a login from `ip` at `when` in the popip map `path` (the map name, whose file is
/// `NAME.db`), creating the map if missing. One transaction; concurrent writers wait on
/// SQLite's lock. A newer time already stored is kept, and so is a permanent entry.
///
/// It blocks (up to the store's busy timeout per try): async callers use `spawn_blocking`.
pub fn record(path: &Path, ip: IpAddr, when: SystemTime) -> Result<(), PopipError> {
    let db = store::db_path(path);
    let k = key(ip);
    let secs = unix(when);
    let mut attempt = 1;
    loop {
        match upsert(&db, k.as_bytes(), secs) {
            Err(PopipError::Store(StoreError::Sqlite { .. })) if attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn upsert(db: &Path, key: &[u8], secs: u64) -> Result<(), PopipError> {
    store::create_if_missing(
        db,
        Meta {
            kind: "hash".into(),
            nul: false,
        },
    )?;
    let mut up = Updater::open_with(db, true)?;
    if let Some(old) = up.get(key)? {
        match parse_time(&old) {
            Some(t) if t < secs => {}
            // Permanent, or already as new: leave it alone (dropping the Updater rolls back).
            _ => return Ok(()),
        }
    }
    up.add(key, secs.to_string().as_bytes(), DupPolicy::Replace)?;
    up.commit()?;
    Ok(())
}

/// Run by `serve` while still root: makes sure the popip map exists, is readable as a map,
/// and belongs to the user the server becomes, so logins can be recorded even when the map's
/// directory (/etc/mail) is root's. Writes use an in-memory journal (no file beside the map),
/// so a crash in the middle of one can damage the map: a damaged map is moved aside as
/// `popip.db.damaged` and started afresh, which costs at most the last 15 minutes of
/// POP-before-SMTP entries.
pub fn prepare(path: &Path, owner: (u32, u32)) -> Result<(), PopipError> {
    let db = store::db_path(path);
    if db.exists() && list(path).is_err() {
        let mut aside = db.clone().into_os_string();
        aside.push(".damaged");
        std::fs::rename(&db, &aside).map_err(|e| PopipError::Store(StoreError::io(&db, &e)))?;
        tracing::warn!(
            "popip map {} could not be read; moved aside to {}",
            db.display(),
            std::path::Path::new(&aside).display()
        );
    }
    store::create_if_missing(
        &db,
        Meta {
            kind: "hash".into(),
            nul: false,
        },
    )?;
    let io = |e: std::io::Error| PopipError::Store(StoreError::io(&db, &e));
    std::os::unix::fs::chown(&db, Some(owner.0), Some(owner.1)).map_err(io)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).map_err(io)?;
    Ok(())
}

/// Every entry, in key order. A missing map is an empty list; a Berkeley DB popip.db left by
/// poprelayd is read too.
pub fn list(path: &Path) -> Result<Vec<Entry>, PopipError> {
    let db = store::db_path(path);
    let map = match AnyMap::open(&db) {
        Ok(m) => m,
        Err(_) if !db.exists() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    map.for_each(|k, v| {
        out.push(Entry {
            ip: shown(k),
            time: parse_time(v),
        })
    })?;
    Ok(out)
}

/// Removes `ip`; returns whether it was there. A missing map holds nothing to remove.
pub fn remove(path: &Path, ip: IpAddr) -> Result<bool, PopipError> {
    let db = store::db_path(path);
    if !db.exists() {
        return Ok(false);
    }
    let mut up = Updater::open_with(&db, true)?;
    let found = up.delete(key(ip).as_bytes())?;
    if found {
        up.commit()?;
    }
    Ok(found)
}

/// Removes the entries that are `ttl` old or older at `now`; permanent entries stay. Returns
/// how many went. Entries are read and deleted in one transaction, so a login recorded
/// meanwhile is never deleted by a decision made on its old time.
pub fn expire(path: &Path, ttl: Duration, now: SystemTime) -> Result<usize, PopipError> {
    let db = store::db_path(path);
    if !db.exists() {
        return Ok(0);
    }
    let mut up = Updater::open_with(&db, true)?;
    let mut stale: Vec<Vec<u8>> = Vec::new();
    up.for_each(|k, v| {
        let e = Entry {
            ip: String::new(),
            time: parse_time(v),
        };
        if e.is_expired(ttl, now) {
            stale.push(k.to_vec());
        }
    })?;
    if stale.is_empty() {
        return Ok(0);
    }
    for k in &stale {
        up.delete(k)?;
    }
    up.commit()?;
    Ok(stale.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::ClientResolve;
    use crate::maps::Map;
    use crate::maps::lazy::LazyMap;
    use crate::maps::store::Builder;
    use crate::policy::Client;
    use std::fs;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn build(db: &Path, rows: &[(&str, &str)], nul: bool) {
        let mut b = Builder::create(
            db,
            Meta {
                kind: "hash".into(),
                nul,
            },
        )
        .unwrap();
        for (k, v) in rows {
            b.push(k.as_bytes(), v.as_bytes()).unwrap();
        }
        b.commit().unwrap();
    }

    #[test]
    fn keys_match_the_relay_check() {
        // policy looks popip up by `${client_addr}` lower-cased; a login must land on that key.
        for s in [
            "127.0.0.3",
            "192.0.2.17",
            "2001:DB8:0:0:0:0:0:1",
            "2001:db8::ab:0:0:1",
            "::ffff:192.0.2.9",
            "fe80::1",
        ] {
            let c = Client {
                ip: ip(s),
                resolve: ClientResolve::Fail,
                submission: false,
                authenticated: None,
            };
            assert_eq!(key(ip(s)), c.addr().to_ascii_lowercase(), "{s}");
        }
        assert_eq!(key(ip("2001:DB8:0:0:0:0:0:1")), "ipv6:2001:db8::1");
        assert_eq!(key(ip("::ffff:192.0.2.9")), "192.0.2.9");
    }

    #[test]
    fn record_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("popip");
        assert_eq!(list(&map).unwrap(), vec![]);
        assert!(!remove(&map, ip("127.0.0.3")).unwrap());
        record(&map, ip("127.0.0.3"), at(1000)).unwrap();
        record(&map, ip("2001:db8::1"), at(1100)).unwrap();
        let db = dir.path().join("popip.db");
        // The file the server reads, with the mode makemap gives maps.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o640
        );
        // Only the map is left in the directory: no temp names.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let lazy = LazyMap::new(db.clone());
        assert_eq!(lazy.get(b"127.0.0.3").unwrap(), Some(b"1000".to_vec()));
        assert_eq!(
            lazy.get(b"ipv6:2001:db8::1").unwrap(),
            Some(b"1100".to_vec())
        );
        assert_eq!(
            list(&map).unwrap(),
            vec![
                Entry {
                    ip: "127.0.0.3".into(),
                    time: Some(1000)
                },
                Entry {
                    ip: "2001:db8::1".into(),
                    time: Some(1100)
                },
            ]
        );
        // A later login moves the time forward; an earlier one (a slow writer) does not undo it.
        record(&map, ip("127.0.0.3"), at(2000)).unwrap();
        record(&map, ip("127.0.0.3"), at(1500)).unwrap();
        assert_eq!(list(&map).unwrap()[0].time, Some(2000));
        assert!(remove(&map, ip("2001:db8::1")).unwrap());
        assert!(!remove(&map, ip("2001:db8::1")).unwrap());
        assert_eq!(list(&map).unwrap().len(), 1);
    }

    #[test]
    fn expire_keeps_fresh_and_permanent_entries() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("popip");
        build(
            &dir.path().join("popip.db"),
            &[("10.0.0.1", "RELAY"), ("10.0.0.2", " 100 ")],
            false,
        );
        record(&map, ip("127.0.0.3"), at(1000)).unwrap();
        record(&map, ip("127.0.0.4"), at(1890)).unwrap();
        let ttl = Duration::from_secs(900);
        // At 1900: 127.0.0.3 is exactly 900 s old (expired, as the relay check sees it),
        // 127.0.0.4 10 s old, 10.0.0.2 (stored with spaces) 1800 s old.
        assert_eq!(expire(&map, ttl, at(1900)).unwrap(), 2);
        let left = list(&map).unwrap();
        assert_eq!(
            left,
            vec![
                Entry {
                    ip: "10.0.0.1".into(),
                    time: None
                },
                Entry {
                    ip: "127.0.0.4".into(),
                    time: Some(1890)
                },
            ]
        );
        assert_eq!(expire(&map, ttl, at(1900)).unwrap(), 0);
        // A login from a permanent address keeps it permanent.
        record(&map, ip("10.0.0.1"), at(5000)).unwrap();
        assert_eq!(list(&map).unwrap()[0].time, None);
        assert_eq!(expire(&map, ttl, at(1_000_000)).unwrap(), 1);
        assert_eq!(list(&map).unwrap().len(), 1);
        // Nothing to expire in a map that does not exist.
        assert_eq!(expire(&dir.path().join("none"), ttl, at(0)).unwrap(), 0);
    }

    #[test]
    fn nul_terminated_maps_are_updated_in_their_own_format() {
        // `makemap -N hash popip` stores keys and values with a trailing NUL.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("popip.db");
        build(&db, &[("127.0.0.9", "500")], true);
        let map = dir.path().join("popip");
        record(&map, ip("127.0.0.9"), at(600)).unwrap();
        record(&map, ip("127.0.0.8"), at(700)).unwrap();
        let lazy = LazyMap::new(db);
        assert_eq!(lazy.get(b"127.0.0.9").unwrap(), Some(b"600".to_vec()));
        assert_eq!(lazy.get(b"127.0.0.8").unwrap(), Some(b"700".to_vec()));
        assert_eq!(expire(&map, Duration::from_secs(50), at(660)).unwrap(), 1);
        assert_eq!(lazy.get(b"127.0.0.9").unwrap(), None);
    }

    #[test]
    fn concurrent_records_all_land() {
        // Several logins at once, the first ones racing to create the map.
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("popip");
        let threads: Vec<_> = (0..6u8)
            .map(|t| {
                let map = map.clone();
                std::thread::spawn(move || {
                    for i in 0..15u8 {
                        let a = IpAddr::from([127, 1, t, i]);
                        record(&map, a, at(1000 + u64::from(i))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = list(&map).unwrap();
        assert_eq!(all.len(), 6 * 15);
        for t in 0..6u8 {
            for i in 0..15u8 {
                let want = Entry {
                    ip: format!("127.1.{t}.{i}"),
                    time: Some(1000 + u64::from(i)),
                };
                assert!(all.contains(&want), "{want:?} missing");
            }
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unreadable_map_is_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("popip");
        fs::write(dir.path().join("popip.db"), b"not a map at all").unwrap();
        assert!(list(&map).is_err());
        assert!(record(&map, ip("127.0.0.3"), at(1)).is_err());
    }
}
