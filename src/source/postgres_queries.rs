//! The statements the PostgreSQL source runs, built once per connection from the columns the
//! table really has: LiteLLM added columns over time, and the parser reads only some.
//!
//! Keys: a row's start is carried as whole Unix microseconds (`extract(epoch ...)` is exact
//! numeric) and turned back into the column's own type by adding microseconds to the epoch,
//! so a key read back compares equal to the row it came from, with no rounding and no time
//! zone in between.

use super::BATCH_ROWS;
use anyhow::Context;
use tokio_postgres::Client;

/// An identifier quoted for PostgreSQL, so mixed case and odd characters survive.
pub(super) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// The columns the LiteLLM parser reads. Older LiteLLM versions lack some of them; those are
/// left out of the query. Large columns (`messages`, `response`) are never read.
const WANTED: &[&str] = &[
    "request_id",
    "startTime",
    "model",
    "model_group",
    "custom_llm_provider",
    "spend",
    "prompt_tokens",
    "completion_tokens",
    "metadata",
    "team_id",
    "end_user",
    "user",
    "request_tags",
];
const REQUIRED: &[&str] = &["request_id", "startTime", "model"];

/// The statements for one table, built once per connection from its columns.
pub(super) struct Queries {
    pub first: String,
    pub next: String,
    pub late_keys: String,
    pub by_ids: String,
}

/// Learns the table's columns and builds the statements for them.
pub(super) async fn prepare(client: &Client, table: &str) -> anyhow::Result<Queries> {
    let cols = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped",
            &[&table],
        )
        .await
        .with_context(|| format!("looking up table {table}"))?;
    let cols: Vec<(String, String)> = cols
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, tokio_postgres::Error>>()?;
    for want in REQUIRED {
        if !cols.iter().any(|(c, _)| c == want) {
            anyhow::bail!("table {table} has no column `{want}`: is it LiteLLM's spend-log table?");
        }
    }
    let start_type = &cols
        .iter()
        .find(|(c, _)| c == "startTime")
        .expect("checked")
        .1;
    // Prisma writes `timestamp(3)` holding UTC; a hand-made table may use `timestamptz`.
    let epoch = match start_type.as_str() {
        t if t.starts_with("timestamp") && t.ends_with("without time zone") => "'epoch'::timestamp",
        t if t.starts_with("timestamp") && t.ends_with("with time zone") => "'epoch'::timestamptz",
        other => anyhow::bail!("column `startTime` of {table} is {other}, not a timestamp"),
    };
    let select: Vec<String> = WANTED
        .iter()
        .filter(|w| cols.iter().any(|(c, _)| c == *w))
        .map(|w| quote(w))
        .collect();
    let select = select.join(", ");
    let key = "(extract(epoch FROM t.\"startTime\") * 1000000)::bigint, t.request_id::text";
    let at = |n: u8| format!("({epoch} + ${n}::bigint * interval '1 microsecond')");
    let order = "ORDER BY \"startTime\", request_id";
    let page = |filter: &str| {
        format!(
            "SELECT {key}, row_to_json(t)::text FROM
               (SELECT {select} FROM {table} {filter} {order} LIMIT {BATCH_ROWS}) t
             ORDER BY t.\"startTime\", t.request_id"
        )
    };
    Ok(Queries {
        first: page(""),
        // The plain bound on "startTime" lets an index on that column alone (LiteLLM's)
        // serve the row comparison.
        next: page(&format!(
            "WHERE \"startTime\" >= {} AND (\"startTime\", request_id) > ({}, $2::text)",
            at(1),
            at(1)
        )),
        late_keys: format!(
            "SELECT {key} FROM {table} t
             WHERE t.\"startTime\" >= {} AND t.\"startTime\" <= {}
               AND (t.\"startTime\", t.request_id) <= ({}, $3::text)",
            at(1),
            at(2),
            at(2)
        ),
        by_ids: format!(
            "SELECT {key}, row_to_json(t)::text FROM
               (SELECT {select} FROM {table} WHERE request_id = ANY($1::text[])) t
             ORDER BY t.\"startTime\", t.request_id"
        ),
    })
}
