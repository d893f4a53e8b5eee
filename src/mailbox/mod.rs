//! Local delivery: appending a message to `/var/mail/USER` (mbox, the default) or to a Maildir,
//! and to `/file` alias targets, the way sendmail's local mailer (mail.local) does it.
//!
//! | module | does |
//! |---|---|
//! | [`encode`] | the pure mbox encoding: From_ line, `>From ` quoting, CRLF → LF |
//! | [`lock`] | [`MboxLock`]: dotlock + fcntl lock, shared with the POP3 server |
//! | [`mbox`] | append under the lock, fsync, roll back a partial append |
//! | [`maildir`] | tmp → new delivery with unique names |
//! | [`file`] | `/file` alias targets (mbox format, fcntl lock only, `/dev/null`) |
//!
//! Every failure is a [`LocalError`]; [`LocalError::is_temporary`] tells the queue runner
//! whether to retry (nothing was written) or to bounce, and [`LocalError::status`] gives the
//! enhanced status code and text for the `stat=` log line and the DSN.
//!
//! Which names are users is the router's business ([`crate::route`]): the queue runner bounces
//! an unknown user with `550 5.1.1 User unknown` before it gets here. [`mailbox_path`] only
//! refuses names that cannot be a mailbox file (with the same status).

pub mod encode;
pub mod file;
pub mod lock;
pub mod maildir;
pub mod mbox;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::MailboxFormat;
use crate::content::Content;
use crate::util::io_message;

pub use lock::MboxLock;

/// A message to deliver.
#[derive(Debug, Clone, Copy)]
pub struct LocalMessage<'a> {
    /// Envelope sender without angle brackets; empty for the null sender (the From_ line then
    /// says `MAILER-DAEMON`, as sendmail's does).
    pub envelope_sender: &'a str,
    /// Arrival time, for the From_ line (the Maildir name uses the delivery time).
    pub arrival: SystemTime,
    /// The message as the spool stores it (LF line ends; CRLF is accepted and turned into LF),
    /// read a chunk at a time.
    pub data: Data<'a>,
    /// Header lines to put first (`Return-Path:`, `Delivered-To:`), complete lines; a missing
    /// final newline is added.
    pub prepend: &'a [u8],
}

impl LocalMessage<'_> {
    /// The size checked against [`LocalOptions::max_size`]: what the spool holds plus the added
    /// headers, before any encoding.
    pub fn size(&self) -> u64 {
        self.prepend.len() as u64 + self.data.len()
    }
}

/// The message bytes of a [`LocalMessage`]: a slice, or queued [`Content`] of any size.
#[derive(Debug, Clone, Copy)]
pub enum Data<'a> {
    Bytes(&'a [u8]),
    Content(&'a Content),
}

impl Data<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Data::Bytes(b) => b.len() as u64,
            Data::Content(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are in memory.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Data::Bytes(b) => Some(b),
            Data::Content(c) => c.as_bytes(),
        }
    }

    /// Calls `f` with each chunk in order (blocking for a file).
    pub fn for_each_chunk(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        match self {
            Data::Bytes(b) => f(b),
            Data::Content(c) => c.for_each_chunk(f),
        }
    }
}

impl<'a> From<&'a [u8]> for Data<'a> {
    fn from(b: &'a [u8]) -> Self {
        Data::Bytes(b)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Data<'a> {
    fn from(b: &'a [u8; N]) -> Self {
        Data::Bytes(b)
    }
}

impl<'a> From<&'a Vec<u8>> for Data<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        Data::Bytes(b)
    }
}

impl<'a> From<&'a Content> for Data<'a> {
    fn from(c: &'a Content) -> Self {
        Data::Content(c)
    }
}

/// Limits and file creation settings for one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalOptions {
    /// LOCAL_MAILER_MAX: larger messages bounce (5.2.3). 0 = no limit.
    pub max_size: u64,
    /// Mailbox quota in bytes (mbox: file size; Maildir: new + cur). 0 = none.
    pub quota: u64,
    /// How long to wait for the dotlock and the fcntl lock before deferring.
    pub lock_timeout: Duration,
    /// Permission bits of a newly created mailbox file (Maildir directories are always 0700).
    pub create_mode: u32,
    /// Owner of a newly created mailbox (uid, gid); applied only when running as root. An
    /// existing mbox owned by someone else is refused, as mail.local does.
    pub owner: Option<(u32, u32)>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        LocalOptions {
            max_size: 0,
            quota: 0,
            lock_timeout: Duration::from_secs(30),
            create_mode: 0o600,
            owner: None,
        }
    }
}

/// What a successful delivery wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The mbox (or file), or the message file in the Maildir's `new/`.
    pub path: PathBuf,
    /// Bytes written (From_ line and separator included for mbox).
    pub bytes: u64,
}

/// Why a local delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LocalError {
    /// The name cannot be a local mailbox (empty, `/`, leading dot, NUL).
    #[error("{0}: User unknown")]
    UnknownUser(String),
    /// Larger than LOCAL_MAILER_MAX.
    #[error("Message is too large; {max} bytes max")]
    TooLarge { size: u64, max: u64 },
    /// The mailbox is a symlink, a directory, a device, has more than one link, or (mbox) is
    /// owned by another user: never written, as mail.local refuses it.
    #[error("{}: {reason}", path.display())]
    Irregular { path: PathBuf, reason: &'static str },
    /// A `/file` alias target with an execute bit (sendmail refuses those).
    #[error("{}: cannot append to an executable file", .0.display())]
    Executable(PathBuf),
    /// The configured quota would be exceeded.
    #[error("{}: Mailbox full (quota {quota} bytes, {used} used, message {size})", path.display())]
    QuotaExceeded {
        path: PathBuf,
        quota: u64,
        used: u64,
        size: u64,
    },
    /// The mailbox is the other kind than `mailbox_format` says (an mbox file where a Maildir
    /// should be, or a directory where an mbox should be): a local configuration problem that
    /// the admin fixes, so the message waits instead of bouncing. Never written.
    #[error(
        "{}: {} where mailbox_format = \"{}\" expects {}: convert the mailbox, or set mailbox_format = \"{}\" (mailtool doctor lists them)",
        path.display(),
        found_kind(*format),
        format_name(*format),
        wanted_kind(*format),
        format_name(other_format(*format))
    )]
    WrongFormat {
        path: PathBuf,
        format: MailboxFormat,
    },
    /// The dotlock or fcntl lock could not be taken within the timeout.
    #[error("{}: timeout waiting for {what}", path.display())]
    LockTimeout { path: PathBuf, what: &'static str },
    /// A system call failed.
    #[error("{op} {}: {}", path.display(), io_message(source))]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
}

impl LocalError {
    pub(crate) fn io(op: &'static str, path: &Path, e: io::Error) -> LocalError {
        LocalError::Io {
            op,
            path: path.to_path_buf(),
            source: Arc::new(e),
        }
    }

    /// The errno of an I/O error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            LocalError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the message should stay queued and be retried: nothing was left in the
    /// mailbox. Locks, full disks, quotas and every I/O error (EACCES included: an admin can fix
    /// permissions) are temporary; the queue's give-up time turns a lasting one into a bounce.
    pub fn is_temporary(&self) -> bool {
        match self {
            LocalError::UnknownUser(_)
            | LocalError::TooLarge { .. }
            | LocalError::Irregular { .. }
            | LocalError::Executable(_) => false,
            LocalError::QuotaExceeded { .. }
            | LocalError::WrongFormat { .. }
            | LocalError::LockTimeout { .. }
            | LocalError::Io { .. } => true,
        }
    }

    /// The RFC 3463 enhanced status code and the text for the `stat=` line and the DSN.
    ///
    /// A quota is `4.2.2 Mailbox full`: temporary, as mail.local treats EDQUOT without `-b`, so
    /// the user can make room before the queue gives up. ENOSPC is `4.3.1` (mail system full).
    pub fn status(&self) -> (&'static str, String) {
        let code = match self {
            LocalError::UnknownUser(_) => "5.1.1",
            LocalError::TooLarge { .. } => "5.2.3",
            LocalError::Irregular { .. } | LocalError::Executable(_) => "5.2.0",
            LocalError::QuotaExceeded { .. } => "4.2.2",
            // RFC 3463 X.3.5: system incorrectly configured.
            LocalError::WrongFormat { .. } => "4.3.5",
            LocalError::LockTimeout { .. } => "4.2.0",
            LocalError::Io { .. } => match self.raw_os_error() {
                Some(libc::ENOSPC) => "4.3.1",
                Some(libc::EDQUOT) => "4.2.2",
                _ => "4.2.0",
            },
        };
        let text = match self {
            LocalError::QuotaExceeded { .. } => "Mailbox full".to_string(),
            LocalError::Io { .. } if self.raw_os_error() == Some(libc::EDQUOT) => {
                "Mailbox full".to_string()
            }
            other => other.to_string(),
        };
        (code, text)
    }
}

/// The `mailbox_format` value of `f`.
pub fn format_name(f: MailboxFormat) -> &'static str {
    match f {
        MailboxFormat::Mbox => "mbox",
        MailboxFormat::Maildir => "maildir",
    }
}

fn other_format(f: MailboxFormat) -> MailboxFormat {
    match f {
        MailboxFormat::Mbox => MailboxFormat::Maildir,
        MailboxFormat::Maildir => MailboxFormat::Mbox,
    }
}

fn wanted_kind(f: MailboxFormat) -> &'static str {
    match f {
        MailboxFormat::Mbox => "an mbox file",
        MailboxFormat::Maildir => "a Maildir directory",
    }
}

fn found_kind(f: MailboxFormat) -> &'static str {
    match f {
        MailboxFormat::Mbox => "a directory (a Maildir?)",
        MailboxFormat::Maildir => "a file (an mbox?)",
    }
}

/// Whether the mailbox at `path` is the other kind than `format` wants: a regular file for
/// Maildir, a directory for mbox. Symlinks and missing mailboxes are not (their own checks
/// apply when delivering).
pub fn wrong_format(path: &Path, format: MailboxFormat) -> bool {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return false;
    };
    match format {
        MailboxFormat::Maildir => m.file_type().is_file(),
        MailboxFormat::Mbox => m.file_type().is_dir(),
    }
}

/// The mailbox of `user` under the mailboxes directory (`/var/mail/USER`, a file for mbox, a
/// directory for Maildir). A `+detail` is dropped: `user+list` delivers to `user`.
pub fn mailbox_path(mailboxes: &Path, user: &str) -> Result<PathBuf, LocalError> {
    let base = user.split_once('+').map_or(user, |(u, _)| u);
    let bad = base.is_empty()
        || base.starts_with('.')
        || base.contains('/')
        || base.bytes().any(|b| b == 0 || b.is_ascii_control());
    if bad {
        return Err(LocalError::UnknownUser(user.to_string()));
    }
    Ok(mailboxes.join(base))
}

/// The mailbox file or Maildir of `user`, refused when it exists in the other format.
pub fn user_mailbox(
    mailboxes: &Path,
    format: MailboxFormat,
    user: &str,
) -> Result<PathBuf, LocalError> {
    let path = mailbox_path(mailboxes, user)?;
    if wrong_format(&path, format) {
        return Err(LocalError::WrongFormat { path, format });
    }
    Ok(path)
}

/// Delivers to `user`'s mailbox in the configured format.
pub fn deliver_to_user(
    mailboxes: &Path,
    format: MailboxFormat,
    user: &str,
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
) -> Result<Delivered, LocalError> {
    let path = user_mailbox(mailboxes, format, user)?;
    match format {
        MailboxFormat::Mbox => mbox::deliver(&path, msg, opts),
        MailboxFormat::Maildir => maildir::deliver(&path, msg, opts),
    }
}

/// Refuses messages above LOCAL_MAILER_MAX.
pub(crate) fn check_max_size(
    msg: &LocalMessage<'_>,
    opts: &LocalOptions,
) -> Result<(), LocalError> {
    let size = msg.size();
    if opts.max_size > 0 && size > opts.max_size {
        return Err(LocalError::TooLarge {
            size,
            max: opts.max_size,
        });
    }
    Ok(())
}

/// fsync a directory so a new entry in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LocalError> {
    crate::sys::fs::sync_dir(dir).map_err(|e| LocalError::io("fsync", dir, e))
}

/// Gives a new file or directory to `owner` when running as root (a no-op otherwise: only root
/// can give files away, and a non-root delivery writes as its own user).
pub(crate) fn chown_new(path: &Path, owner: Option<(u32, u32)>) -> Result<(), LocalError> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    if !crate::sys::is_root() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| LocalError::io("chown", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names() {
        let d = Path::new("/var/mail");
        assert_eq!(mailbox_path(d, "joe").unwrap(), Path::new("/var/mail/joe"));
        assert_eq!(
            mailbox_path(d, "joe+lists").unwrap(),
            Path::new("/var/mail/joe")
        );
        for bad in [
            "",
            "+x",
            "../etc/passwd",
            "a/b",
            ".joe",
            "..",
            "a\0b",
            "a\nb",
        ] {
            let e = mailbox_path(d, bad).unwrap_err();
            assert!(!e.is_temporary());
            assert_eq!(e.status().0, "5.1.1", "{bad:?}");
        }
    }

    #[test]
    fn classification() {
        let too_large = LocalError::TooLarge { size: 10, max: 5 };
        assert!(!too_large.is_temporary());
        assert_eq!(
            too_large.status(),
            ("5.2.3", "Message is too large; 5 bytes max".to_string())
        );
        let enospc = LocalError::io(
            "write",
            Path::new("/m"),
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert!(enospc.is_temporary());
        assert_eq!(enospc.status().0, "4.3.1");
        assert_eq!(enospc.status().1, "write /m: No space left on device");
        let edquot = LocalError::io(
            "write",
            Path::new("/m"),
            io::Error::from_raw_os_error(libc::EDQUOT),
        );
        assert_eq!(edquot.status(), ("4.2.2", "Mailbox full".to_string()));
        let eacces = LocalError::io(
            "open",
            Path::new("/m"),
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert!(eacces.is_temporary());
        assert_eq!(eacces.status().0, "4.2.0");
        let link = LocalError::Irregular {
            path: "/m".into(),
            reason: "irregular file",
        };
        assert!(!link.is_temporary());
        assert_eq!(link.status(), ("5.2.0", "/m: irregular file".to_string()));
        let quota = LocalError::QuotaExceeded {
            path: "/m".into(),
            quota: 1,
            used: 1,
            size: 1,
        };
        assert!(quota.is_temporary());
        assert_eq!(quota.status(), ("4.2.2", "Mailbox full".to_string()));
    }

    #[test]
    fn a_mailbox_of_the_other_kind_waits_and_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("joe"),
            b"From a@b Sat Nov 28 10:00:00 2026\n\nold\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("ann/new")).unwrap();
        let msg = LocalMessage {
            envelope_sender: "a@b",
            arrival: SystemTime::now(),
            data: b"Subject: x\n\nbody\n".into(),
            prepend: b"",
        };
        let opts = LocalOptions::default();
        let e = deliver_to_user(d.path(), MailboxFormat::Maildir, "joe", &msg, &opts).unwrap_err();
        assert!(e.is_temporary(), "{e}");
        let (code, text) = e.status();
        assert_eq!(code, "4.3.5");
        assert!(
            text.contains(
                "a file (an mbox?) where mailbox_format = \"maildir\" expects a Maildir directory"
            ) && text.contains("set mailbox_format = \"mbox\""),
            "{text}"
        );
        assert_eq!(
            std::fs::read(d.path().join("joe")).unwrap(),
            b"From a@b Sat Nov 28 10:00:00 2026\n\nold\n"
        );
        let e = deliver_to_user(d.path(), MailboxFormat::Mbox, "ann", &msg, &opts).unwrap_err();
        assert!(e.is_temporary(), "{e}");
        assert_eq!(e.status().0, "4.3.5");
        assert!(
            e.to_string().contains("set mailbox_format = \"maildir\""),
            "{e}"
        );
        assert!(!wrong_format(&d.path().join("nobody"), MailboxFormat::Mbox));
        assert!(!wrong_format(&d.path().join("joe"), MailboxFormat::Mbox));
        assert!(!wrong_format(&d.path().join("ann"), MailboxFormat::Maildir));
    }
}
