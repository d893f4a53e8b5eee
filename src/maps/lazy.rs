//! A map the server names in its config but that may not exist yet: an absent file is an
//! empty map, and a file that appears (or is rebuilt) later is picked up without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::open::AnyMap;
use super::{Map, MapError};

/// How often a map file that exists but could not be opened is tried again.
const RECHECK: Duration = Duration::from_secs(1);

pub struct LazyMap {
    path: PathBuf,
    state: Mutex<State>,
}

enum State {
    Open(Box<AnyMap>),
    /// No file: an empty map. Looked for again at every lookup.
    Missing,
    /// The file exists but cannot be opened (permissions, corruption): every lookup fails,
    /// so access_db's `-T<TMPF>` answers 451 instead of silently skipping the rules.
    Broken(Instant, String),
}

fn open_state(path: &Path) -> State {
    match AnyMap::open(path) {
        Ok(m) => State::Open(Box::new(m)),
        Err(_) if !path.exists() => State::Missing,
        Err(e) => {
            tracing::error!("map {} cannot be read: {e}", path.display());
            State::Broken(Instant::now(), e.to_string())
        }
    }
}

impl LazyMap {
    /// `path` is the `.db` file.
    pub fn new(path: PathBuf) -> LazyMap {
        let state = open_state(&path);
        LazyMap {
            path,
            state: Mutex::new(state),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the map file exists and opened.
    pub fn is_present(&self) -> bool {
        self.with(|_| Ok(())).is_ok_and(|v| v.is_some())
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&AnyMap) -> Result<T, MapError>,
    ) -> Result<Option<T>, MapError> {
        let mut g = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let retry = match &*g {
            // One stat per lookup, as an open map does: a map built a moment ago (`mailtool
            // passwd` right before the mail to the new user) is used by the next lookup.
            State::Missing => self.path.exists(),
            State::Broken(since, _) => since.elapsed() >= RECHECK,
            State::Open(_) => false,
        };
        if retry {
            *g = open_state(&self.path);
        }
        match &*g {
            State::Open(m) => f(m).map(Some),
            State::Missing => Ok(None),
            State::Broken(_, message) => Err(MapError::Io {
                path: self.path.display().to_string(),
                message: message.clone(),
            }),
        }
    }
}

impl Map for LazyMap {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.with(|m| m.get(key))?.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::store::{Builder, Meta};

    #[test]
    fn unreadable_map_fails_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.db");
        std::fs::write(&p, b"garbage that is no map").unwrap();
        let m = LazyMap::new(p);
        assert!(m.get(b"k").is_err());
    }

    #[test]
    fn missing_then_present() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.db");
        let m = LazyMap::new(p.clone());
        assert_eq!(m.get(b"k").unwrap(), None);
        assert!(!m.is_present());
        let mut b = Builder::create(
            &p,
            Meta {
                kind: "hash".into(),
                nul: false,
            },
        )
        .unwrap();
        b.push(b"k", b"v").unwrap();
        b.commit().unwrap();
        // At once, not a second later: the Quick start makes a user and mails it right away.
        assert_eq!(m.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert!(m.is_present());
    }
}
