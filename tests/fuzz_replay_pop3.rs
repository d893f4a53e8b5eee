//! Stable replay of the `pop3_response` fuzz target: every file of
//! `fuzz/corpus/pop3_response/` goes through the same invariants as the fuzzer
//! (`mailtool::pop3::client::response::fuzz_invariants`), then a bounded, deterministic mutation loop
//! (xorshift) perturbs the corpus with the bytes that matter to POP3 framing: CR, LF, `.`,
//! space, brackets, `<`, `>`, `@`, `+` and `-`. Known answers for a few corpus files make sure
//! the parser really parses them (an invariant check alone would pass a parser that rejects
//! everything).

use std::path::PathBuf;

use mailtool::pop3::client::response::{
    Indicator, apop_timestamp, fuzz_invariants, parse_multiline, parse_qpopper_summary,
    parse_scan_listing, parse_status_line,
};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/pop3_response");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("corpus file"))
        })
        .collect();
    // read_dir order is unspecified; sort so the mutation loop is reproducible.
    files.sort();
    assert!(files.len() >= 10, "corpus {} is too small", dir.display());
    files
}

fn file(name: &str) -> Vec<u8> {
    corpus()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("corpus file {name} missing"))
        .1
}

#[test]
fn corpus_replays_clean() {
    for (name, data) in corpus() {
        let result = std::panic::catch_unwind(|| fuzz_invariants(&data));
        assert!(result.is_ok(), "invariant failed on {name}");
    }
}

#[test]
fn corpus_known_answers() {
    let (st, _) = parse_status_line(&file("greeting_qpopper"))
        .unwrap()
        .unwrap();
    assert_eq!(apop_timestamp(&st.text), Some("<12892.1001@popserv1>"));
    let (st, _) = parse_status_line(&file("pass_qpopper")).unwrap().unwrap();
    let (user, s) = parse_qpopper_summary(&st.text).unwrap();
    assert_eq!(
        (user.as_str(), s.messages, s.hidden, s.octets),
        ("UserID", 1, 0, 874)
    );
    let (st, body, _) = parse_multiline(&file("list"), 1 << 16).unwrap().unwrap();
    assert!(st.is_ok());
    assert_eq!(parse_scan_listing(&body).unwrap().len(), 2);
    let data = file("retr_stuffed");
    let (_, body, used) = parse_multiline(&data, 1 << 16).unwrap().unwrap();
    assert_eq!(
        body,
        b"From: a@b\r\nSubject: one\r\n\r\nhello\r\n.dot line\r\n..\r\n"
    );
    assert_eq!(&data[used..], b"+OK Logging out.\r\n");
    assert_eq!(parse_multiline(&file("retr_incomplete"), 1 << 16), Ok(None));
    let (st, _) = parse_status_line(&file("err_in_use")).unwrap().unwrap();
    assert_eq!(
        (st.indicator, st.code.as_deref()),
        (Indicator::Err, Some("IN-USE"))
    );
    let (st, _) = parse_status_line(&file("sasl_challenge")).unwrap().unwrap();
    assert_eq!(st.indicator, Indicator::Continue);
    assert!(parse_status_line(&file("smtp_banner")).is_err());
}

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
        // n is small (input lengths), so the modulo bias does not matter.
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b"\r\n. []<>@+-/";

#[test]
fn mutations_keep_invariants() {
    let files = corpus();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for iteration in 0..5_000 {
        let (name, base) = &files[rng.below(files.len())];
        let mut data = base.clone();
        for _ in 0..1 + rng.below(4) {
            let pick = INTERESTING[rng.below(INTERESTING.len())];
            let at = rng.below(data.len() + 1);
            match rng.below(4) {
                0 | 1 => data.insert(at, pick),
                2 if at < data.len() => data[at] = pick,
                _ if at < data.len() => {
                    data.remove(at);
                }
                _ => data.push(pick),
            }
        }
        // Keep the byte-by-byte passes cheap.
        data.truncate(4096);
        let result = std::panic::catch_unwind(|| fuzz_invariants(&data));
        assert!(
            result.is_ok(),
            "iteration {iteration} from {name}: input {data:?}"
        );
    }
}
