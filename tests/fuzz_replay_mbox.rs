//! Stable-toolchain replay of the `mbox_encode` fuzz target: every file in
//! `fuzz/corpus/mbox_encode/` goes through the mbox and Maildir encodings with the target's
//! invariants (one message per entry, mboxo quoting line for line, un-quoting gives back the
//! un-quoted input), then a bounded, deterministic (xorshift) mutation loop explores nearby
//! inputs. Keep `check` in step with `fuzz/fuzz_targets/mbox_encode.rs`, whose header
//! documents the input layout.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use mailtool::mailbox::LocalMessage;
use mailtool::mailbox::encode::{mbox_entry, mbox_entry_len, write_maildir_message};

/// CRLF → LF per line and a final newline, the way readers see each part (reference version).
fn lines_of(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let line = if rest.len() > line.len() && line.ends_with(b"\r") {
            &line[..line.len() - 1]
        } else {
            line
        };
        out.push(line.to_vec());
        rest = next;
    }
    out
}

fn unquote(line: &[u8]) -> &[u8] {
    if line.starts_with(b">From ") {
        &line[1..]
    } else {
        line
    }
}

fn check(data: &[u8]) {
    let h = |i: usize| data.get(i).copied().unwrap_or(0);
    let rest = data.get(8..).unwrap_or(&[]);
    let slen = usize::from(h(3)).min(rest.len());
    let (sender_bytes, rest) = rest.split_at(slen);
    let plen = usize::from(h(2)).min(rest.len());
    let (prepend, body) = rest.split_at(plen);
    let sender = if h(0) & 1 == 1 {
        String::new()
    } else {
        String::from_utf8_lossy(sender_bytes).into_owned()
    };
    let offset = i32::from(h(1) as i8) * 900;
    let arrival =
        UNIX_EPOCH + Duration::from_secs(u64::from(u32::from_le_bytes([h(4), h(5), h(6), h(7)])));
    let msg = LocalMessage {
        envelope_sender: &sender,
        arrival,
        data: body,
        prepend,
    };
    let entry = mbox_entry(&msg, offset);
    assert_eq!(mbox_entry_len(&msg, offset), entry.len() as u64);
    check_entry(&msg, &entry);
}

/// The invariants of one mbox entry for `msg` (and of its Maildir encoding).
fn check_entry(msg: &LocalMessage<'_>, entry: &[u8]) {
    let (prepend, body) = (msg.prepend, msg.data);
    let first_nl = entry
        .iter()
        .position(|&b| b == b'\n')
        .expect("From_ line ends");
    let from = std::str::from_utf8(&entry[..first_nl]).expect("From_ line is UTF-8");
    assert!(from.starts_with("From "), "{from:?}");
    assert_eq!(from.split_whitespace().count(), 7, "{from:?}");
    assert!(entry.ends_with(b"\n\n"));
    let after = &entry[first_nl + 1..];
    assert!(!after.starts_with(b"From ") && !after.windows(6).any(|w| w == b"\nFrom "));

    let got: Vec<&[u8]> = after[..after.len() - 1].split(|&b| b == b'\n').collect();
    let got = &got[..got.len() - 1];
    let mut want = lines_of(prepend);
    want.extend(lines_of(body));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        if w.starts_with(b"From ") {
            assert_eq!(&g[1..], &w[..]);
            assert_eq!(g[0], b'>');
        } else {
            assert_eq!(*g, &w[..]);
        }
        assert_eq!(unquote(g), unquote(w));
    }

    let mut md = Vec::new();
    let n = write_maildir_message(&mut md, msg).unwrap();
    assert_eq!(n, md.len() as u64);
    let mut joined = Vec::new();
    for w in &want {
        joined.extend_from_slice(w);
        joined.push(b'\n');
    }
    assert_eq!(md, joined);
}

fn run(what: &str, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(input))) {
        eprintln!(
            "fuzz_replay_mbox: {what} failed; input ({} bytes):\nb\"{}\"",
            input.len(),
            input.escape_ascii()
        );
        resume_unwind(panic);
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/mbox_encode");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort(); // deterministic mutation sequence regardless of directory order
    assert!(files.len() >= 10, "corpus {} is too small", dir.display());
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
            )
        })
        .collect()
}

#[test]
fn corpus_replays_cleanly() {
    for (name, seed) in corpus() {
        run(&name, &seed);
    }
}

/// The checks reject wrong encodings, so the replay cannot pass vacuously.
#[test]
fn check_rejects_broken_entries() {
    let msg = LocalMessage {
        envelope_sender: "a@b",
        arrival: UNIX_EPOCH,
        data: b"x\nFrom y\r\nz",
        prepend: b"",
    };
    let good = mbox_entry(&msg, 0);
    check_entry(&msg, &good);
    let text = String::from_utf8(good).unwrap();
    let broken = [
        text.replace(">From y", "From y"), // unquoted: a second message
        text.replace("\nz\n\n", "\nz\n"),  // no blank separator
        text.replace("From y\n", "From y\r\n"), // CRLF kept
        text.replace("\nx\n", "\n>x\n"),   // quoted a line that needs none
        text.replace(" 1970\n", " 1970 extra\n"), // From_ line with a stray field
    ];
    for b in broken {
        assert_ne!(b, text);
        let r = catch_unwind(AssertUnwindSafe(|| check_entry(&msg, b.as_bytes())));
        assert!(r.is_err(), "accepted {b:?}");
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
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments at the encoder's decision points: line ends, `From ` and its near misses.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\r",
    b"From ",
    b"\nFrom ",
    b">From ",
    b"From",
    b"from ",
    b" From ",
    b"\n\n",
    b"\0",
    b" ",
    b"\t",
    b"\xc3\xa9",
    b"\xe2\x80\xa8",
    b"\xff",
];

/// Body bytes start after the 8-byte header; the header bytes are mutated separately.
const HEADER: usize = 8;

fn mutate(rng: &mut XorShift, seeds: &[(String, Vec<u8>)], mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().max(HEADER), 0);
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        let body = len - HEADER;
        match rng.below(6) {
            0 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                let at = HEADER + rng.below(body + 1);
                data.splice(at..at, tok.iter().copied());
            }
            1 if body > 0 => {
                let at = HEADER + rng.below(body);
                let n = 1 + rng.below((len - at).min(8));
                data.drain(at..at + n);
            }
            2 if body > 0 => {
                let at = HEADER + rng.below(body);
                data[at] = TOKENS[rng.below(TOKENS.len())][0];
            }
            3 if body > 0 => {
                let at = HEADER + rng.below(body);
                let n = 1 + rng.below((len - at).min(64));
                let chunk: Vec<u8> = data[at..at + n].to_vec();
                data.splice(at..at, chunk);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())].1;
                if other.len() > HEADER {
                    let from = HEADER + rng.below(other.len() - HEADER);
                    let cut = HEADER + rng.below(body + 1);
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
            }
            _ => {
                // A random header byte: flags, offset, part lengths, arrival time.
                let i = rng.below(HEADER);
                data[i] = rng.next() as u8;
            }
        }
    }
    data
}

#[test]
fn deterministic_mutations() {
    let seeds = corpus();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for i in 0..4_000 {
        let base = seeds[rng.below(seeds.len())].1.clone();
        let input = mutate(&mut rng, &seeds, base);
        run(&format!("mutant {i}"), &input);
    }
}
