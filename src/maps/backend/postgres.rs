//! A map as a PostgreSQL table `TABLE (key text PRIMARY KEY, value text NOT NULL)`.
//!
//! Lookups are one round trip each (`query_typed`: parse, bind and execute in one exchange, no
//! prepared statement to manage), over a pool of connections that pipeline concurrent queries.
//! Nothing is cached, so a row a DBA inserts with psql applies to the next lookup. A rebuild
//! runs on a connection of its own, in one transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config as PgConfig, NoTls, config::SslMode};

use super::{Answer, Gate, Op, Put, Row, Store, StoreFailure};
use crate::config;

pub(crate) struct Pg {
    /// `None` when the URL does not parse: every request says why.
    conf: Result<PgConfig, String>,
    tls: bool,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
    gate: Arc<Gate>,
}

impl Pg {
    pub(crate) fn new(conf: &config::Backend, password: Option<String>, gate: Arc<Gate>) -> Pg {
        let mut tls = false;
        let parsed = conf
            .url
            .parse::<PgConfig>()
            .map_err(|e| format!("url {:?}: {e}", conf.url))
            .map(|mut c| {
                if let Some(pw) = password {
                    c.password(pw);
                }
                c.connect_timeout(conf.timeout.0);
                c.application_name("mailtool");
                // TLS when the URL asks for it; "prefer" (the default) would try TLS with a
                // server that has none on every connect, so without a request it is off.
                tls = c.get_ssl_mode() == SslMode::Require;
                if !tls {
                    c.ssl_mode(SslMode::Disable);
                }
                c
            });
        Pg {
            conf: parsed,
            tls,
            slots: (0..conf.pool.max(1))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            next: AtomicUsize::new(0),
            gate,
        }
    }

    async fn connect(&self) -> Result<Client, StoreFailure> {
        let conf = self
            .conf
            .as_ref()
            .map_err(|e| StoreFailure::Connection(e.clone()))?;
        let r = if self.tls {
            let tls = crate::tls::client_config(&crate::tls::Verify::System)
                .map_err(|e| StoreFailure::Connection(e.to_string()))?;
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
            conf.connect(connector).await.map(|(client, conn)| {
                tokio::spawn(conn);
                client
            })
        } else {
            conf.connect(NoTls).await.map(|(client, conn)| {
                tokio::spawn(conn);
                client
            })
        };
        r.map_err(|e| StoreFailure::Connection(describe(&e)))
    }

    /// A connection from the pool, connecting the slot when it has none (or a closed one).
    async fn client(&self) -> Result<Arc<Client>, StoreFailure> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        if let Some(c) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        *slot = None;
        if !self.gate.may_connect() {
            return Err(StoreFailure::Connection(
                "down; waiting before the next connection attempt".into(),
            ));
        }
        match self.connect().await {
            Ok(c) => {
                self.gate.succeeded();
                let c = Arc::new(c);
                *slot = Some(c.clone());
                Ok(c)
            }
            Err(StoreFailure::Connection(m)) => {
                self.gate.failed(&m);
                Err(StoreFailure::Connection(m))
            }
            Err(e) => Err(e),
        }
    }

    /// Sorts a query error: a broken connection (reported to the gate) or a table problem.
    fn failure(&self, e: &tokio_postgres::Error) -> StoreFailure {
        // Classes 08 (connection exception), 53 (insufficient resources) and 57 (operator
        // intervention: a shutdown, a restart) are about the server, not the table.
        let server_side = e
            .code()
            .is_some_and(|c| matches!(&c.code()[..2], "08" | "53" | "57"));
        if e.as_db_error().is_none() || server_side {
            let m = describe(e);
            self.gate.failed(&m);
            return StoreFailure::Connection(m);
        }
        StoreFailure::Table(describe(e))
    }
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

fn undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE)
}

/// `key` and `value` as text. Bytes that are not UTF-8 (or hold NUL) can never be in a text
/// column, so a lookup of such a key finds nothing and a write of one is refused.
fn text(b: &[u8]) -> Option<String> {
    super::text_ok(b).then(|| String::from_utf8_lossy(b).into_owned())
}

fn create_sql(t: &str) -> String {
    format!("CREATE TABLE IF NOT EXISTS \"{t}\" (key text PRIMARY KEY, value text NOT NULL)")
}

impl Store for Pg {
    async fn exec(&self, t: &str, op: Op) -> Result<Answer, StoreFailure> {
        if let Op::ReplaceAll(entries) = op {
            return self.replace_all(t, entries).await;
        }
        let c = self.client().await?;
        let bad_text = || StoreFailure::Table("keys and values must be UTF-8 without NUL".into());
        match op {
            Op::Get(keys) => {
                let wanted: Vec<String> = keys.iter().filter_map(|k| text(k)).collect();
                let sql = format!("SELECT key, value FROM \"{t}\" WHERE key = ANY($1)");
                let rows = match c.query_typed(&sql, &[(&wanted, Type::TEXT_ARRAY)]).await {
                    Ok(rows) => rows,
                    Err(e) if undefined_table(&e) => Vec::new(),
                    Err(e) => return Err(self.failure(&e)),
                };
                let mut found = hashbrown::HashMap::new();
                for r in &rows {
                    let k: String = r.get(0);
                    let v: String = r.get(1);
                    found.insert(k, v);
                }
                let values = keys
                    .iter()
                    .map(|k| {
                        std::str::from_utf8(k)
                            .ok()
                            .and_then(|k| found.get(k))
                            .map(|v| v.clone().into_bytes())
                    })
                    .collect();
                Ok(Answer::Values(values))
            }
            Op::Put(k, v, how) => {
                let (k, v) = (
                    text(&k).ok_or_else(bad_text)?,
                    text(&v).ok_or_else(bad_text)?,
                );
                let conflict = match how {
                    Put::IfAbsent => "DO NOTHING",
                    Put::Replace | Put::Expiring(_) => "DO UPDATE SET value = EXCLUDED.value",
                };
                // `xmax = 0` holds for a freshly inserted row, not for an updated one.
                let sql = format!(
                    "INSERT INTO \"{t}\" (key, value) VALUES ($1, $2) ON CONFLICT (key) \
                     {conflict} RETURNING (xmax = 0)"
                );
                let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
                    [(&k, Type::TEXT), (&v, Type::TEXT)];
                let rows = match c.query_typed(&sql, &params).await {
                    Err(e) if undefined_table(&e) => {
                        c.batch_execute(&create_sql(t))
                            .await
                            .map_err(|e| self.failure(&e))?;
                        c.query_typed(&sql, &params)
                            .await
                            .map_err(|e| self.failure(&e))?
                    }
                    r => r.map_err(|e| self.failure(&e))?,
                };
                Ok(Answer::Done(
                    rows.first().is_some_and(|r| r.get::<_, bool>(0)),
                ))
            }
            Op::Delete(k) => {
                let Some(k) = text(&k) else {
                    return Ok(Answer::Done(false));
                };
                let sql = format!("DELETE FROM \"{t}\" WHERE key = $1 RETURNING 1");
                match c.query_typed(&sql, &[(&k, Type::TEXT)]).await {
                    Ok(rows) => Ok(Answer::Done(!rows.is_empty())),
                    Err(e) if undefined_table(&e) => Ok(Answer::Done(false)),
                    Err(e) => Err(self.failure(&e)),
                }
            }
            Op::Iterate => {
                let sql = format!("SELECT key, value FROM \"{t}\" ORDER BY key");
                let rows = match c.query_typed(&sql, &[]).await {
                    Ok(rows) => rows,
                    Err(e) if undefined_table(&e) => Vec::new(),
                    Err(e) => return Err(self.failure(&e)),
                };
                Ok(Answer::Rows(
                    rows.iter()
                        .map(|r| Row {
                            key: r.get::<_, String>(0).into_bytes(),
                            value: r.get::<_, String>(1).into_bytes(),
                            expires_in: None,
                        })
                        .collect(),
                ))
            }
            Op::Check => {
                let sql = "SELECT column_name::text, data_type::text FROM information_schema.columns \
                           WHERE table_schema = current_schema() AND table_name = $1 \
                           ORDER BY ordinal_position";
                let rows = c
                    .query_typed(sql, &[(&t, Type::TEXT)])
                    .await
                    .map_err(|e| self.failure(&e))?;
                if rows.is_empty() {
                    return Ok(Answer::Check(None));
                }
                let cols: Vec<(String, String)> =
                    rows.iter().map(|r| (r.get(0), r.get(1))).collect();
                let has = |name: &str| cols.iter().any(|(n, ty)| n == name && ty == "text");
                let shape = if has("key") && has("value") {
                    Ok(())
                } else {
                    let list: Vec<String> =
                        cols.iter().map(|(n, ty)| format!("{n} {ty}")).collect();
                    Err(format!(
                        "table {t} has columns ({}), not (key text, value text)",
                        list.join(", ")
                    ))
                };
                Ok(Answer::Check(Some(shape)))
            }
            Op::ReplaceAll(_) => unreachable!("handled above"),
            // The configuration allows rate counters in Redis only.
            Op::RateHit { .. } => Err(StoreFailure::Table(
                "rate counters are kept in Redis only".into(),
            )),
        }
    }
}

impl Pg {
    /// The whole table in one transaction on a connection of its own (a transaction on a
    /// shared, pipelined connection would take the other lookups into it).
    async fn replace_all(
        &self,
        t: &str,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Answer, StoreFailure> {
        let mut keys = Vec::with_capacity(entries.len());
        let mut values = Vec::with_capacity(entries.len());
        for (k, v) in &entries {
            match (text(k), text(v)) {
                (Some(k), Some(v)) => {
                    keys.push(k);
                    values.push(v);
                }
                _ => {
                    return Err(StoreFailure::Table(
                        "keys and values must be UTF-8 without NUL".into(),
                    ));
                }
            }
        }
        let mut c = match self.connect().await {
            Ok(c) => c,
            Err(StoreFailure::Connection(m)) => {
                self.gate.failed(&m);
                return Err(StoreFailure::Connection(m));
            }
            Err(e) => return Err(e),
        };
        let fail = |e: tokio_postgres::Error| self.failure(&e);
        let tx = c.transaction().await.map_err(fail)?;
        tx.batch_execute(&create_sql(t)).await.map_err(fail)?;
        tx.batch_execute(&format!("DELETE FROM \"{t}\""))
            .await
            .map_err(fail)?;
        let sql = format!(
            "INSERT INTO \"{t}\" (key, value) SELECT * FROM unnest($1::text[], $2::text[]) \
             ON CONFLICT (key) DO NOTHING"
        );
        tx.query_typed(
            &sql,
            &[(&keys, Type::TEXT_ARRAY), (&values, Type::TEXT_ARRAY)],
        )
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        self.gate.succeeded();
        Ok(Answer::Count(keys.len()))
    }
}
