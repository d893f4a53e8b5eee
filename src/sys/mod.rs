//! The one home of system calls. Every `unsafe` block of the crate that talks to libc lives
//! here, behind a safe function with the reason it is sound; callers elsewhere stay safe Rust.
//!
//! * [`fs`]: directory fsync, syncfs, O_APPEND.
//! * [`lock`]: whole-file fcntl locks (open-file-description locks on Linux) and flock.
//! * [`process`]: pids, signals, uids, resource limits.
//! * [`account`]: the user and group databases, and changing identity.
//! * [`time`]: the clock and the local time zone.
//! * [`host`]: the host name, strerror texts, syslog.

pub mod account;
pub mod fs;
pub mod host;
pub mod lock;
pub mod process;
pub mod time;

pub use host::{hostname, io_message};
pub use process::is_root;
pub use time::unix_now;
