//! SMTP: the pure protocol codec (`proto`), the per-connection session state machine
//! (`session`), and the tokio server that drives it over sockets (`server`).

pub mod proto;
pub mod server;
pub mod session;
