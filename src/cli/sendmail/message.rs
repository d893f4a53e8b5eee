//! The message as sendmail's local submission shapes it: input ended by EOF or a lone `.`
//! (unless `-i`), recipients from the header with `-t`, `Bcc:` removed, and the `From:`,
//! `Date:` and `Message-ID:` headers added when missing, with a `Received:` line naming the
//! local user. Pure functions over bytes; line ends are LF, as the spool keeps them.

use std::io::{self, BufRead};
use std::time::SystemTime;

use mail_parser::{HeaderName, MessageParser};

/// Reads the message from `input`. Without `ignore_dots` a line holding only `.` ends it (and
/// nothing after it is read), as in sendmail. CRLF becomes LF; a last line gets its LF.
pub fn read_input(input: &mut impl BufRead, ignore_dots: bool) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            line.push(b'\n');
        } else if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        if !ignore_dots && line == b".\n" {
            break;
        }
        out.extend_from_slice(&line);
    }
    Ok(out)
}

/// Who is submitting, for the headers we add.
#[derive(Debug, Clone)]
pub struct Local {
    /// `$j`: this host's name, for unqualified addresses and Message-ID.
    pub hostname: String,
    /// The login name of the submitting user.
    pub user: String,
    /// Envelope sender (already qualified; empty for `<>`).
    pub sender: String,
    /// `-F`, else the GECOS name when the user sends as themselves.
    pub full_name: Option<String>,
    pub now: SystemTime,
    /// A unique token (a locally allocated queue id) for Message-ID and Received.
    pub token: String,
}

/// The submitted message and what `-t` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub data: Vec<u8>,
    /// To, Cc and Bcc (or their Resent- forms when present), in order, qualified.
    pub header_recipients: Vec<String>,
}

/// One header field: its name and its raw lines (continuations included).
struct Field<'a> {
    name: &'a str,
    raw: &'a [u8],
}

/// Splits the header block off `raw`. Returns the fields and the offset where the body (or
/// the empty separator line) starts. A first line that is not a header means no header.
fn split_header(raw: &[u8]) -> (Vec<Field<'_>>, usize) {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        if line == b"\n" {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            match fields.last_mut() {
                Some(f) => {
                    let start = f.raw.as_ptr() as usize - raw.as_ptr() as usize;
                    f.raw = &raw[start..end];
                    pos = end;
                    continue;
                }
                None => break,
            }
        }
        match header_name(line) {
            Some(name) => fields.push(Field {
                name,
                raw: &raw[pos..end],
            }),
            None => break,
        }
        pos = end;
    }
    (fields, pos)
}

/// `Name:` at the start of a line (RFC 5322 field name, spaces before the colon tolerated).
fn header_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&line[..colon])
        .ok()?
        .trim_end_matches([' ', '\t']);
    (!name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b))).then_some(name)
}

fn is(f: &Field<'_>, name: &str) -> bool {
    f.name.eq_ignore_ascii_case(name)
}

/// Shapes the message for submission; see the module docs.
pub fn prepare(raw: &[u8], local: &Local) -> Prepared {
    // A leading mbox "From " line is not a header (sendmail drops it too).
    let raw = if raw.starts_with(b"From ") {
        let nl = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| i + 1);
        &raw[nl..]
    } else {
        raw
    };
    let (fields, body_at) = split_header(raw);
    let resent = fields
        .iter()
        .any(|f| is(f, "Resent-To") || is(f, "Resent-Cc") || is(f, "Resent-Bcc"));
    let rcpt_fields: &[&str] = if resent {
        &["Resent-To", "Resent-Cc", "Resent-Bcc"]
    } else {
        &["To", "Cc", "Bcc"]
    };
    let mut header_recipients = Vec::new();
    for f in fields
        .iter()
        .filter(|f| rcpt_fields.iter().any(|n| is(f, n)))
    {
        // The name was found before the first colon, so the value starts after it.
        let colon = f.raw.iter().position(|&b| b == b':').unwrap_or(0);
        let value = &f.raw[colon + 1..];
        header_recipients.extend(address_list(value, &local.hostname));
    }

    let mut data = Vec::with_capacity(raw.len() + 512);
    let date = crate::util::rfc5322_date(local.now);
    data.extend_from_slice(
        format!(
            "Received: (from {}@localhost)\n\tby {} (mailtool/Submit) id {};\n\t{date}\n",
            local.user, local.hostname, local.token
        )
        .as_bytes(),
    );
    for f in &fields {
        // Bcc recipients must not see each other, nor be seen by anyone else.
        if is(f, "Bcc") || is(f, "Resent-Bcc") {
            continue;
        }
        data.extend_from_slice(f.raw);
    }
    if !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    let has = |n: &str| fields.iter().any(|f| is(f, n));
    if !has("From") {
        let from_addr = if local.sender.is_empty() {
            format!("{}@{}", local.user, local.hostname)
        } else {
            local.sender.clone()
        };
        let line = match local.full_name.as_deref().filter(|n| !n.trim().is_empty()) {
            Some(name) => format!("From: {} <{from_addr}>\n", display_name(name)),
            None => format!("From: {from_addr}\n"),
        };
        data.extend_from_slice(line.as_bytes());
    }
    if !has("Date") {
        data.extend_from_slice(format!("Date: {date}\n").as_bytes());
    }
    if !has("Message-ID") {
        let stamp = message_id_stamp(local.now);
        data.extend_from_slice(
            format!("Message-ID: <{stamp}.{}@{}>\n", local.token, local.hostname).as_bytes(),
        );
    }
    let body = &raw[body_at..];
    if !body.starts_with(b"\n") {
        // No empty line after the header (or no header at all): the body starts here.
        data.push(b'\n');
    }
    data.extend_from_slice(body);
    Prepared {
        data,
        header_recipients,
    }
}

/// `YYYYMMDDhhmm`, as sendmail starts its Message-IDs.
fn message_id_stamp(t: SystemTime) -> String {
    let c = crate::dates::civil_from_unix(crate::dates::unix_secs(t).max(0));
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        c.year,
        c.month0 + 1,
        c.mday,
        c.hour,
        c.min
    )
}

/// A phrase for `From: NAME <addr>`: quoted when it holds specials (RFC 5322 §3.2.3).
fn display_name(name: &str) -> String {
    let specials = "()<>[]:;@\\,.\"";
    if name.chars().any(|c| specials.contains(c)) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        name.to_string()
    }
}

/// The addresses of an address-list value (`a@b, "Name" <c@d>, group: e@f;`), unqualified
/// ones completed with `@hostname`.
pub fn address_list(value: &[u8], hostname: &str) -> Vec<String> {
    let mut text = b"To:".to_vec();
    text.extend_from_slice(value);
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    text.extend_from_slice(b"\n");
    let Some(msg) = MessageParser::default().parse_headers(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in msg.header_values(HeaderName::To) {
        let Some(list) = v.as_address() else { continue };
        for a in list.iter() {
            // A bare word (`root`) may come back as a name without an address.
            let word = match (&a.address, &a.name) {
                (Some(addr), _) => addr.trim().to_string(),
                (None, Some(name)) if !name.trim().contains(char::is_whitespace) => {
                    name.trim().to_string()
                }
                _ => continue,
            };
            if !word.is_empty() {
                out.push(qualify(&word, hostname));
            }
        }
    }
    out
}

/// Recipient words from the command line: each may hold a comma-separated list.
pub fn command_line_recipients(words: &[String], hostname: &str) -> Vec<String> {
    words
        .iter()
        .flat_map(|w| address_list(w.as_bytes(), hostname))
        .collect()
}

/// `user` → `user@hostname`; anything with a domain is left alone.
pub fn qualify(addr: &str, hostname: &str) -> String {
    if addr.is_empty() || addr.contains('@') {
        addr.to_string()
    } else {
        format!("{addr}@{hostname}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn local() -> Local {
        Local {
            hostname: "mail.example1.com".into(),
            user: "alice".into(),
            sender: "alice@mail.example1.com".into(),
            full_name: Some("Alice Q. User".into()),
            now: UNIX_EPOCH + Duration::from_secs(1_136_116_800), // 2006-01-01 12:00 UTC
            token: "k01C0Ax012345".into(),
        }
    }

    fn read(input: &str, ignore_dots: bool) -> String {
        let mut r = io::Cursor::new(input.as_bytes().to_vec());
        String::from_utf8(read_input(&mut r, ignore_dots).unwrap()).unwrap()
    }

    #[test]
    fn a_lone_dot_ends_input_unless_i() {
        assert_eq!(read("a\n.\nb\n", false), "a\n");
        assert_eq!(read("a\r\n.\r\nb\r\n", false), "a\n");
        assert_eq!(read("a\n.\nb\n", true), "a\n.\nb\n");
        assert_eq!(read("a\n..\nb", false), "a\n..\nb\n");
        assert_eq!(read("a\n.", false), "a\n");
        assert_eq!(read("", false), "");
    }

    #[test]
    fn adds_missing_headers() {
        let p = prepare(b"Subject: hi\n\nbody\n", &local());
        let text = String::from_utf8(p.data).unwrap();
        assert_eq!(
            text,
            "Received: (from alice@localhost)\n\tby mail.example1.com (mailtool/Submit) id k01C0Ax012345;\n\tSun, 1 Jan 2006 12:00:00 +0000\n\
             Subject: hi\n\
             From: \"Alice Q. User\" <alice@mail.example1.com>\n\
             Date: Sun, 1 Jan 2006 12:00:00 +0000\n\
             Message-ID: <200601011200.k01C0Ax012345@mail.example1.com>\n\
             \n\
             body\n"
        );
        assert!(p.header_recipients.is_empty());
    }

    #[test]
    fn keeps_existing_headers_and_handles_no_header() {
        let p = prepare(
            b"From: Bob <bob@x.test>\nDate: Mon, 2 Jan 2006 00:00:00 +0000\nMessage-Id: <a@b>\n\nx\n",
            &local(),
        );
        let text = String::from_utf8(p.data).unwrap();
        assert_eq!(text.matches("From:").count(), 1);
        assert_eq!(text.matches("Date:").count(), 1);
        assert!(!text.contains("Message-ID:"));
        // A body without any header: the headers are added and the text stays the body.
        let mut l = local();
        l.full_name = None;
        let text = String::from_utf8(prepare(b"just text\nmore\n", &l).data).unwrap();
        assert!(
            text.contains("From: alice@mail.example1.com\nDate: "),
            "{text}"
        );
        assert!(text.ends_with(">\n\njust text\nmore\n"), "{text}");
        // An mbox From_ line is dropped.
        let text = String::from_utf8(prepare(b"From alice Sun Jan 1\nSubject: s\n\nb\n", &l).data)
            .unwrap();
        assert!(!text.contains("From alice"), "{text}");
    }

    #[test]
    fn t_reads_to_cc_bcc_and_drops_bcc() {
        let msg = b"To: a@x.test, \"B, Jr.\" <b@y.test>\nCc: carol\n  , dave@z.test\nBcc: hidden@w.test\nSubject: s\n\nbody\nBcc: not-a-header@x\n";
        let p = prepare(msg, &local());
        assert_eq!(
            p.header_recipients,
            vec![
                "a@x.test",
                "b@y.test",
                "carol@mail.example1.com",
                "dave@z.test",
                "hidden@w.test"
            ]
        );
        let text = String::from_utf8(p.data).unwrap();
        assert!(!text.contains("hidden@w.test"), "{text}");
        assert!(text.contains("Cc: carol\n  , dave@z.test\n"), "{text}");
        assert!(text.ends_with("\nbody\nBcc: not-a-header@x\n"), "{text}");
    }

    #[test]
    fn resent_headers_win() {
        let msg = b"To: old@x.test\nResent-To: new@y.test\nResent-Bcc: secret@y.test\n\nb\n";
        let p = prepare(msg, &local());
        assert_eq!(p.header_recipients, vec!["new@y.test", "secret@y.test"]);
        assert!(!String::from_utf8(p.data).unwrap().contains("secret"));
    }

    #[test]
    fn command_line_lists() {
        let words: Vec<String> = ["root", "a@x.test,b@y.test", "Name <c@z.test>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            command_line_recipients(&words, "h.test"),
            vec!["root@h.test", "a@x.test", "b@y.test", "c@z.test"]
        );
        assert_eq!(qualify("", "h"), "");
    }
}
