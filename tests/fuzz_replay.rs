//! Replays the cargo-fuzz corpora (`fuzz/corpus/<target>/`) on stable, through the same parser
//! entry points and the same invariant checks as the targets in `fuzz/fuzz_targets/`, then runs a
//! bounded, deterministic mutation loop over each corpus to widen coverage without libFuzzer.
//!
//! The `check_*` functions below are the reference copy of each target's checks; the fuzz
//! targets repeat them (they cannot depend on an integration test), so keep the two in sync.
//! See `fuzz/README.md`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use mailtool::config::{self, ConfigError};
use mailtool::maps::source::{aliases, makemap};

// ---------------------------------------------------------------------------------------------
// makemap_input
// ---------------------------------------------------------------------------------------------

/// Bytes of option header in front of a `makemap_input` body:
/// `[flags, separator, comment, split_lo, split_hi]`, flags `1` = `-f` (no case folding),
/// `2` = `-e` (empty values allowed), `4` = `-t SEPARATOR`, `8` = `-D COMMENT`. The split is
/// taken modulo `body.len() + 1`. Missing header bytes read as 0: default options.
const MAKEMAP_HEADER: usize = 5;

fn makemap_options(data: &[u8]) -> (makemap::ParseOptions, usize, &[u8]) {
    let h = |i: usize| data.get(i).copied().unwrap_or(0);
    let body = data.get(MAKEMAP_HEADER..).unwrap_or(&[]);
    let flags = h(0);
    let opts = makemap::ParseOptions {
        comment: if flags & 8 != 0 { h(2) } else { b'#' },
        separator: (flags & 4 != 0).then(|| h(1)),
        fold_case: flags & 1 == 0,
        allow_empty: flags & 2 != 0,
    };
    let split = usize::from(u16::from_le_bytes([h(3), h(4)])) % (body.len() + 1);
    (opts, split, body)
}

/// A parser item with its ranges resolved to bytes, so items from different buffers compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Record {
        line: u32,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Error {
        line: u32,
        error: makemap::LineError,
    },
}

/// Resolves `items` against `buf` and checks each one on its own.
fn makemap_resolve(
    buf: &[u8],
    items: Vec<makemap::Item>,
    opts: &makemap::ParseOptions,
) -> Vec<Resolved> {
    let is_sep = |c: u8| match opts.separator {
        None => makemap::is_c_space(c),
        Some(s) => c == s,
    };
    let check_key = |key: &[u8]| {
        assert!(!key.contains(&b'\n') && !key.contains(&0), "key {key:?}");
        // Folding happens after the separator test, so `-t v` keeps a `V` that became `v`.
        let sep_ok = |c: u8| !is_sep(c) || (opts.fold_case && c.is_ascii_lowercase());
        assert!(key.iter().all(|&c| sep_ok(c)), "separator in key {key:?}");
        if opts.fold_case {
            assert!(
                !key.iter().any(u8::is_ascii_uppercase),
                "unfolded key {key:?}"
            );
        }
        if opts.separator.is_none() {
            assert!(!key.is_empty(), "empty key without -t");
        }
    };
    items
        .into_iter()
        .map(|item| match item {
            makemap::Item::Record(r) => {
                assert!(
                    r.key.start <= r.key.end
                        && r.key.end <= r.value.start
                        && r.value.start <= r.value.end
                        && r.value.end <= buf.len(),
                    "bad ranges {r:?} in a buffer of {}",
                    buf.len()
                );
                let key = &buf[r.key.clone()];
                let value = &buf[r.value.clone()];
                check_key(key);
                // Only a line's first byte counts, tested before folding (`-D u` and `U`).
                let c = key.first().copied();
                let folded = opts.fold_case && opts.comment.is_ascii_lowercase();
                assert!(c != Some(opts.comment) || folded, "comment line parsed");
                assert!(!value.contains(&b'\n') && !value.contains(&0), "{value:?}");
                assert!(!value.first().is_some_and(|&c| is_sep(c)), "{value:?}");
                assert!(
                    opts.allow_empty || !value.is_empty(),
                    "empty value without -e"
                );
                Resolved::Record {
                    line: r.line,
                    key: key.to_vec(),
                    value: value.to_vec(),
                }
            }
            makemap::Item::Error { line, error } => {
                match &error {
                    makemap::LineError::NoRhs { key } => {
                        check_key(key);
                        assert!(!opts.allow_empty, "no-RHS error with -e");
                    }
                    makemap::LineError::LeadingSpace => {
                        assert!(opts.separator.is_none(), "leading-space error with -t");
                    }
                    makemap::LineError::TooLong => {}
                }
                assert!(!error.message().is_empty());
                Resolved::Error { line, error }
            }
        })
        .collect()
}

fn resolved_line(r: &Resolved) -> u32 {
    match r {
        Resolved::Record { line, .. } | Resolved::Error { line, .. } => *line,
    }
}

/// The `makemap_input` target: parse in one pass, then again fed in two pieces, and compare.
pub fn check_makemap(data: &[u8]) {
    let (opts, split, body) = makemap_options(data);

    let mut whole = body.to_vec();
    let items = makemap::parse(&mut whole, &opts);
    // The only change parse makes to its buffer is folding keys to lower case.
    if opts.fold_case {
        assert!(
            whole.eq_ignore_ascii_case(body),
            "parse changed more than case"
        );
    } else {
        assert_eq!(whole, body, "parse changed the buffer under -f");
    }
    let one_pass = makemap_resolve(&whole, items, &opts);
    // At most one item per line, lines counted from 1, every line at least one byte long.
    let mut last = 0u32;
    for r in &one_pass {
        let line = resolved_line(r);
        assert!(line > last, "line {line} after {last}");
        last = line;
    }
    assert!(
        last as usize <= body.len(),
        "line {last} in {} bytes",
        body.len()
    );

    // A final feed consumes everything.
    let mut buf = body.to_vec();
    let mut n = 0usize;
    let used = makemap::Parser::new(opts).feed(&mut buf, true, |_| n += 1);
    assert_eq!(used, body.len(), "final feed left input");
    assert_eq!(n, one_pass.len());

    // Two pieces: a non-final feed consumes whole lines only; the rest is fed with piece two.
    let mut parser = makemap::Parser::new(opts);
    let mut first = body[..split].to_vec();
    let mut items = Vec::new();
    let used = parser.feed(&mut first, false, |it| items.push(it));
    assert!(used <= split, "consumed {used} of {split}");
    let mut two_pass = makemap_resolve(&first[..used], items, &opts);
    let mut rest = first[used..].to_vec();
    assert_eq!(rest, body[used..split], "unconsumed bytes were modified");
    rest.extend_from_slice(&body[split..]);
    let mut items = Vec::new();
    let used2 = parser.feed(&mut rest, true, |it| items.push(it));
    assert_eq!(used2, rest.len(), "final feed left input");
    two_pass.extend(makemap_resolve(&rest, items, &opts));
    assert_eq!(two_pass, one_pass, "split at {split} changes the result");
}

// ---------------------------------------------------------------------------------------------
// aliases
// ---------------------------------------------------------------------------------------------

/// Class w for the `aliases` target: the seed's local names.
fn seed_is_local(domain: &str) -> bool {
    ["localhost", "example1.com", "example2.com"]
        .iter()
        .any(|d| d.eq_ignore_ascii_case(domain))
}

fn check_alias_run(input: &[u8], p: &aliases::Parsed, fold_case: bool) {
    let mut last = 0u32;
    for e in &p.entries {
        assert!(!e.key.is_empty(), "empty key at line {}", e.line);
        if fold_case {
            assert!(!e.key.iter().any(u8::is_ascii_uppercase), "{:?}", e.key);
        }
        assert!(!e.key.contains(&b':'), "colon in key {:?}", e.key);
        for part in [&e.key, &e.value] {
            assert!(!part.contains(&b'\n') && !part.contains(&0), "{part:?}");
        }
        assert!(
            !e.value.iter().all(|&b| makemap::is_c_space(b)),
            "blank value at line {}",
            e.line
        );
        assert!(e.line > last, "entry line {} after {last}", e.line);
        last = e.line;
    }
    let mut last = 0u32;
    for d in &p.diagnostics {
        assert!(d.line > last, "diagnostic line {} after {last}", d.line);
        assert!(!d.text.is_empty());
        last = d.line;
    }
    // Stats: no overflow, and every entry is carved out of its own part of the input.
    let s = aliases::stats(&p.entries);
    let mut bytes = 0usize;
    let mut longest = 0usize;
    for e in &p.entries {
        bytes = bytes
            .checked_add(e.key.len())
            .and_then(|b| b.checked_add(e.value.len()))
            .expect("stats overflow");
        longest = longest.max(e.value.len());
    }
    assert_eq!(s.aliases, p.entries.len());
    assert_eq!(s.bytes, bytes);
    assert_eq!(s.longest, longest);
    assert!(
        s.bytes <= input.len(),
        "{} stats bytes from {}",
        s.bytes,
        input.len()
    );
}

/// The `aliases` target: parse with and without case folding and with every domain local.
pub fn check_aliases(data: &[u8]) {
    let folded = aliases::parse(
        data,
        aliases::ParseOptions { fold_case: true },
        &seed_is_local,
    );
    check_alias_run(data, &folded, true);

    // -f changes the keys' case and nothing else.
    let kept = aliases::parse(
        data,
        aliases::ParseOptions { fold_case: false },
        &seed_is_local,
    );
    check_alias_run(data, &kept, false);
    assert_eq!(kept.diagnostics, folded.diagnostics);
    assert_eq!(kept.entries.len(), folded.entries.len());
    for (k, f) in kept.entries.iter().zip(&folded.entries) {
        assert_eq!((k.line, &k.value), (f.line, &f.value));
        assert_eq!(k.key.to_ascii_lowercase(), f.key);
    }

    // Class w only turns "cannot alias non-local names" errors into entries (or other errors).
    let all_local = aliases::parse(data, aliases::ParseOptions { fold_case: true }, &|_| true);
    check_alias_run(data, &all_local, true);
    assert_eq!(
        all_local.entries.len() + all_local.diagnostics.len(),
        folded.entries.len() + folded.diagnostics.len()
    );
    assert!(all_local.entries.len() >= folded.entries.len());
    assert!(
        all_local
            .diagnostics
            .iter()
            .all(|d| !d.text.ends_with("cannot alias non-local names"))
    );
}

// ---------------------------------------------------------------------------------------------
// config_toml
// ---------------------------------------------------------------------------------------------

fn check_config_result(text: &str, r: &Result<config::Settings, ConfigError>) {
    match r {
        Ok(s) => {
            // `config show` prints the settings as TOML; that text must read back the same.
            let shown = toml::to_string(s).expect("settings serialize");
            match config::parse(&shown, "shown.toml", true) {
                Ok(again) => assert_eq!(&again, s, "round trip through:\n{shown}"),
                Err(e) => panic!("shown settings do not parse: {e}\n{shown}"),
            }
        }
        Err(ConfigError::Parse { line, column, .. }) => {
            let lines = text.split('\n').count();
            assert!(*line >= 1 && *line <= lines, "line {line} of {lines}");
            assert!(*column >= 1, "column {column}");
        }
        Err(_) => {}
    }
    if let Err(e) = r {
        assert!(!e.to_string().is_empty());
    }
}

/// The `config_toml` target: any text, as root and as an ordinary user.
pub fn check_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let root = config::parse(&text, "fuzz.toml", true);
    let user = config::parse(&text, "fuzz.toml", false);
    check_config_result(&text, &root);
    check_config_result(&text, &user);
    // Privilege only changes the default listen addresses.
    match (root, user) {
        (Ok(mut r), Ok(u)) => {
            r.smtp.listen = u.smtp.listen.clone();
            r.smtp.submission = u.smtp.submission.clone();
            r.pop3.listen = u.pop3.listen.clone();
            assert_eq!(r, u);
        }
        (Err(r), Err(u)) => assert_eq!(r.to_string(), u.to_string()),
        (r, u) => panic!("root and user disagree: {r:?} vs {u:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Replay and mutation
// ---------------------------------------------------------------------------------------------

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of a corpus, sorted by name; panics on an empty corpus so the test cannot pass
/// vacuously.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("read_dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: only {} files",
        dir.display(),
        files.len()
    );
    files
}

/// Runs `check` on `input`; on a panic, prints the input as an escaped byte string first.
fn run_one(target: &str, what: &str, input: &[u8], check: fn(&[u8])) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
        eprintln!(
            "fuzz_replay: {target}: {what} failed; input ({} bytes):\nb\"{}\"",
            input.len(),
            input.escape_ascii()
        );
        resume_unwind(panic);
    }
}

/// xorshift64*: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n`; `n` must be non-zero.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const INTERESTING: &[u8] = b"\n \t\0:#\\\"\r@,%=[]{}'\x0b\x0c\x7f\xff\x80";
/// Line lengths around the parsers' buffer sizes (makemap's 1024, aliases' 8192).
const RUNS: &[usize] = &[
    1, 2, 7, 510, 1021, 1022, 1023, 1024, 1025, 8189, 8190, 8191, 8192,
];
/// Inputs never grow past this, so the loop stays fast in debug builds.
const MAX_LEN: usize = 20_000;

/// One to four random edits of `input`. `keep` leading bytes are an options header that byte
/// edits touch only now and then; `tokens` are whole words worth splicing in.
fn mutate(
    rng: &mut Rng,
    input: &[u8],
    others: &[Vec<u8>],
    keep: usize,
    tokens: &[&[u8]],
) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        let lo = if len > keep && rng.below(8) != 0 {
            keep
        } else {
            0
        };
        let at = lo + rng.below(len - lo + 1);
        match rng.below(12) {
            // Flip a bit.
            0 if at < len => v[at] ^= 1 << rng.below(8),
            // Overwrite a byte with an interesting or random one.
            1 if at < len => v[at] = *rng.pick(INTERESTING),
            2 if at < len => v[at] = rng.next() as u8,
            // Insert interesting bytes.
            3 | 4 => {
                for _ in 0..1 + rng.below(3) {
                    v.insert(at.min(v.len()), *rng.pick(INTERESTING));
                }
            }
            // Delete a range.
            5 if at < len => {
                let end = (at + 1 + rng.below(16)).min(len);
                v.drain(at..end);
            }
            // Truncate.
            6 => v.truncate(at),
            // Duplicate a line.
            7 => {
                let start = v[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                let end = v[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |i| at + i + 1);
                let line = v[start..end].to_vec();
                v.splice(end..end, line);
            }
            // A run of one byte, sized around a buffer boundary.
            8 => {
                let byte = *rng.pick(b"xv \t\\\0\n");
                let n = *rng.pick(RUNS);
                v.splice(at..at, std::iter::repeat_n(byte, n));
            }
            // Splice in a token.
            9 if !tokens.is_empty() => {
                let t = *rng.pick(tokens);
                v.splice(at..at, t.iter().copied());
            }
            // Splice in a slice of another corpus file.
            10 => {
                let other = rng.pick(others);
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(256)).min(other.len());
                    v.splice(at..at, other[a..b].iter().copied());
                }
            }
            // Replace the options header.
            11 if keep > 0 && len >= keep => {
                for b in &mut v[..keep] {
                    *b = rng.next() as u8;
                }
            }
            _ => v.push(*rng.pick(INTERESTING)),
        }
    }
    if v.len() > MAX_LEN {
        v.truncate(MAX_LEN);
    }
    v
}

/// Replays the corpus, then mutates it `iterations` times, sometimes stacking mutations on an
/// earlier mutant. The seed is fixed, so a failure reproduces.
fn replay_and_mutate(
    target: &str,
    check: fn(&[u8]),
    iterations: usize,
    keep: usize,
    tokens: &[&[u8]],
) {
    let files = corpus(target);
    for (name, bytes) in &files {
        run_one(target, &format!("corpus file {name}"), bytes, check);
    }
    let seeds: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..iterations {
        let base = if !pool.is_empty() && rng.below(3) == 0 {
            rng.pick(&pool).clone()
        } else {
            rng.pick(&seeds).clone()
        };
        let input = mutate(&mut rng, &base, &seeds, keep, tokens);
        run_one(target, &format!("mutation {i}"), &input, check);
        if pool.len() < 64 {
            pool.push(input);
        } else {
            let slot = rng.below(pool.len());
            pool[slot] = input;
        }
    }
}

#[test]
fn makemap_input() {
    let tokens: &[&[u8]] = &[
        b"\r\n",
        b"Connect:",
        b"From:",
        b"To:",
        b"\t\t",
        b"\n\n",
        b"\0\n",
    ];
    replay_and_mutate("makemap_input", check_makemap, 4000, MAKEMAP_HEADER, tokens);
}

#[test]
fn aliases() {
    let tokens: &[&[u8]] = &[
        b"\\\n",
        b"\n\t",
        b"\n ",
        b"postmaster",
        b"@localhost",
        b"@example1.com",
        b"@elsewhere.org",
        b":include:",
        b"\"|",
        b"\"\"",
    ];
    replay_and_mutate("aliases", check_aliases, 4000, 0, tokens);
}

#[test]
fn config_toml() {
    let tokens: &[&[u8]] = &[
        b"[smtp]\n",
        b"[[smtp.dnsbl]]\n",
        b"[pop3]\n",
        b"[queue]\n",
        b"[tls]\n",
        b"[log]\n",
        b" = ",
        b"\"\"\"",
        b"'''",
        b"= []\n",
        b"= {}\n",
        b"zone = \"z\"\n",
        b"18446744073709551616",
        b"-1",
        b"1e999",
        b"\"0s\"",
        b"\"99999999999999999999w\"",
        b"\"18446744073709551615ms\"",
        b"\"127.0.0.1:25\"",
        b"\"[::1]:0\"",
        b"\\u0000",
        b"\xc3\xa9",
        b"\xef\xbb\xbf",
        b"true",
        b"1979-05-27T07:32:00Z",
        b"hostname = \"h\"\n",
    ];
    replay_and_mutate("config_toml", check_config, 3000, 0, tokens);
}
