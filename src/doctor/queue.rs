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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Envelope, NewMessage, Recipient};

    fn queue_n(n: usize) -> (tempfile::TempDir, Config) {
        let d = tempfile::tempdir().unwrap();
        let cfg = Config::from_settings(
            crate::config::Settings::defaults(false),
            d.path().to_path_buf(),
        );
        let spool = Spool::open(&cfg.path(&cfg.settings.paths.spool)).unwrap();
        for _ in 0..n {
            spool
                .store(NewMessage {
                    envelope: Envelope::new("a@b.test", vec![Recipient::new("c@d.test")]),
                    data: b"Subject: x\n\nx\n".to_vec().into(),
                    id: None,
                })
                .unwrap();
        }
        (d, cfg)
    }

    #[test]
    fn one_message_is_singular() {
        let (_d, cfg) = queue_n(1);
        let c = backlog(&cfg, SystemTime::now());
        assert!(
            c.detail.starts_with("1 message, the oldest"),
            "{}",
            c.detail
        );
        let (_d, cfg) = queue_n(2);
        let c = backlog(&cfg, SystemTime::now());
        assert!(
            c.detail.starts_with("2 messages, the oldest"),
            "{}",
            c.detail
        );
        let (_d, cfg) = queue_n(0);
        assert_eq!(backlog(&cfg, SystemTime::now()).detail, "empty");
    }
}
