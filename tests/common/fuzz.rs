//! Stable replay of cargo-fuzz corpora: each saved input goes through the same invariant
//! function as its fuzz target, then a bounded, deterministic (xorshift) mutation loop
//! perturbs the corpus with the bytes that matter to the parser.

use std::path::PathBuf;

/// The files of `fuzz/corpus/NAME/`, sorted so the mutation loop is reproducible.
pub fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("dir entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            (path.display().to_string(), data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below n (n is small, so the modulo bias does not matter).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Runs `check` on every corpus file, then on `iterations` mutants (inserting, replacing or
/// removing bytes from `interesting`), each cut to `max_len`. Panics name the input.
pub fn replay(name: &str, interesting: &[u8], iterations: usize, max_len: usize, check: fn(&[u8])) {
    let files = corpus(name);
    for (file, data) in &files {
        let r = std::panic::catch_unwind(|| check(data));
        assert!(r.is_ok(), "invariant failed on {file}");
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for iteration in 0..iterations {
        let (file, base) = &files[rng.below(files.len())];
        let mut data = base.clone();
        for _ in 0..1 + rng.below(4) {
            let pick = interesting[rng.below(interesting.len())];
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
        data.truncate(max_len);
        let r = std::panic::catch_unwind(|| check(&data));
        assert!(
            r.is_ok(),
            "iteration {iteration} from {file}: input {data:?}"
        );
    }
}
