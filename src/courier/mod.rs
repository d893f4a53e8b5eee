//! Couriers take one message to its recipients of one kind: `remote` over SMTP to the
//! domain's MX hosts (or the smart host). Each returns one [`Outcome`] per recipient, so the
//! queue runner can record every recipient's fate durably on its own.

pub mod local;
pub mod program;
pub mod remote;

/// What happened to one recipient in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered; the text is the `stat=` of the log line, e.g. `Sent (2.0.0 queued as X)`.
    Sent(String),
    /// Try again later, e.g. `Deferred: Connection refused by mx.example.org.`.
    Deferred(String),
    /// Permanent failure: the reply to put in the bounce, e.g. `550 5.1.1 User unknown`.
    Failed(String),
}

impl Outcome {
    pub fn text(&self) -> &str {
        match self {
            Outcome::Sent(s) | Outcome::Deferred(s) | Outcome::Failed(s) => s,
        }
    }
}
