//! What `[metrics]` and `[limits]` add to each message, in process: the counters one accepted
//! message moves (a connection, an acceptance, a rejection) and the three rate checks of one
//! connection with one recipient, against 10,000 client addresses as a busy host sees them.
//!
//! Run with `cargo bench --bench observe`. smtp-source against the server (seed-compare.sh)
//! is the end-to-end figure; on a loaded 2-core machine its run-to-run spread is larger than
//! the 5% budget, so this one says how much of the budget the code itself takes.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mailtool::server::ratelimit::{Limit, RateLimiter, Subject};

const CLIENTS: u32 = 10_000;

fn per_message(c: &mut Criterion) {
    let mut g = c.benchmark_group("per_message");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    g.bench_function("metrics_counters", |b| {
        b.iter(|| {
            mailtool::metrics::smtp_connection(black_box("smtp"));
            mailtool::metrics::smtp_accepted(black_box("smtp"));
            mailtool::metrics::smtp_rejection(black_box("rcpt"), black_box(550));
        })
    });
    let limiter = RateLimiter::new();
    let mut i = 0u32;
    let mut now = 1_000_000_000u64;
    g.bench_function("rate_checks", |b| {
        b.iter(|| {
            i = (i + 1) % CLIENTS;
            now += 1;
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i));
            let s = Subject::client(ip);
            for l in [Limit::Connection, Limit::Message, Limit::Recipient] {
                black_box(limiter.hit(l, &s, 100_000_000, now, None));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, per_message);
criterion_main!(benches);
