//! The envelope of a queued message, as the spool keeps it: sender, recipients with their
//! delivery states and DSN fields, and what the client said. Its file format is [`super::qf`].

use serde::{Deserialize, Serialize};

/// sendmail's default WkRecipFact: priority added per recipient.
const WK_RECIP_FACT: i64 = 30_000;
/// sendmail's default WkTimeFact: priority added per delivery attempt.
const WK_TIME_FACT: i64 = 90_000;

/// `BODY=` of MAIL FROM (`B` record) and `RET=` (`r` record): the ESMTP parameter types.
/// `NOTIFY=` of RCPT TO (`R` record); `None` in [`Recipient::notify`] means the client gave
/// no NOTIFY.
pub use crate::address::{Body, Notify, Ret};

/// Delivery state of one recipient.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptState {
    /// Not delivered yet (never tried, or deferred: see [`Recipient::status`]).
    #[default]
    Pending,
    /// Delivered.
    Sent,
    /// Permanently failed (a bounce is due or was sent).
    Failed,
}

impl RcptState {
    pub fn as_str(self) -> &'static str {
        match self {
            RcptState::Pending => "pending",
            RcptState::Sent => "sent",
            RcptState::Failed => "failed",
        }
    }

    pub(super) fn parse(s: &str) -> Option<RcptState> {
        match s {
            "pending" => Some(RcptState::Pending),
            "sent" => Some(RcptState::Sent),
            "failed" => Some(RcptState::Failed),
            _ => None,
        }
    }
}

/// One envelope recipient (`R` record).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address without angle brackets, e.g. `user@example.org`.
    pub address: String,
    /// DSN NOTIFY; `None` = not given (default: failure and delay).
    pub notify: Option<Notify>,
    /// DSN ORCPT exactly as the client sent it (`rfc822;user@example.org`, still xtext).
    pub orcpt: Option<String>,
    pub state: RcptState,
    /// Last status text, e.g. `Deferred: Connection refused by mx.example.org.` or the remote
    /// reply `550 5.1.1 User unknown`.
    pub status: Option<String>,
    /// Set only by the queue runner's alias expansion: where this recipient goes
    /// (`local:user`, `file:/path`, `prog:command`, `remote:addr`). Never taken from a client,
    /// so files and programs can only come from the aliases file.
    pub target: Option<String>,
    /// For an expanded recipient: the envelope recipient it came from (for DSNs and logs).
    pub parent: Option<String>,
    /// The DSN for this recipient's final state has been queued (or was not wanted), so a
    /// restart does not send it again.
    pub notified: bool,
    /// The server that gave the last remote answer for this recipient (the DSN's
    /// `Remote-MTA:`, RFC 3464 §2.3.5), by the name it was reached by.
    pub remote_mta: Option<String>,
}

impl Recipient {
    /// A pending recipient without DSN parameters.
    pub fn new(address: impl Into<String>) -> Recipient {
        Recipient {
            address: address.into(),
            ..Recipient::default()
        }
    }
}

/// The envelope of a queued message: everything in its `qf` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `T`: creation (acceptance) time, unix seconds. `store` fills in "now" when 0.
    pub created: u64,
    /// `K`: last delivery attempt, unix seconds; 0 = never tried.
    pub last_attempt: u64,
    /// `N`: number of delivery attempts.
    pub tries: u32,
    /// `Y`: earliest time of the next attempt (unix seconds), if the delivery code schedules one.
    pub next_attempt: Option<u64>,
    /// `B`: BODY= parameter, if the client gave one.
    pub body_type: Option<Body>,
    /// `Z`: DSN ENVID (xtext as received).
    pub envid: Option<String>,
    /// `r`: DSN RET.
    pub ret: Option<Ret>,
    /// `S`: envelope sender without angle brackets; empty for the null sender `<>`.
    pub sender: String,
    /// `A`: AUTH= parameter of MAIL FROM (xtext as received, may be `<>`).
    pub auth: Option<String>,
    /// `$r`: protocol (`SMTP`, `ESMTP`, `ESMTPSA`, …).
    pub protocol: Option<String>,
    /// `$s`: HELO/EHLO argument.
    pub helo: Option<String>,
    /// `${client_addr}`: client IP address.
    pub client_addr: Option<String>,
    /// `${client_name}`: client host name (verified PTR), if any.
    pub client_name: Option<String>,
    /// Other `$` macros, kept in order so rewrites preserve them.
    pub other_macros: Vec<(String, String)>,
    /// `C` token `SMTPUTF8`.
    pub smtputf8: bool,
    /// Other `C` tokens, preserved.
    pub other_flags: Vec<String>,
    /// `R` records, in RCPT order.
    pub recipients: Vec<Recipient>,
    /// `M`: status message shown by mailq, e.g. `Deferred: Connection timed out`.
    pub status_message: Option<String>,
    /// `F` flag `w`: a delay warning DSN has been sent.
    pub warning_sent: bool,
    /// `F` flag `h`: held; queue runs skip the message.
    pub held: bool,
    /// `q`: why a milter quarantined the message (it is also held); `queue release` lets it go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
    /// `I`: size of the `df` file in bytes (set by `store`, kept by `update`).
    pub size: u64,
    /// Records with letters mailtool does not know, preserved verbatim (without newline).
    pub extra_records: Vec<String>,
    /// `H`: header fields the message stage added after the data was written (DKIM-Signature,
    /// Authentication-Results), each LF-ended, folded lines included. Delivery puts them in
    /// front of the `df`, as sendmail keeps its headers in the `qf`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
}

impl Envelope {
    /// An envelope for `sender` (empty string = null sender) and the given recipients.
    pub fn new(sender: impl Into<String>, recipients: Vec<Recipient>) -> Envelope {
        Envelope {
            sender: sender.into(),
            recipients,
            ..Envelope::default()
        }
    }

    /// sendmail's queue priority with default factors:
    /// `size + 30000 × recipients + 90000 × tries` (lower runs first).
    pub fn priority(&self) -> i64 {
        let size = i64::try_from(self.size).unwrap_or(i64::MAX);
        let n = i64::try_from(self.recipients.len()).unwrap_or(i64::MAX);
        size.saturating_add(n.saturating_mul(WK_RECIP_FACT))
            .saturating_add(i64::from(self.tries).saturating_mul(WK_TIME_FACT))
    }

    /// Recipients still to be delivered.
    pub fn pending_recipients(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients
            .iter()
            .filter(|r| r.state == RcptState::Pending)
    }

    /// True when no recipient is pending (the entry can be removed once DSNs are sent).
    pub fn is_done(&self) -> bool {
        self.pending_recipients().next().is_none()
    }
}
