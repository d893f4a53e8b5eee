//! SMTP replies and sendmail's rules for formatting them (docs/sendmail-compat.md §6.3).
//!
//! sendmail builds every rejection from a `$#error $@ <status> $: <text>` triple (parseaddr.c
//! buildaddr) and prints it through err.c fmtmsg. [`Rejection::from_error`] is that first step and
//! [`Rejection::line`] the second, so the access db, the virtusertable and the alias code all produce
//! byte-identical replies.

use std::fmt;

/// The reply text sendmail gives when a `-T<TMPF>` map lookup fails (docs/sendmail-compat.md §4.1).
pub const TEMP_FAILURE_TEXT: &str = "Temporary system failure. Please try again later.";

/// One SMTP reply line: `code dsn <addr>... text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The three-digit reply code (kept as a number; sendmail accepts any three digits here).
    pub code: u16,
    /// The RFC 3463 enhanced status code, or empty when the reply has none (e.g. `050`).
    pub dsn: String,
    /// The human-readable text after the codes and the address part.
    pub text: String,
    /// The address exactly as the client typed it (angle brackets included). Shown only for the
    /// codes in [`address_shown`].
    pub addr: Option<String>,
}

impl Rejection {
    /// A reply with an explicit enhanced status code (pass `""` for none).
    pub fn new(code: u16, dsn: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            code,
            dsn: dsn.into(),
            text: text.into(),
            addr: None,
        }
    }

    /// A reply whose enhanced code is derived from the reply code, as usrerr() does when no
    /// D.S.N was given (docs/sendmail-compat.md §6.3, §11.1: 4xx gives `4.0.0`, following the code).
    pub fn with_default_dsn(code: u16, text: impl Into<String>) -> Self {
        Self::new(code, default_dsn(code), text)
    }

    /// Attaches the address the reply is about (the MAIL or RCPT argument as typed).
    pub fn with_addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = Some(addr.into());
        self
    }

    /// `451 4.3.0 Temporary system failure. Please try again later.`: what a failed `-T<TMPF>`
    /// lookup turns into (docs/sendmail-compat.md §4.1).
    pub fn temp_failure() -> Self {
        Self::new(451, "4.3.0", TEMP_FAILURE_TEXT)
    }

    /// Builds the reply for a `$#error $@ status $: text` result the way buildaddr does
    /// (docs/sendmail-compat.md §5.4, §6.3):
    /// * `text` starting with `NNN ` gives that code; an enhanced code right after it wins,
    ///   then `status` when it is a D.S.N, then the `X.0.0` default;
    /// * any other `text` becomes `553 5.3.0 text` (status is ignored, as in sendmail).
    ///
    /// `text` is the raw `$:` part: quotes are removed and unquoted whitespace collapsed, because
    /// sendmail tokenises it before printing (that is why `ERROR:"550 a  b"` keeps spaces).
    pub fn from_error(status: Option<&str>, text: &str) -> Self {
        let text = normalize_error_text(text);
        let Some((code, rest)) = split_smtp_code(&text) else {
            return Self::new(553, "5.3.0", text);
        };
        if let Some((dsn, message)) = split_enhanced_code(rest) {
            return Self::new(code, dsn, message);
        }
        match status.map(str::trim).filter(|s| is_enhanced_code(s)) {
            Some(dsn) => Self::new(code, dsn, rest),
            None => Self::with_default_dsn(code, rest),
        }
    }

    /// True for 4xx replies: the client should retry (docs/sendmail-compat.md §5.4).
    pub fn is_temporary(&self) -> bool {
        self.code / 100 == 4
    }

    /// True for 5xx replies.
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }

    /// The reply as sendmail prints it, without CRLF, e.g.
    /// `550 5.1.1 <x@y>... User unknown`.
    pub fn line(&self) -> String {
        let mut out = format!("{:03}", self.code);
        if !self.dsn.is_empty() {
            out.push(' ');
            out.push_str(&self.dsn);
        }
        out.push(' ');
        if let Some(addr) = self.addr.as_deref().filter(|a| !a.is_empty())
            && address_shown(self.code)
        {
            out.push_str(addr);
            out.push_str("... ");
        }
        out.push_str(&self.text);
        // A CR or LF taken from a map value would end the reply early and let the rest be read
        // as another reply, so control characters never reach the wire.
        out.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// Whether the `<addr>... ` part is printed for this code: only 050, 250, 252, 450, 550 and 553
/// (err.c fmtmsg; docs/sendmail-compat.md §6.3).
pub fn address_shown(code: u16) -> bool {
    matches!(code, 50 | 250 | 252 | 450 | 550 | 553)
}

/// The enhanced code used when none is given: `X.0.0` from the first digit for 2xx/4xx/5xx,
/// nothing for other classes (docs/sendmail-compat.md §6.3, §11.1).
pub fn default_dsn(code: u16) -> String {
    match code / 100 {
        d @ (2 | 4 | 5) => format!("{d}.0.0"),
        _ => String::new(),
    }
}

/// Whether `s` is exactly an RFC 3463 status code: class 2, 4 or 5, then subject and detail of
/// one to three digits each (sendmail's isenhsc).
pub fn is_enhanced_code(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let digits = |p: &str| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    matches!(class, "2" | "4" | "5") && digits(subject) && digits(detail)
}

/// Splits `5.7.1 rest` into (`5.7.1`, `rest`); `None` when `s` does not start with an enhanced
/// code followed by a space (or the end).
pub fn split_enhanced_code(s: &str) -> Option<(&str, &str)> {
    let end = s.find(' ').unwrap_or(s.len());
    let (code, rest) = s.split_at(end);
    is_enhanced_code(code).then(|| (code, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// Splits `550 rest` into (550, `rest`). sendmail requires three ASCII digits and then a space
/// (ISSMTPCODE plus `ubuf[3] == ' '`); `550` alone or `550-x` is not a code.
pub fn split_smtp_code(s: &str) -> Option<(u16, &str)> {
    let bytes = s.as_bytes();
    if bytes.len() < 4 || !bytes[..3].iter().all(u8::is_ascii_digit) || bytes[3] != b' ' {
        return None;
    }
    let code = s.get(..3)?.parse().ok()?;
    Some((code, s.get(4..)?))
}

/// Turns the `$:` text of an error triple into what sendmail prints: double quotes removed
/// (with `\x` giving `x` inside them), text inside quotes kept exactly, runs of whitespace
/// outside quotes collapsed to one space, ends trimmed.
///
/// sendmail also drops the blanks next to special characters such as `,` when it re-joins
/// unquoted tokens; that detail is not reproduced.
pub fn normalize_error_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_quotes = false;
    let mut pending_space = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' => in_quotes = false,
                '\\' => out.extend(chars.next()),
                _ => out.push(c),
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if c == '"' {
            in_quotes = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // docs/sendmail-compat.md §6.3: address part shown for 550.
    #[test]
    fn formats_user_unknown() {
        let r = Rejection::new(550, "5.1.1", "User unknown").with_addr("<x@y>");
        assert_eq!(r.line(), "550 5.1.1 <x@y>... User unknown");
        assert_eq!(r.to_string(), r.line());
    }

    // docs/sendmail-compat.md §6.3: only 050/250/252/450/550/553 show the address.
    #[test]
    fn address_only_for_listed_codes() {
        for code in [50, 250, 252, 450, 550, 553] {
            assert!(address_shown(code), "{code}");
        }
        for code in [221, 354, 421, 451, 452, 501, 551, 552, 554] {
            assert!(!address_shown(code), "{code}");
        }
        let r = Rejection::new(554, "5.4.6", "loop").with_addr("<a@b>");
        assert_eq!(r.line(), "554 5.4.6 loop");
        let r = Rejection::new(451, "4.3.0", TEMP_FAILURE_TEXT).with_addr("<a@b>");
        assert_eq!(
            r.line(),
            "451 4.3.0 Temporary system failure. Please try again later."
        );
        let r = Rejection::new(50, "", "expanded").with_addr("<a@b>");
        assert_eq!(r.line(), "050 <a@b>... expanded");
    }

    // docs/sendmail-compat.md §6.3: an empty address is not shown.
    #[test]
    fn empty_addr_not_shown() {
        let r = Rejection::new(550, "5.7.1", "Access denied").with_addr("");
        assert_eq!(r.line(), "550 5.7.1 Access denied");
    }

    // docs/sendmail-compat.md §6.3 and §11.1: default enhanced code follows the first digit (4xx → 4.0.0).
    #[test]
    fn default_dsn_follows_code() {
        assert_eq!(default_dsn(450), "4.0.0");
        assert_eq!(default_dsn(550), "5.0.0");
        assert_eq!(default_dsn(250), "2.0.0");
        assert_eq!(default_dsn(50), "");
        assert_eq!(default_dsn(354), "");
        assert_eq!(
            Rejection::from_error(None, "450 mailbox full").line(),
            "450 4.0.0 mailbox full"
        );
    }

    // docs/sendmail-compat.md §6.3: `$#error` text without a leading code becomes 553 5.3.0.
    #[test]
    fn text_without_code_is_553() {
        let r = Rejection::from_error(Some("nouser"), "User unknown").with_addr("<a@b>");
        assert_eq!(r.line(), "553 5.3.0 <a@b>... User unknown");
        // Status D.S.N is ignored in that case, as in buildaddr.
        let r = Rejection::from_error(Some("5.1.1"), "User unknown");
        assert_eq!(r.line(), "553 5.3.0 User unknown");
        // "550" without a following space is not a code.
        assert_eq!(Rejection::from_error(None, "550").line(), "553 5.3.0 550");
        assert_eq!(
            Rejection::from_error(None, "550-x").line(),
            "553 5.3.0 550-x"
        );
        assert_eq!(Rejection::from_error(None, "").line(), "553 5.3.0 ");
    }

    // docs/sendmail-compat.md §5.4 / §6.3: status D.S.N used when text has only a code; text's own D.S.N wins.
    #[test]
    fn dsn_precedence() {
        assert_eq!(
            Rejection::from_error(Some("5.7.0"), "550 Address invalid").line(),
            "550 5.7.0 Address invalid"
        );
        assert_eq!(
            Rejection::from_error(Some("5.7.0"), "550 5.1.1 Gone").line(),
            "550 5.1.1 Gone"
        );
        assert_eq!(
            Rejection::from_error(Some("nouser"), "550 No such user here").line(),
            "550 5.0.0 No such user here"
        );
    }

    // docs/sendmail-compat.md §4.3: `ERROR:"### text"` keeps spaces exactly; unquoted whitespace collapses.
    #[test]
    fn quoting_and_whitespace() {
        assert_eq!(normalize_error_text("\"550 a   b\""), "550 a   b");
        assert_eq!(normalize_error_text("  550   a \t b  "), "550 a b");
        assert_eq!(normalize_error_text("550 \"x\\\"y\""), "550 x\"y");
        assert_eq!(normalize_error_text("\"unterminated"), "unterminated");
        assert_eq!(normalize_error_text(""), "");
    }

    // docs/sendmail-compat.md §6.3: enhanced code syntax (isenhsc).
    #[test]
    fn enhanced_code_syntax() {
        assert!(is_enhanced_code("5.7.1"));
        assert!(is_enhanced_code("4.123.456"));
        assert!(!is_enhanced_code("3.0.0"));
        assert!(!is_enhanced_code("5.7"));
        assert!(!is_enhanced_code("5.7.1.1"));
        assert!(!is_enhanced_code("5.1234.1"));
        assert!(!is_enhanced_code("5..1"));
        assert!(!is_enhanced_code(""));
        assert_eq!(split_enhanced_code("5.7.1 Go"), Some(("5.7.1", "Go")));
        assert_eq!(split_enhanced_code("5.7.1"), Some(("5.7.1", "")));
        assert_eq!(split_enhanced_code("Go away"), None);
    }

    // docs/sendmail-compat.md §4.1: the TMPF reply.
    #[test]
    fn temp_failure_reply() {
        let r = Rejection::temp_failure();
        assert!(r.is_temporary() && !r.is_permanent());
        assert_eq!(
            r.line(),
            "451 4.3.0 Temporary system failure. Please try again later."
        );
    }

    // Robustness: control characters never reach the wire; non-ASCII input does not panic.
    #[test]
    fn control_chars_and_unicode() {
        let r = Rejection::from_error(None, "\"550 a\r\nb\"");
        assert_eq!(r.line(), "550 5.0.0 a  b");
        assert_eq!(Rejection::from_error(None, "5é0 x").code, 553);
        assert_eq!(split_smtp_code("55é x"), None);
        assert_eq!(split_smtp_code("é"), None);
    }
}
