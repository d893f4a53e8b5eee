//! sendmail 8.12 style queue ids (docs/sendmail-compat.md §3.4).
//!
//! An id is 8 characters from the alphabet `0-9A-Za-z` followed by the process id zero-padded to
//! six digits, e.g. `k5FGx0Ax012345`:
//!
//! | pos | value (all fields GMT) |
//! |---|---|
//! | 0 | `tm_year % 60` (years since 1900, as sendmail's `struct tm`; 2006 → `k`) |
//! | 1 | month, 0–11 |
//! | 2 | day of month, 1–31 |
//! | 3 | hour |
//! | 4 | minute |
//! | 5 | second |
//! | 6, 7 | `seq / 60`, `seq % 60` where `seq = (counter + random_offset) % 3600` |
//! | 8.. | pid, `%06d` (seven digits if the pid is above 999999) |
//!
//! `counter` is a per-process counter incremented for every id handed out, and `random_offset` is
//! chosen once per process. Uniqueness within the spool comes from creating the `df` file with
//! `O_EXCL`; on a collision the caller asks for the next sequence number.
//!
//! The format allows only 3600 ids per second and process (sendmail forks per connection, we do
//! not). [`QueueId::allocate`] therefore never hands out more than 3600 ids for one second: when
//! a second's budget is used up it uses the next second's time fields ("borrowing" up to
//! [`MAX_BORROW_SECS`] ahead), and only beyond that sleeps. The time fields are also kept
//! monotonic, so a clock stepped backwards does not cause collisions. The id's time is thus only
//! approximately the acceptance time; the `T` record holds the real one.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The id alphabet. Only the first 60 characters are ever used (every field is < 60).
pub const ID_CHARS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Number of distinct sequence values per second and process (60 × 60).
pub const SEQ_SPACE: u32 = 3600;

/// How far ahead of the clock [`QueueId::allocate`] may take the id's time fields.
pub const MAX_BORROW_SECS: i64 = 60;

/// Longest id accepted by [`QueueId::parse`] (protects path building from absurd names).
const MAX_ID_LEN: usize = 64;

/// A queue id such as `k5FGx0Ax012345`: the suffix of the `qf`/`df`/`tf` file names.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct QueueId(String);

/// Error for a string that is not a plausible queue id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid queue id {0:?}")]
pub struct InvalidQueueId(pub String);

impl QueueId {
    /// Accepts any non-empty ASCII-alphanumeric string of at most 64 characters, so ids written by
    /// other implementations (8.11 style `MAA12345`, longer pids) are still usable as file names.
    pub fn parse(s: &str) -> Result<QueueId, InvalidQueueId> {
        if s.is_empty() || s.len() > MAX_ID_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(InvalidQueueId(s.to_string()));
        }
        Ok(QueueId(s.to_string()))
    }

    /// Builds the id for the given unix time (seconds, interpreted as GMT), sequence number
    /// (taken modulo 3600) and pid.
    pub fn compose(unix_secs: i64, seq: u32, pid: u32) -> QueueId {
        let t = civil_from_unix(unix_secs);
        let seq = seq % SEQ_SPACE;
        let c = |i: i64| ID_CHARS[(i.rem_euclid(60)) as usize] as char;
        let mut s = String::with_capacity(16);
        s.push(c(t.year - 1900));
        s.push(c(t.month0));
        s.push(c(t.mday));
        s.push(c(t.hour));
        s.push(c(t.min));
        s.push(c(t.sec));
        s.push(c(i64::from(seq / 60)));
        s.push(c(i64::from(seq % 60)));
        s.push_str(&format!("{pid:06}"));
        QueueId(s)
    }

    /// A new candidate id for this process at `unix_secs`, using the next sequence number.
    /// Does not enforce the per-second budget; prefer [`QueueId::allocate`].
    pub fn next_candidate(unix_secs: i64) -> QueueId {
        QueueId::compose(unix_secs, next_seq(), std::process::id())
    }

    /// A new candidate id for this process at the current time, distinct from every other id this
    /// process allocated (see the module docs); may sleep if more than 3600 ids per second were
    /// requested for over a minute.
    pub fn allocate() -> QueueId {
        loop {
            let now = unix_now();
            {
                let mut st = ALLOC.lock().unwrap_or_else(|e| e.into_inner());
                let (sec, issued, counter) = *st;
                let (sec, issued) = if now > sec { (now, 0) } else { (sec, issued) };
                let slot = if issued < SEQ_SPACE {
                    Some((sec, issued))
                } else if sec < now + MAX_BORROW_SECS {
                    Some((sec + 1, 0))
                } else {
                    None
                };
                if let Some((sec, issued)) = slot {
                    *st = (sec, issued + 1, (counter + 1) % SEQ_SPACE);
                    let seq = (counter + random_offset()) % SEQ_SPACE;
                    return QueueId::compose(sec, seq, std::process::id());
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pid embedded in an 8.12-style id (the digits after the first 8 characters), if any.
    pub fn pid(&self) -> Option<u32> {
        let tail = self.0.get(8..)?;
        if tail.len() < 6 || !tail.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        tail.parse().ok()
    }

    /// Whether the process that made this id may still be writing its files: it is alive and
    /// it is not us. Our own pid in a leftover means a previous process with the same pid (a
    /// container's pid 1 after a restart), whose files nobody will finish.
    pub fn writer_alive(&self) -> bool {
        self.pid()
            .is_some_and(|pid| pid != std::process::id() && crate::sys::process::alive(pid))
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for QueueId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for QueueId {
    type Err = InvalidQueueId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueId::parse(s)
    }
}

impl TryFrom<String> for QueueId {
    type Error = InvalidQueueId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        QueueId::parse(&s)
    }
}

impl From<QueueId> for String {
    fn from(id: QueueId) -> String {
        id.0
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// State of [`QueueId::allocate`]: (second used for the id's time fields, ids issued for it,
/// per-process counter).
static ALLOC: Mutex<(i64, u32, u32)> = Mutex::new((i64::MIN, 0, 0));

fn unix_now() -> i64 {
    i64::try_from(crate::sys::unix_now()).unwrap_or(i64::MAX)
}
static OFFSET: OnceLock<u32> = OnceLock::new();

/// The next per-process sequence number, `(counter + random_offset) % 3600`.
pub fn next_seq() -> u32 {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % SEQ_SPACE;
    (n + random_offset()) % SEQ_SPACE
}

fn random_offset() -> u32 {
    *OFFSET.get_or_init(|| {
        // RandomState is seeded from the OS's random source once per process.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        (h.finish() % u64::from(SEQ_SPACE)) as u32
    })
}

pub(crate) use crate::dates::civil_from_unix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendmail_example_id() {
        // Thu Jun 15 16:59:00 2006 GMT, seq "Ax" = 10*60+59, pid 12345.
        let t = 1_150_390_740;
        assert_eq!(
            QueueId::compose(t, 10 * 60 + 59, 12345).as_str(),
            "k5FGx0Ax012345"
        );
        assert_eq!(QueueId::compose(t, 10 * 60 + 59, 12345).pid(), Some(12345));
    }

    #[test]
    fn civil() {
        let c = civil_from_unix(1_150_390_740);
        assert_eq!(
            (c.year, c.month0, c.mday, c.hour, c.min, c.sec, c.wday),
            (2006, 5, 15, 16, 59, 0, 4)
        );
        let c = civil_from_unix(0);
        assert_eq!((c.year, c.month0, c.mday, c.wday), (1970, 0, 1, 4));
        let c = civil_from_unix(951_782_400); // 2000-02-29
        assert_eq!((c.year, c.month0, c.mday), (2000, 1, 29));
    }

    #[test]
    fn sequence_wraps_and_differs() {
        let a = next_seq();
        let b = next_seq();
        assert!(a < SEQ_SPACE && b < SEQ_SPACE);
        assert_ne!(a, b);
        let id = QueueId::next_candidate(1_700_000_000);
        assert_eq!(
            id.as_str().len(),
            8 + format!("{:06}", std::process::id()).len()
        );
    }

    #[test]
    fn allocate_never_repeats_past_the_per_second_budget() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(2 * SEQ_SPACE + 10) {
            assert!(seen.insert(QueueId::allocate()));
        }
    }

    #[test]
    fn parse_rejects_path_tricks() {
        assert!(QueueId::parse("../etc").is_err());
        assert!(QueueId::parse("").is_err());
        assert!(QueueId::parse("a/b").is_err());
        assert!(QueueId::parse("MAA12345").is_ok());
        assert_eq!(QueueId::parse("MAA12345").unwrap().pid(), None);
    }
}
