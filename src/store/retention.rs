//! Retention and compaction: raw rows older than the raw retention are deleted; minute
//! rollups older than the minute horizon are folded into hourly rollups (`rollup_hour`) and
//! deleted; hourly rollups older than the hour retention are deleted.
//!
//! Folding keeps every sum, so a window made of whole hours has the same totals before and
//! after; [`super::HistoryView`] reads the hourly rollups for hours that are no longer in
//! minutes. Work is done in steps (one day of minutes, or a bounded number of raw rows, per
//! transaction), so a first compaction over a large store never holds the write lock long.
//!
//! Rows that arrive late, for a minute that was already folded, still land in minute rollups;
//! the next compaction folds them too, and reads add both tables meanwhile. A row older than
//! the raw retention is set aside at ingest: its duplicate check is gone with the raw rows,
//! and storing it again could count it twice.

use super::{Result, Store};
use crate::config::ops::RetentionConfig;
use crate::config::units::Dur;
use rusqlite::{OptionalExtension, Transaction, params};

/// How many raw rows one step deletes.
const RAW_ROWS_PER_STEP: i64 = 50_000;
/// How many minutes of rollups one step folds.
const MINUTES_PER_STEP: i64 = 1440;

/// What to remove, as cut-off instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactPolicy {
    /// Raw rows with `ts_ms` before this are deleted.
    pub raw_before_ms: i64,
    /// Minute rollups before this minute (a whole hour) are folded into hours.
    pub minute_before: i64,
    /// Hourly rollups before this minute are deleted.
    pub hour_before: i64,
}

impl CompactPolicy {
    /// The cut-offs at `now_ms` for `retention`, keeping minutes for `minute_horizon` (see
    /// [`RetentionConfig::minute_horizon`]).
    pub fn at(now_ms: i64, retention: &RetentionConfig, minute_horizon: Dur) -> CompactPolicy {
        let now_min = now_ms.div_euclid(60_000);
        let hour_floor = |m: i64| m.div_euclid(60) * 60;
        CompactPolicy {
            raw_before_ms: now_ms - retention.raw.seconds() * 1000,
            minute_before: hour_floor(now_min - minute_horizon.seconds() / 60),
            hour_before: hour_floor(now_min - retention.hour.seconds() / 60),
        }
    }
}

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactReport {
    pub raw_rows_deleted: u64,
    pub minute_rollups_folded: u64,
    pub hour_rollups_written: u64,
    pub hour_rollups_deleted: u64,
}

impl CompactReport {
    pub fn add(&mut self, o: &CompactReport) {
        self.raw_rows_deleted += o.raw_rows_deleted;
        self.minute_rollups_folded += o.minute_rollups_folded;
        self.hour_rollups_written += o.hour_rollups_written;
        self.hour_rollups_deleted += o.hour_rollups_deleted;
    }

    fn is_empty(&self) -> bool {
        *self == CompactReport::default()
    }
}

/// A retention mark: how far one kind of data has been removed or folded.
pub(crate) fn mark(conn: &rusqlite::Connection, kind: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT before FROM retention_marks WHERE kind = ?1",
        [kind],
        |r| r.get(0),
    )
    .optional()
}

fn raise_mark(tx: &Transaction<'_>, kind: &str, before: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO retention_marks (kind, before) VALUES (?1, ?2)
         ON CONFLICT (kind) DO UPDATE SET before = max(before, excluded.before)",
        params![kind, before],
    )?;
    Ok(())
}

impl Store {
    /// One bounded step of compaction; `None` when there is nothing left to do.
    pub fn compact_step(&mut self, policy: &CompactPolicy) -> Result<Option<CompactReport>> {
        let report = self.write(|tx| {
            let mut r = CompactReport::default();
            // Fold the oldest day of minutes that is due.
            let oldest: Option<i64> = tx.query_row(
                "SELECT min(minute) FROM rollup_minute WHERE minute < ?1",
                [policy.minute_before],
                |row| row.get(0),
            )?;
            if let Some(oldest) = oldest {
                let end = (oldest.div_euclid(60) * 60 + MINUTES_PER_STEP).min(policy.minute_before);
                r.hour_rollups_written = tx.execute(
                    "INSERT INTO rollup_hour (hour, combo, rows, requests, input_tokens,
                        cached_input_tokens, cache_write_tokens, output_tokens, cost_nanos,
                        unpriced_rows)
                     SELECT (minute / 60) * 60, combo, sum(rows), sum(requests), sum(input_tokens),
                        sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens),
                        sum(cost_nanos), sum(unpriced_rows)
                     FROM rollup_minute WHERE minute >= ?1 AND minute < ?2 GROUP BY 1, 2
                     ON CONFLICT (hour, combo) DO UPDATE SET
                        rows = rows + excluded.rows,
                        requests = requests + excluded.requests,
                        input_tokens = input_tokens + excluded.input_tokens,
                        cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
                        cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
                        output_tokens = output_tokens + excluded.output_tokens,
                        cost_nanos = cost_nanos + excluded.cost_nanos,
                        unpriced_rows = unpriced_rows + excluded.unpriced_rows",
                    params![oldest, end],
                )? as u64;
                r.minute_rollups_folded = tx.execute(
                    "DELETE FROM rollup_minute WHERE minute >= ?1 AND minute < ?2",
                    params![oldest, end],
                )? as u64;
                raise_mark(tx, "minute", end)?;
                return Ok(r);
            }
            raise_mark(tx, "minute", policy.minute_before)?;
            r.raw_rows_deleted = tx.execute(
                "DELETE FROM rows WHERE id IN
                    (SELECT id FROM rows WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)",
                params![policy.raw_before_ms, RAW_ROWS_PER_STEP],
            )? as u64;
            if r.raw_rows_deleted < RAW_ROWS_PER_STEP as u64 {
                raise_mark(tx, "raw", policy.raw_before_ms)?;
            }
            if r.raw_rows_deleted == 0 {
                r.hour_rollups_deleted = tx.execute(
                    "DELETE FROM rollup_hour WHERE hour < ?1",
                    [policy.hour_before],
                )? as u64;
                if r.hour_rollups_deleted > 0 {
                    raise_mark(tx, "hour", policy.hour_before)?;
                }
            }
            Ok(r)
        })?;
        Ok((!report.is_empty()).then_some(report))
    }

    /// Compacts until nothing is left to do.
    pub fn compact(&mut self, policy: &CompactPolicy) -> Result<CompactReport> {
        let mut total = CompactReport::default();
        while let Some(step) = self.compact_step(policy)? {
            total.add(&step);
        }
        Ok(total)
    }

    /// The minute before which rollups live in hours (`i64::MIN` when nothing was folded).
    pub fn folded_before(&self) -> Result<i64> {
        Ok(mark(self.conn(), "minute")
            .map_err(|e| self.err(e))?
            .unwrap_or(i64::MIN))
    }
}
