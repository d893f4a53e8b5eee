//! The queue: how much is waiting and for how long.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Check;
use crate::config::Config;
use crate::queue::Spool;

/// More than this many queued messages is worth a look.
pub const BACKLOG: usize = 1000;

pub fn backlog(cfg: &Config, now: SystemTime) -> Check {
    let dir = cfg.path(&cfg.settings.paths.spool);
    let list = match Spool::attach(&dir).and_then(|s| s.list()) {
        Ok(l) => l,
        Err(_) if !dir.exists() => return Check::pass("queue", "empty (no spool yet)"),
        Err(e) => {
            return Check::fail(
                "queue",
                format!("{}: {e}", dir.display()),
                "check the spool's permissions",
            );
        }
    };
    if list.is_empty() {
        return Check::pass("queue", "empty");
    }
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let oldest = list.iter().map(|m| m.envelope.created).min().unwrap_or(now);
    let age = now.saturating_sub(oldest);
    let detail = format!(
        "{} {}, the oldest queued {} ago",
        list.len(),
        crate::util::plural(list.len(), "message", "messages"),
        crate::duration::describe(std::time::Duration::from_secs(age))
    );
    if age >= cfg.settings.queue.warn_after.0.as_secs() || list.len() > BACKLOG {
        Check::warn(
            "queue",
            detail,
            "mailq shows why they wait; `mailtool queue run` retries now",
        )
    } else {
        Check::pass("queue", detail)
    }
}
