//! The `mailq` / `sendmail -bp` listing in the exact sendmail 8.12/8.13 layout
//! (docs/sendmail-compat.md §3.1), the `-q[!]I/R/S` selectors (§3.2) and a JSON form.
//!
//! Decisions where sendmail has no equivalent:
//! * Only **pending** recipients are listed (sendmail drops delivered recipients from the qf, so
//!   its listing never shows them); the JSON form lists all with their state.
//! * Status character: `*` when the message lock is held (being delivered); `-` when the message
//!   is **held** (`F` flag `h`) or its next attempt (`Y`) is later than `now`, i.e. a queue run
//!   now would skip it (sendmail's "too young"); otherwise a space. `X` and `?` are never shown.
//! * The verbose status texts (the `M` line and per-recipient status) are cut to 100 characters,
//!   as sendmail does in verbose mode; the verbose sender to 78 and recipients to 71.
//! * Truncation counts characters (not bytes) and happens before escaping; control characters
//!   (C0, DEL, C1) are printed as `\ooo` octal escapes of their UTF-8 bytes. Other non-ASCII
//!   (SMTPUTF8 addresses) is printed as is.
//! * Addresses are shown in angle brackets, as sendmail shows its qf `S`/`R` values; the null
//!   sender is `<>`.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::spool::{QueuedMessage, RcptState};

/// How Q-Time is converted to wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeZone {
    /// The machine's local time zone (`localtime_r`, honours `TZ`), like sendmail's `ctime`.
    #[default]
    Local,
    /// A fixed offset in seconds east of UTC (0 = UTC). For tests and reproducible output.
    Fixed(i64),
}

/// `-q[!]I`, `-q[!]R`, `-q[!]S` selectors. Each list holds `(negate, substring)`.
///
/// sendmail semantics: within one kind the selectors are OR-ed, a selector passing when
/// `contains(…) != negate`; an empty list passes; all kinds must pass.
/// * `ids`: case-sensitive substring of the file name `qf<ID>`.
/// * `recipients`: case-insensitive substring of some pending recipient `<addr>`.
/// * `senders`: case-insensitive substring of the sender `<addr>` (`<>` for the null sender).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub ids: Vec<(bool, String)>,
    pub recipients: Vec<(bool, String)>,
    pub senders: Vec<(bool, String)>,
}

impl Filter {
    /// True if no selector is set.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.recipients.is_empty() && self.senders.is_empty()
    }

    /// Adds a selector given as the text after `-q`: `Isubstr`, `!Rsubstr`, `Ssubstr`, ….
    /// Errors on an unknown kind letter.
    pub fn add_selector(&mut self, spec: &str) -> Result<(), String> {
        let (negate, rest) = match spec.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, spec),
        };
        let mut chars = rest.chars();
        let kind = chars
            .next()
            .ok_or_else(|| format!("empty queue selector {spec:?}"))?;
        let pat = chars.as_str().to_string();
        match kind {
            'I' => self.ids.push((negate, pat)),
            'R' => self.recipients.push((negate, pat)),
            'S' => self.senders.push((negate, pat)),
            _ => return Err(format!("unknown queue selector {spec:?}")),
        }
        Ok(())
    }

    /// Whether the message passes every selector kind.
    pub fn matches(&self, m: &QueuedMessage) -> bool {
        let any = |sel: &[(bool, String)], test: &dyn Fn(&str) -> bool| {
            sel.is_empty() || sel.iter().any(|(neg, pat)| test(pat) != *neg)
        };
        let qf_name = format!("qf{}", m.id);
        if !any(&self.ids, &|p| qf_name.contains(p)) {
            return false;
        }
        let sender = format!("<{}>", m.envelope.sender).to_lowercase();
        if !any(&self.senders, &|p| sender.contains(&p.to_lowercase())) {
            return false;
        }
        if !self.recipients.is_empty() {
            let rcpts: Vec<String> = m
                .envelope
                .pending_recipients()
                .map(|r| format!("<{}>", r.address).to_lowercase())
                .collect();
            let ok = self.recipients.iter().any(|(neg, pat)| {
                let pat = pat.to_lowercase();
                rcpts.iter().any(|r| r.contains(&pat) != *neg)
            });
            if !ok {
                return false;
            }
        }
        true
    }

    /// The messages that pass, in order.
    pub fn apply(&self, msgs: &[QueuedMessage]) -> Vec<QueuedMessage> {
        msgs.iter().filter(|m| self.matches(m)).cloned().collect()
    }
}

const HEADER: &str =
    "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n";
const HEADER_VERBOSE: &str =
    "-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------\n";

/// The listing of one queue directory plus the `Total requests` trailer, local time zone.
pub fn format_mailq(
    qdir_display: &str,
    msgs: &[QueuedMessage],
    verbose: bool,
    now: SystemTime,
) -> String {
    format_mailq_tz(qdir_display, msgs, verbose, now, TimeZone::Local)
}

/// [`format_mailq`] with an explicit time zone.
pub fn format_mailq_tz(
    qdir_display: &str,
    msgs: &[QueuedMessage],
    verbose: bool,
    now: SystemTime,
    tz: TimeZone,
) -> String {
    let mut out = format_queue_section(qdir_display, msgs, verbose, now, tz);
    out.push_str(&format_total(msgs.len()));
    out
}

/// The `\t\tTotal requests: N\n` trailer.
pub fn format_total(n: usize) -> String {
    format!("\t\tTotal requests: {n}\n")
}

/// The listing of one queue directory without the trailer (for listing several queues).
pub fn format_queue_section(
    qdir_display: &str,
    msgs: &[QueuedMessage],
    verbose: bool,
    now: SystemTime,
    tz: TimeZone,
) -> String {
    if msgs.is_empty() {
        return format!("{qdir_display} is empty\n");
    }
    let now = unix_secs(now);
    let n = msgs.len();
    let mut out = format!(
        "\t\t{qdir_display} ({n} request{})\n",
        if n == 1 { "" } else { "s" }
    );
    out.push_str(if verbose { HEADER_VERBOSE } else { HEADER });
    for m in msgs {
        format_entry(&mut out, m, verbose, now, tz);
    }
    out
}

fn format_entry(out: &mut String, m: &QueuedMessage, verbose: bool, now: i64, tz: TimeZone) {
    let env = &m.envelope;
    out.push_str(&format!("{:>13}", m.id.as_str()));
    let too_young = env
        .next_attempt
        .is_some_and(|t| i64::try_from(t).unwrap_or(i64::MAX) > now);
    out.push(if m.locked {
        '*'
    } else if env.held || too_young {
        '-'
    } else {
        ' '
    });
    let ct = ctime(i64::try_from(env.created).unwrap_or(i64::MAX), tz);
    let sender = format!("<{}>", env.sender);
    if verbose {
        out.push_str(&format!(
            "{:8} {:10}{}{} ",
            m.df_size,
            env.priority(),
            if env.warning_sent { '+' } else { ' ' },
            &ct[4..16]
        ));
        out.push_str(&shown(&sender, 78));
    } else {
        out.push_str(&format!("{:8} {} ", m.df_size, &ct[..16]));
        out.push_str(&shown(&sender, 39));
    }
    if env.status_message.is_some() || env.body_type.is_some() {
        let bt = env.body_type.map(|b| b.as_str()).unwrap_or("");
        out.push_str(&format!("\n    {bt:>10.10}"));
        if let Some(msg) = &env.status_message {
            out.push_str("   (");
            out.push_str(&shown(msg, if verbose { 100 } else { 60 }));
            out.push(')');
        }
    }
    if let Some(q) = &env.quarantine {
        // sendmail's mailq line for a quarantined entry.
        out.push_str("\n    QUARANTINE: ");
        out.push_str(&shown(q, if verbose { 100 } else { 60 }));
    }
    for r in env.pending_recipients() {
        let addr = format!("<{}>", r.address);
        if verbose {
            out.push_str("\n\t\t\t\t\t\t");
            out.push_str(&shown(&addr, 71));
            if let Some(st) = &r.status {
                out.push_str("\n\t\t (");
                out.push_str(&shown(st, 100));
                out.push(')');
            }
        } else {
            out.push_str("\n\t\t\t\t\t ");
            out.push_str(&shown(&addr, 38));
        }
    }
    out.push('\n');
}

/// Cut to `max` characters, then escape control characters as `\ooo`.
fn shown(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for c in s.chars().take(max) {
        if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:03o}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

use crate::dates::unix_secs;

/// Offset of local time from UTC at `t`, in seconds.
use crate::sys::time::local_utc_offset as local_offset;

/// `ctime(3)` without the trailing newline: `Thu Jun 15 16:59:00 2006`.
fn ctime(t: i64, tz: TimeZone) -> String {
    let offset = match tz {
        TimeZone::Local => local_offset(t),
        TimeZone::Fixed(o) => o,
    };
    crate::dates::asctime(t.saturating_add(offset))
}

/// RFC 3339 UTC timestamp: `2006-06-15T16:59:00Z`.
pub fn rfc3339(t: u64) -> String {
    crate::dates::rfc3339(i64::try_from(t).unwrap_or(i64::MAX))
}

/// JSON form of a listing: an array with one object per message.
///
/// ```json
/// {"id":"k5FGx0Ax012345","size":5,"time":1150390740,"time_rfc3339":"2006-06-15T16:59:00Z",
///  "sender":"user@example.com","recipients":[{"address":"rcpt@example.org","state":"pending",
///  "status":null,"orcpt":null}],"status_message":null,"body_type":null,"held":false,
///  "quarantine":null,
///  "locked":false,"warning_sent":false,"tries":0,"last_attempt":0,"priority":30005}
/// ```
/// `sender` is `""` for the null sender; `body_type` is `"7BIT"`, `"8BITMIME"`, `"BINARYMIME"`
/// or null; `last_attempt` is 0 if never tried.
pub fn mailq_json(msgs: &[QueuedMessage]) -> Value {
    Value::Array(
        msgs.iter()
            .map(|m| {
                let env = &m.envelope;
                let rcpts: Vec<Value> = env
                    .recipients
                    .iter()
                    .map(|r| {
                        json!({
                            "address": r.address,
                            "state": match r.state {
                                RcptState::Pending => "pending",
                                RcptState::Sent => "sent",
                                RcptState::Failed => "failed",
                            },
                            "status": r.status,
                            "orcpt": r.orcpt,
                            "parent": r.parent,
                        })
                    })
                    .collect();
                json!({
                    "id": m.id.as_str(),
                    "size": m.df_size,
                    "time": env.created,
                    "time_rfc3339": rfc3339(env.created),
                    "sender": env.sender,
                    "recipients": rcpts,
                    "status_message": env.status_message,
                    "body_type": env.body_type.map(|b| b.as_str()),
                    "held": env.held,
                    "quarantine": env.quarantine,
                    "locked": m.locked,
                    "warning_sent": env.warning_sent,
                    "tries": env.tries,
                    "last_attempt": env.last_attempt,
                    "next_attempt": env.next_attempt,
                    "priority": env.priority(),
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::id::QueueId;
    use crate::queue::spool::{Body, Envelope, Recipient};
    use std::time::Duration;
    use std::time::UNIX_EPOCH;

    const T0: u64 = 1_150_390_740; // Thu Jun 15 16:59:00 2006 UTC
    const QDIR: &str = "/var/spool/mqueue";
    const HDR: &str =
        "-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------\n";

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + 3600)
    }

    fn qm(id: &str, size: u64, sender: &str, rcpts: &[&str]) -> QueuedMessage {
        let mut envelope =
            Envelope::new(sender, rcpts.iter().map(|r| Recipient::new(*r)).collect());
        envelope.created = T0;
        envelope.size = size;
        QueuedMessage {
            id: QueueId::parse(id).unwrap(),
            envelope,
            df_size: size,
            locked: false,
        }
    }

    fn utc(msgs: &[QueuedMessage], verbose: bool) -> String {
        format_mailq_tz(QDIR, msgs, verbose, now(), TimeZone::Fixed(0))
    }

    #[test]
    fn empty_queue() {
        assert_eq!(
            utc(&[], false),
            "/var/spool/mqueue is empty\n\t\tTotal requests: 0\n"
        );
        assert_eq!(
            utc(&[], true),
            "/var/spool/mqueue is empty\n\t\tTotal requests: 0\n"
        );
        assert_eq!(
            format_mailq("/q", &[], false, now()),
            "/q is empty\n\t\tTotal requests: 0\n"
        );
    }

    #[test]
    fn one_message() {
        let m = qm(
            "k5FGx0Ax012345",
            5,
            "user@example.com",
            &["rcpt@example.org"],
        );
        let expected = String::from("\t\t/var/spool/mqueue (1 request)\n")
            + HDR
            + "k5FGx0Ax012345        5 Thu Jun 15 16:59 <user@example.com>\n"
            + "\t\t\t\t\t <rcpt@example.org>\n"
            + "\t\tTotal requests: 1\n";
        assert_eq!(utc(&[m], false), expected);
    }

    #[test]
    fn three_messages_with_status_lines_flags_and_truncation() {
        // 1: status message and body type, two recipients, locked.
        let mut a = qm(
            "k5FGx0Ax012345",
            1234,
            "user@example.com",
            &["r1@example.org", "r2@example.org"],
        );
        a.envelope.body_type = Some(Body::EightBitMime);
        a.envelope.status_message = Some("Deferred: Connection refused by mx.example.org.".into());
        a.locked = true;
        // 2: status message without body type; long sender (cut at 39), long recipient (38),
        //    long status (60); held; a delivered recipient is not listed; mday padding.
        let mut b = qm(
            "k5FGx1Bx012345",
            12_345_678,
            "a-very-long-sender-address-0123456789@example.com",
            &[
                "a-very-long-recipient-address-0123456789@example.org",
                "done@example.org",
            ],
        );
        b.envelope.created = T0 - 10 * 86_400; // Mon Jun  5
        b.envelope.status_message = Some(format!("Deferred: {}", "x".repeat(80)));
        b.envelope.recipients[1].state = RcptState::Sent;
        b.envelope.held = true;
        // 3: null sender, body type only, control character escaped.
        let mut c = qm("k5FGx2Cx012345", 0, "", &["bell\u{7}@example.org"]);
        c.envelope.body_type = Some(Body::SevenBit);
        let out = utc(&[a, b, c], false);
        let expected = String::from("\t\t/var/spool/mqueue (3 requests)\n")
            + HDR
            + "k5FGx0Ax012345*    1234 Thu Jun 15 16:59 <user@example.com>\n"
            + "      8BITMIME   (Deferred: Connection refused by mx.example.org.)\n"
            + "\t\t\t\t\t <r1@example.org>\n"
            + "\t\t\t\t\t <r2@example.org>\n"
            + "k5FGx1Bx012345-12345678 Mon Jun  5 16:59 <a-very-long-sender-address-0123456789@\n"
            + "                 (Deferred: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx)\n"
            + "\t\t\t\t\t <a-very-long-recipient-address-0123456\n"
            + "k5FGx2Cx012345        0 Thu Jun 15 16:59 <>\n"
            + "          7BIT\n"
            + "\t\t\t\t\t <bell\\007@example.org>\n"
            + "\t\tTotal requests: 3\n";
        assert_eq!(out, expected);
        // Column checks, spelled out.
        let line = out.lines().nth(6).unwrap();
        assert_eq!(line.chars().count(), 41 + 39);
        assert_eq!(out.lines().nth(7).unwrap().len(), 17 + 2 + 60);
        assert_eq!(
            out.lines().nth(8).unwrap().trim_start_matches('\t').len(),
            1 + 38
        );
    }

    #[test]
    fn next_attempt_in_future_shows_dash() {
        let mut m = qm("k5FGx0Ax012345", 5, "u@x", &["r@y"]);
        m.envelope.next_attempt = Some(T0 + 7200); // after now()
        assert!(utc(std::slice::from_ref(&m), false).contains("k5FGx0Ax012345-"));
        m.envelope.next_attempt = Some(T0 + 60); // before now()
        assert!(utc(&[m], false).contains("k5FGx0Ax012345 "));
    }

    #[test]
    fn verbose_layout() {
        let mut a = qm(
            "k5FGx0Ax012345",
            5,
            "user@example.com",
            &["rcpt@example.org", "other@example.org"],
        );
        a.envelope.body_type = Some(Body::EightBitMime);
        a.envelope.status_message = Some("Deferred: Connection refused by mx.example.org.".into());
        a.envelope.recipients[0].status =
            Some("Deferred: Connection refused by mx.example.org.".into());
        a.envelope.warning_sent = true;
        a.envelope.tries = 2;
        let mut b = qm(
            "k5FGx1Bx012345",
            10,
            "",
            &[&format!("{}@example.org", "r".repeat(80))],
        );
        b.envelope.created = T0 - 10 * 86_400;
        let out = utc(&[a, b], true);
        let expected = String::from("\t\t/var/spool/mqueue (2 requests)\n")
            + "-----Q-ID----- --Size-- -Priority- ---Q-Time--- --------Sender/Recipient--------\n"
            + "k5FGx0Ax012345        5     240005+Jun 15 16:59 <user@example.com>\n"
            + "      8BITMIME   (Deferred: Connection refused by mx.example.org.)\n"
            + "\t\t\t\t\t\t<rcpt@example.org>\n"
            + "\t\t (Deferred: Connection refused by mx.example.org.)\n"
            + "\t\t\t\t\t\t<other@example.org>\n"
            + "k5FGx1Bx012345       10      30010 Jun  5 16:59 <>\n"
            + "\t\t\t\t\t\t<"
            + &"r".repeat(70)
            + "\n"
            + "\t\tTotal requests: 2\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn time_zone_offset_is_applied() {
        let m = qm("k5FGx0Ax012345", 5, "u@x", &["r@y"]);
        let out = format_mailq_tz(
            QDIR,
            std::slice::from_ref(&m),
            false,
            now(),
            TimeZone::Fixed(-8 * 3600),
        );
        assert!(out.contains(" Thu Jun 15 08:59 <u@x>"), "{out}");
        let out = format_mailq_tz(
            QDIR,
            std::slice::from_ref(&m),
            false,
            now(),
            TimeZone::Fixed(8 * 3600),
        );
        assert!(out.contains(" Fri Jun 16 00:59 <u@x>"), "{out}");
        // Local time: whatever the machine's zone, the field has the ctime shape.
        let out = format_mailq(QDIR, &[m], false, now());
        let line = out.lines().nth(2).unwrap();
        assert_eq!(&line[23..24], " ");
        assert_eq!(&line[40..41], " ");
        assert_eq!(&line[37..38], ":");
    }

    #[test]
    fn ctime_shape() {
        assert_eq!(ctime(0, TimeZone::Fixed(0)), "Thu Jan  1 00:00:00 1970");
        assert_eq!(
            ctime(T0 as i64, TimeZone::Fixed(0)),
            "Thu Jun 15 16:59:00 2006"
        );
        assert_eq!(rfc3339(T0), "2006-06-15T16:59:00Z");
    }

    fn ids(msgs: &[QueuedMessage]) -> Vec<&str> {
        msgs.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn filters() {
        let msgs = vec![
            qm(
                "k5FGx0Ax012345",
                1,
                "Alice@Example.COM",
                &["bob@example.org"],
            ),
            qm(
                "k5FGx1Bx012345",
                1,
                "carol@example.net",
                &["Dave@Example.org", "erin@other.test"],
            ),
            qm("k5FGx2Cx099999", 1, "", &["frank@other.test"]),
        ];
        let f = |specs: &[&str]| {
            let mut f = Filter::default();
            for s in specs {
                f.add_selector(s).unwrap();
            }
            f
        };
        assert_eq!(ids(&f(&[]).apply(&msgs)).len(), 3);
        assert!(f(&[]).is_empty());
        // I: case-sensitive, against "qf<ID>".
        assert_eq!(ids(&f(&["I1Bx"]).apply(&msgs)), vec!["k5FGx1Bx012345"]);
        assert!(f(&["I1bx"]).apply(&msgs).is_empty());
        assert_eq!(ids(&f(&["Iqfk5FGx2"]).apply(&msgs)), vec!["k5FGx2Cx099999"]);
        assert_eq!(
            ids(&f(&["!I099999"]).apply(&msgs)),
            vec!["k5FGx0Ax012345", "k5FGx1Bx012345"]
        );
        // Several of one kind are OR-ed.
        assert_eq!(
            ids(&f(&["I0Ax", "I2Cx"]).apply(&msgs)),
            vec!["k5FGx0Ax012345", "k5FGx2Cx099999"]
        );
        // R: case-insensitive, any pending recipient.
        assert_eq!(ids(&f(&["RDAVE@"]).apply(&msgs)), vec!["k5FGx1Bx012345"]);
        assert_eq!(
            ids(&f(&["Rother.test"]).apply(&msgs)),
            vec!["k5FGx1Bx012345", "k5FGx2Cx099999"]
        );
        assert_eq!(
            ids(&f(&["!Rother.test"]).apply(&msgs)),
            vec!["k5FGx0Ax012345", "k5FGx1Bx012345"]
        );
        // S: case-insensitive, against "<sender>"; the null sender is "<>".
        assert_eq!(
            ids(&f(&["Salice@example.com"]).apply(&msgs)),
            vec!["k5FGx0Ax012345"]
        );
        assert_eq!(ids(&f(&["S<>"]).apply(&msgs)), vec!["k5FGx2Cx099999"]);
        // Kinds are AND-ed.
        assert_eq!(
            ids(&f(&["Rother.test", "Scarol"]).apply(&msgs)),
            vec!["k5FGx1Bx012345"]
        );
        assert!(f(&["Rother.test", "Salice"]).apply(&msgs).is_empty());
        // A sent recipient no longer matches.
        let mut sent = msgs[0].clone();
        sent.envelope.recipients[0].state = RcptState::Sent;
        assert!(!f(&["Rbob"]).matches(&sent));
        let mut bad = Filter::default();
        assert!(bad.add_selector("Xfoo").is_err());
        assert!(bad.add_selector("!").is_err());
        assert!(bad.add_selector("").is_err());
    }

    #[test]
    fn json_form() {
        let mut m = qm(
            "k5FGx0Ax012345",
            5,
            "user@example.com",
            &["rcpt@example.org", "done@example.org"],
        );
        m.envelope.recipients[1].state = RcptState::Sent;
        m.envelope.recipients[0].status = Some("Deferred: timeout".into());
        m.envelope.status_message = Some("Deferred: timeout".into());
        m.envelope.body_type = Some(Body::EightBitMime);
        let v = mailq_json(&[m]);
        assert_eq!(
            v,
            json!([{
                "id": "k5FGx0Ax012345",
                "size": 5,
                "time": T0,
                "time_rfc3339": "2006-06-15T16:59:00Z",
                "sender": "user@example.com",
                "recipients": [
                    {"address": "rcpt@example.org", "state": "pending", "status": "Deferred: timeout", "orcpt": null, "parent": null},
                    {"address": "done@example.org", "state": "sent", "status": null, "orcpt": null, "parent": null},
                ],
                "status_message": "Deferred: timeout",
                "body_type": "8BITMIME",
                "held": false,
                "quarantine": null,
                "locked": false,
                "warning_sent": false,
                "tries": 0,
                "last_attempt": 0,
                "next_attempt": null,
                "priority": 60005,
            }])
        );
        assert_eq!(mailq_json(&[]), json!([]));
    }
}
