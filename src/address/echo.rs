//! Echoing client text in replies and logs: control characters and non-ASCII in the RFC 6533
//! form (`\x{F6}`), long text shortened, never Rust's Debug escapes.

use super::*;

/// C0/C1 controls and DEL, plus the invisible format characters (zero-width, bidi overrides,
/// BOM) that could make an SMTPUTF8 address display as something else.
pub(super) fn is_control_like(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Make client text safe to echo in a reply: printable ASCII kept, everything else (CR, LF,
/// NUL, non-ASCII…) escaped, length capped like sendmail's shortenstring().
pub(super) fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= MAX_ECHO {
            out.push_str("...");
            break;
        }
        push_echo_char(&mut out, c);
    }
    out
}

/// Client text as it may appear in a reply or a log line: printable ASCII as the client sent
/// it, anything else (non-ASCII, controls) as RFC 6533 §3's embedded-unicode-char `\x{F6}`,
/// never Rust's `\u{f6}`. Idempotent (`\` is kept), so echoes sanitised twice stay the same.
/// Not shortened.
pub fn echo_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_echo_char(&mut out, c);
    }
    out
}

pub(super) fn push_echo_char(out: &mut String, c: char) {
    if c.is_ascii_graphic() || c == ' ' {
        out.push(c);
    } else {
        // RFC 6533 §3: HEXPOINT is 2 to 6 upper-case hex digits without superfluous zeros.
        use std::fmt::Write;
        let _ = write!(out, "\\x{{{:02X}}}", u32::from(c));
    }
}
