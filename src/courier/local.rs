//! Local couriers: a user's mailbox (mbox or Maildir, [`crate::mailbox`]) and `/file`
//! alias targets (mbox append under the same locks). The file work runs on a blocking thread.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::Outcome;
use crate::config::{Config, MailboxFormat};
use crate::content::Content;
use crate::mailbox::{self, LocalError, LocalMessage, LocalOptions};

/// What local delivery needs from the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    pub mailboxes: PathBuf,
    pub format: MailboxFormat,
    pub limits: LocalOptions,
}

impl Options {
    pub fn from_config(cfg: &Config) -> Options {
        let q = &cfg.settings.queue;
        Options {
            mailboxes: cfg.path(&cfg.settings.paths.mailboxes),
            format: cfg.settings.paths.mailbox_format,
            limits: LocalOptions {
                max_size: q.local_max_size,
                quota: q.mailbox_quota,
                lock_timeout: Duration::from_secs(30),
                ..LocalOptions::default()
            },
        }
    }
}

/// sendmail's local mailer adds Return-Path (the `P` flag); Maildir readers rely on it too.
fn return_path(sender: &str) -> Vec<u8> {
    format!("Return-Path: <{sender}>\n").into_bytes()
}

fn outcome(r: Result<mailbox::Delivered, LocalError>, what: &str) -> Outcome {
    match r {
        Ok(d) => Outcome::Sent(format!("Sent ({what}, {} bytes)", d.bytes)),
        Err(e) => {
            let (code, text) = e.status();
            if e.is_temporary() {
                Outcome::Deferred(format!("Deferred: {code} {text}"))
            } else {
                let reply = if code.starts_with("5.1.") { 550 } else { 554 };
                Outcome::Failed(format!("{reply} {code} {text}"))
            }
        }
    }
}

async fn blocking(f: impl FnOnce() -> Outcome + Send + 'static) -> Outcome {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Outcome::Deferred(format!("Deferred: local delivery failed: {e}")))
}

/// Runs one local write on a blocking thread, with the message as sendmail's local mailer
/// would write it (Return-Path first).
async fn write(
    sender: String,
    data: Content,
    what: &'static str,
    f: impl FnOnce(&LocalMessage<'_>) -> Result<mailbox::Delivered, LocalError> + Send + 'static,
) -> Outcome {
    blocking(move || {
        let prepend = return_path(&sender);
        let msg = LocalMessage {
            envelope_sender: &sender,
            arrival: SystemTime::now(),
            data: (&data).into(),
            prepend: &prepend,
        };
        outcome(f(&msg), what)
    })
    .await
}

/// Delivers to `user`'s mailbox.
pub async fn mailbox(opts: Options, user: String, sender: String, data: Content) -> Outcome {
    write(sender, data, "mailbox", move |msg| {
        mailbox::deliver_to_user(&opts.mailboxes, opts.format, &user, msg, &opts.limits)
    })
    .await
}

/// Appends to a file named by an alias (`/var/log/mail-archive`).
pub async fn file(opts: Options, path: PathBuf, sender: String, data: Content) -> Outcome {
    write(sender, data, "file", move |msg| {
        mailbox::file::deliver(&path, msg, &opts.limits)
    })
    .await
}
