//! Stable-toolchain replay of the `smtp_address` fuzz target: every file in
//! `fuzz/corpus/smtp_address/` goes through both parse functions with the fuzz target's
//! invariants, then a bounded, deterministic (xorshift) mutation loop explores nearby inputs.
//! Keep `check` in step with `fuzz/fuzz_targets/smtp_address.rs`.
//!
//! Input layout: byte 0 = flags (bit 0 = `smtputf8_allowed`), rest = argument (lossy UTF-8).

use mailtool::address::{
    AddrError, Path, RoutingTrick, address_echo, parse_mail_from, parse_rcpt_to, xtext_decode,
    xtext_encode,
};
use std::path::PathBuf;

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

fn run(data: &[u8]) {
    if let Some((&flags, rest)) = data.split_first() {
        check(&String::from_utf8_lossy(rest), flags & 1 == 1);
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/smtp_address");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort(); // deterministic mutation sequence regardless of directory order
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(!seeds.is_empty(), "corpus {} is empty", dir.display());
    seeds
}

#[test]
fn corpus_replays_cleanly() {
    for seed in corpus() {
        run(&seed);
    }
}

/// Marsaglia xorshift64: tiny, deterministic, good enough to pick mutations.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        // n is small and non-zero at every call site; modulo bias is irrelevant here.
        (self.next() % n.max(1) as u64) as usize
    }
}

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

fn mutate(rng: &mut XorShift, seeds: &[Vec<u8>], mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                let at = 1.min(len) + rng.below(len.saturating_sub(1) + 1);
                let at = at.min(len);
                data.splice(at..at, tok.iter().copied());
            }
            1 if len > 1 => {
                let at = 1 + rng.below(len - 1);
                let n = 1 + rng.below((len - at).min(8));
                data.drain(at..at + n);
            }
            2 if len > 1 => {
                let at = 1 + rng.below(len - 1);
                let tok = TOKENS[rng.below(TOKENS.len())];
                data[at] = tok[0];
            }
            3 if len > 1 => {
                // Duplicate a chunk (grows toward the length limits).
                let at = 1 + rng.below(len - 1);
                let n = 1 + rng.below((len - at).min(64));
                let chunk: Vec<u8> = data[at..at + n].to_vec();
                data.splice(at..at, chunk);
            }
            4 => {
                // Splice the tail of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if other.len() > 1 {
                    let from = 1 + rng.below(other.len() - 1);
                    let cut = 1.min(len) + rng.below(len.saturating_sub(1) + 1);
                    data.truncate(cut.min(len));
                    data.extend_from_slice(&other[from..]);
                }
            }
            _ => {
                // Flip the flags byte (smtputf8_allowed).
                if let Some(f) = data.first_mut() {
                    *f ^= 1;
                }
            }
        }
    }
    if data.is_empty() {
        data.push(b'0');
    }
    data
}

#[test]
fn deterministic_mutations() {
    let seeds = corpus();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3_000 {
        let base = seeds[rng.below(seeds.len())].clone();
        let input = mutate(&mut rng, &seeds, base);
        run(&input);
    }
}
