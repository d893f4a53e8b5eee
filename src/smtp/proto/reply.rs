//! SMTP replies on the wire (RFC 5321 §4.2), with builders for sendmail's fixed texts
//! (docs/sendmail-compat.md §6.5), and the sanitizing of client text echoed in them.

use std::fmt;

use super::{MAX_REPLY_LINE, MAX_SHORT_STR, SyntaxError};

/// Make client-supplied text safe to echo in a reply or header: control
/// characters (C0 including CR/LF/NUL, DEL, C1) are removed so the client
/// cannot inject reply lines or header fields; TAB becomes a space.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}

/// sendmail's `shortenstring`: strings of `max` characters or more become the
/// first `(max-3)/2` characters, `...`, and the last `(max-3)/2`.
pub fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n < max {
        return s.to_owned();
    }
    let keep = max.saturating_sub(3) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - keep).collect();
    format!("{head}...{tail}")
}

/// An SMTP reply: one code, one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

/// The EHLO keywords to advertise, in sendmail 8.13's order
/// (docs/sendmail-compat.md §6.5). The null server (pre-greeting traffic) advertises
/// only `enhanced_status_codes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EhloCaps {
    pub enhanced_status_codes: bool,
    pub pipelining: bool,
    pub expn: bool,
    pub verb: bool,
    pub eight_bit_mime: bool,
    /// RFC 6531; not in 8.13, placed after 8BITMIME as later sendmails do.
    pub smtputf8: bool,
    /// `None`: not advertised; `Some(0)`: `SIZE`; `Some(n)`: `SIZE n`.
    pub size: Option<u64>,
    pub dsn: bool,
    pub etrn: bool,
    /// SASL mechanisms; empty: no AUTH line.
    pub auth: Vec<String>,
    /// Never set after TLS is active (RFC 3207 §4.2).
    pub starttls: bool,
    /// `None`: not advertised; `Some(0)`: `DELIVERBY`; `Some(n)`: `DELIVERBY n`.
    pub deliverby: Option<u64>,
    pub help: bool,
}

impl EhloCaps {
    /// The keyword lines, in order.
    pub fn keywords(&self) -> Vec<String> {
        let mut k = Vec::new();
        let mut flag = |on: bool, s: &str| {
            if on {
                k.push(s.to_owned());
            }
        };
        flag(self.enhanced_status_codes, "ENHANCEDSTATUSCODES");
        flag(self.pipelining, "PIPELINING");
        flag(self.expn, "EXPN");
        flag(self.verb, "VERB");
        flag(self.eight_bit_mime, "8BITMIME");
        flag(self.smtputf8, "SMTPUTF8");
        match self.size {
            Some(0) => k.push("SIZE".into()),
            Some(n) => k.push(format!("SIZE {n}")),
            None => {}
        }
        if self.dsn {
            k.push("DSN".into());
        }
        if self.etrn {
            k.push("ETRN".into());
        }
        if !self.auth.is_empty() {
            k.push(format!("AUTH {}", self.auth.join(" ")));
        }
        if self.starttls {
            k.push("STARTTLS".into());
        }
        match self.deliverby {
            Some(0) => k.push("DELIVERBY".into()),
            Some(n) => k.push(format!("DELIVERBY {n}")),
            None => {}
        }
        if self.help {
            k.push("HELP".into());
        }
        k
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // For logs: the wire lines joined by "\n", without the final CRLF.
        let wire = String::from_utf8_lossy(&self.to_bytes()).into_owned();
        f.write_str(&wire.trim_end_matches("\r\n").replace("\r\n", "\n"))
    }
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Self {
        Self {
            code,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        Self { code, lines }
    }

    /// Wire form: `250-first\r\n…250 last\r\n` (RFC 5321 §4.2.1). Defensive:
    /// CR and LF are dropped from the text (no reply injection even if a
    /// caller forgot [`sanitize`]) and each line is cut to 512 octets.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        // "250-" + text + CRLF must fit in 512 octets.
        let max_text = MAX_REPLY_LINE - 6;
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            let clean: String = line.chars().filter(|&c| c != '\r' && c != '\n').collect();
            let mut cut = clean.len().min(max_text);
            while !clean.is_char_boundary(cut) {
                cut -= 1;
            }
            out.extend_from_slice(format!("{:03}{sep}", self.code % 1000).as_bytes());
            out.extend_from_slice(&clean.as_bytes()[..cut]);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// The greeting: `SmtpGreetingMessage` with "ESMTP" inserted after the
    /// first word, as sendmail does: `220 mail.example.com ESMTP Sendmail …`.
    pub fn greeting_message(message: &str) -> Self {
        let message = sanitize(message);
        let text = match message.split_once(' ') {
            Some((first, rest)) => format!("{first} ESMTP {rest}"),
            None => format!("{message} ESMTP"),
        };
        Self::new(220, text)
    }

    /// `220 <host> ESMTP <rest>` (or `220 <host> ESMTP` when `rest` is empty).
    pub fn greeting(host: &str, rest: &str) -> Self {
        if rest.is_empty() {
            Self::greeting_message(host)
        } else {
            Self::greeting_message(&format!("{host} {rest}"))
        }
    }

    /// The 5xx greeting after pre-greeting traffic (greet_pause).
    pub fn not_accepting(host: &str) -> Self {
        Self::new(554, format!("{host} ESMTP not accepting messages"))
    }

    /// `250 <host> Hello <client>, pleased to meet you`; `client` is sendmail's
    /// `$_` (`[ident@]name [ip]`, `[ip]`, ` (may be forged)`).
    pub fn helo(host: &str, client: &str) -> Self {
        Self::new(
            250,
            format!("{host} Hello {}, pleased to meet you", sanitize(client)),
        )
    }

    /// The hello line followed by the EHLO keywords.
    pub fn ehlo(host: &str, client: &str, caps: &EhloCaps) -> Self {
        let mut lines = Self::helo(host, client).lines;
        lines.extend(caps.keywords());
        Self::multi(250, lines)
    }

    /// `501 5.0.0 <verb> requires domain address`, verb as typed.
    pub fn helo_requires_domain(verb: &str) -> Self {
        Self::syntax(&SyntaxError::HeloRequiresDomain {
            verb: sanitize(verb),
        })
    }

    pub fn invalid_domain() -> Self {
        Self::new(501, "5.0.0 Invalid domain name")
    }

    /// Any parse error as a reply.
    pub fn syntax(err: &SyntaxError) -> Self {
        Self::new(err.code(), err.to_string())
    }

    /// `250 2.1.0 <sender>... Sender ok`; pass the address as sendmail prints
    /// it (usually with its angle brackets).
    pub fn sender_ok(addr: &str) -> Self {
        Self::new(250, format!("2.1.0 {}... Sender ok", sanitize(addr)))
    }

    /// `250 2.1.5 <rcpt>... Recipient ok`, plus ` (will queue)` if asked.
    pub fn recipient_ok(addr: &str, will_queue: bool) -> Self {
        let suffix = if will_queue { " (will queue)" } else { "" };
        Self::new(
            250,
            format!("2.1.5 {}... Recipient ok{suffix}", sanitize(addr)),
        )
    }

    pub fn user_unknown(addr: &str) -> Self {
        Self::new(550, format!("5.1.1 {}... User unknown", sanitize(addr)))
    }

    pub fn sender_already_specified() -> Self {
        Self::new(503, "5.5.0 Sender already specified")
    }

    pub fn polite_helo_first() -> Self {
        Self::new(503, "5.0.0 Polite people say HELO first")
    }

    pub fn need_mail_before_rcpt() -> Self {
        Self::new(503, "5.0.0 Need MAIL before RCPT")
    }

    pub fn need_mail() -> Self {
        Self::new(503, "5.0.0 Need MAIL command")
    }

    pub fn need_rcpt() -> Self {
        Self::new(503, "5.0.0 Need RCPT (recipient)")
    }

    /// MAIL with `SIZE=` above MaxMessageSize.
    pub fn size_exceeds_fixed(max: u64) -> Self {
        Self::new(
            552,
            format!("5.2.3 Message size exceeds fixed maximum message size ({max})"),
        )
    }

    /// A DATA body above MaxMessageSize (sent after the end of data).
    /// MAIL when the spool cannot take the message (RFC 1870 §6.1, Postfix's wording).
    pub fn insufficient_storage() -> Self {
        Reply::new(452, "4.3.1 Insufficient system storage")
    }

    pub fn message_exceeds_fixed(max: u64) -> Self {
        Self::new(
            552,
            format!("5.2.3 Message exceeds maximum fixed size ({max})"),
        )
    }

    pub fn too_many_recipients() -> Self {
        Self::new(452, "4.5.3 Too many recipients")
    }

    pub fn enter_mail() -> Self {
        Self::new(354, "Enter mail, end with \".\" on a line by itself")
    }

    /// `250 2.0.0 <qid> Message accepted for delivery` (no angle brackets).
    pub fn accepted(qid: &str) -> Self {
        Self::new(250, format!("2.0.0 {qid} Message accepted for delivery"))
    }

    pub fn reset() -> Self {
        Self::new(250, "2.0.0 Reset state")
    }

    /// The NOOP reply.
    pub fn ok() -> Self {
        Self::new(250, "2.0.0 OK")
    }

    pub fn closing(host: &str) -> Self {
        Self::new(221, format!("2.0.0 {host} closing connection"))
    }

    pub fn cannot_vrfy() -> Self {
        Self::new(
            252,
            "2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
        )
    }

    /// EXPN refused (noexpn).
    pub fn not_allowed() -> Self {
        Self::new(502, "5.7.0 Sorry, we do not allow this operation")
    }

    /// VRFY/EXPN without argument.
    pub fn argument_required() -> Self {
        Self::new(501, "5.5.2 Argument required")
    }

    /// `500 5.5.1 Command unrecognized: "<line>"`, the line sanitized and
    /// shortened like sendmail's `shortenstring(inp, MAXSHORTSTR)`.
    pub fn unrecognized(line: &str) -> Self {
        Self::new(
            500,
            format!(
                "5.5.1 Command unrecognized: \"{}\"",
                shorten(&sanitize(line), MAX_SHORT_STR)
            ),
        )
    }

    pub fn too_many_bad_commands(host: &str) -> Self {
        Self::new(
            421,
            format!("4.7.0 {host} Too many bad commands; closing connection"),
        )
    }

    /// The null-server reply after pre-greeting traffic.
    pub fn command_rejected() -> Self {
        Self::new(550, "5.0.0 Command rejected")
    }

    pub fn try_again_later() -> Self {
        Self::new(451, "4.3.2 Please try again later")
    }

    pub fn ready_to_start_tls() -> Self {
        Self::new(220, "2.0.0 Ready to start TLS")
    }

    pub fn tls_not_available() -> Self {
        Self::new(454, "4.7.0 TLS not available due to temporary reason")
    }

    /// RFC 5321 §4.5.3.1.4 over-long command line.
    pub fn line_too_long() -> Self {
        Self::new(500, "5.5.2 Line too long")
    }

    /// Postfix's reply to pipelining without PIPELINING, or to commands sent
    /// before the reply they must wait for (`smtpd_forbid_unauth_pipelining`);
    /// the server then disconnects.
    pub fn sync_error() -> Self {
        Self::new(554, "5.5.0 Error: SMTP protocol synchronization")
    }

    /// Postfix `smtpd_forbid_bare_newline=reject` text (default code 550).
    pub fn bare_lf() -> Self {
        Self::new(550, "5.5.2 Error: bare <LF> received")
    }

    /// Same for a bare CR.
    pub fn bare_cr() -> Self {
        Self::new(550, "5.5.2 Error: bare <CR> received")
    }

    /// HELP, sendmail-style. Unknown topic: sendmail's
    /// `504 5.3.0 HELP topic "%.10s" unknown`.
    pub fn help(topic: Option<&str>) -> Self {
        const END: &str = "2.0.0 End of HELP info";
        let body: &[&str] = match topic.map(str::to_ascii_uppercase).as_deref() {
            None => &[
                "This is mailtool",
                "Topics:",
                "\tHELO\tEHLO\tMAIL\tRCPT\tDATA",
                "\tRSET\tNOOP\tQUIT\tHELP\tVRFY",
                "\tEXPN\tSTARTTLS\tAUTH",
                "For more info use \"HELP <topic>\".",
                "For local information send email to Postmaster at your site.",
            ],
            Some("HELO") => &["HELO <hostname>", "\tIntroduce yourself."],
            Some("EHLO") => &[
                "EHLO <hostname>",
                "\tIntroduce yourself, and request extended SMTP mode.",
            ],
            Some("MAIL") => &[
                "MAIL FROM: <sender> [ <parameters> ]",
                "\tSpecifies the sender.",
            ],
            Some("RCPT") => &[
                "RCPT TO: <recipient> [ <parameters> ]",
                "\tSpecifies the recipient.  Can be used any number of times.",
            ],
            Some("DATA") => &[
                "DATA",
                "\tFollowing text is collected as the message.",
                "\tEnd with a single dot.",
            ],
            Some("RSET") => &["RSET", "\tResets the system."],
            Some("NOOP") => &["NOOP", "\tDo nothing."],
            Some("QUIT") => &["QUIT", "\tExit sendmail (SMTP)."],
            Some("HELP") => &["HELP [ <topic> ]", "\tThe HELP command gives help info."],
            Some("VRFY") => &["VRFY <recipient>", "\tVerify an address."],
            Some("EXPN") => &["EXPN <recipient>", "\tExpand an address."],
            Some("STARTTLS") => &["STARTTLS", "\tStart TLS negotiation."],
            Some("AUTH") => &[
                "AUTH <mechanism> [ <initial-response> ]",
                "\tAuthenticate using SASL.",
            ],
            Some(_) => {
                let t: String = sanitize(topic.unwrap_or_default())
                    .chars()
                    .take(10)
                    .collect();
                return Self::new(504, format!("5.3.0 HELP topic \"{t}\" unknown"));
            }
        };
        let mut lines: Vec<String> = body.iter().map(|l| format!("2.0.0 {l}")).collect();
        lines.push(END.to_owned());
        Self::multi(214, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/sendmail-compat.md §6.5: every fixed reply text, byte-exact.
    #[test]
    fn reply_texts() {
        let cases: Vec<(Reply, &str)> = vec![
            (
                Reply::greeting(
                    "mail.example.com",
                    "Sendmail 8.13.8/8.13.8; Sat, 1 Jan 2005 12:00:00 +0100",
                ),
                "220 mail.example.com ESMTP Sendmail 8.13.8/8.13.8; Sat, 1 Jan 2005 12:00:00 +0100\r\n",
            ),
            (Reply::greeting("mx", ""), "220 mx ESMTP\r\n"),
            (
                Reply::greeting_message("mx.test mailtool ready"),
                "220 mx.test ESMTP mailtool ready\r\n",
            ),
            (
                Reply::not_accepting("mx.test"),
                "554 mx.test ESMTP not accepting messages\r\n",
            ),
            (
                Reply::helo("mx.test", "client.test [192.0.2.1]"),
                "250 mx.test Hello client.test [192.0.2.1], pleased to meet you\r\n",
            ),
            (
                Reply::helo_requires_domain("Ehlo"),
                "501 5.0.0 Ehlo requires domain address\r\n",
            ),
            (Reply::invalid_domain(), "501 5.0.0 Invalid domain name\r\n"),
            (
                Reply::sender_ok("<a@b>"),
                "250 2.1.0 <a@b>... Sender ok\r\n",
            ),
            (
                Reply::recipient_ok("<c@d>", false),
                "250 2.1.5 <c@d>... Recipient ok\r\n",
            ),
            (
                Reply::recipient_ok("<c@d>", true),
                "250 2.1.5 <c@d>... Recipient ok (will queue)\r\n",
            ),
            (
                Reply::user_unknown("<x@d>"),
                "550 5.1.1 <x@d>... User unknown\r\n",
            ),
            (
                Reply::sender_already_specified(),
                "503 5.5.0 Sender already specified\r\n",
            ),
            (
                Reply::polite_helo_first(),
                "503 5.0.0 Polite people say HELO first\r\n",
            ),
            (
                Reply::need_mail_before_rcpt(),
                "503 5.0.0 Need MAIL before RCPT\r\n",
            ),
            (Reply::need_mail(), "503 5.0.0 Need MAIL command\r\n"),
            (Reply::need_rcpt(), "503 5.0.0 Need RCPT (recipient)\r\n"),
            (
                Reply::size_exceeds_fixed(1000),
                "552 5.2.3 Message size exceeds fixed maximum message size (1000)\r\n",
            ),
            (
                Reply::message_exceeds_fixed(1000),
                "552 5.2.3 Message exceeds maximum fixed size (1000)\r\n",
            ),
            (
                Reply::too_many_recipients(),
                "452 4.5.3 Too many recipients\r\n",
            ),
            (
                Reply::enter_mail(),
                "354 Enter mail, end with \".\" on a line by itself\r\n",
            ),
            (
                Reply::accepted("k5FGx0Ax012345"),
                "250 2.0.0 k5FGx0Ax012345 Message accepted for delivery\r\n",
            ),
            (Reply::reset(), "250 2.0.0 Reset state\r\n"),
            (Reply::ok(), "250 2.0.0 OK\r\n"),
            (
                Reply::closing("mx.test"),
                "221 2.0.0 mx.test closing connection\r\n",
            ),
            (
                Reply::cannot_vrfy(),
                "252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)\r\n",
            ),
            (
                Reply::not_allowed(),
                "502 5.7.0 Sorry, we do not allow this operation\r\n",
            ),
            (
                Reply::argument_required(),
                "501 5.5.2 Argument required\r\n",
            ),
            (
                Reply::unrecognized("XYZZY foo"),
                "500 5.5.1 Command unrecognized: \"XYZZY foo\"\r\n",
            ),
            (
                Reply::too_many_bad_commands("mx.test"),
                "421 4.7.0 mx.test Too many bad commands; closing connection\r\n",
            ),
            (Reply::command_rejected(), "550 5.0.0 Command rejected\r\n"),
            (
                Reply::try_again_later(),
                "451 4.3.2 Please try again later\r\n",
            ),
            (
                Reply::ready_to_start_tls(),
                "220 2.0.0 Ready to start TLS\r\n",
            ),
            (
                Reply::tls_not_available(),
                "454 4.7.0 TLS not available due to temporary reason\r\n",
            ),
            (Reply::line_too_long(), "500 5.5.2 Line too long\r\n"),
            (
                Reply::sync_error(),
                "554 5.5.0 Error: SMTP protocol synchronization\r\n",
            ),
            (
                Reply::help(Some("noop")),
                "214-2.0.0 NOOP\r\n214-2.0.0 \tDo nothing.\r\n214 2.0.0 End of HELP info\r\n",
            ),
            (
                Reply::help(Some("frobnicate-all")),
                "504 5.3.0 HELP topic \"frobnicate\" unknown\r\n",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(String::from_utf8(r.to_bytes()).unwrap(), want);
        }
        let h = String::from_utf8(Reply::help(None).to_bytes()).unwrap();
        assert!(h.starts_with("214-2.0.0 This is mailtool\r\n"));
        assert!(h.ends_with("214 2.0.0 End of HELP info\r\n"));
    }

    // docs/sendmail-compat.md §6.5 EHLO keyword order; RFC 5321 §4.2.1 multi-line form.
    #[test]
    fn ehlo_reply() {
        let caps = EhloCaps {
            enhanced_status_codes: true,
            pipelining: true,
            expn: true,
            verb: true,
            eight_bit_mime: true,
            size: Some(1000),
            dsn: true,
            etrn: true,
            auth: vec!["LOGIN".into(), "PLAIN".into()],
            starttls: true,
            deliverby: Some(0),
            help: true,
            ..EhloCaps::default()
        };
        let r = Reply::ehlo("mx.test", "[192.0.2.1]", &caps);
        assert_eq!(
            String::from_utf8(r.to_bytes()).unwrap(),
            "250-mx.test Hello [192.0.2.1], pleased to meet you\r\n250-ENHANCEDSTATUSCODES\r\n\
             250-PIPELINING\r\n250-EXPN\r\n250-VERB\r\n250-8BITMIME\r\n250-SIZE 1000\r\n250-DSN\r\n\
             250-ETRN\r\n250-AUTH LOGIN PLAIN\r\n250-STARTTLS\r\n250-DELIVERBY\r\n250 HELP\r\n"
        );
        // The null server (greet_pause violation): hello + ENHANCEDSTATUSCODES.
        let null = EhloCaps {
            enhanced_status_codes: true,
            ..EhloCaps::default()
        };
        assert_eq!(
            Reply::ehlo("mx", "[192.0.2.1]", &null).to_bytes(),
            b"250-mx Hello [192.0.2.1], pleased to meet you\r\n250 ENHANCEDSTATUSCODES\r\n"
        );
        // Display is for logs: no CRLF.
        assert_eq!(
            Reply::ehlo("mx", "[192.0.2.1]", &null).to_string(),
            "250-mx Hello [192.0.2.1], pleased to meet you\n250 ENHANCEDSTATUSCODES"
        );
        assert_eq!(
            EhloCaps {
                size: Some(0),
                ..EhloCaps::default()
            }
            .keywords(),
            vec!["SIZE"]
        );
    }

    // Echoed client text cannot inject lines (RFC 5321 §4.2; reply lines are
    // at most 512 octets, §4.5.3.1.5); sendmail's shortenstring.
    #[test]
    fn sanitizer_and_shortening() {
        assert_eq!(sanitize("a\r\nb\0c\td\x1b\u{85}"), "abc d");
        let r = Reply::unrecognized("X\r\n250 fake");
        assert_eq!(
            r.to_bytes(),
            b"500 5.5.1 Command unrecognized: \"X250 fake\"\r\n"
        );
        let long = "A".repeat(300) + &"B".repeat(300);
        let out = String::from_utf8(Reply::unrecognized(&long).to_bytes()).unwrap();
        assert_eq!(
            out,
            format!(
                "500 5.5.1 Command unrecognized: \"{}...{}\"\r\n",
                "A".repeat(100),
                "B".repeat(100)
            )
        );
        assert_eq!(shorten(&"x".repeat(202), MAX_SHORT_STR).len(), 202);
        assert_eq!(shorten(&"x".repeat(203), MAX_SHORT_STR).len(), 203);
        // to_bytes itself refuses CR/LF and over-long lines.
        let raw = Reply::new(250, format!("a\r\n{}", "é".repeat(600)));
        let b = raw.to_bytes();
        assert!(b.len() <= MAX_REPLY_LINE && b.ends_with(b"\r\n"));
        assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
        assert_eq!(Reply::multi(250, vec![]).to_bytes(), b"250 \r\n");
    }
}
