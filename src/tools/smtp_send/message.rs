//! Composing the test message: RFC 5322 headers (Date, Message-ID, RFC 2047 words for
//! non-ASCII text) and MIME for attachments, built with mail-builder.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::headers::text::Text;

/// Default body, as swaks sends it.
pub const DEFAULT_BODY: &str = "This is a test mailing\n";

/// One `--attach FILE`, already read.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    /// The `charset` parameter of a `text/*` part.
    pub charset: Option<&'static str>,
    pub data: Vec<u8>,
}

impl Attachment {
    /// The MIME type is guessed from the file name's extension. A text part names its
    /// charset, since without one readers assume US-ASCII (RFC 2046 §4.1.2): `us-ascii` or
    /// `utf-8` as the bytes are; text in any other charset is sent as
    /// `application/octet-stream` rather than mislabelled.
    pub fn new(name: String, data: Vec<u8>) -> Attachment {
        let mut content_type = mime_guess::from_path(&name)
            .first_or_octet_stream()
            .essence_str()
            .to_string();
        let mut charset = None;
        if content_type.starts_with("text/") {
            if data.is_ascii() {
                charset = Some("us-ascii");
            } else if std::str::from_utf8(&data).is_ok() {
                charset = Some("utf-8");
            } else {
                content_type = "application/octet-stream".into();
            }
        }
        Attachment {
            name,
            content_type,
            charset,
            data,
        }
    }
}

/// The From: address for an envelope sender; the null sender (`''`) has no mailbox, and
/// From: must hold one (RFC 5322 §3.6.2), so it becomes `MAILER-DAEMON@HOST`, the address
/// Postfix's cleanup (and sendmail, for its own null-sender mail) writes in that case.
pub fn from_address(sender: &str, host: &str) -> String {
    if sender.is_empty() {
        format!("MAILER-DAEMON@{host}")
    } else {
        sender.to_string()
    }
}

/// Everything a composed message is made of.
#[derive(Debug, Clone)]
pub struct Compose {
    pub from: String,
    pub to: Vec<String>,
    /// `None`: swaks's `test <date>`.
    pub subject: Option<String>,
    /// `--header` lines, already split by [`parse_header`].
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub attachments: Vec<Attachment>,
    /// The right-hand side of the Message-ID (the HELO name).
    pub id_domain: String,
    pub date: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("{0:?}: not a header line (use 'Name: value')")]
    NoColon(String),
    #[error("{0:?}: a header name is printable ASCII without spaces or ':'")]
    BadName(String),
    #[error("{0}: header values cannot contain CR or LF")]
    LineBreak(String),
    #[error("{0}: mail-builder writes the MIME structure itself; use --data to send your own")]
    Mime(String),
}

/// Splits `--header 'Name: value'`, refusing what would break the message: line breaks
/// (header injection) and the MIME headers that the builder owns.
pub fn parse_header(line: &str) -> Result<(String, String), HeaderError> {
    let (name, value) = line
        .split_once(':')
        .ok_or_else(|| HeaderError::NoColon(line.to_string()))?;
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b)) {
        return Err(HeaderError::BadName(name.to_string()));
    }
    if value.contains(['\r', '\n']) {
        return Err(HeaderError::LineBreak(name.to_string()));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("content-") || lower == "mime-version" {
        return Err(HeaderError::Mime(name.to_string()));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

const ADDRESS_HEADERS: &[&str] = &["from", "to", "cc", "bcc", "reply-to", "sender"];

/// The header value for a `--header` line. Address headers keep their syntax: ASCII is
/// written as given, and a non-ASCII `Name <addr>` gets an encoded display name only (the
/// whole value as encoded words would no longer be an address).
fn header_value(name: &str, value: &str) -> mail_builder::headers::HeaderType<'static> {
    let lower = name.to_ascii_lowercase();
    if !ADDRESS_HEADERS.contains(&lower.as_str()) {
        return Text::new(value.to_string()).into();
    }
    if value.is_ascii() {
        return Raw::new(value.to_string()).into();
    }
    if let Some((display, rest)) = value.split_once('<')
        && let Some(addr) = rest.strip_suffix('>')
        && !addr.contains(['<', '>', ','])
    {
        let display = display.trim().trim_matches('"').trim().to_string();
        let name = (!display.is_empty()).then_some(display);
        return Address::new_address(name, addr.trim().to_string()).into();
    }
    // A non-ASCII address itself (SMTPUTF8): raw UTF-8 is what RFC 6532 allows.
    Raw::new(value.to_string()).into()
}

/// A Message-ID unique enough for test mail: the builder's boundary generator (time,
/// counter and per-thread seed) plus our pid.
pub fn message_id(domain: &str) -> String {
    format!(
        "{}.{}@{domain}",
        mail_builder::mime::make_boundary("."),
        std::process::id()
    )
}

/// The complete message, CRLF line ends, ready for DATA.
pub fn compose(c: &Compose) -> Vec<u8> {
    let secs = c
        .date
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let overridden = |h: &str| c.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(h));
    let mut b = MessageBuilder::new();
    if !overridden("Date") {
        b = b.date(Date::new(secs));
    }
    if !overridden("Message-ID") {
        b = b.message_id(message_id(&c.id_domain));
    }
    if !overridden("From") {
        let from = from_address(&c.from, &c.id_domain);
        b = b.from(Address::new_address(None::<String>, from));
    }
    if !overridden("To") {
        let list: Vec<Address<'_>> =
            c.to.iter()
                .map(|t| Address::new_address(None::<String>, t.clone()))
                .collect();
        b = b.to(if list.len() == 1 {
            list.into_iter()
                .next()
                .unwrap_or_else(|| Address::new_list(vec![]))
        } else {
            Address::new_list(list)
        });
    }
    if !overridden("Subject") {
        let subject = c
            .subject
            .clone()
            .unwrap_or_else(|| format!("test {}", crate::util::rfc5322_date(c.date)));
        b = b.subject(Text::new(subject));
    }
    for (name, value) in &c.headers {
        b = b.header(Cow::Owned(name.clone()), header_value(name, value));
    }
    b = b.text_body(c.body.clone());
    for a in &c.attachments {
        let mut ct = ContentType::new(a.content_type.clone());
        if let Some(cs) = a.charset {
            ct = ct.attribute("charset", cs);
        }
        b = b.attachment(
            ct,
            a.name.clone(),
            mail_builder::mime::BodyPart::Binary(Cow::Owned(a.data.clone())),
        );
    }
    let mut out = Vec::new();
    b.serialize(&mut out);
    out
}

/// Whether the message needs `BODY=8BITMIME` (RFC 6152).
pub fn is_8bit(message: &[u8]) -> bool {
    message.iter().any(|&b| b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Compose {
        Compose {
            from: "a@example.test".into(),
            to: vec!["b@example1.com".into()],
            subject: Some("hello".into()),
            headers: vec![],
            body: DEFAULT_BODY.into(),
            attachments: vec![],
            id_domain: "client.test".into(),
            // 2026-01-02 03:04:05 UTC
            date: UNIX_EPOCH + std::time::Duration::from_secs(1_767_323_045),
        }
    }

    fn text(c: &Compose) -> String {
        String::from_utf8(compose(c)).unwrap()
    }

    fn header_block(m: &str) -> &str {
        m.split("\r\n\r\n").next().unwrap()
    }

    #[test]
    fn simple_message_has_the_rfc5322_headers() {
        let m = text(&base());
        let h = header_block(&m);
        assert!(
            h.starts_with("Date: Fri, 2 Jan 2026 03:04:05 +0000\r\n"),
            "{m}"
        );
        assert!(h.contains("From: <a@example.test>\r\n"), "{m}");
        assert!(h.contains("To: <b@example1.com>\r\n"), "{m}");
        assert!(h.contains("Subject: hello\r\n"), "{m}");
        assert!(h.contains("MIME-Version: 1.0\r\n"), "{m}");
        let id = h
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .unwrap();
        assert!(id.starts_with('<') && id.ends_with("@client.test>"), "{id}");
        assert!(m.ends_with("\r\n\r\nThis is a test mailing\r\n"), "{m:?}");
        assert!(!is_8bit(m.as_bytes()));
        // Two messages never share a Message-ID.
        assert_ne!(message_id("x"), message_id("x"));
    }

    #[test]
    fn default_subject_names_the_date() {
        let mut c = base();
        c.subject = None;
        assert!(text(&c).contains("Subject: test Fri, 2 Jan 2026 03:04:05 +0000\r\n"));
    }

    #[test]
    fn utf8_subject_and_body_are_encoded() {
        let mut c = base();
        c.subject = Some("Grüße aus Köln".into());
        c.body = "Schöne Grüße\n".into();
        let m = text(&c);
        let subject = header_block(&m)
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap();
        assert!(subject.contains("=?utf-8?"), "{subject}");
        assert!(
            m.contains("charset=\"utf-8\"") || m.contains("charset=utf-8"),
            "{m}"
        );
        // Encoded for 7-bit transport: no raw 8-bit bytes anywhere.
        assert!(!is_8bit(m.as_bytes()), "{m}");
    }

    #[test]
    fn text_attachments_name_their_charset() {
        let a = Attachment::new("a.txt".into(), b"plain".to_vec());
        assert_eq!(
            (a.content_type.as_str(), a.charset),
            ("text/plain", Some("us-ascii"))
        );
        let a = Attachment::new("a.txt".into(), "Gr\u{fc}\u{df}e".as_bytes().to_vec());
        assert_eq!(
            (a.content_type.as_str(), a.charset),
            ("text/plain", Some("utf-8"))
        );
        let a = Attachment::new("a.txt".into(), b"Gr\xfc\xdfe".to_vec());
        assert_eq!(
            (a.content_type.as_str(), a.charset),
            ("application/octet-stream", None)
        );
        let a = Attachment::new("a.pdf".into(), b"%PDF".to_vec());
        assert_eq!(a.charset, None);
    }

    #[test]
    fn null_sender_gets_a_mailer_daemon_from() {
        let mut c = base();
        c.from = String::new();
        let m = text(&c);
        let h = header_block(&m);
        assert!(
            h.contains(&format!("From: <MAILER-DAEMON@{}>\r\n", c.id_domain)),
            "{m}"
        );
        assert_eq!(from_address("a@b.test", "h.test"), "a@b.test");
    }

    #[test]
    fn attachments_make_a_multipart_message() {
        let mut c = base();
        c.attachments = vec![
            Attachment::new("report.pdf".into(), b"%PDF-1.4 \x00\xff".to_vec()),
            Attachment::new("notes".into(), b"plain".to_vec()),
        ];
        let m = text(&c);
        let ct = header_block(&m)
            .lines()
            .find(|l| l.starts_with("Content-Type:"))
            .unwrap();
        assert!(ct.contains("multipart/mixed"), "{ct}");
        let boundary = m
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(m.matches(&format!("--{boundary}\r\n")).count(), 3, "{m}");
        assert!(m.contains(&format!("--{boundary}--")), "{m}");
        assert!(m.contains("Content-Type: application/pdf"), "{m}");
        assert!(m.contains("Content-Type: application/octet-stream"), "{m}");
        assert!(m.contains("filename=\"report.pdf\""), "{m}");
        assert!(m.contains("Content-Transfer-Encoding: base64"), "{m}");
        assert!(!is_8bit(m.as_bytes()));
    }

    #[test]
    fn extra_headers_are_added_or_replace_the_defaults() {
        let mut c = base();
        c.headers = vec![
            parse_header("X-Test: yes").unwrap(),
            parse_header("From: Ann Example <ann@example.test>").unwrap(),
            parse_header("Reply-To: Jürgen <j@example.test>").unwrap(),
            parse_header("X-Note: naïve").unwrap(),
        ];
        let m = text(&c);
        let h = header_block(&m);
        assert!(h.contains("X-Test: yes\r\n"), "{h}");
        assert!(
            h.contains("From: Ann Example <ann@example.test>\r\n"),
            "{h}"
        );
        assert_eq!(
            h.matches("\r\nFrom:").count() + h.starts_with("From:") as usize,
            1
        );
        let reply_to = h.lines().find(|l| l.starts_with("Reply-To:")).unwrap();
        assert!(
            reply_to.contains("=?utf-8?") && reply_to.ends_with("<j@example.test>"),
            "{reply_to}"
        );
        assert!(h.contains("X-Note: =?utf-8?"), "{h}");
    }

    #[test]
    fn bad_header_lines_are_refused() {
        assert_eq!(parse_header("X-A: b"), Ok(("X-A".into(), "b".into())));
        assert!(matches!(
            parse_header("nocolon"),
            Err(HeaderError::NoColon(_))
        ));
        assert!(matches!(
            parse_header("X A: b"),
            Err(HeaderError::BadName(_))
        ));
        assert!(matches!(parse_header(": b"), Err(HeaderError::BadName(_))));
        assert!(matches!(
            parse_header("X-A: b\r\nBcc: evil@x"),
            Err(HeaderError::LineBreak(_))
        ));
        assert!(matches!(
            parse_header("Content-Type: text/html"),
            Err(HeaderError::Mime(_))
        ));
    }

    #[test]
    fn several_recipients_share_one_to_header() {
        let mut c = base();
        c.to = vec!["b@example1.com".into(), "c@example1.com".into()];
        let m = text(&c);
        let h = header_block(&m);
        assert!(
            h.contains("To: <b@example1.com>, <c@example1.com>\r\n"),
            "{h}"
        );
    }
}
