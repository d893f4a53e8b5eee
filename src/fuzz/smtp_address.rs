//! The `smtp_address` target: the MAIL FROM / RCPT TO argument parser (`address`).
//!
//! Input layout: byte 0 = flags, bit 0 = `smtputf8_allowed`; the rest, decoded lossily as
//! UTF-8, is the argument after `MAIL FROM:` / `RCPT TO:`. Both parse functions run on every
//! input.
//!
//! Invariants: no panic; on success, `path.to_string()` re-parses to an equal `Path` and the
//! length/character limits hold; on failure, the reply text is printable ASCII (no CR/LF
//! injection into the SMTP dialogue); xtext encode/decode round-trips.

use crate::address::{
    AddrError, Path, RoutingTrick, address_echo, parse_mail_from, parse_rcpt_to, xtext_decode,
    xtext_encode,
};

fn printable(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

fn check_err(arg: &str, e: &AddrError) {
    let (code, dsn, text) = e.reply_text();
    assert!((500..600).contains(&code), "{arg:?}: {e:?}");
    assert!(dsn.starts_with("5."), "{arg:?}: {e:?}");
    assert!(printable(&text), "{arg:?}: {e:?}: {text:?}");
    let line = e.reply_line(&address_echo(arg));
    assert!(printable(&line), "{arg:?}: {line:?}");
}

fn check_path(arg: &str, p: &Path, utf8: bool) {
    assert!(p.raw.len() + 2 <= 256, "{arg:?}");
    assert!(!p.raw.chars().any(char::is_control), "{arg:?}");
    if !utf8 {
        assert!(p.raw.is_ascii(), "{arg:?}");
    }
    if p.has_route() {
        assert_eq!(
            p.routing_trick(),
            Some(RoutingTrick::SourceRoute),
            "{arg:?}"
        );
    }
    if let Some(m) = &p.mailbox {
        assert!(!m.local.is_empty() && m.local.len() <= 64, "{arg:?}");
        assert!(!m.local_unquoted().is_empty(), "{arg:?}");
        let _ = (m.to_string(), m.routing_tricks(), m.is_postmaster());
        if let Some(d) = &m.domain {
            let _ = (d.to_string(), d.lowercase());
        }
    }
}

fn check(arg: &str, utf8: bool) {
    match parse_mail_from(arg, utf8) {
        Ok((p, params)) => {
            assert!(!params.smtputf8 || utf8, "{arg:?}");
            check_path(arg, &p, params.smtputf8);
            let again = if params.smtputf8 {
                format!("{p} SMTPUTF8")
            } else {
                p.to_string()
            };
            match parse_mail_from(&again, utf8) {
                Ok((q, _)) => assert_eq!(p, q, "MAIL re-parse of {again:?} (from {arg:?})"),
                Err(e) => panic!("MAIL re-parse of {again:?} (from {arg:?}) failed: {e:?}"),
            }
        }
        Err(e) => check_err(arg, &e),
    }
    match parse_rcpt_to(arg, utf8) {
        Ok((p, params)) => {
            assert!(!p.is_null(), "{arg:?}");
            assert!(!params.smtputf8, "{arg:?}");
            check_path(arg, &p, utf8);
            match parse_rcpt_to(&p.to_string(), utf8) {
                Ok((q, _)) => assert_eq!(p, q, "RCPT re-parse of {p} (from {arg:?})"),
                Err(e) => panic!("RCPT re-parse of {p} (from {arg:?}) failed: {e:?}"),
            }
        }
        Err(e) => check_err(arg, &e),
    }
    assert_eq!(xtext_decode(&xtext_encode(arg)).as_deref(), Some(arg));
}

/// Byte 0 is the flags (bit 0: SMTPUTF8 allowed), the rest the argument.
pub fn invariants(data: &[u8]) {
    if let Some((&flags, rest)) = data.split_first() {
        check(&String::from_utf8_lossy(rest), flags & 1 == 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::replay::Plan;

    /// Fragments that hit the parser's decision points.
    const TOKENS: &[&[u8]] = &[
        b"<",
        b">",
        b"\"",
        b"\\",
        b"@",
        b"%",
        b"!",
        b":",
        b",",
        b"[",
        b"]",
        b" ",
        b"=",
        b"+",
        b";",
        b".",
        b"-",
        b"\t",
        b"\0",
        b"\r\n",
        b"(",
        b"\xc3\xa9",
        b"\xe2\x80\x8b",
        b"\xc2\xa0",
        b"\xff",
        b"IPv6:",
        b"[IPv6:::1]",
        b"[127.0.0.1]",
        b"@a,@b:",
        b"<>",
        b" SMTPUTF8",
        b" SIZE=",
        b" NOTIFY=NEVER",
        b" ORCPT=rfc822;",
        b" ENVID=",
        b" AUTH=<>",
        b"+2B",
        b"+C3+A9",
        b"\"\"",
        b"\xe7\x94\xa8",
        b"postmaster",
    ];

    /// The corpus and deterministic mutations of it; the flags byte is mutated now and then.
    #[test]
    fn corpus_and_mutations_keep_invariants() {
        Plan {
            iterations: 4_000,
            keep: 1,
            tokens: TOKENS,
            max_len: 2_000,
            ..Plan::new("smtp_address")
        }
        .run(invariants);
    }
}
