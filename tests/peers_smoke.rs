//! The test peers themselves (tests/common/postgres.rs, tests/common/redis.rs): each starts on
//! a free loopback port, answers, stops, and answers again after `start_again` on the same
//! port and data.

mod common;

use std::time::Instant;

use common::postgres::Postgres;
use common::redis::Redis;

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn postgres_answers_stops_and_comes_back() {
    let t = Instant::now();
    let Some(pg) = Postgres::start() else {
        return;
    };
    eprintln!("postgres up on {} in {:?}", pg.port, t.elapsed());
    assert_eq!(
        pg.url("smoke"),
        format!("postgresql://postgres@127.0.0.1:{}/smoke", pg.port)
    );
    pg.create_db("smoke");
    pg.psql(
        "smoke",
        "CREATE TABLE kv (k text PRIMARY KEY, v text NOT NULL)",
    );
    pg.psql("smoke", "INSERT INTO kv VALUES ('a@example.com', 'OK')");
    assert_eq!(pg.psql("smoke", "SELECT k, v FROM kv"), "a@example.com|OK");

    pg.stop();
    assert!(!listening(pg.port), "PostgreSQL still listens after stop");

    let t = Instant::now();
    pg.start_again();
    eprintln!("postgres back in {:?}", t.elapsed());
    assert_eq!(
        pg.psql("smoke", "SELECT v FROM kv WHERE k = 'a@example.com'"),
        "OK"
    );
}

#[test]
fn redis_answers_stops_and_comes_back() {
    let t = Instant::now();
    let Some(r) = Redis::start() else {
        return;
    };
    eprintln!("redis up on {} in {:?}", r.port, t.elapsed());
    assert_eq!(r.url(), format!("redis://127.0.0.1:{}/0", r.port));
    assert_eq!(
        r.cli(&["SET", "popip:192.0.2.1", "alice", "EX", "600"]),
        "OK"
    );
    assert_eq!(r.cli(&["GET", "popip:192.0.2.1"]), "alice");
    let ttl: i64 = r.cli(&["TTL", "popip:192.0.2.1"]).parse().unwrap();
    assert!((1..=600).contains(&ttl), "TTL {ttl}");

    r.stop();
    assert!(!listening(r.port), "redis-server still listens after stop");

    let t = Instant::now();
    r.start_again();
    eprintln!("redis back in {:?}", t.elapsed());
    assert_eq!(r.cli(&["PING"]), "PONG");
    // Nothing is saved: a restarted server starts empty.
    assert_eq!(r.cli(&["GET", "popip:192.0.2.1"]), "");
}
