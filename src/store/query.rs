//! Reads for evaluation: spend per rollup combination over a span of minutes, the
//! combinations themselves, and sample request ids for an alert.

use super::{Result, Store};
use crate::money::Usd;
use crate::row::Dimension;
use rusqlite::params;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// One group's priced spend from one source: (group values, source, spend).
pub type SourceTotal = (Vec<Option<String>>, String, Usd);

/// Index of a rollup combination (one distinct set of dimension values).
pub type ComboId = i64;

/// Sums over some rows: what every window, series and contributor is measured in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    pub rows: u64,
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    /// Spend of the rows that have a cost.
    pub cost: Usd,
    /// Rows with no cost and no price: not in `cost`, and said so wherever `cost` is shown.
    pub unpriced_rows: u64,
}

impl Metrics {
    pub fn add(&mut self, o: &Metrics) {
        self.rows += o.rows;
        self.requests += o.requests;
        self.input_tokens += o.input_tokens;
        self.cached_input_tokens += o.cached_input_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.output_tokens += o.output_tokens;
        self.cost += o.cost;
        self.unpriced_rows += o.unpriced_rows;
    }
}

/// One distinct combination of dimension values, as rollups key it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Combo {
    /// Values in [`Dimension::ALL`] order; `None` is "no value" (absent or empty).
    pub dims: [Option<Arc<str>>; 6],
    /// The first minute this combination had a row.
    pub first_minute: i64,
}

impl Combo {
    pub fn get(&self, d: Dimension) -> Option<&str> {
        self.dims[d.index()].as_deref()
    }
}

/// Spend per combination over one span of minutes, in combination order.
#[derive(Clone, Debug, Default)]
pub struct WindowAgg {
    pub entries: Vec<(ComboId, Metrics)>,
}

/// Where the evaluator reads spend from. The store implements it over rollups; tests
/// implement it over plain vectors.
pub trait History {
    /// Spend per combination over the minutes `[start, end)` (minutes since the epoch).
    fn window(&mut self, start_minute: i64, end_minute: i64) -> Result<Arc<WindowAgg>>;
    /// A combination by id; every id a window returns is known.
    fn combo(&self, id: ComboId) -> &Combo;
    /// Priced spend per group and source over `[start_ms, end_ms)`, from the raw rows (the
    /// rollups do not keep sources apart): for reconciling two sources. A history without
    /// sources has none.
    fn source_totals(
        &mut self,
        _start_ms: i64,
        _end_ms: i64,
        _sources: &[String],
        _group_by: &[Dimension],
    ) -> Result<Vec<SourceTotal>> {
        Ok(Vec::new())
    }
}

/// Window results kept between cycles. Comparable past windows are asked for again every
/// cycle; they are read once. The cache empties when another process commits to the store
/// (`PRAGMA data_version`) or when this process ingests (`invalidate`).
///
/// Minutes before the store's fold mark live in hourly rollups (see `retention.rs`): a
/// window there adds the hours it wholly covers to whatever minute rollups remain (rows
/// that came late). Long windows are split into whole hours, so they are exact; a window of
/// two hours or less with ragged ends in folded history counts only its whole hours.
///
/// Rows this process stores through the same [`Store`] do not empty the cache: the store
/// logs the rollup changes each ingest committed ([`ChangeLog`]), and the next view adds
/// them to the cached windows they fall in, so a cycle reads only what it has not seen.
#[derive(Default)]
pub struct StoreHistory {
    combos: HashMap<ComboId, Combo, BuildHasherDefault<IdHasher>>,
    windows: HashMap<(i64, i64), Arc<WindowAgg>>,
    data_version: Option<i64>,
    folded_before: Option<i64>,
    /// The position in the store's change log up to which the windows are current.
    changes_seen: Option<u64>,
}

/// Hashes combination ids, which evaluation looks up millions of times a cycle: one
/// multiplication instead of SipHash. Ids are SQLite rowids, not chosen by callers, so
/// there is no flooding to defend against.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_i64(&mut self, v: i64) {
        self.0 = (v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

const MAX_CACHED_WINDOWS: usize = 50_000;
/// Beyond this many (window, change) pairs a batch of changes drops the windows it touches
/// instead: reading them again is cheaper than patching.
const MAX_PATCH_WORK: usize = 20_000_000;
/// The most changes the log holds for a reader that has not come back.
const MAX_LOGGED_CHANGES: usize = 1_000_000;

/// Rollup changes committed through one connection: (minute, combination, what was added).
/// Kept only once a [`StoreHistory`] reads it; a reader that fell behind the log's start
/// starts over.
/// One committed rollup change: (minute, combination, what was added).
pub(crate) type Change = (i64, ComboId, Metrics);

#[derive(Default)]
pub(crate) struct ChangeLog {
    /// The position of the first entry held.
    start: Cell<u64>,
    entries: RefCell<Vec<Change>>,
    wanted: Cell<bool>,
}

impl ChangeLog {
    /// Appends one committed batch's changes.
    pub(crate) fn push(&self, mut changes: Vec<Change>) {
        let mut entries = self.entries.borrow_mut();
        if !self.wanted.get() || entries.len() + changes.len() > MAX_LOGGED_CHANGES {
            self.start
                .set(self.start.get() + (entries.len() + changes.len()) as u64);
            entries.clear();
            return;
        }
        entries.append(&mut changes);
    }

    /// The changes from position `from` on, and the position after them; `None` when some
    /// of them are no longer held. The log forgets what it hands out.
    fn take_from(&self, from: Option<u64>) -> (Option<Vec<Change>>, u64) {
        self.wanted.set(true);
        let mut entries = self.entries.borrow_mut();
        let start = self.start.get();
        let end = start + entries.len() as u64;
        let taken = match from {
            Some(f) if f >= start && f <= end => Some(entries.split_off((f - start) as usize)),
            _ => None,
        };
        entries.clear();
        self.start.set(end);
        (taken, end)
    }
}

impl StoreHistory {
    pub fn new() -> StoreHistory {
        StoreHistory::default()
    }

    /// Forgets cached windows; call when the store changed in a way its change log does not
    /// say (a compaction).
    pub fn invalidate(&mut self) {
        self.windows.clear();
    }

    /// A view bound to the store for one cycle.
    pub fn view<'a>(&'a mut self, store: &'a Store) -> Result<HistoryView<'a>> {
        let version: i64 = store
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| store.err(e))?;
        let folded = store.folded_before()?;
        if self.data_version != Some(version) || self.folded_before != Some(folded) {
            self.windows.clear();
            self.data_version = Some(version);
            self.folded_before = Some(folded);
        }
        let (changes, seen) = store.changes.take_from(self.changes_seen);
        self.changes_seen = Some(seen);
        match changes {
            Some(changes) => self.patch(store, &changes)?,
            None => self.windows.clear(),
        }
        Ok(HistoryView { store, cache: self })
    }

    /// Adds committed rollup changes to the cached windows holding their minutes.
    fn patch(&mut self, store: &Store, changes: &[Change]) -> Result<()> {
        let (Some(lo), Some(hi)) = (
            changes.iter().map(|c| c.0).min(),
            changes.iter().map(|c| c.0).max(),
        ) else {
            return Ok(());
        };
        let touched: Vec<(i64, i64)> = self
            .windows
            .keys()
            .filter(|(start, end)| *start <= hi && lo < *end)
            .copied()
            .collect();
        if touched.len().saturating_mul(changes.len()) > MAX_PATCH_WORK {
            for k in &touched {
                self.windows.remove(k);
            }
            return Ok(());
        }
        if changes.iter().any(|c| !self.combos.contains_key(&c.1)) {
            self.load_combos(store)?;
        }
        for key @ (start, end) in touched {
            let Some(agg) = self.windows.get_mut(&key) else {
                continue;
            };
            let agg = Arc::make_mut(agg);
            for (minute, combo, m) in changes {
                if *minute < start || *minute >= end {
                    continue;
                }
                match agg.entries.binary_search_by_key(combo, |(id, _)| *id) {
                    Ok(i) => agg.entries[i].1.add(m),
                    Err(i) => agg.entries.insert(i, (*combo, *m)),
                }
            }
        }
        Ok(())
    }

    fn load_combos(&mut self, store: &Store) -> Result<()> {
        let mut stmt = store
            .conn()
            .prepare_cached(
                "SELECT id, tenant, feature, model, provider, user, workflow, first_minute FROM combos",
            )
            .map_err(|e| store.err(e))?;
        let mut interned: HashMap<String, Arc<str>> = HashMap::new();
        let mut intern = |s: String| -> Option<Arc<str>> {
            if s.is_empty() {
                return None;
            }
            Some(
                interned
                    .entry(s.clone())
                    .or_insert_with(|| Arc::from(s))
                    .clone(),
            )
        };
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    [
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ],
                    r.get::<_, i64>(7)?,
                ))
            })
            .map_err(|e| store.err(e))?;
        self.combos.clear();
        for row in rows {
            let (id, dims, first_minute) = row.map_err(|e| store.err(e))?;
            let dims = dims.map(&mut intern);
            self.combos.insert(id, Combo { dims, first_minute });
        }
        Ok(())
    }
}

/// [`StoreHistory`] bound to a store for one cycle.
pub struct HistoryView<'a> {
    store: &'a Store,
    cache: &'a mut StoreHistory,
}

/// Windows longer than this are summed from whole hours, which every later cycle reuses.
const SPLIT_ABOVE_MINUTES: i64 = 120;

const MINUTE_WINDOW: &str = "SELECT combo, sum(rows), sum(requests), sum(input_tokens),
        sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens), sum(cost_nanos),
        sum(unpriced_rows)
     FROM rollup_minute WHERE minute >= ?1 AND minute < ?2 GROUP BY combo";

/// A window reaching into folded history: the hours it wholly covers, plus minutes.
const FOLDED_WINDOW: &str = "SELECT combo, sum(rows), sum(requests), sum(input_tokens),
        sum(cached_input_tokens), sum(cache_write_tokens), sum(output_tokens), sum(cost_nanos),
        sum(unpriced_rows)
     FROM (
        SELECT combo, rows, requests, input_tokens, cached_input_tokens, cache_write_tokens,
            output_tokens, cost_nanos, unpriced_rows
        FROM rollup_minute WHERE minute >= ?1 AND minute < ?2
        UNION ALL
        SELECT combo, rows, requests, input_tokens, cached_input_tokens, cache_write_tokens,
            output_tokens, cost_nanos, unpriced_rows
        FROM rollup_hour WHERE hour >= ?1 AND hour + 60 <= ?2
     ) GROUP BY combo";

impl HistoryView<'_> {
    fn remember(&mut self, start: i64, end: i64, agg: WindowAgg) -> Arc<WindowAgg> {
        let agg = Arc::new(agg);
        if self.cache.windows.len() >= MAX_CACHED_WINDOWS {
            self.cache.windows.clear();
        }
        self.cache.windows.insert((start, end), agg.clone());
        agg
    }

    fn query(&mut self, start: i64, end: i64) -> Result<WindowAgg> {
        let store = self.store;
        let folded = self.cache.folded_before.unwrap_or(i64::MIN) > start;
        let mut stmt = store
            .conn()
            .prepare_cached(if folded { FOLDED_WINDOW } else { MINUTE_WINDOW })
            .map_err(|e| store.err(e))?;
        let entries: Vec<(ComboId, Metrics)> = stmt
            .query_map(params![start, end], |r| {
                Ok((
                    r.get(0)?,
                    Metrics {
                        rows: r.get::<_, i64>(1)? as u64,
                        requests: r.get::<_, i64>(2)? as u64,
                        input_tokens: r.get::<_, i64>(3)? as u64,
                        cached_input_tokens: r.get::<_, i64>(4)? as u64,
                        cache_write_tokens: r.get::<_, i64>(5)? as u64,
                        output_tokens: r.get::<_, i64>(6)? as u64,
                        cost: Usd::from_nanos(r.get(7)?),
                        unpriced_rows: r.get::<_, i64>(8)? as u64,
                    },
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| store.err(e))?;
        // Sorted by combination, so that committed changes can be patched in.
        let mut entries = entries;
        entries.sort_unstable_by_key(|(id, _)| *id);
        if entries
            .iter()
            .any(|(id, _)| !self.cache.combos.contains_key(id))
        {
            self.cache.load_combos(store)?;
        }
        Ok(WindowAgg { entries })
    }
}

impl History for HistoryView<'_> {
    fn source_totals(
        &mut self,
        start_ms: i64,
        end_ms: i64,
        sources: &[String],
        group_by: &[Dimension],
    ) -> Result<Vec<SourceTotal>> {
        let store = self.store;
        let cols: Vec<String> = group_by
            .iter()
            .map(|d| format!("nullif({}, '')", column(*d)))
            .collect();
        let select = if cols.is_empty() {
            String::new()
        } else {
            format!("{}, ", cols.join(", "))
        };
        let group = if cols.is_empty() {
            String::new()
        } else {
            format!(", {}", cols.join(", "))
        };
        let marks = vec!["?"; sources.len()].join(", ");
        let sql = format!(
            "SELECT {select}source, coalesce(sum(cost_nanos), 0) FROM rows
             WHERE ts_ms >= ? AND ts_ms < ? AND source IN ({marks}) GROUP BY source{group}"
        );
        let mut args: Vec<rusqlite::types::Value> = vec![start_ms.into(), end_ms.into()];
        args.extend(sources.iter().map(|s| s.clone().into()));
        let mut stmt = store.conn().prepare(&sql).map_err(|e| store.err(e))?;
        let n = group_by.len();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                let mut labels = Vec::with_capacity(n);
                for i in 0..n {
                    labels.push(r.get::<_, Option<String>>(i)?);
                }
                Ok((
                    labels,
                    r.get::<_, String>(n)?,
                    Usd::from_nanos(r.get(n + 1)?),
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| store.err(e))?;
        Ok(rows)
    }

    fn window(&mut self, start: i64, end: i64) -> Result<Arc<WindowAgg>> {
        if let Some(w) = self.cache.windows.get(&(start, end)) {
            return Ok(w.clone());
        }
        if end - start <= SPLIT_ABOVE_MINUTES {
            let agg = self.query(start, end)?;
            return Ok(self.remember(start, end, agg));
        }
        // A long window is its ragged ends plus the whole hours between them.
        let first_hour = start.div_euclid(60) * 60 + if start.rem_euclid(60) == 0 { 0 } else { 60 };
        let last_hour = end.div_euclid(60) * 60;
        let mut parts = Vec::new();
        if start < first_hour {
            parts.push((start, first_hour));
        }
        let mut h = first_hour;
        while h < last_hour {
            parts.push((h, h + 60));
            h += 60;
        }
        if last_hour < end && last_hour >= first_hour {
            parts.push((last_hour, end));
        }
        let mut sums: HashMap<ComboId, Metrics> = HashMap::new();
        for (a, b) in parts {
            let part = self.window(a, b)?;
            for (id, m) in &part.entries {
                sums.entry(*id).or_default().add(m);
            }
        }
        let mut entries: Vec<(ComboId, Metrics)> = sums.into_iter().collect();
        entries.sort_by_key(|(id, _)| *id);
        Ok(self.remember(start, end, WindowAgg { entries }))
    }

    fn combo(&self, id: ComboId) -> &Combo {
        &self.cache.combos[&id]
    }
}

impl Store {
    /// Up to `limit` request ids of rows in `[start_ms, end_ms)` whose dimensions equal the
    /// given values (`None`: no value), most expensive first: evidence for an alert.
    pub fn sample_request_ids(
        &self,
        start_ms: i64,
        end_ms: i64,
        labels: &[(Dimension, Option<String>)],
        filter: &[(Dimension, Vec<String>)],
        limit: usize,
    ) -> Result<Vec<String>> {
        sample_request_ids(self.conn(), start_ms, end_ms, labels, filter, limit)
            .map_err(|e| self.err(e))
    }
}

/// Spend per bucket of `bucket_minutes` over `[start_ms, end_ms)` for rows whose dimensions
/// equal the given values, oldest first, empty buckets included; for charts.
pub fn bucketed_spend(
    conn: &rusqlite::Connection,
    start_ms: i64,
    end_ms: i64,
    bucket_minutes: i64,
    labels: &[(Dimension, Option<String>)],
    filter: &[(Dimension, Vec<String>)],
) -> rusqlite::Result<Vec<f64>> {
    let bucket_ms = bucket_minutes.max(1) * 60_000;
    let (clause, mut args) = row_filter(labels, filter);
    let sql = format!(
        "SELECT (ts_ms - ?) / ?, coalesce(sum(cost_nanos), 0) FROM rows
         WHERE ts_ms >= ? AND ts_ms < ?{clause} GROUP BY 1"
    );
    let mut all: Vec<rusqlite::types::Value> = vec![
        start_ms.into(),
        bucket_ms.into(),
        start_ms.into(),
        end_ms.into(),
    ];
    all.append(&mut args);
    let n = ((end_ms - start_ms) / bucket_ms).max(1) as usize;
    let mut points = vec![0.0; n];
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(all), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (i, nanos) = row?;
        if let Some(p) = points.get_mut(i as usize) {
            *p = nanos as f64 / 1e9;
        }
    }
    Ok(points)
}

/// The rows table names its dimension columns as the dimensions are named.
fn column(d: Dimension) -> &'static str {
    d.name()
}

/// The SQL condition (and its arguments) for rows of one series under a rule's filter.
fn row_filter(
    labels: &[(Dimension, Option<String>)],
    filter: &[(Dimension, Vec<String>)],
) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    for (d, v) in labels {
        match v {
            Some(v) => {
                sql.push_str(&format!(" AND {} = ?", column(*d)));
                args.push(v.clone().into());
            }
            None => sql.push_str(&format!(" AND coalesce({}, '') = ''", column(*d))),
        }
    }
    for (d, allowed) in filter {
        let marks = vec!["?"; allowed.len()].join(", ");
        sql.push_str(&format!(" AND {} IN ({marks})", column(*d)));
        args.extend(allowed.iter().map(|a| a.clone().into()));
    }
    (sql, args)
}

/// [`Store::sample_request_ids`] on a connection or inside a transaction.
pub fn sample_request_ids(
    conn: &rusqlite::Connection,
    start_ms: i64,
    end_ms: i64,
    labels: &[(Dimension, Option<String>)],
    filter: &[(Dimension, Vec<String>)],
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut sql = String::from(
        "SELECT request_id FROM rows WHERE ts_ms >= ? AND ts_ms < ? AND request_id IS NOT NULL",
    );
    let mut args: Vec<rusqlite::types::Value> = vec![start_ms.into(), end_ms.into()];
    let (clause, mut more) = row_filter(labels, filter);
    sql.push_str(&clause);
    args.append(&mut more);
    sql.push_str(" ORDER BY coalesce(cost_nanos, 0) DESC, ts_ms, id LIMIT ?");
    args.push((limit as i64).into());
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(0))
        .and_then(|rows| rows.collect())
}

/// The combinations as a JSON array, for `IN (SELECT value FROM json_each(?))`: one
/// cached statement whatever their number.
fn combo_list(combos: &[ComboId]) -> String {
    let ids: Vec<String> = combos.iter().map(i64::to_string).collect();
    format!("[{}]", ids.join(","))
}

/// [`sample_request_ids`] for rows of the given combinations: their index finds a series'
/// rows in a window without reading anyone else's.
pub fn sample_request_ids_of(
    conn: &rusqlite::Connection,
    start_ms: i64,
    end_ms: i64,
    combos: &[ComboId],
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT request_id FROM rows
         WHERE combo IN (SELECT value FROM json_each(?1)) AND ts_ms >= ?2 AND ts_ms < ?3
            AND request_id IS NOT NULL
         ORDER BY coalesce(cost_nanos, 0) DESC, ts_ms, id LIMIT ?4",
    )?;
    stmt.query_map(
        params![combo_list(combos), start_ms, end_ms, limit as i64],
        |r| r.get(0),
    )
    .and_then(|rows| rows.collect())
}

/// [`bucketed_spend`] for rows of the given combinations.
pub fn bucketed_spend_of(
    conn: &rusqlite::Connection,
    start_ms: i64,
    end_ms: i64,
    bucket_minutes: i64,
    combos: &[ComboId],
) -> rusqlite::Result<Vec<f64>> {
    let bucket_ms = bucket_minutes.max(1) * 60_000;
    let n = ((end_ms - start_ms) / bucket_ms).max(1) as usize;
    let mut points = vec![0.0; n];
    let mut stmt = conn.prepare_cached(
        "SELECT (ts_ms - ?1) / ?2, coalesce(sum(cost_nanos), 0) FROM rows
         WHERE combo IN (SELECT value FROM json_each(?3)) AND ts_ms >= ?1 AND ts_ms < ?4
         GROUP BY 1",
    )?;
    let rows = stmt.query_map(
        params![start_ms, bucket_ms, combo_list(combos), end_ms],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?;
    for row in rows {
        let (i, nanos) = row?;
        if let Some(p) = points.get_mut(i as usize) {
            *p = nanos as f64 / 1e9;
        }
    }
    Ok(points)
}

impl Store {
    /// Total spend and unpriced rows stored, for summaries.
    pub fn totals(&self) -> Result<(u64, Usd, u64)> {
        self.conn()
            .query_row(
                "SELECT count(*), coalesce(sum(cost_nanos), 0), coalesce(sum(cost_basis = 2), 0) FROM rows",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, Usd::from_nanos(r.get(1)?), r.get::<_, i64>(2)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// How many rows a source stored, and the time of its newest row.
    pub fn source_rows(&self, source: &str) -> Result<(u64, Option<i64>)> {
        self.conn()
            .query_row(
                "SELECT count(*), max(ts_ms) FROM rows WHERE source = ?1",
                [source],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }

    /// The time span of stored rows, in milliseconds.
    pub fn time_range(&self) -> Result<Option<(i64, i64)>> {
        self.conn()
            .query_row("SELECT min(ts_ms), max(ts_ms) FROM rows", [], |r| {
                Ok(
                    match (r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ => None,
                    },
                )
            })
            .map_err(|e| self.err(e))
    }
}
