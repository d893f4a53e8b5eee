//! TEMPORARY placeholder until the local-delivery library lands (not committed).
use super::Outcome;
use crate::config::Config;
use std::path::PathBuf;
pub struct Options;
impl Options {
    pub fn from_config(_c: &Config) -> Options {
        Options
    }
}
pub async fn mailbox(_o: Options, _u: String, _s: String, _d: Vec<u8>) -> Outcome {
    Outcome::Deferred("x".into())
}
pub async fn file(_o: Options, _p: PathBuf, _s: String, _d: Vec<u8>) -> Outcome {
    Outcome::Deferred("x".into())
}
