//! Local couriers: a user's mailbox (mbox or Maildir, [`crate::mailbox`]) and `/file`
//! alias targets (mbox append under the same locks). The file work runs on a blocking thread.

use std::collections::HashMap;
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

/// Delivers to `user`'s mailbox. Deliveries to one mbox that arrive while another is being
/// written wait and go in together, under one lock and one fsync ([`mbox_batched`]).
pub async fn mailbox(opts: Options, user: String, sender: String, data: Content) -> Outcome {
    if opts.format == MailboxFormat::Mbox {
        return match mailbox::user_mailbox(&opts.mailboxes, opts.format, &user) {
            Ok(path) => mbox_batched(opts.limits, path, sender, data).await,
            Err(e) => outcome(Err(e), "mailbox"),
        };
    }
    write(sender, data, "mailbox", move |msg| {
        mailbox::deliver_to_user(&opts.mailboxes, opts.format, &user, msg, &opts.limits)
    })
    .await
}

/// A delivery waiting for its mbox's writer.
struct Queued {
    sender: String,
    data: Content,
    arrival: SystemTime,
    done: tokio::sync::oneshot::Sender<Result<mailbox::Delivered, LocalError>>,
}

/// Per mbox path: the deliveries waiting while a writer works on that mbox. A path is present
/// exactly while a writer owns it.
static WAITING: std::sync::LazyLock<std::sync::Mutex<HashMap<PathBuf, Vec<Queued>>>> =
    std::sync::LazyLock::new(Default::default);

fn waiting() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Vec<Queued>>> {
    WAITING.lock().unwrap_or_else(|p| p.into_inner())
}

/// The mbox group commit. The first delivery to an idle mbox becomes its writer on a blocking
/// thread; deliveries arriving meanwhile queue up, and the writer takes them in batches
/// ([`mailbox::mbox::deliver_many`]: one lock, one fsync, a result each) until none are left.
/// A writer that dies drops the queue, and every waiting delivery is deferred, never lost.
async fn mbox_batched(
    limits: LocalOptions,
    path: PathBuf,
    sender: String,
    data: Content,
) -> Outcome {
    let (done, result) = tokio::sync::oneshot::channel();
    let job = Queued {
        sender,
        data,
        arrival: SystemTime::now(),
        done,
    };
    let lead = {
        let mut w = waiting();
        match w.get_mut(&path) {
            Some(q) => {
                q.push(job);
                false
            }
            None => {
                w.insert(path.clone(), vec![job]);
                true
            }
        }
    };
    if lead {
        let p = path.clone();
        tokio::task::spawn_blocking(move || write_batches(&p, &limits));
    }
    match result.await {
        Ok(r) => outcome(r, "mailbox"),
        Err(_) => Outcome::Deferred("Deferred: local delivery failed: mailbox writer gone".into()),
    }
}

/// The writer's loop: batches until the queue is empty, then it lets go of the path.
fn write_batches(path: &PathBuf, limits: &LocalOptions) {
    // Let go of the path even if a batch panics: the queue is dropped with it, which defers
    // its deliveries rather than leaving them waiting for ever.
    struct Release<'a>(&'a PathBuf, bool);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            if !self.1 {
                waiting().remove(self.0);
            }
        }
    }
    let mut release = Release(path, false);
    loop {
        // Seeing the queue empty and letting go of the path happen under one lock, so a
        // delivery that arrives now finds no writer and becomes the next one.
        let batch = {
            let mut w = waiting();
            match w.get_mut(path) {
                Some(q) if !q.is_empty() => std::mem::take(q),
                _ => {
                    w.remove(path);
                    release.1 = true;
                    return;
                }
            }
        };
        let prepends: Vec<Vec<u8>> = batch.iter().map(|j| return_path(&j.sender)).collect();
        let msgs: Vec<LocalMessage<'_>> = batch
            .iter()
            .zip(&prepends)
            .map(|(j, prepend)| LocalMessage {
                envelope_sender: &j.sender,
                arrival: j.arrival,
                data: (&j.data).into(),
                prepend,
            })
            .collect();
        let results = mailbox::mbox::deliver_many(path, &msgs, limits);
        drop(msgs);
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.done.send(r);
        }
    }
}

/// Appends to a file named by an alias (`/var/log/mail-archive`).
pub async fn file(opts: Options, path: PathBuf, sender: String, data: Content) -> Outcome {
    write(sender, data, "file", move |msg| {
        mailbox::file::deliver(&path, msg, &opts.limits)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    // The mbox group commit: deliveries racing for one mbox all go in, exactly once each, and
    // each is told its own result.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_deliveries_to_one_mbox_all_arrive_once() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            mailboxes: dir.path().to_path_buf(),
            format: MailboxFormat::Mbox,
            limits: LocalOptions {
                lock_timeout: Duration::from_secs(10),
                ..LocalOptions::default()
            },
        };
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let o = opts.clone();
                let data = Content::from(format!("Subject: m{i}\n\nbody {i}\n").into_bytes());
                tokio::spawn(mailbox(o, "joe".into(), format!("s{i}@x"), data))
            })
            .collect();
        for t in tasks {
            let out = t.await.unwrap();
            assert!(matches!(out, Outcome::Sent(_)), "{out:?}");
        }
        let text = std::fs::read_to_string(dir.path().join("joe")).unwrap();
        for i in 0..60 {
            assert_eq!(text.matches(&format!("Subject: m{i}\n")).count(), 1, "m{i}");
        }
        assert_eq!(text.matches("\nFrom s").count() + 1, 60);
        // The writer let go of the path: a later delivery writes again.
        let out = mailbox(
            opts.clone(),
            "joe".into(),
            "late@x".into(),
            b"S: late\n\n".to_vec().into(),
        )
        .await;
        assert!(matches!(out, Outcome::Sent(_)), "{out:?}");
        assert!(waiting().get(&dir.path().join("joe")).is_none());
        // A bad user name fails without touching the batcher.
        let out = mailbox(opts, "../etc".into(), "a@x".into(), b"x\n".to_vec().into()).await;
        assert!(matches!(out, Outcome::Failed(_)), "{out:?}");
    }
}
