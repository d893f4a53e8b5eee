//! The tests' in-process DNS server (tests/common/dns.rs) as a program, for the benchmark
//! scripts: `cargo run --release --example bench_dns -- 'TXT name text' 'A name ip' 'PTR ip
//! name' …` prints `dns: 127.0.0.1:PORT` and answers until its standard input closes.

#[path = "../tests/common/dns.rs"]
mod dns;

use std::io::Read;

fn main() {
    let mut recs = Vec::new();
    for arg in std::env::args().skip(1) {
        let mut it = arg.splitn(3, ' ');
        let (kind, a, b) = (it.next(), it.next(), it.next());
        let rec = match (kind, a, b) {
            (Some("TXT"), Some(n), Some(t)) => dns::Rec::txt(n, t),
            (Some("A"), Some(n), Some(ip)) => dns::Rec::a(n, ip),
            (Some("PTR"), Some(ip), Some(n)) => dns::Rec::ptr(ip, n),
            (Some("MX"), Some(d), Some(x)) => dns::Rec::mx(d, 10, x),
            _ => {
                eprintln!("bench_dns: bad record {arg:?} (TXT|A|PTR|MX NAME VALUE)");
                std::process::exit(64);
            }
        };
        recs.push(rec);
    }
    let server = dns::TestDns::start(&recs);
    println!("dns: {}", server.addr);
    // Until the script closes our standard input (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    // What was asked, most frequent first: a benchmark can tell a cache that works.
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for q in server.queries() {
        *counts.entry(q).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (q, n) in v.iter().take(10) {
        eprintln!("queries: {n} {q}");
    }
}
