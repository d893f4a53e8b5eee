//! Virtual users: the `users` map holds `name -> password hash`. New hashes are argon2id (PHC
//! string); sha512-crypt (`$6$…`) hashes imported from /etc/shadow-style files are accepted.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

use crate::maps::{Map, MapError};

/// Hashes a new password with argon2id and a random salt.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored hash of either supported kind.
pub fn verify_hash(stored: &str, password: &[u8]) -> bool {
    if stored.starts_with("$argon2") {
        return PasswordHash::new(stored)
            .is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok());
    }
    if stored.starts_with("$6$") {
        return std::str::from_utf8(password)
            .is_ok_and(|p| sha_crypt::sha512_check(p, stored).is_ok());
    }
    false
}

/// A users-map value, the one place its format is read and written: `HASH [apop=SECRET]
/// [other words…]`. Logins read the hash; `apop=` holds the APOP secret; any other word is
/// kept as it is when a password changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: String,
    pub apop: Option<String>,
    pub other: Vec<String>,
}

impl Entry {
    pub fn parse(value: &str) -> Entry {
        let mut words = value.split_whitespace();
        let hash = words.next().unwrap_or("").to_string();
        let mut apop = None;
        let mut other = Vec::new();
        for w in words {
            match w.strip_prefix("apop=") {
                Some(s) if apop.is_none() && !s.is_empty() => apop = Some(s.to_string()),
                Some(_) => {}
                None => other.push(w.to_string()),
            }
        }
        Entry { hash, apop, other }
    }

    /// The value to store.
    pub fn to_value(&self) -> String {
        let mut v = self.hash.clone();
        for w in &self.other {
            v.push(' ');
            v.push_str(w);
        }
        if let Some(s) = &self.apop {
            v.push_str(" apop=");
            v.push_str(s);
        }
        v
    }

    /// The hash scheme, by its prefix.
    pub fn scheme(&self) -> &'static str {
        let h = self.hash.as_str();
        if h.starts_with("$argon2id$") {
            "argon2id"
        } else if h.starts_with("$argon2i$") {
            "argon2i"
        } else if h.starts_with("$argon2d$") {
            "argon2d"
        } else if h.starts_with("$6$") {
            "sha512-crypt"
        } else {
            "other"
        }
    }
}

/// The APOP shared secret stored after the hash as `apop=SECRET` (`mailtool passwd --apop`).
/// APOP (RFC 1939 §7) needs the secret itself on the server, so only users given one can use
/// it; everyone else logs in with a password that is stored only as a hash.
pub fn apop_secret(value: &str) -> Option<String> {
    Entry::parse(value).apop
}

/// A hash that never matches, verified for unknown users so that a failed login takes the
/// same time whether or not the user exists.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$H8rPwlSjpYqnVbCJGdAzgpj+kp0TNHFZJlJXs2tG4nI";

/// Looks `user` up in the users map and checks the password. Names are case-insensitive.
pub fn authenticate(users: &dyn Map, user: &str, password: &[u8]) -> Result<bool, MapError> {
    let key = user.to_ascii_lowercase();
    let stored = users.get(key.as_bytes())?;
    Ok(check_stored(
        stored.as_deref().map(String::from_utf8_lossy).as_deref(),
        password,
    ))
}

/// Checks a password against a users-map value (`HASH [apop=SECRET]`), or, for an unknown
/// user (`None`), against a hash that never matches, so that a failed login takes the same
/// time whether or not the user exists.
pub fn check_stored(value: Option<&str>, password: &[u8]) -> bool {
    match value {
        Some(v) => verify_hash(&Entry::parse(v).hash, password),
        None => {
            let _ = verify_hash(DUMMY, password);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::MemMap;

    #[test]
    fn entries_round_trip() {
        let e = Entry::parse("$6$s$h note=x apop=sekrit other");
        assert_eq!(e.hash, "$6$s$h");
        assert_eq!(e.apop.as_deref(), Some("sekrit"));
        assert_eq!(e.other, ["note=x", "other"]);
        assert_eq!(e.scheme(), "sha512-crypt");
        assert_eq!(e.to_value(), "$6$s$h note=x other apop=sekrit");
        assert_eq!(Entry::parse(&e.to_value()), e);
        let bare = Entry::parse("$argon2id$v=19$x");
        assert_eq!((bare.apop, bare.other.len()), (None, 0));
        assert_eq!(Entry::parse("h apop=").apop, None);
        assert_eq!(Entry::parse("").scheme(), "other");
        assert_eq!(apop_secret("h apop=a apop=b").as_deref(), Some("a"));
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password(b"s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_hash(&h, b"s3cret"));
        assert!(!verify_hash(&h, b"wrong"));
    }

    #[test]
    fn sha512_crypt_is_accepted() {
        // `mkpasswd -m sha-512 -S saltsalt password`
        let h = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";
        assert!(verify_hash(h, b"password"));
        assert!(!verify_hash(h, b"Password"));
    }

    #[test]
    fn unknown_users_and_garbage_hashes_fail() {
        let h = hash_password(b"pw").unwrap();
        let m = MemMap::from_pairs([("who", h.as_str()), ("broken", "plaintext")]);
        assert!(authenticate(&m, "WHO", b"pw").unwrap());
        assert!(!authenticate(&m, "who", b"nope").unwrap());
        assert!(!authenticate(&m, "nobody", b"pw").unwrap());
        assert!(!authenticate(&m, "broken", b"plaintext").unwrap());
        assert!(!verify_hash(DUMMY, b""));
    }
}
