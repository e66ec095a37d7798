//! What the store holds, for `spendpager db stats`, and the small counts the daemon's metrics
//! read after each cycle.

use super::{Result, Store};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// One table: how many entries and the time span they cover, as RFC 3339.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    pub name: &'static str,
    pub count: u64,
    pub oldest: Option<String>,
    pub newest: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// The database file with its write-ahead log, in bytes.
    pub file_bytes: u64,
    pub tables: Vec<TableStats>,
    /// Minute rollups before this instant have been folded into hours.
    pub minutes_folded_before: Option<String>,
    /// Raw rows before this instant have been deleted.
    pub raw_deleted_before: Option<String>,
}

fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
}

/// Each table, the SQL giving count, min and max in milliseconds.
const TABLES: &[(&str, &str)] = &[
    ("rows", "SELECT count(*), min(ts_ms), max(ts_ms) FROM rows"),
    (
        "rollup_minute",
        "SELECT count(*), min(minute) * 60000, (max(minute) + 1) * 60000 FROM rollup_minute",
    ),
    (
        "rollup_hour",
        "SELECT count(*), min(hour) * 60000, (max(hour) + 60) * 60000 FROM rollup_hour",
    ),
    (
        "outbox",
        "SELECT count(*), min(created_ms), max(created_ms) FROM outbox",
    ),
    (
        "alerts",
        "SELECT count(*), min(since_ms), max(updated_ms) FROM alerts",
    ),
    (
        "set_aside",
        "SELECT count(*), min(at_ms), max(at_ms) FROM set_aside",
    ),
];

impl Store {
    /// Sizes, counts and time spans of what the store holds.
    pub fn stats(&self) -> Result<StoreStats> {
        let conn = self.conn();
        let mut tables = Vec::new();
        for (name, sql) in TABLES {
            let (count, oldest, newest): (i64, Option<i64>, Option<i64>) = conn
                .query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.err(e))?;
            tables.push(TableStats {
                name,
                count: count as u64,
                oldest: rfc3339(oldest),
                newest: rfc3339(newest),
            });
        }
        let mut file_bytes = 0;
        for suffix in ["", "-wal"] {
            let mut p = self.path().as_os_str().to_owned();
            p.push(suffix);
            file_bytes += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        let marks = |kind: &str, scale: i64| -> Result<Option<String>> {
            let m = super::retention::mark(conn, kind).map_err(|e| self.err(e))?;
            Ok(rfc3339(m.map(|v| v * scale)))
        };
        Ok(StoreStats {
            file_bytes,
            tables,
            minutes_folded_before: marks("minute", 60_000)?,
            raw_deleted_before: marks("raw", 1)?,
        })
    }

    /// How many messages wait in the outbox.
    pub fn outbox_depth(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// The timestamp of the newest row a source stored.
    pub fn newest_row_ms(&self, source: &str) -> Result<Option<i64>> {
        self.conn()
            .query_row(
                "SELECT ts_ms FROM rows WHERE source = ?1 ORDER BY ts_ms DESC LIMIT 1",
                params![source],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
