//! Stable replay of the `smtp_proto` fuzz target: every file of
//! `fuzz/corpus/smtp_proto/` goes through the same invariants as the fuzzer
//! (`mailtool::smtp::proto::fuzz_invariants`), then a bounded, deterministic
//! mutation loop (xorshift) perturbs the corpus with the bytes that matter
//! for SMTP framing and smuggling: CR, LF, `.`, NUL, space and `:`.

use std::path::PathBuf;

use mailtool::smtp::proto::fuzz_invariants;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/smtp_proto");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            (path.display().to_string(), data)
        })
        .collect();
    // read_dir order is unspecified; sort so the mutation loop is reproducible.
    files.sort();
    assert!(
        !files.is_empty(),
        "corpus directory {} is empty",
        dir.display()
    );
    files
}

#[test]
fn corpus_replays_clean() {
    for (name, data) in corpus() {
        let result = std::panic::catch_unwind(|| fuzz_invariants(&data));
        assert!(result.is_ok(), "invariant failed on {name}");
    }
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

const INTERESTING: &[u8] = b"\r\n.\0 :";

#[test]
fn mutations_keep_invariants() {
    let files = corpus();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for iteration in 0..3_000 {
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
