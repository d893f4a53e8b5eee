//! SMTP: the pure protocol codec (`proto`), the per-connection session state machine
//! (`session`), the tokio server that drives it over sockets (`server`), and the client
//! (`client`) used by delivery and the command-line tools.

pub mod client;
pub mod proto;
pub mod server;
pub mod session;
