//! smtp-send's library side: [`message`] composes the test message, [`session`] runs one
//! transaction stage by stage and reports which stage failed.

pub mod message;
pub mod session;
