//! The mail queue: durable spool, queue ids, and the `mailq` listing.
//!
//! # Directory
//!
//! One flat directory (`[paths] spool`, default `/var/spool/mqueue`), created mode 0700. Files
//! are created mode 0600. Per message, sendmail style (docs/sendmail-compat.md §3.4):
//!
//! | file | contents |
//! |---|---|
//! | `df<ID>` | the message exactly as received, Received: header included, CRLF→LF as the server stores it; rewritten (via `tf<ID>` and a rename) only by a milter's header or body change before the 250 |
//! | `qf<ID>` | the envelope, text records (below); replaced atomically by rename on every change |
//! | `tf<ID>` | a `qf` being written; never valid on its own |
//! | `.mailtool-spool.lock` | flock'ed by the process that owns the spool ([`Spool::open`]) |
//!
//! Ids are 8.12 style, see [`id`]: `k5FGx0Ax012345`. The format allows 3600 ids per second and
//! process; [`QueueId::allocate`] keeps to that budget by letting the id's time fields run up to
//! 60 s ahead of the clock during bursts (the real time is in `T`).
//!
//! # qf format
//!
//! UTF-8 text, one record per line (`\n`), the first character of a line being the record letter.
//! No value may contain CR, LF or NUL (the writer refuses such addresses; it replaces line breaks
//! in `M` and status texts by spaces). The order written is the order below; a reader accepts any
//! order, except that `V` must come first and `.` last.
//!
//! | record | meaning |
//! |---|---|
//! | `V1-mailtool` | version; required, first line. Other versions are reported as corrupt |
//! | `T<secs>` | creation (acceptance) time, unix seconds; required |
//! | `K<secs>` | last delivery attempt, unix seconds, `0` = never |
//! | `N<n>` | number of delivery attempts |
//! | `Y<secs>` | optional: earliest next attempt (mailtool extension; mailq shows `-` until then) |
//! | `I<bytes>` | size of `df<ID>`; required. Recovery removes entries whose df is shorter |
//! | `B<type>` | optional BODY=: `7BIT`, `8BITMIME` or `BINARYMIME` |
//! | `M<text>` | optional status message, shown by mailq as `(text)`, e.g. `Deferred: Connection refused by mx.example.org.` |
//! | `q<reason>` | optional: a milter quarantined the message (it is held too), as sendmail's `q` record; `queue release` clears both |
//! | `F<letters>` | flags: `w` delay warning sent, `h` held (queue runs skip it). Always written, possibly just `F` |
//! | `$r<proto>` | macro `$r`: protocol (`ESMTP`, `ESMTPSA`, …) |
//! | `$s<helo>` | macro `$s`: HELO/EHLO name |
//! | `${client_addr}<ip>` | client address |
//! | `${client_name}<name>` | client host name |
//! | `$<c><value>` / `${name}<value>` | other macros, preserved |
//! | `S<addr>` | envelope sender in angle brackets; `S<>` for the null sender; required |
//! | `Z<envid>` | optional DSN ENVID (xtext as received) |
//! | `r<ret>` | optional DSN RET: `FULL` or `HDRS` |
//! | `A<auth>` | optional AUTH= of MAIL FROM (xtext as received) |
//! | `C<tokens>` | optional space-separated flags: `SMTPUTF8`; unknown tokens preserved |
//! | `R<flags>:<addr>` | one per recipient, in RCPT order, see below |
//! | other letters | preserved verbatim by rewrites, otherwise ignored |
//! | `.` | end of file; a file without it is incomplete (never acknowledged) |
//!
//! A recipient line is `R` + NOTIFY letters + `;`-separated fields + `:` + `<address>`:
//!
//! ```text
//! RFD;STATE=pending;ORCPT=rfc822+3Buser@example.org;STATUS=Deferred+3A+20Connection+20refused:<user@example.org>
//! ```
//!
//! * NOTIFY letters: `S` success, `F` failure, `D` delay, `N` never; none = NOTIFY not given.
//! * `STATE=pending|sent|failed`: `pending` includes deferred (then `STATUS` says why).
//! * `ORCPT=`, `STATUS=`: optional, encoded as xtext (RFC 3461) with `:` and `;` also encoded
//!   (`+3A`, `+3B`), so the first `:` of the line always ends the flags, as in sendmail.
//!   `ORCPT` holds the parameter as the client sent it (`rfc822;user@example.org`).
//! * The address is everything after the first `:`, angle brackets stripped.
//!
//! # Durability
//!
//! [`Spool::store`] acknowledges only after the message is on stable storage. Writes: `df` (with
//! `O_EXCL`, which also makes the id unique), then `tf`, then `rename(tf, qf)`, so a `qf` only
//! appears once its `df` is complete. A message larger than [`incoming::SPILL_AT`] has its `df`
//! created (`O_EXCL`, under the id chosen when DATA began) and written while it arrives
//! ([`Incoming`]); only its `qf` is written at the commit. Until then it is a `df` without a
//! `qf`, which an aborted transaction removes at once and recovery removes after a crash. Concurrent callers are group-committed (leader/follower on a
//! `Condvar`): one caller (the leader) takes the whole pending batch, writes its files without
//! fsync, and makes it durable with one `syncfs(2)` of the spool file system (on ENOSYS, and off
//! Linux: fsync of every file plus the directory); meanwhile new callers queue up for the next
//! batch. [`SpoolOptions`] selects that fallback or per-message fsync explicitly, and
//! `parallel_writes` lets callers write their own files before joining a batch. A write error
//! fails only that message; a sync error fails the whole batch; either way the files are removed.
//! [`SpoolError::smtp_status`] gives 452 4.3.1 for a full disk, 451 4.3.0 otherwise. `syncfs`
//! reports writeback errors from Linux 5.8 on. [`Spool::update`] (tf + fsync + rename + directory fsync) and
//! [`Spool::remove`] (unlink qf, df, directory fsync) are durable when they return.
//!
//! # Recovery
//!
//! [`Spool::open`] takes the owner lock and removes what was never acknowledged: every `tf*`;
//! every `qf` without its final `.` line, whose `df` is missing, or whose `df` is shorter than
//! `I` (with that `df`); every `df` without a `qf`. Files whose id carries the pid of another
//! live process are left alone (a client writing next to us). Corrupt `qf` files (bad records)
//! are kept and reported, and listings skip them. [`Spool::attach`] (for mailq) does no recovery.
//!
//! # For the delivery code
//!
//! Take [`Spool::try_lock`] (an exclusive lock on the `df`; mailq shows `*`), read
//! [`Spool::read_envelope`] and [`Spool::data_path`], deliver, record results with
//! [`Spool::update`] (recipient `state`/`status`, `M`, `K`, `N`, `Y`, `F`), and
//! [`Spool::remove`] the entry once [`Envelope::is_done`] and any DSN has been queued.

pub mod attempt;
pub mod client_spool;
mod commit;
pub mod dsn;
pub mod envelope;
pub mod id;
pub mod incoming;
pub mod mailq;
pub mod qf;
mod recovery;
pub mod runner;
pub mod spool;

pub use id::{InvalidQueueId, QueueId};
pub use incoming::{Incoming, Payload};
pub use mailq::{Filter, TimeZone, format_mailq, format_mailq_tz, mailq_json};
pub use spool::{
    Body, Envelope, MessageLock, NewMessage, Notify, QfError, QueueScan, QueuedMessage, RcptState,
    Recipient, RecoveryReport, Ret, Spool, SpoolError, SpoolOptions, SyncMode,
};
