//! Attribution coverage per source: how many of a source's rows, and how much of its spend,
//! carry each attribution field, overall and split by the kind of row (streamed, retried,
//! cached). Read from raw rows in one query per source, for `spendpager sources`.

use super::{Result, Store};
use crate::money::Usd;
use serde::Serialize;
use std::collections::BTreeMap;

/// The attribution fields coverage is measured on, as the rows table names them.
pub const FIELDS: [&str; 4] = ["tenant", "feature", "user", "workflow"];

/// The row kinds, each with the SQL condition that says a row is of that kind. A row can be of
/// several kinds at once (a streamed retry). Tags are strings; `attempt` is read as a number.
const KINDS: [(&str, &str); 3] = [
    (
        "streamed",
        "(lower(coalesce(json_extract(tags, '$.stream'), '')) = 'true'
          OR lower(coalesce(json_extract(tags, '$.streamed'), '')) = 'true')",
    ),
    (
        "retried",
        "(lower(coalesce(json_extract(tags, '$.retry'), '')) = 'true'
          OR lower(coalesce(json_extract(tags, '$.retried'), '')) = 'true'
          OR CAST(coalesce(json_extract(tags, '$.attempt'), '0') AS INTEGER) > 1)",
    ),
    ("cached", "(cached_input_tokens > 0)"),
];

/// The share of rows and of priced spend that carry one field. `None` when there is nothing to
/// share: no rows, or no priced spend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FieldShare {
    pub rows_share: Option<f64>,
    pub spend_share: Option<f64>,
}

/// Coverage over the rows of one kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindCoverage {
    pub rows: u64,
    pub priced_usd: Usd,
    pub fields: BTreeMap<&'static str, FieldShare>,
}

/// Coverage of one source.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SourceCoverage {
    pub name: String,
    pub rows: u64,
    /// The newest row's time, RFC 3339.
    pub newest: Option<String>,
    /// Seconds from the newest row to now.
    pub lag_s: Option<i64>,
    pub priced_usd: Usd,
    pub unpriced_rows: u64,
    pub fields: BTreeMap<&'static str, FieldShare>,
    /// Only the kinds that have rows.
    pub kinds: BTreeMap<&'static str, KindCoverage>,
}

fn share(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The query: newest row and unpriced rows, then for all rows and for each kind its rows,
/// its spend, and per field the rows and spend that carry a value.
fn coverage_sql() -> String {
    let mut cols = vec![
        "max(ts_ms)".to_string(),
        "coalesce(sum(cost_nanos IS NULL), 0)".to_string(),
    ];
    let kinds = std::iter::once("1").chain(KINDS.iter().map(|(_, cond)| *cond));
    for cond in kinds {
        cols.push(format!(
            "coalesce(sum(CASE WHEN {cond} THEN 1 ELSE 0 END), 0)"
        ));
        cols.push(format!(
            "coalesce(sum(CASE WHEN {cond} THEN cost_nanos END), 0)"
        ));
        for f in FIELDS {
            let has = format!("{cond} AND coalesce({f}, '') <> ''");
            cols.push(format!(
                "coalesce(sum(CASE WHEN {has} THEN 1 ELSE 0 END), 0)"
            ));
            cols.push(format!(
                "coalesce(sum(CASE WHEN {has} THEN cost_nanos END), 0)"
            ));
        }
    }
    format!("SELECT {} FROM rows WHERE source = ?1", cols.join(",\n  "))
}

/// Columns per kind block: rows, spend, then rows and spend per field.
const BLOCK: usize = 2 + 2 * FIELDS.len();

fn kind_block(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<KindCoverage> {
    let rows: i64 = r.get(at)?;
    let spend: i64 = r.get(at + 1)?;
    let mut fields = BTreeMap::new();
    for (i, f) in FIELDS.iter().enumerate() {
        let f_rows: i64 = r.get(at + 2 + 2 * i)?;
        let f_spend: i64 = r.get(at + 3 + 2 * i)?;
        fields.insert(
            *f,
            FieldShare {
                rows_share: share(f_rows, rows),
                spend_share: share(f_spend, spend),
            },
        );
    }
    Ok(KindCoverage {
        rows: rows as u64,
        priced_usd: Usd::from_nanos(spend),
        fields,
    })
}

impl Store {
    /// The names of every source with stored rows, sorted.
    pub fn stored_sources(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT DISTINCT source FROM rows ORDER BY source")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Attribution coverage of one source's raw rows, with its lag measured from `now_ms`.
    pub fn source_coverage(&self, source: &str, now_ms: i64) -> Result<SourceCoverage> {
        let sql = coverage_sql();
        let mut stmt = self.conn().prepare_cached(&sql).map_err(|e| self.err(e))?;
        stmt.query_row([source], |r| {
            let newest: Option<i64> = r.get(0)?;
            let unpriced: i64 = r.get(1)?;
            let all = kind_block(r, 2)?;
            let mut kinds = BTreeMap::new();
            for (i, (name, _)) in KINDS.iter().enumerate() {
                let k = kind_block(r, 2 + BLOCK * (i + 1))?;
                if k.rows > 0 {
                    kinds.insert(*name, k);
                }
            }
            Ok(SourceCoverage {
                name: source.to_string(),
                rows: all.rows,
                newest: newest.and_then(|ms| {
                    jiff::Timestamp::from_millisecond(ms)
                        .ok()
                        .map(|t| t.to_string())
                }),
                lag_s: newest.map(|ms| (now_ms - ms).div_euclid(1000)),
                priced_usd: all.priced_usd,
                unpriced_rows: unpriced as u64,
                fields: all.fields,
                kinds,
            })
        })
        .map_err(|e| self.err(e))
    }

    /// Coverage of the configured sources, in their order, then of every other source with
    /// stored rows (such as `cli`, where `spendpager ingest` stores by default).
    pub fn coverage(&self, configured: &[&str], now_ms: i64) -> Result<Vec<SourceCoverage>> {
        let mut names: Vec<String> = configured.iter().map(|s| s.to_string()).collect();
        for s in self.stored_sources()? {
            if !names.contains(&s) {
                names.push(s);
            }
        }
        names
            .iter()
            .map(|n| self.source_coverage(n, now_ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_has_one_block_per_kind() {
        let sql = coverage_sql();
        assert_eq!(sql.matches("THEN 1 ELSE 0 END").count(), 4 * 5);
        assert_eq!(BLOCK, 10);
    }
}
