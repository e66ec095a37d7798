//! `spendpager bench [--quick]`: measures the product's own code paths on generated data and
//! prints them beside a naive alternative, ending with one JSON line.
//!
//! - Ingest: native JSON lines through the same path as `spendpager ingest` (parse, price,
//!   identity digest, rows, minute rollups, one transaction per batch), against a bare
//!   prepared-statement insert of the same, already parsed, rows into a plain table.
//! - Evaluation: one cycle of a daily spike rule over 14 days of history at several series
//!   counts, cold (nothing cached) and in steady state (the daemon's case: the past windows
//!   were read by earlier cycles and only the current window is new), against the same
//!   decisions computed with SQL over raw rows. The steady figure is the median of five
//!   cycles, each after a few new rows. Peak memory is the process's VmHWM, reset before the
//!   cycles where the kernel allows it.
//! - Growth: the steady-state cycle again with ten times the rows at the same series.
//!
//! Figures are only meaningful from a release build (`cargo build --release`).

use crate::config::Config;
use crate::cycle;
use crate::evaluate::baseline::Baseline;
use crate::evaluate::windows;
use crate::money::Usd;
use crate::price::PriceTable;
use crate::row::CostRow;
use crate::source::BATCH_ROWS;
use crate::source::jsonl;
use crate::store::{IngestBatch, Position, Store, StoreHistory};
use anyhow::Context;
use jiff::Timestamp;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

const RULES: &str = "rules:
  - name: bench-spike
    kind: spike
    group_by: [tenant]
    window: 1h
    baseline: { lookback: 14d, seasonality: daily }
    threshold: { sensitivity: 4, min_delta_usd: 0.05 }
    young: { min_history: 1d }
    channels: [out]
";

/// Sizes of one run.
struct Sizes {
    ingest_rows: usize,
    series: Vec<usize>,
    /// Rows per series in each judged hour of the 15 days (current and 14 comparable).
    rows_per_hour: usize,
    growth_series: usize,
}

/// The judged instant: windows end at 12:00 UTC, so the current hour is 11:00 to 12:00.
fn judged_at() -> Timestamp {
    "2026-03-20T12:00:00Z".parse().expect("a fixed instant")
}

/// Peak resident memory of this process in MB, from /proc/self/status.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak so the next reading covers only what follows (Linux `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn row(ts_ms: i64, id: u64, tenant: usize, cost: f64) -> CostRow {
    CostRow {
        ts_ms,
        provider: Some("openai".into()),
        model: "gpt-4o".into(),
        request_id: Some(format!("r{id}")),
        requests: 1,
        input_tokens: 1200 + id % 500,
        cached_input_tokens: 0,
        cache_write_tokens: 0,
        output_tokens: 300 + id % 100,
        cost_usd: Usd::from_f64(cost),
        tenant: Some(format!("tenant-{tenant:06}")),
        feature: Some(["chat", "search", "agent"][tenant % 3].into()),
        user: None,
        workflow: None,
        tags: Default::default(),
    }
}

/// A row as a native JSON line, the way an application logs it.
fn native_line(r: &CostRow) -> String {
    let ts = Timestamp::from_millisecond(r.ts_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    serde_json::json!({
        "ts": ts.to_string(),
        "request_id": r.request_id,
        "provider": r.provider,
        "model": r.model,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": r.cost_usd.map(|c| c.as_f64()),
        "tenant": r.tenant,
        "feature": r.feature,
    })
    .to_string()
        + "\n"
}

/// Ingest: the product path against a bare insert.
fn bench_ingest(dir: &Path, n: usize, out: &mut dyn Write) -> anyhow::Result<(f64, f64)> {
    let start_ms = judged_at().as_millisecond() - 86_400_000;
    let mut lines = String::with_capacity(n * 220);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let r = row(
            start_ms + i as i64 * 97,
            i as u64,
            i % 2000,
            0.001 + (i % 13) as f64 * 1e-4,
        );
        lines.push_str(&native_line(&r));
        rows.push(r);
    }
    // Both stores start empty, also when `--dir` holds an earlier run's.
    for name in ["ingest.db", "bare.db"] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}{suffix}")));
        }
    }
    let mut store = Store::open(&dir.join("ingest.db"))?;
    let t = Instant::now();
    let report = jsonl::ingest_reader(
        &mut store,
        &PriceTable::bundled(),
        "bench",
        "bench.jsonl",
        lines.as_bytes(),
    )?;
    let ours = n as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.stored as usize == n,
        "stored {} of {n}",
        report.stored
    );

    let mut conn = rusqlite::Connection::open(dir.join("bare.db"))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, ts_ms INTEGER, provider TEXT, model TEXT,
            request_id TEXT, requests INTEGER, input_tokens INTEGER, output_tokens INTEGER,
            cost_nanos INTEGER, tenant TEXT, feature TEXT)",
    )?;
    let t = Instant::now();
    for chunk in rows.chunks(BATCH_ROWS) {
        let tx = conn.transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO rows (ts_ms, provider, model, request_id, requests, input_tokens,
                    output_tokens, cost_nanos, tenant, feature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in chunk {
                ins.execute(rusqlite::params![
                    r.ts_ms,
                    r.provider,
                    r.model,
                    r.request_id,
                    r.requests as i64,
                    r.input_tokens as i64,
                    r.output_tokens as i64,
                    r.cost_usd.map(Usd::nanos),
                    r.tenant,
                    r.feature
                ])?;
            }
        }
        tx.commit()?;
    }
    let bare = n as f64 / t.elapsed().as_secs_f64();
    writeln!(
        out,
        "ingest {n} rows: {ours:.0} rows/s (JSON lines, rollups, dedup) vs {bare:.0} rows/s bare insert: {:.2}x",
        ours / bare
    )?;
    Ok((ours, ours / bare))
}

/// A store with `series` tenants: `per_hour` rows in the judged hour of each of the last 15
/// days, and one tenant in a hundred spending ten times more in the current hour.
fn build_history(path: &Path, series: usize, per_hour: usize) -> anyhow::Result<Store> {
    let _ = std::fs::remove_file(path);
    let mut store = Store::open(path)?;
    let prices = PriceTable::bundled();
    let hour_start = judged_at().as_millisecond() - 3_600_000;
    let mut id = 0u64;
    for day in (0..15).rev() {
        let mut batch = IngestBatch::new("bench");
        for s in 0..series {
            for k in 0..per_hour {
                id += 1;
                let minute = ((s * 7 + k * 13 + day * 3) % 60) as i64;
                let ts = hour_start - day as i64 * 86_400_000 + minute * 60_000 + (k as i64 % 60);
                let spiking = day == 0 && s % 100 == 7;
                let cost = (0.01 + (s % 10) as f64 * 0.002 + (day % 3) as f64 * 0.001)
                    * if spiking { 10.0 } else { 1.0 };
                batch.rows.push((
                    row(ts, id, s, cost),
                    Position {
                        file: "gen".into(),
                        line: id,
                    },
                ));
                if batch.rows.len() >= 50_000 {
                    store.ingest(&batch, &prices)?;
                    batch.rows.clear();
                }
            }
        }
        store.ingest(&batch, &prices)?;
    }
    Ok(store)
}

/// The rule's decisions from SQL over raw rows: per tenant, spend in the current window and
/// in each comparable window, then the same baseline and thresholds. Returns the firing
/// tenants and the time taken.
fn decide_by_sql(store: &Store, config: &Config) -> anyhow::Result<(Vec<String>, f64)> {
    let t = Instant::now();
    let rule = &config.rules[0];
    let crate::config::RuleKind::Spike(spike) = &rule.kind else {
        anyhow::bail!("the bench rule is a spike rule");
    };
    let plan = windows::plan(rule, judged_at(), config.delay);
    let conn = rusqlite::Connection::open(store.path())?;
    let mut stmt = conn.prepare(
        "SELECT tenant, coalesce(sum(cost_nanos), 0) FROM rows
         WHERE ts_ms >= ?1 AND ts_ms < ?2 GROUP BY tenant",
    )?;
    let mut spend = |span: &windows::Span| -> anyhow::Result<HashMap<String, i64>> {
        let rows = stmt.query_map([span.start_ms(), span.end_ms()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let current = spend(&plan.current)?;
    let past: Vec<HashMap<String, i64>> = plan
        .comparable
        .iter()
        .map(&mut spend)
        .collect::<anyhow::Result<_>>()?;
    let mut firing = Vec::new();
    for (tenant, nanos) in &current {
        let history: Vec<f64> = past
            .iter()
            .map(|p| p.get(tenant).copied().unwrap_or(0) as f64 / 1e9)
            .collect();
        let base = Baseline::from_history(&history);
        let observed = Usd::from_nanos(*nanos);
        let baseline = Usd::from_f64(base.location).unwrap_or(Usd::ZERO);
        let ratio_ok = baseline.nanos() <= 0
            || observed.nanos() as f64 / baseline.nanos() as f64 >= spike.min_ratio;
        if base.score(observed.as_f64()) >= spike.sensitivity
            && observed - baseline >= spike.min_delta
            && ratio_ok
        {
            firing.push(tenant.clone());
        }
    }
    firing.sort();
    Ok((firing, t.elapsed().as_secs_f64() * 1000.0))
}

/// How many steady cycles the steady figure is the median of.
const STEADY_ROUNDS: usize = 5;

/// One cycle's figures.
struct CycleRun {
    cold_ms: f64,
    steady_ms: f64,
    rss_mb: f64,
    firing: Vec<String>,
}

/// Runs the daemon's cycle cold, then again after new rows in the current hour (the
/// steady state, where earlier cycles read the past windows).
fn run_cycles(store: &mut Store, config: &Config, series: usize) -> anyhow::Result<CycleRun> {
    let at = judged_at();
    let mut history = StoreHistory::new();
    reset_peak();
    let t = Instant::now();
    let notes = cycle::run_cycle(config, store, &mut history, at, true)?;
    let cold_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut firing: Vec<String> = notes
        .iter()
        .filter_map(|n| n.alert.labels.get("tenant").cloned().flatten())
        .collect();
    firing.sort();

    // New rows arrive for the current hour, as they do between two cycles; the steady figure
    // is the median of a few such cycles, since one cycle on a shared machine is noisy.
    let hour_start = at.as_millisecond() - 3_600_000;
    let mut steady = Vec::new();
    for round in 0..STEADY_ROUNDS {
        let mut batch = IngestBatch::new("bench-late");
        for s in (0..series).step_by(10) {
            let id = 1_000_000_000 * (round as u64 + 1) + s as u64;
            batch.rows.push((
                row(hour_start + 59 * 60_000, id, s, 0.0001),
                Position {
                    file: "late".into(),
                    line: id,
                },
            ));
        }
        // The store logs what it committed; the next cycle patches its cached windows.
        store.ingest(&batch, &PriceTable::bundled())?;
        let t = Instant::now();
        cycle::run_cycle(config, store, &mut history, at, true)?;
        steady.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    steady.sort_by(f64::total_cmp);
    let steady_ms = steady[steady.len() / 2];
    Ok(CycleRun {
        cold_ms,
        steady_ms,
        rss_mb: peak_rss_mb(),
        firing,
    })
}

pub fn run(quick: bool, dir: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    let sizes = if quick {
        Sizes {
            ingest_rows: 20_000,
            series: vec![200, 1_000],
            rows_per_hour: 1,
            growth_series: 200,
        }
    } else {
        Sizes {
            ingest_rows: 500_000,
            series: vec![1_000, 10_000, 100_000],
            rows_per_hour: 1,
            growth_series: 10_000,
        }
    };
    let scratch;
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.to_path_buf()
        }
        None => {
            scratch = TempDir::new()?;
            scratch.0.clone()
        }
    };
    if cfg!(debug_assertions) {
        writeln!(
            out,
            "note: a debug build; figures from `cargo build --release` are the ones to quote"
        )?;
    }
    let yaml = format!(
        "store: {}\ndelay: 0s\nchannels:\n  out: {{ kind: console }}\n{RULES}",
        dir.join("eval.db").display()
    );
    let config = Config::from_yaml(Path::new("bench.yaml"), &yaml, &dir, &[])
        .map_err(|e| anyhow::anyhow!("bench configuration: {e}"))?;

    let (ingest_rate, ingest_ratio) = bench_ingest(&dir, sizes.ingest_rows, out)?;

    let mut last = None;
    for &series in &sizes.series {
        let t = Instant::now();
        let mut store = build_history(&dir.join("eval.db"), series, sizes.rows_per_hour)?;
        let built_s = t.elapsed().as_secs_f64();
        let run = run_cycles(&mut store, &config, series)?;
        let (sql_firing, sql_ms) = decide_by_sql(&store, &config)?;
        let agree = sql_firing == run.firing;
        writeln!(
            out,
            "cycle at {series} series, 14 days (built in {built_s:.1}s): cold {:.1} ms, steady {:.1} ms, \
             peak {:.0} MB; SQL over raw rows {sql_ms:.1} ms ({:.1}x steady); {} firing, SQL {}",
            run.cold_ms,
            run.steady_ms,
            run.rss_mb,
            sql_ms / run.steady_ms,
            run.firing.len(),
            if agree { "agrees" } else { "DISAGREES" },
        )?;
        anyhow::ensure!(agree, "the cycle and SQL over raw rows decided differently");
        last = Some((run, sql_ms));
    }
    let (last_run, last_sql) = last.context("no series sizes")?;

    let mut growth = Vec::new();
    for factor in [1, 10] {
        let mut store = build_history(
            &dir.join("growth.db"),
            sizes.growth_series,
            sizes.rows_per_hour * factor,
        )?;
        growth.push(run_cycles(&mut store, &config, sizes.growth_series)?);
    }
    let growth_ratio = growth[1].steady_ms / growth[0].steady_ms;
    writeln!(
        out,
        "ten times the rows at {} series: steady cycle {:.1} ms -> {:.1} ms ({growth_ratio:.2}x), cold {:.1} -> {:.1} ms",
        sizes.growth_series,
        growth[0].steady_ms,
        growth[1].steady_ms,
        growth[0].cold_ms,
        growth[1].cold_ms,
    )?;
    let summary = serde_json::json!({
        "quick": quick,
        "series_max": sizes.series.last(),
        "ingest_rows_per_s": ingest_rate.round(),
        "ingest_vs_bare": (ingest_ratio * 100.0).round() / 100.0,
        "eval_ms_100k": (last_run.steady_ms * 10.0).round() / 10.0,
        "eval_cold_ms_100k": (last_run.cold_ms * 10.0).round() / 10.0,
        "eval_vs_sql": (last_sql / last_run.steady_ms * 10.0).round() / 10.0,
        "rss_mb": last_run.rss_mb.round(),
        "rows_x10_cycle_ratio": (growth_ratio * 100.0).round() / 100.0,
    });
    writeln!(out, "{summary}")?;
    Ok(())
}

/// A scratch folder under the system temporary folder, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let p = std::env::temp_dir().join(format!(
            "spendpager-bench-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
