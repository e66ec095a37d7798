//! Rollup combinations and minute rollups inside the ingest transaction.
//!
//! Every stored row names its combination (one distinct set of dimension values), so its
//! combination id is needed before the row is written. Ids are resolved once per distinct
//! set of values in a batch, from a cache this connection keeps across batches, and only on a
//! miss from the `combos` table. A combination made for a batch whose rows all turn out to be
//! duplicates or conflicts is removed again before the commit, so `combos` only ever holds
//! combinations with stored rows, and their `first_minute` is that of a stored row.
//!
//! Rollups are summed in memory per batch and written once per (minute, combination).

use super::query::Metrics;
use crate::money::Usd;
use crate::row::{CostRow, Dimension};
use rusqlite::{OptionalExtension, Transaction, params};
use rustc_hash::FxHashMap as HashMap;

/// The values of one combination, '' for absent, in [`Dimension::ALL`] order.
pub(super) type DimKey<'a> = [&'a str; 6];

/// `first_minute` of a combination made in the running transaction and not yet given a
/// stored row; no committed combination has it.
const UNSEEN_FIRST: i64 = i64::MAX;
const UNSEEN_LAST: i64 = i64::MIN;

/// Beyond this many cached combinations the cache starts again (memory stays bounded).
const MAX_CACHED: usize = 500_000;

/// A combination known to be committed, with a minute span its stored rows are known to
/// cover. The span only ever grows in the store, so a cached span inside the true one is
/// safe: at worst a widening update is written that was not needed.
#[derive(Clone, Copy, Debug)]
struct Known {
    id: i64,
    first: i64,
    last: i64,
}

/// Combination ids resolved on one connection. Updated only after a commit.
#[derive(Default)]
pub(crate) struct ComboCache {
    by_values: HashMap<String, Known>,
}

/// An unambiguous text key for a set of values: each value with its length in front.
fn cache_key(dims: &DimKey<'_>, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    for v in dims {
        let _ = write!(out, "{}:{v}", v.len());
    }
}

/// One combination as a batch sees it.
struct Slot {
    id: i64,
    known: Known,
    /// Made by this transaction.
    made: bool,
    /// The minutes of the rows stored with it in this batch.
    stored: Option<(i64, i64)>,
}

/// What one batch added to one (minute, combination).
#[derive(Default, Clone, Copy)]
pub(super) struct Delta {
    rows: i64,
    requests: i64,
    input: i64,
    cached: i64,
    cache_write: i64,
    output: i64,
    cost: i64,
    unpriced: i64,
}

impl Delta {
    fn metrics(&self) -> Metrics {
        Metrics {
            rows: self.rows as u64,
            requests: self.requests as u64,
            input_tokens: self.input as u64,
            cached_input_tokens: self.cached as u64,
            cache_write_tokens: self.cache_write as u64,
            output_tokens: self.output as u64,
            cost: Usd::from_nanos(self.cost),
            unpriced_rows: self.unpriced as u64,
        }
    }
}

/// The combinations and rollup sums of one batch, inside its transaction.
pub(super) struct BatchRollups<'a> {
    cache: &'a ComboCache,
    slots: HashMap<DimKey<'a>, Slot>,
    deltas: HashMap<(i64, i64), Delta>,
    key: String,
}

/// What a committed batch changes outside the store: the cache entries to keep and the
/// rollup changes to hand to cached windows.
pub(super) struct Committed {
    cache: Vec<(String, Known)>,
    pub changes: Vec<(i64, i64, Metrics)>,
}

impl<'a> BatchRollups<'a> {
    pub fn new(cache: &'a ComboCache) -> BatchRollups<'a> {
        BatchRollups {
            cache,
            slots: HashMap::default(),
            deltas: HashMap::default(),
            key: String::new(),
        }
    }

    /// The combination id for a row's values, made (provisionally) when it is new.
    pub fn combo(&mut self, tx: &Transaction<'_>, dims: DimKey<'a>) -> rusqlite::Result<i64> {
        if let Some(s) = self.slots.get(&dims) {
            return Ok(s.id);
        }
        cache_key(&dims, &mut self.key);
        let (known, made) = match self.cache.by_values.get(&self.key) {
            Some(k) => (*k, false),
            None => lookup_or_make(tx, &dims)?,
        };
        self.slots.insert(
            dims,
            Slot {
                id: known.id,
                known,
                made,
                stored: None,
            },
        );
        Ok(known.id)
    }

    /// Counts a stored row into its minute and combination.
    pub fn add(&mut self, dims: &DimKey<'a>, combo: i64, row: &CostRow, cost: Option<Usd>) {
        let minute = row.ts_ms.div_euclid(60_000);
        if let Some(s) = self.slots.get_mut(dims) {
            s.stored = Some(
                s.stored
                    .map_or((minute, minute), |(a, b)| (a.min(minute), b.max(minute))),
            );
        }
        let d = self.deltas.entry((minute, combo)).or_default();
        d.rows += 1;
        d.requests += row.requests as i64;
        d.input += row.input_tokens as i64;
        d.cached += row.cached_input_tokens as i64;
        d.cache_write += row.cache_write_tokens as i64;
        d.output += row.output_tokens as i64;
        match cost {
            Some(c) => d.cost += c.nanos(),
            None => d.unpriced += 1,
        }
    }

    /// Widens the combinations' spans, removes the ones made for nothing, writes the
    /// rollups.
    pub fn write(self, tx: &Transaction<'_>) -> rusqlite::Result<Committed> {
        let mut widen = tx.prepare_cached(
            "UPDATE combos SET first_minute = min(first_minute, ?2),
                last_minute = max(last_minute, ?3) WHERE id = ?1",
        )?;
        let mut unmake = tx.prepare_cached("DELETE FROM combos WHERE id = ?1")?;
        let mut cache = Vec::new();
        for (dims, slot) in &self.slots {
            let known = match slot.stored {
                None if slot.made => {
                    unmake.execute([slot.id])?;
                    continue;
                }
                None => slot.known,
                Some((first, last)) => {
                    if first < slot.known.first || last > slot.known.last {
                        widen.execute(params![slot.id, first, last])?;
                    }
                    Known {
                        id: slot.id,
                        first: first.min(slot.known.first),
                        last: last.max(slot.known.last),
                    }
                }
            };
            let mut key = String::new();
            cache_key(dims, &mut key);
            cache.push((key, known));
        }
        let mut roll = tx.prepare_cached(
            "INSERT INTO rollup_minute (minute, combo, rows, requests, input_tokens,
                cached_input_tokens, cache_write_tokens, output_tokens, cost_nanos, unpriced_rows)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (minute, combo) DO UPDATE SET
                rows = rows + excluded.rows,
                requests = requests + excluded.requests,
                input_tokens = input_tokens + excluded.input_tokens,
                cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
                cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
                output_tokens = output_tokens + excluded.output_tokens,
                cost_nanos = cost_nanos + excluded.cost_nanos,
                unpriced_rows = unpriced_rows + excluded.unpriced_rows",
        )?;
        let mut changes = Vec::with_capacity(self.deltas.len());
        for ((minute, combo), d) in &self.deltas {
            roll.execute(params![
                minute,
                combo,
                d.rows,
                d.requests,
                d.input,
                d.cached,
                d.cache_write,
                d.output,
                d.cost,
                d.unpriced
            ])?;
            changes.push((*minute, *combo, d.metrics()));
        }
        Ok(Committed { cache, changes })
    }
}

/// A combination from the table, or a new one with the unseen span.
fn lookup_or_make(tx: &Transaction<'_>, dims: &DimKey<'_>) -> rusqlite::Result<(Known, bool)> {
    let mut find = tx.prepare_cached(
        "SELECT id, first_minute, last_minute FROM combos WHERE tenant = ?1 AND feature = ?2
            AND model = ?3 AND provider = ?4 AND user = ?5 AND workflow = ?6",
    )?;
    let found = find
        .query_row(
            params![dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]],
            |r| {
                Ok(Known {
                    id: r.get(0)?,
                    first: r.get(1)?,
                    last: r.get(2)?,
                })
            },
        )
        .optional()?;
    if let Some(k) = found {
        return Ok((k, false));
    }
    let mut make = tx.prepare_cached(
        "INSERT INTO combos (tenant, feature, model, provider, user, workflow, first_minute,
            last_minute) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    make.execute(params![
        dims[0],
        dims[1],
        dims[2],
        dims[3],
        dims[4],
        dims[5],
        UNSEEN_FIRST,
        UNSEEN_LAST
    ])?;
    let known = Known {
        id: tx.last_insert_rowid(),
        first: UNSEEN_FIRST,
        last: UNSEEN_LAST,
    };
    Ok((known, true))
}

impl ComboCache {
    /// Keeps what a committed batch resolved.
    pub(super) fn absorb(&mut self, committed: &mut Committed) {
        if self.by_values.len() + committed.cache.len() > MAX_CACHED {
            self.by_values.clear();
        }
        self.by_values.extend(committed.cache.drain(..));
    }
}

/// A row's values for its combination.
pub(super) fn dims_of(row: &CostRow) -> DimKey<'_> {
    Dimension::ALL.map(|d| row.dimension(d).unwrap_or(""))
}
