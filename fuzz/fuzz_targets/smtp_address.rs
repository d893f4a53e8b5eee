//! cargo-fuzz target for `mailtool::address` (MAIL FROM / RCPT TO argument parser).
//!
//! Input layout (same as `fuzz/corpus/smtp_address/*` and `tests/fuzz_replay_address.rs`):
//! byte 0 = flags, bit 0 = `smtputf8_allowed`; the rest, decoded lossily as UTF-8, is the
//! argument after `MAIL FROM:` / `RCPT TO:`. Both parse functions run on every input.
//!
//! Invariants: no panic; on success, `path.to_string()` re-parses to an equal `Path` and the
//! length/character limits hold; on failure, the reply text is printable ASCII (no CR/LF
//! injection into the SMTP dialogue); xtext encode/decode round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailtool::address::{
    AddrError, Path, RoutingTrick, address_echo, parse_mail_from, parse_rcpt_to, xtext_decode,
    xtext_encode,
};

fn printable(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

fn check_err(arg: &str, e: &AddrError) {
    let (code, dsn, text) = e.reply_text();
    assert!((500..600).contains(&code), "{e:?}");
    assert!(dsn.starts_with("5."), "{e:?}");
    assert!(printable(&text), "{e:?}: {text:?}");
    let line = e.reply_line(&address_echo(arg));
    assert!(printable(&line), "{line:?}");
}

fn check_path(p: &Path, utf8: bool) {
    assert!(p.raw.len() + 2 <= 256);
    assert!(!p.raw.chars().any(char::is_control));
    if !utf8 {
        assert!(p.raw.is_ascii());
    }
    if p.has_route() {
        assert_eq!(p.routing_trick(), Some(RoutingTrick::SourceRoute));
    }
    if let Some(m) = &p.mailbox {
        assert!(!m.local.is_empty() && m.local.len() <= 64);
        assert!(!m.local_unquoted().is_empty());
        let _ = (m.to_string(), m.routing_tricks(), m.is_postmaster());
        if let Some(d) = &m.domain {
            let _ = (d.to_string(), d.lowercase());
        }
    }
}

fn check(arg: &str, utf8: bool) {
    match parse_mail_from(arg, utf8) {
        Ok((p, params)) => {
            assert!(!params.smtputf8 || utf8);
            check_path(&p, params.smtputf8);
            let again = if params.smtputf8 {
                format!("{p} SMTPUTF8")
            } else {
                p.to_string()
            };
            match parse_mail_from(&again, utf8) {
                Ok((q, _)) => assert_eq!(p, q, "MAIL re-parse of {again:?}"),
                Err(e) => panic!("MAIL re-parse of {again:?} failed: {e:?}"),
            }
        }
        Err(e) => check_err(arg, &e),
    }
    match parse_rcpt_to(arg, utf8) {
        Ok((p, params)) => {
            assert!(!p.is_null());
            assert!(!params.smtputf8);
            check_path(&p, utf8);
            match parse_rcpt_to(&p.to_string(), utf8) {
                Ok((q, _)) => assert_eq!(p, q, "RCPT re-parse of {p}"),
                Err(e) => panic!("RCPT re-parse of {p} failed: {e:?}"),
            }
        }
        Err(e) => check_err(arg, &e),
    }
    assert_eq!(xtext_decode(&xtext_encode(arg)).as_deref(), Some(arg));
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    check(&String::from_utf8_lossy(rest), flags & 1 == 1);
});
