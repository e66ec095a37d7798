//! LiteLLM's spend-log table (`"LiteLLM_SpendLogs"`) in PostgreSQL, read incrementally.
//!
//! Order and cursor: rows are read in keyset order on (`"startTime"`, `request_id`), a batch
//! at a time, and the last key read is saved as the source's cursor in the same store
//! transaction as the rows, so a crash neither loses nor doubles a row.
//!
//! Late rows: LiteLLM queues spend logs and writes them in batches, and a long (streamed)
//! request is written when it ends, stamped with when it started. So a row can appear with a
//! `"startTime"` older than the cursor. Every poll therefore also lists the keys of the rows
//! within `overlap` before the cursor, and reads in full those this process has not read yet.
//! Re-reading is safe either way: a row's identity is its source and request id, so a row the
//! store already holds comes back as a duplicate. A row written later than `overlap` behind
//! the newest row is missed.
//!
//! Mapping: each row is turned into the JSON object `ingest --format litellm` reads (by
//! PostgreSQL's `row_to_json`, so `jsonb` columns stay JSON) and goes through the same parser.
//!
//! Safety: the session is read-only (`default_transaction_read_only`) whatever the role may
//! do; the role needs only `SELECT` on the table. The source runs its own single-threaded
//! tokio runtime, because the daemon polls sources on a blocking thread.

use super::formats::litellm;
use super::postgres_queries::{Queries, prepare, quote};
use super::{BATCH_ROWS, Source};
use crate::config::postgres::{PgTls, PostgresSourceConfig};
use crate::price::PriceTable;
use crate::store::{IngestBatch, IngestReport, Position, Store};
use anyhow::Context;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// The longest one statement may take, here and on the server.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The cursor's key in the store: `[start in Unix microseconds, request_id]`.
const CURSOR_KEY: &str = "keyset";

pub struct PostgresSource {
    config: PostgresSourceConfig,
    /// The quoted, schema-qualified table name.
    table: String,
    runtime: Option<tokio::runtime::Runtime>,
    session: Option<(Client, Queries)>,
    /// Request ids read by this process whose start lies within `overlap` of the cursor,
    /// with that start (Unix microseconds), so the late-row pass skips them.
    seen: HashMap<String, i64>,
}

/// A (`startTime`, request id) key. The start is kept as whole microseconds, PostgreSQL's own
/// precision, so a key read back compares equal to the row it came from.
type Key = (i64, String);

impl PostgresSource {
    pub fn new(config: &PostgresSourceConfig) -> PostgresSource {
        let table = match &config.schema {
            Some(schema) => format!("{}.{}", quote(schema), quote(&config.table)),
            None => quote(&config.table),
        };
        PostgresSource {
            config: config.clone(),
            table,
            runtime: None,
            session: None,
            seen: HashMap::new(),
        }
    }

    fn overlap_us(&self) -> i64 {
        self.config.overlap.seconds().saturating_mul(1_000_000)
    }

    /// Rows to a batch: good rows with their place, bad ones set aside with the reason. Each
    /// key is remembered as read.
    fn batch(&mut self, rows: &[tokio_postgres::Row]) -> anyhow::Result<(IngestBatch, Key)> {
        let mut batch = IngestBatch::new(&self.config.name);
        let mut last: Key = (i64::MIN, String::new());
        for r in rows {
            let start_us: i64 = r.try_get(0)?;
            let id: String = r.try_get(1)?;
            let json: String = r.try_get(2)?;
            let pos = Position {
                file: format!("{} request_id={id}", self.table),
                line: 0,
            };
            let parsed = match serde_json::from_str::<Value>(&json) {
                Ok(Value::Object(obj)) => litellm::row(&obj)
                    .and_then(|row| litellm::mapped(row, &obj, &self.config.mapping))
                    .and_then(|row| row.validate().map(|_| row).map_err(|e| e.to_string())),
                Ok(_) => Err("not a JSON object".into()),
                Err(e) => Err(format!("not valid JSON: {e}")),
            };
            match parsed {
                Ok(row) => batch.rows.push((row, pos)),
                Err(reason) => batch.set_aside(pos, reason, &json),
            }
            self.seen.insert(id.clone(), start_us);
            last = (start_us, id);
        }
        Ok((batch, last))
    }

    fn read(
        &mut self,
        rt: &tokio::runtime::Runtime,
        store: &mut Store,
        prices: &PriceTable,
    ) -> anyhow::Result<IngestReport> {
        let name = self.config.name.clone();
        let cursor: Option<Key> = match store.cursor(&name, CURSOR_KEY)? {
            Some(text) => Some(serde_json::from_str(&text).with_context(|| {
                format!("source {name}: the saved cursor `{text}` is not [start, request_id]")
            })?),
            None => None,
        };
        let mut report = IngestReport::default();
        let overlap_us = self.overlap_us();
        let (client, q) = self.session.as_ref().expect("connected before reading");

        // Late rows: keys within the overlap before the cursor that this process has not read.
        let mut late: Vec<tokio_postgres::Row> = Vec::new();
        if let Some((start_us, id)) = &cursor
            && overlap_us > 0
        {
            let floor = start_us.saturating_sub(overlap_us);
            let keys = rt.block_on(timed(client.query(&q.late_keys, &[&floor, start_us, id])))?;
            let mut missing: Vec<String> = Vec::new();
            for r in &keys {
                let id: String = r.try_get(1)?;
                if !self.seen.contains_key(&id) {
                    missing.push(id);
                }
            }
            for chunk in missing.chunks(BATCH_ROWS) {
                late.extend(rt.block_on(timed(client.query(&q.by_ids, &[&chunk])))?);
            }
        }
        if !late.is_empty() {
            tracing::info!(source = %name, rows = late.len(), "reading rows behind the cursor not read before");
            for chunk in late.chunks(BATCH_ROWS) {
                let (batch, _) = self.batch(chunk)?;
                report.merge(store.ingest(&batch, prices)?);
            }
        }

        // New rows, in key order from the cursor, one store transaction per batch.
        let mut last = cursor;
        loop {
            let (client, q) = self.session.as_ref().expect("connected before reading");
            let rows = match &last {
                None => rt.block_on(timed(client.query(&q.first, &[])))?,
                Some((start_us, id)) => {
                    rt.block_on(timed(client.query(&q.next, &[start_us, id])))?
                }
            };
            if rows.is_empty() {
                break;
            }
            let n = rows.len();
            let (mut batch, key) = self.batch(&rows)?;
            batch.cursors.push((
                CURSOR_KEY.into(),
                serde_json::json!([key.0, key.1]).to_string(),
            ));
            report.merge(store.ingest(&batch, prices)?);
            let floor = key.0.saturating_sub(overlap_us);
            self.seen.retain(|_, start| *start >= floor);
            last = Some(key);
            if n < BATCH_ROWS {
                break;
            }
        }
        Ok(report)
    }
}

/// A statement with the client-side time limit.
async fn timed<T>(f: impl Future<Output = Result<T, tokio_postgres::Error>>) -> anyhow::Result<T> {
    match tokio::time::timeout(QUERY_TIMEOUT, f).await {
        Ok(r) => Ok(r?),
        Err(_) => anyhow::bail!("no answer within {}s", QUERY_TIMEOUT.as_secs()),
    }
}

/// Where a source connects, for messages: never the password.
fn place(c: &PostgresSourceConfig) -> String {
    format!(
        "postgres {}:{} database {} as {}",
        c.host, c.port, c.dbname, c.user
    )
}

/// Opens a read-only session for `c` on the current tokio runtime (the connection is driven
/// by a task spawned there).
pub async fn connect(c: &PostgresSourceConfig) -> anyhow::Result<Client> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&c.host)
        .port(c.port)
        .dbname(&c.dbname)
        .user(&c.user)
        .application_name("spendpager")
        .connect_timeout(c.connect_timeout.as_std());
    if let Some(pw) = &c.password {
        pg.password(pw.expose());
    }
    let name = c.name.clone();
    let client = match c.tls {
        PgTls::Disable => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, conn) = pg.connect(NoTls).await?;
            tokio::spawn(drive(conn, name));
            client
        }
        PgTls::Require => {
            pg.ssl_mode(tokio_postgres::config::SslMode::Require);
            let tls = super::postgres_tls::connector(c.ca_file.as_deref())?;
            let (client, conn) = pg.connect(tls).await?;
            tokio::spawn(drive(conn, name));
            client
        }
    };
    client
        .batch_execute(&format!(
            "SET default_transaction_read_only = on; SET TimeZone = 'UTC'; \
             SET statement_timeout = '{}s'",
            QUERY_TIMEOUT.as_secs()
        ))
        .await
        .context("setting up a read-only session")?;
    Ok(client)
}

async fn drive<S, T>(conn: tokio_postgres::Connection<S, T>, source: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::debug!(source = %source, error = %e, "postgres connection ended");
    }
}

impl Source for PostgresSource {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn poll(&mut self, store: &mut Store, prices: &PriceTable) -> anyhow::Result<IngestReport> {
        let rt = match self.runtime.take() {
            Some(rt) => rt,
            None => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the postgres source's runtime")?,
        };
        let result = self.poll_on(&rt, store, prices);
        self.runtime = Some(rt);
        result
    }
}

impl PostgresSource {
    fn poll_on(
        &mut self,
        rt: &tokio::runtime::Runtime,
        store: &mut Store,
        prices: &PriceTable,
    ) -> anyhow::Result<IngestReport> {
        let name = &self.config.name;
        // The connection is only driven while a poll runs, so a server that closed it in
        // between (a restart, an idle timeout) is noticed here, and a new one is opened.
        if let Some((client, _)) = &self.session
            && rt.block_on(timed(client.simple_query(""))).is_err()
        {
            tracing::info!(source = %name, "the postgres connection was closed; reconnecting");
            self.session = None;
        }
        if self.session.is_none() {
            let (config, table) = (&self.config, &self.table);
            let session = rt
                .block_on(async {
                    let client = connect(config).await?;
                    let queries = prepare(&client, table).await?;
                    anyhow::Ok((client, queries))
                })
                .with_context(|| format!("source {name}: {}", place(&self.config)))?;
            self.session = Some(session);
        }
        let result = self.read(rt, store, prices);
        if let Err(e) = &result {
            // Whatever went wrong, the next poll starts from a fresh connection.
            self.session = None;
            return Err(anyhow::anyhow!(
                "source {}: {}: {e:#}",
                self.config.name,
                place(&self.config)
            ));
        }
        result
    }
}

impl Drop for PostgresSource {
    fn drop(&mut self) {
        // The daemon drops sources on reload from async code, where a runtime may not block.
        self.session = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
