//! POP3 credentials: checking them against the `users` map, and a small in-memory cache of
//! recently verified logins. Failures are throttled by [`crate::server::throttle`], which
//! SMTP AUTH shares.
//!
//! The cache exists because mail clients poll every few minutes with the same password and an
//! argon2id verification costs tens of milliseconds of CPU. It keeps, per user, the stored hash
//! and a SHA-256 of the password under a random per-process key: a hit requires the same map
//! entry and the same password, a password change or a deleted user misses, and nothing usable
//! offline ever leaves memory. Dovecot's `auth_cache` does the same.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::session::Credential;
use crate::maps::{Map, MapError};

/// How long a verified password is trusted without a full hash check.
const CACHE_TTL: Duration = Duration::from_secs(3600);
const CACHE_ENTRIES: usize = 100_000;

pub struct Guard {
    cache: Mutex<HashMap<String, Cached>>,
    key: [u8; 32],
}

struct Cached {
    stored: String,
    digest: [u8; 32],
    at: Instant,
}

/// A user name as it may appear in a log line: no quotes or control characters, so a name can
/// never forge a second log entry (the poprelayd lesson, CVE-2001-1075).
pub fn loggable(user: &str) -> String {
    user.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}

impl Guard {
    pub fn new() -> Guard {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        // Any unpredictable key will do; the cache lives only as long as the process.
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Guard {
            cache: Mutex::new(HashMap::new()),
            key,
        }
    }

    fn digest(&self, password: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(password);
        h.finalize().into()
    }

    /// Checks `credential` for `user` against the users map (blocking: argon2id is slow on
    /// purpose). `Ok(false)` for an unknown user or a wrong secret.
    pub fn verify(
        &self,
        users: &dyn Map,
        user: &str,
        credential: &Credential,
    ) -> Result<bool, MapError> {
        let name = user.to_ascii_lowercase();
        match credential {
            Credential::Password(pw) => {
                let Some(value) = users.get(name.as_bytes())? else {
                    // Same cost as a real check, so a probe cannot tell who exists.
                    return Ok(crate::users::check_stored(None, pw));
                };
                let stored = String::from_utf8_lossy(&value).into_owned();
                let digest = self.digest(pw);
                {
                    let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(hit) = c.get(&name)
                        && hit.stored == stored
                        && hit.digest == digest
                        && hit.at.elapsed() < CACHE_TTL
                    {
                        return Ok(true);
                    }
                }
                let ok = crate::users::check_stored(Some(&stored), pw);
                if ok {
                    let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                    if c.len() >= CACHE_ENTRIES {
                        c.clear();
                    }
                    c.insert(
                        name,
                        Cached {
                            stored,
                            digest,
                            at: Instant::now(),
                        },
                    );
                }
                Ok(ok)
            }
            Credential::Apop { stamp, digest } => {
                let Some(value) = users.get(name.as_bytes())? else {
                    return Ok(false);
                };
                let value = String::from_utf8_lossy(&value);
                let Some(secret) = crate::users::apop_secret(&value) else {
                    return Ok(false);
                };
                let mut h = Md5::new();
                h.update(stamp.as_bytes());
                h.update(secret.as_bytes());
                let expect: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                Ok(constant_time_eq(expect.as_bytes(), digest.as_bytes()))
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MemMap;

    #[test]
    fn passwords_cache_and_apop() {
        let h = crate::users::hash_password(b"pw").unwrap();
        let with_apop = format!("{h} apop=s3cret");
        let m = MemMap::from_pairs([("who", h.as_str()), ("ap", with_apop.as_str())]);
        let g = Guard::new();
        let pw = |p: &[u8]| Credential::Password(p.to_vec());
        assert!(g.verify(&m, "Who", &pw(b"pw")).unwrap());
        assert!(g.verify(&m, "who", &pw(b"pw")).unwrap(), "cached");
        assert!(!g.verify(&m, "who", &pw(b"nope")).unwrap());
        assert!(!g.verify(&m, "nobody", &pw(b"pw")).unwrap());
        assert!(g.verify(&m, "ap", &pw(b"pw")).unwrap());
        // RFC 1939 §7's example: MD5("<1896.697170952@dbc.mtview.ca.us>tanstaaf").
        let m2 = MemMap::from_pairs([("mrose", "$argon2id$x apop=tanstaaf")]);
        let apop = |d: &str| Credential::Apop {
            stamp: "<1896.697170952@dbc.mtview.ca.us>".into(),
            digest: d.into(),
        };
        assert!(
            g.verify(&m2, "mrose", &apop("c4c9334bac560ecc979e58001b3e22fb"))
                .unwrap()
        );
        assert!(
            !g.verify(&m2, "mrose", &apop("c4c9334bac560ecc979e58001b3e22fc"))
                .unwrap()
        );
        assert!(
            !g.verify(&m, "who", &apop("c4c9334bac560ecc979e58001b3e22fb"))
                .unwrap(),
            "no APOP secret stored"
        );
    }

    #[test]
    fn log_names_cannot_forge_lines() {
        assert_eq!(loggable("a\"b\nc d"), "a?b?c?d");
    }
}
