//! Delivery status notifications (RFC 3464 inside an RFC 6522 multipart/report): the bounce
//! after a permanent failure or `return_after`, the delay warning after `warn_after`, and the
//! success notice for `NOTIFY=SUCCESS`. The human part follows sendmail's wording, so people
//! who read bounces recognise them.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::io;

use super::spool::{Envelope, Recipient, Ret};
use crate::content::Content;

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Failure,
    Delay,
    Success,
}

/// One recipient line of the report.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub recipient: &'a Recipient,
    /// `550 5.1.1 User unknown`, `Deferred: …`, or the remote server's 250 text.
    pub diagnostic: &'a str,
}

/// A notice ready to be queued: from `<>` to `to`. The original message goes between `head`
/// and `tail` as [`Notice::write`] streams it, so a bounce of any size costs bounded memory.
#[derive(Debug, Clone)]
pub struct Notice {
    pub to: String,
    /// The report up to the place of the original.
    pub head: Vec<u8>,
    /// How much of the original is returned.
    pub returns: Returns,
    /// The closing boundary.
    pub tail: Vec<u8>,
}

/// What of the original message a notice carries (RFC 3461 §4.3, RET=).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returns {
    /// The header section (text/rfc822-headers), at most [`HEADERS_RETURNED`] bytes of it.
    Headers,
    /// The whole message (message/rfc822).
    Full,
}

/// The most of an original's header section a headers-only notice returns.
pub const HEADERS_RETURNED: usize = 64 * 1024;

impl Notice {
    /// Feeds the whole notice to `out` in pieces: the head, the original (streamed from a file
    /// if it is one), the tail.
    pub fn write(
        &self,
        original: &Content,
        mut out: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        out(&self.head)?;
        match self.returns {
            Returns::Headers => {
                let head = original.head(HEADERS_RETURNED)?;
                out(header_section(&head))?;
            }
            Returns::Full => {
                let mut last = 0u8;
                original.for_each_chunk(|c| {
                    if let Some(&b) = c.last() {
                        last = b;
                    }
                    out(c)
                })?;
                if last != b'\n' {
                    out(b"\n")?;
                }
            }
        }
        out(&self.tail)
    }

    /// The notice as one byte string (tests, small originals).
    pub fn to_bytes(&self, original: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec from memory cannot fail.
        let _ = self.write(&Content::from(original), |c| {
            v.extend_from_slice(c);
            Ok(())
        });
        v
    }
}

/// The header section of `message` with its last newline, or all of it when no blank line
/// ends the headers within it.
fn header_section(message: &[u8]) -> &[u8] {
    let end = message
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(message.len(), |p| p + 1);
    &message[..end]
}

/// The enhanced status code inside a diagnostic (`550 5.1.1 …` → `5.1.1`), else a default
/// by kind (RFC 3463: 5.0.0, 4.0.0, 2.0.0).
pub fn status_of(diagnostic: &str, kind: Kind) -> String {
    for w in diagnostic.split_ascii_whitespace().take(3) {
        let parts: Vec<&str> = w.split('.').collect();
        if parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return w.to_string();
        }
    }
    match kind {
        Kind::Failure => "5.0.0",
        Kind::Delay => "4.0.0",
        Kind::Success => "2.0.0",
    }
    .to_string()
}

/// Builds the notice for `env`'s sender, or `None` for the null sender: a bounce is never
/// bounced (RFC 5321 §4.5.5), the caller logs and drops it.
pub fn build(
    kind: Kind,
    env: &Envelope,
    entries: &[Entry<'_>],
    hostname: &str,
    now: SystemTime,
    warn_after: Duration,
) -> Option<Notice> {
    if env.sender.is_empty() || entries.is_empty() {
        return None;
    }
    let date = crate::util::rfc5322_date(now);
    let arrival = crate::util::rfc5322_date(UNIX_EPOCH + Duration::from_secs(env.created));
    let boundary = format!(
        "{}.{}/{hostname}",
        now.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
        std::process::id()
    );
    let subject = match kind {
        Kind::Failure => "Returned mail: see transcript for details".to_string(),
        Kind::Delay => format!(
            "Warning: could not send message for past {}",
            crate::duration::describe(warn_after)
        ),
        Kind::Success => "Return receipt".to_string(),
    };
    let mut m = String::new();
    let _ = write!(
        m,
        "From: Mail Delivery Subsystem <MAILER-DAEMON@{hostname}>\n\
         To: <{to}>\n\
         Subject: {subject}\n\
         Date: {date}\n\
         Message-ID: <{boundary}>\n\
         Auto-Submitted: auto-replied\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/report; report-type=delivery-status;\n\
         \tboundary=\"{boundary}\"\n\
         \n\
         This is a MIME-encapsulated message\n\
         \n\
         --{boundary}\n\
         Content-Type: text/plain; charset=us-ascii\n\
         \n\
         The original message was received at {arrival}\n",
        to = env.sender,
    );
    if let Some(c) = &env.client_addr {
        let name = env.client_name.as_deref().unwrap_or("");
        let _ = writeln!(m, "from {name} [{c}]");
    }
    m.push('\n');
    let heading = match kind {
        Kind::Failure => "   ----- The following addresses had permanent fatal errors -----",
        Kind::Delay => "   ----- The following addresses had transient non-fatal errors -----",
        Kind::Success => {
            "   ----- The following addresses had successful delivery notifications -----"
        }
    };
    let _ = writeln!(m, "{heading}");
    for e in entries {
        let shown = e
            .recipient
            .parent
            .as_deref()
            .unwrap_or(&e.recipient.address);
        let _ = writeln!(m, "<{shown}>\n    (reason: {})", e.diagnostic);
    }
    if kind == Kind::Delay {
        m.push_str(
            "\n   ----- Warning: message still undelivered -----\n\
             The message will be tried again; you do not need to resend it.\n",
        );
    }
    let _ = write!(
        m,
        "\n--{boundary}\n\
         Content-Type: message/delivery-status\n\
         \n\
         Reporting-MTA: dns; {hostname}\n"
    );
    if let Some(id) = &env.envid {
        let _ = writeln!(m, "Original-Envelope-Id: {id}");
    }
    let _ = writeln!(m, "Arrival-Date: {arrival}");
    for e in entries {
        let relayed = e
            .recipient
            .target
            .as_deref()
            .is_some_and(|t| t.starts_with("remote:"));
        let action = match kind {
            Kind::Failure => "failed",
            Kind::Delay => "delayed",
            // RFC 3461 §5.2.1: handed to a next hop without DSN, which will send no notice.
            Kind::Success if relayed => "relayed",
            Kind::Success => "delivered",
        };
        let final_rcpt = e
            .recipient
            .parent
            .as_deref()
            .unwrap_or(&e.recipient.address);
        let _ = write!(m, "\nFinal-Recipient: RFC822; {final_rcpt}\n");
        if let Some(o) = &e.recipient.orcpt {
            let _ = writeln!(m, "Original-Recipient: {o}");
        }
        let _ = writeln!(m, "Action: {action}");
        let _ = writeln!(m, "Status: {}", status_of(e.diagnostic, kind));
        // RFC 3464 §2.3.5: the server whose answer this is.
        if let Some(mta) = &e.recipient.remote_mta {
            let _ = writeln!(m, "Remote-MTA: dns; {mta}");
        }
        if e.diagnostic
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_digit)
        {
            let _ = writeln!(m, "Diagnostic-Code: SMTP; {}", e.diagnostic);
        }
        let _ = writeln!(m, "Last-Attempt-Date: {date}");
        if kind == Kind::Delay {
            let _ = writeln!(m, "Will-Retry-Until: {}", crate::util::rfc5322_date(now));
        }
    }
    let headers_only = env.ret == Some(Ret::Hdrs) || kind != Kind::Failure;
    let _ = write!(
        m,
        "\n--{boundary}\nContent-Type: {}\n\n",
        if headers_only {
            "text/rfc822-headers"
        } else {
            "message/rfc822"
        }
    );
    Some(Notice {
        to: env.sender.clone(),
        head: m.into_bytes(),
        returns: if headers_only {
            Returns::Headers
        } else {
            Returns::Full
        },
        tail: format!("\n--{boundary}--\n").into_bytes(),
    })
}

/// Whether the recipient wants this kind of notice (RFC 3461 §4.1): without NOTIFY, failures
/// and delays; `NEVER` silences everything.
pub fn wanted(r: &Recipient, kind: Kind) -> bool {
    match (r.notify, kind) {
        (None, Kind::Success) => false,
        (None, _) => true,
        (Some(n), _) if n.never => false,
        (Some(n), Kind::Failure) => n.failure,
        (Some(n), Kind::Delay) => n.delay,
        (Some(n), Kind::Success) => n.success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::Notify;

    fn env() -> Envelope {
        let mut e = Envelope::new("alice@example1.com", vec![Recipient::new("bob@far.test")]);
        e.created = 1_700_000_000;
        e.envid = Some("QQ123".into());
        e.client_addr = Some("192.0.2.7".into());
        e
    }

    #[test]
    fn a_bounce_is_a_delivery_status_report() {
        let e = env();
        let mut r = e.recipients[0].clone();
        r.orcpt = Some("rfc822;bob@far.test".into());
        r.target = Some("remote:bob@far.test".into());
        r.remote_mta = Some("mx.far.test".into());
        let n = build(
            Kind::Failure,
            &e,
            &[Entry {
                recipient: &r,
                diagnostic: "550 5.1.1 <bob@far.test>... User unknown",
            }],
            "mail.example1.com",
            SystemTime::now(),
            Duration::from_secs(4 * 3600),
        )
        .unwrap();
        let t = String::from_utf8(n.to_bytes(b"Subject: hi\n\nbody\n")).unwrap();
        assert_eq!(n.to, "alice@example1.com");
        for want in [
            "From: Mail Delivery Subsystem <MAILER-DAEMON@mail.example1.com>\n",
            "Subject: Returned mail: see transcript for details\n",
            "Content-Type: multipart/report; report-type=delivery-status;",
            "Reporting-MTA: dns; mail.example1.com\n",
            "Original-Envelope-Id: QQ123\n",
            "Final-Recipient: RFC822; bob@far.test\n",
            "Original-Recipient: rfc822;bob@far.test\n",
            "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.far.test\n",
            "Diagnostic-Code: SMTP; 550 5.1.1 <bob@far.test>... User unknown\n",
            "Content-Type: message/rfc822\n\nSubject: hi\n\nbody\n",
            "from  [192.0.2.7]\n",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        assert!(t.trim_end().ends_with("--"));
    }

    #[test]
    fn never_bounce_a_bounce_and_honour_notify() {
        let mut e = env();
        e.sender.clear();
        let r = e.recipients[0].clone();
        let entry = Entry {
            recipient: &r,
            diagnostic: "550 x",
        };
        assert!(
            build(
                Kind::Failure,
                &e,
                &[entry],
                "h",
                SystemTime::now(),
                Duration::ZERO
            )
            .is_none()
        );
        let mut r = Recipient::new("x@y");
        assert!(wanted(&r, Kind::Failure) && wanted(&r, Kind::Delay));
        assert!(!wanted(&r, Kind::Success));
        r.notify = Some(Notify {
            never: true,
            ..Notify::default()
        });
        assert!(!wanted(&r, Kind::Failure));
        r.notify = Some(Notify {
            success: true,
            ..Notify::default()
        });
        assert!(wanted(&r, Kind::Success) && !wanted(&r, Kind::Failure));
    }

    #[test]
    fn warnings_carry_headers_only_and_status_defaults() {
        let e = env();
        let r = e.recipients[0].clone();
        let n = build(
            Kind::Delay,
            &e,
            &[Entry {
                recipient: &r,
                diagnostic: "Deferred: Connection refused by far.test",
            }],
            "h",
            SystemTime::now(),
            Duration::from_secs(4 * 3600),
        )
        .unwrap();
        let t = String::from_utf8(n.to_bytes(b"Subject: hi\n\nsecret body\n")).unwrap();
        assert!(t.contains("Subject: Warning: could not send message for past 4 hours"));
        assert!(t.contains("Action: delayed\nStatus: 4.0.0\n"));
        assert!(t.contains("text/rfc822-headers") && !t.contains("secret body"));
        assert_eq!(status_of("250 2.0.0 ok", Kind::Success), "2.0.0");
        assert!(!t.contains("Remote-MTA:"), "{t}");
    }

    #[test]
    fn success_notices_say_relayed_for_remote_recipients() {
        let e = env();
        let mut local = Recipient::new("bob@here.test");
        local.target = Some("local:bob".into());
        let mut remote = Recipient::new("bob@far.test");
        remote.target = Some("remote:bob@far.test".into());
        remote.remote_mta = Some("mx.far.test".into());
        let n = build(
            Kind::Success,
            &e,
            &[
                Entry {
                    recipient: &local,
                    diagnostic: "Sent (mailbox, 10 bytes)",
                },
                Entry {
                    recipient: &remote,
                    diagnostic: "Sent (2.0.0 Ok: queued as X) [mx.far.test]",
                },
            ],
            "h",
            SystemTime::now(),
            Duration::ZERO,
        )
        .unwrap();
        let t = String::from_utf8(n.to_bytes(b"Subject: hi\n\nbody\n")).unwrap();
        assert!(
            t.contains("RFC822; bob@here.test\nAction: delivered\nStatus: 2.0.0\n"),
            "{t}"
        );
        assert!(
            t.contains("RFC822; bob@far.test\nAction: relayed\nStatus: 2.0.0\nRemote-MTA: dns; mx.far.test\n"),
            "{t}"
        );
    }
}
