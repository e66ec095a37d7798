//! The ingest transaction: rows, their minute rollups, the rows set aside and the source's
//! cursor, all committed together, so a crash neither loses nor doubles a row.

use super::rollup::{self, BatchRollups, ComboCache, Committed};
use super::{Result, Store};
use crate::money::Usd;
use crate::price::{CostBasis, PriceTable};
use crate::row::CostRow;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// Where a row came from inside its source: a file (or table) and a line (or row id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub file: String,
    pub line: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A row that was not stored, with its place and the reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetAside {
    pub source: String,
    pub file: String,
    pub line: u64,
    /// `malformed`, `conflict` or `expired` (older than the raw retention).
    pub kind: &'static str,
    pub reason: String,
    #[serde(skip)]
    pub raw: String,
}

/// One source's rows read in one go, with the cursor values that say how far it read.
pub struct IngestBatch {
    pub source: String,
    pub rows: Vec<(CostRow, Position)>,
    pub malformed: Vec<SetAside>,
    pub cursors: Vec<(String, String)>,
    /// Records that are not cost rows (trace spans that are no model call): counted only.
    pub skipped: u64,
}

impl IngestBatch {
    pub fn new(source: impl Into<String>) -> IngestBatch {
        IngestBatch {
            source: source.into(),
            rows: Vec::new(),
            malformed: Vec::new(),
            cursors: Vec::new(),
            skipped: 0,
        }
    }

    /// Records a row that could not be read.
    pub fn set_aside(&mut self, pos: Position, reason: String, raw: &str) {
        self.malformed.push(SetAside {
            source: self.source.clone(),
            file: pos.file,
            line: pos.line,
            kind: "malformed",
            reason,
            raw: truncate(raw, 4096),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.malformed.is_empty() && self.cursors.is_empty()
    }
}

/// What an ingest did, in the shape `ingest --json` prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IngestReport {
    pub stored: u64,
    /// The same row seen again (same identity, same content): not added.
    pub duplicates: u64,
    /// The same request id with other content: set aside, not added.
    pub conflicts: u64,
    pub set_aside: Vec<SetAside>,
    /// Stored rows with neither a cost nor a price, by model.
    pub unpriced_by_model: BTreeMap<String, u64>,
    /// Stored rows that came without a request id (identity from content and position).
    pub without_request_id: u64,
    /// Records read that are not cost rows, such as trace spans that are no model call.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
    /// Spend of the stored rows that have a cost.
    pub priced_usd: Usd,
    /// The newest stored row's timestamp, for the source-lag metric.
    #[serde(skip)]
    pub newest_ts_ms: Option<i64>,
    /// The oldest stored row's timestamp: cached windows from there on are stale.
    #[serde(skip)]
    pub oldest_ts_ms: Option<i64>,
}

impl IngestReport {
    pub fn merge(&mut self, other: IngestReport) {
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.conflicts += other.conflicts;
        self.set_aside.extend(other.set_aside);
        for (m, n) in other.unpriced_by_model {
            *self.unpriced_by_model.entry(m).or_default() += n;
        }
        self.without_request_id += other.without_request_id;
        self.skipped += other.skipped;
        self.priced_usd += other.priced_usd;
        self.newest_ts_ms = self.newest_ts_ms.max(other.newest_ts_ms);
        self.oldest_ts_ms = match (self.oldest_ts_ms, other.oldest_ts_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    pub fn unpriced_rows(&self) -> u64 {
        self.unpriced_by_model.values().sum()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A row's cost, how it was found, its content digest and its identity key.
type Priced = (Option<Usd>, CostBasis, [u8; 32], String);

/// A row's identity within its source: its request id, or a digest of its content and its
/// position (case 02: streamed rows often share an empty id, and two of them may share time
/// and tenant, so neither alone identifies a row).
fn row_key(row: &CostRow, digest: &[u8; 32], pos: &Position) -> String {
    match &row.request_id {
        Some(id) => format!("id:{id}"),
        None => {
            let mut h = Sha256::new();
            h.update(digest);
            h.update(pos.file.as_bytes());
            h.update(pos.line.to_le_bytes());
            let d = h.finalize();
            let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("pos:{hex}")
        }
    }
}

impl Store {
    /// Stores a batch: good rows with their rollups, rows set aside with their reasons, and
    /// the cursors, in one transaction.
    pub fn ingest(&mut self, batch: &IngestBatch, prices: &PriceTable) -> Result<IngestReport> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        // Pricing is pure; do it before taking the write lock.
        let mut price_cache: rustc_hash::FxHashMap<
            (Option<&str>, &str),
            Option<&crate::price::ModelPrice>,
        > = HashMap::default();
        let priced: Vec<Priced> = batch
            .rows
            .iter()
            .map(|(row, pos)| {
                let (cost, basis) = match row.cost_usd {
                    Some(c) => (Some(c), CostBasis::Given),
                    None => {
                        let price = *price_cache
                            .entry((row.provider.as_deref(), row.model.as_str()))
                            .or_insert_with(|| prices.resolve(row.provider.as_deref(), &row.model));
                        match price {
                            Some(p) => (Some(p.cost(row)), CostBasis::Table),
                            None => (None, CostBasis::Unknown),
                        }
                    }
                };
                let digest = row.content_digest();
                let key = row_key(row, &digest, pos);
                (cost, basis, digest, key)
            })
            .collect();
        let cache = std::mem::take(&mut self.combos);
        let result = self.write(|tx| store_batch(tx, batch, &priced, &cache, now_ms));
        self.combos = cache;
        let (report, mut committed) = result?;
        self.combos.absorb(&mut committed);
        self.changes.push(std::mem::take(&mut committed.changes));
        Ok(report)
    }

    /// One saved cursor value of a source.
    pub fn cursor(&self, source: &str, key: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT value FROM cursors WHERE source = ?1 AND key = ?2",
                params![source, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// All saved cursor values of a source.
    pub fn cursors(&self, source: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT key, value FROM cursors WHERE source = ?1 ORDER BY key")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}

/// The ingest transaction's body: rows, rollups, rows set aside and cursors.
fn store_batch(
    tx: &Transaction<'_>,
    batch: &IngestBatch,
    priced: &[Priced],
    cache: &ComboCache,
    now_ms: i64,
) -> rusqlite::Result<(IngestReport, Committed)> {
    let mut report = IngestReport {
        skipped: batch.skipped,
        ..IngestReport::default()
    };
    let mut rollups = BatchRollups::new(cache);
    // Raw rows before this were deleted by retention, and with them the duplicate
    // check: such a row is set aside rather than perhaps counted twice.
    let expired_before = super::retention::mark(tx, "raw")?.unwrap_or(i64::MIN);
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO rows (source, row_key, digest, ts_ms, provider, model, request_id,
                requests, input_tokens, cached_input_tokens, cache_write_tokens,
                output_tokens, cost_nanos, cost_basis, tenant, feature, user, workflow, tags,
                combo)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17, ?18, ?19, ?20)
             ON CONFLICT (source, row_key) DO NOTHING",
        )?;
        let mut existing =
            tx.prepare_cached("SELECT digest FROM rows WHERE source = ?1 AND row_key = ?2")?;
        for ((row, pos), (cost, basis, digest, key)) in batch.rows.iter().zip(priced) {
            if row.ts_ms < expired_before {
                report.set_aside.push(SetAside {
                    source: batch.source.clone(),
                    file: pos.file.clone(),
                    line: pos.line,
                    kind: "expired",
                    reason: "older than the raw retention: too old to store".into(),
                    raw: serde_json::to_string(row).unwrap_or_default(),
                });
                continue;
            }
            // The cap a given cost is held to (row.rs) holds for a priced one too: tokens
            // that price one request above it are a broken counter, not spend to page on.
            if let Some(c) = cost
                && c.as_f64() > crate::row::MAX_ROW_USD
            {
                report.set_aside.push(SetAside {
                    source: batch.source.clone(),
                    file: pos.file.clone(),
                    line: pos.line,
                    kind: "malformed",
                    reason: format!(
                        "its tokens price it at {} USD, more than one row can cost ({} USD); check the token counts",
                        c.as_f64(),
                        crate::row::MAX_ROW_USD
                    ),
                    raw: serde_json::to_string(row).unwrap_or_default(),
                });
                continue;
            }
            let tags = if row.tags.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&row.tags).expect("tags serialise"))
            };
            let basis_code = match basis {
                CostBasis::Given => 0,
                CostBasis::Table => 1,
                CostBasis::Unknown => 2,
            };
            let dims = rollup::dims_of(row);
            let combo = rollups.combo(tx, dims)?;
            let inserted = insert.execute(params![
                batch.source,
                key,
                &digest[..],
                row.ts_ms,
                row.provider,
                row.model,
                row.request_id,
                row.requests as i64,
                row.input_tokens as i64,
                row.cached_input_tokens as i64,
                row.cache_write_tokens as i64,
                row.output_tokens as i64,
                cost.map(Usd::nanos),
                basis_code,
                row.tenant,
                row.feature,
                row.user,
                row.workflow,
                tags,
                combo,
            ])?;
            if inserted == 0 {
                let stored: Option<Vec<u8>> = existing
                    .query_row(params![batch.source, key], |r| r.get(0))
                    .optional()?;
                if stored.as_deref() == Some(&digest[..]) {
                    report.duplicates += 1;
                } else {
                    report.conflicts += 1;
                    report.set_aside.push(SetAside {
                        source: batch.source.clone(),
                        file: pos.file.clone(),
                        line: pos.line,
                        kind: "conflict",
                        reason: format!(
                            "request_id `{}` is already stored with other content; \
                             this row was not added",
                            row.request_id.as_deref().unwrap_or("")
                        ),
                        raw: serde_json::to_string(row).unwrap_or_default(),
                    });
                }
                continue;
            }
            report.stored += 1;
            report.newest_ts_ms = report.newest_ts_ms.max(Some(row.ts_ms));
            report.oldest_ts_ms = Some(report.oldest_ts_ms.map_or(row.ts_ms, |o| o.min(row.ts_ms)));
            if row.request_id.is_none() {
                report.without_request_id += 1;
            }
            match cost {
                Some(c) => report.priced_usd += *c,
                None => {
                    *report
                        .unpriced_by_model
                        .entry(row.model.clone())
                        .or_default() += 1
                }
            }
            rollups.add(&dims, combo, row, *cost);
        }
    }
    let committed = rollups.write(tx)?;
    {
        let mut aside = tx.prepare_cached(
            "INSERT OR IGNORE INTO set_aside (at_ms, source, location, kind, reason, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for s in batch.malformed.iter().chain(report.set_aside.iter()) {
            aside.execute(params![
                now_ms,
                s.source,
                format!("{}:{}", s.file, s.line),
                s.kind,
                s.reason,
                s.raw
            ])?;
        }
        let mut cursor = tx.prepare_cached(
            "INSERT INTO cursors (source, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (source, key) DO UPDATE SET value = excluded.value",
        )?;
        for (k, v) in &batch.cursors {
            cursor.execute(params![batch.source, k, v])?;
        }
    }
    let mut all = batch.malformed.clone();
    all.append(&mut report.set_aside);
    report.set_aside = all;
    Ok((report, committed))
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
