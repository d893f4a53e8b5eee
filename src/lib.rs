//! mailtool: one binary for a sendmail + qpopper + poprelayd style virtual-mail host.
//!
//! The library holds everything but argument parsing: the map sources and store, the lookup
//! semantics, the config. `src/bin/mailtool.rs` is a thin multi-call front end over [`cli`].

pub mod address;
pub mod cli;
pub mod config;
pub mod content;
pub mod courier;
pub mod dates;
pub mod dns;
pub mod doctor;
pub mod duration;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod logging;
pub mod mailbox;
pub mod maps;
pub mod metrics;
pub mod migrate;
pub mod milter;
pub mod policy;
pub mod pop3;
pub mod popip;
pub mod queue;
pub mod reply;
pub mod route;
pub mod server;
pub mod smtp;
pub mod stage;
pub mod sys;
pub mod sysexits;
pub mod tls;
pub mod tools;
pub mod users;
pub mod util;
pub mod wire;
