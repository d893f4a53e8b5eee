//! Map benchmarks: lookups in a built map, bulk lookups, building, and parsing.
//!
//! Run with `cargo bench --bench maps`. All data is generated here from a fixed seed, so every
//! run measures the same keys; see benches/README.md for what each benchmark means.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mailtool::maps::Map;
use mailtool::maps::build::{Hooks, RUN_BYTES, Spec, build_new};
use mailtool::maps::source::makemap::{self, Item, ParseOptions};
use mailtool::maps::store::{DupPolicy, Meta, SqliteMap};

/// Entries in the lookup map and lines in the build and parse inputs.
const ENTRIES: usize = 100_000;
/// Keys per `get_many` call.
const BULK_KEYS: usize = 10_000;

/// xorshift64*: deterministic, good enough to spread keys and shuffle.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Line `i` of an access-style source: a unique key (it embeds `i`, or a bijection of it) in
/// the case the source is written in, and its value.
fn access_line(i: usize, rng: &mut Rng) -> (String, String) {
    let domain = rng.below(2000);
    match rng.below(3) {
        0 => {
            // Multiplying by an odd constant is a bijection on u32: distinct addresses.
            let ip = (i as u32).wrapping_mul(0x9e37_79b1);
            let [a, b, c, d] = ip.to_be_bytes();
            (format!("Connect:{a}.{b}.{c}.{d}"), "REJECT".to_string())
        }
        1 => (
            format!("From:user{i}@Domain{domain}.example.com"),
            "ERROR:5.7.1:550 Mail from this sender is refused".to_string(),
        ),
        _ => (
            format!("To:rcpt{i}@domain{domain}.example.com"),
            "OK".to_string(),
        ),
    }
}

/// The source text (keys in mixed case, as people write them) and the stored, folded keys.
fn access_source(n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut rng = Rng::new(1);
    let mut text = Vec::with_capacity(n * 48);
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let (k, v) = access_line(i, &mut rng);
        text.extend_from_slice(k.as_bytes());
        text.push(b'\t');
        text.extend_from_slice(v.as_bytes());
        text.push(b'\n');
        keys.push(k.to_ascii_lowercase().into_bytes());
    }
    (text, keys)
}

/// Keys that sort among the stored ones but are absent, so a miss still finds and scans a block.
fn absent_keys(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(7);
    (0..n)
        .map(|i| match rng.below(3) {
            0 => format!(
                "connect:{}.{}.{}.x",
                rng.below(256),
                rng.below(256),
                i % 256
            ),
            1 => format!("from:nobody{i}@domain{}.example.com", rng.below(2000)),
            _ => format!("to:nobody{i}@domain{}.example.com", rng.below(2000)),
        })
        .map(String::into_bytes)
        .collect()
}

fn spec() -> Spec {
    Spec {
        opts: ParseOptions::default(),
        policy: DupPolicy::FirstWins,
        run_bytes: RUN_BYTES,
    }
}

fn meta() -> Meta {
    Meta {
        kind: "hash".into(),
        nul: false,
    }
}

fn build(target: &Path, text: &[u8]) {
    let out = build_new(target, meta(), &mut &text[..], &spec(), Hooks::none()).expect("build");
    assert_eq!(out.stored, ENTRIES, "every generated key is distinct");
}

fn lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.db");
    let (text, mut present) = access_source(ENTRIES);
    build(&path, &text);
    let map = SqliteMap::open(&path).expect("open map");
    let mut rng = Rng::new(42);
    rng.shuffle(&mut present);
    let mut absent = absent_keys(ENTRIES);
    rng.shuffle(&mut absent);
    for k in absent.iter().take(100) {
        assert!(map.get(k).expect("lookup").is_none(), "absent key found");
    }

    let mut g = c.benchmark_group("get_100k");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % present.len();
            let v = map.get(black_box(&present[i])).expect("lookup");
            debug_assert!(v.is_some());
            v
        })
    });
    let mut i = 0usize;
    g.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) % absent.len();
            map.get(black_box(&absent[i])).expect("lookup")
        })
    });
    g.finish();

    // 10k keys in random order: 9k present, 1k absent.
    let mut bulk: Vec<&[u8]> = present[..BULK_KEYS * 9 / 10]
        .iter()
        .chain(&absent[..BULK_KEYS / 10])
        .map(Vec::as_slice)
        .collect();
    rng.shuffle(&mut bulk);
    let found = map.get_many(&bulk).expect("get_many");
    assert_eq!(
        found.iter().filter(|v| v.is_some()).count(),
        BULK_KEYS * 9 / 10
    );

    let mut g = c.benchmark_group("get_many_100k");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BULK_KEYS as u64));
    g.bench_function("10k_shuffled", |b| {
        b.iter(|| map.get_many(black_box(&bulk)).expect("get_many"))
    });
    g.finish();
}

fn building(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.db");
    let (text, _) = access_source(ENTRIES);
    let mut g = c.benchmark_group("build_new");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(ENTRIES as u64));
    g.bench_function("access_100k_lines", |b| {
        b.iter(|| build(&path, black_box(&text)))
    });
    g.finish();
}

fn parsing(c: &mut Criterion) {
    let (text, _) = access_source(ENTRIES);
    let mut g = c.benchmark_group("parse");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("access_100k_lines", |b| {
        b.iter_batched_ref(
            || text.clone(),
            |buf| {
                let items = makemap::parse(buf, &ParseOptions::default());
                debug_assert!(items.iter().all(|i| matches!(i, Item::Record(_))));
                items.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, lookups, building, parsing);
criterion_main!(benches);
