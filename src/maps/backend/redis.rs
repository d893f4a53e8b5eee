//! A map as Redis string keys `TABLE:KEY`.
//!
//! One multiplexed connection carries every concurrent request (Redis answers in order, so
//! `pool` does not apply). popip entries are written with an expiry, so Redis itself ends
//! POP-before-SMTP. A rebuild is one MULTI/EXEC: readers see the old map or the new one.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;

use super::{Answer, Gate, Op, Put, Row, Store, StoreFailure};
use crate::config;

pub(crate) struct Rd {
    client: Result<redis::Client, String>,
    password: Option<String>,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    gate: Arc<Gate>,
}

/// Keys fetched or written per command in bulk operations.
const CHUNK: usize = 1000;

fn key(t: &str, k: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.len() + 1 + k.len());
    out.extend_from_slice(t.as_bytes());
    out.push(b':');
    out.extend_from_slice(k);
    out
}

impl Rd {
    pub(crate) fn new(conf: &config::Backend, password: Option<String>, gate: Arc<Gate>) -> Rd {
        Rd {
            client: redis::Client::open(conf.url.as_str())
                .map_err(|e| format!("url {:?}: {e}", conf.url)),
            password,
            conn: tokio::sync::Mutex::new(None),
            gate,
        }
    }

    async fn conn(&self) -> Result<MultiplexedConnection, StoreFailure> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        if !self.gate.may_connect() {
            return Err(StoreFailure::Connection(
                "down; waiting before the next connection attempt".into(),
            ));
        }
        let client = self
            .client
            .as_ref()
            .map_err(|e| StoreFailure::Connection(e.clone()))?;
        let connected = async {
            let mut c = client.get_multiplexed_async_connection().await?;
            if let Some(pw) = &self.password {
                redis::cmd("AUTH").arg(pw).query_async::<()>(&mut c).await?;
            }
            Ok::<_, redis::RedisError>(c)
        }
        .await;
        match connected {
            Ok(c) => {
                self.gate.succeeded();
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                let m = e.to_string();
                self.gate.failed(&m);
                Err(StoreFailure::Connection(m))
            }
        }
    }

    /// Sorts an error: a broken connection is dropped (the next request reconnects).
    async fn failure(&self, e: redis::RedisError) -> StoreFailure {
        let m = e.to_string();
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_connection_refusal()
        {
            *self.conn.lock().await = None;
            self.gate.failed(&m);
            return StoreFailure::Connection(m);
        }
        StoreFailure::Table(m)
    }

    async fn keys_of(
        &self,
        c: &mut MultiplexedConnection,
        t: &str,
    ) -> Result<Vec<Vec<u8>>, redis::RedisError> {
        let pattern = format!("{t}:*");
        let mut cursor: u64 = 0;
        let mut out = Vec::new();
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(CHUNK)
                .query_async(c)
                .await?;
            out.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn run(
        &self,
        t: &str,
        op: Op,
        mut c: MultiplexedConnection,
    ) -> Result<Answer, redis::RedisError> {
        match op {
            Op::Get(keys) => {
                if keys.is_empty() {
                    return Ok(Answer::Values(Vec::new()));
                }
                let full: Vec<Vec<u8>> = keys.iter().map(|k| key(t, k)).collect();
                let v: Vec<Option<Vec<u8>>> =
                    redis::cmd("MGET").arg(&full).query_async(&mut c).await?;
                Ok(Answer::Values(v))
            }
            Op::Put(k, v, how) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key(t, &k)).arg(&v);
                match how {
                    Put::Replace => {}
                    Put::IfAbsent => {
                        cmd.arg("NX");
                    }
                    Put::Expiring(d) => {
                        cmd.arg("PX").arg(d.as_millis().max(1) as u64);
                    }
                }
                let r: Option<String> = cmd.query_async(&mut c).await?;
                Ok(Answer::Done(r.is_some()))
            }
            Op::Delete(k) => {
                let n: u64 = redis::cmd("DEL")
                    .arg(key(t, &k))
                    .query_async(&mut c)
                    .await?;
                Ok(Answer::Done(n > 0))
            }
            Op::RateHit {
                window_ms,
                max,
                now_ms,
                member,
            } => {
                // One script, so the trim, the count and the add are atomic across hosts.
                let script = redis::Script::new(
                    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
                     if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
                     redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
                     redis.call('PEXPIRE', KEYS[1], ARGV[2])
                     return 1",
                );
                let n: i64 = script
                    .key(t)
                    .arg(now_ms)
                    .arg(window_ms)
                    .arg(max)
                    .arg(member)
                    .invoke_async(&mut c)
                    .await?;
                Ok(Answer::Done(n == 1))
            }
            Op::Iterate => {
                let keys = self.keys_of(&mut c, t).await?;
                let mut rows = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(CHUNK) {
                    let mut p = redis::pipe();
                    p.cmd("MGET").arg(chunk);
                    for k in chunk {
                        p.cmd("PTTL").arg(k);
                    }
                    let all: Vec<redis::Value> = p.query_async(&mut c).await?;
                    let mut it = all.into_iter();
                    let values: Vec<Option<Vec<u8>>> = match it.next() {
                        Some(v) => redis::from_redis_value(v)?,
                        None => Vec::new(),
                    };
                    let ttls = it.map(|v| redis::from_redis_value::<i64>(v).unwrap_or(-1));
                    for ((k, v), ttl) in chunk.iter().zip(values).zip(ttls) {
                        // A key that expired between SCAN and MGET is simply gone.
                        if let Some(v) = v {
                            rows.push(Row {
                                key: k[t.len() + 1..].to_vec(),
                                value: v,
                                expires_in: u64::try_from(ttl)
                                    .ok()
                                    .map(std::time::Duration::from_millis),
                            });
                        }
                    }
                }
                Ok(Answer::Rows(rows))
            }
            Op::ReplaceAll(entries) => {
                let old = self.keys_of(&mut c, t).await?;
                let mut p = redis::pipe();
                p.atomic();
                for chunk in old.chunks(CHUNK) {
                    p.cmd("DEL").arg(chunk).ignore();
                }
                let mut seen = hashbrown::HashSet::new();
                let mut n = 0;
                for chunk in entries.chunks(CHUNK) {
                    let mut cmd = redis::cmd("MSET");
                    let mut any = false;
                    for (k, v) in chunk {
                        // makemap's first-wins rule, as in the other stores.
                        if seen.insert(k.clone()) {
                            cmd.arg(key(t, k)).arg(v);
                            any = true;
                            n += 1;
                        }
                    }
                    if any {
                        p.add_command(cmd).ignore();
                    }
                }
                p.query_async::<()>(&mut c).await?;
                Ok(Answer::Count(n))
            }
            Op::Check => {
                let _: String = redis::cmd("PING").query_async(&mut c).await?;
                // Redis has no tables: a table is present when it has a key.
                let pattern = format!("{t}:*");
                let (_, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(0)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(CHUNK)
                    .query_async(&mut c)
                    .await?;
                Ok(Answer::Check((!batch.is_empty()).then_some(Ok(()))))
            }
        }
    }
}

impl Store for Rd {
    async fn exec(&self, t: &str, op: Op) -> Result<Answer, StoreFailure> {
        let c = self.conn().await?;
        match self.run(t, op, c).await {
            Ok(a) => Ok(a),
            Err(e) => Err(self.failure(e).await),
        }
    }
}
