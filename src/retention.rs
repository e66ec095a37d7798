//! Retention as the daemon and `spendpager db compact` run it: the cut-offs come from the
//! configuration's `retention` key and from the rules (minute rollups are kept as far back
//! as the longest-looking rule reads; see [`crate::config::ops::RetentionConfig`]), and the
//! store does the work in bounded steps.

use crate::config::Config;
use crate::store::{CompactPolicy, CompactReport, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the daemon compacts.
pub const EVERY: Duration = Duration::from_secs(3600);

/// The cut-offs for `config` at `now_ms`.
pub fn policy(config: &Config, now_ms: i64) -> CompactPolicy {
    let retention = &config.ops.retention;
    let horizon = retention.minute_horizon(&config.rules, config.delay);
    CompactPolicy::at(now_ms, retention, horizon)
}

/// Compacts a shared store, taking its lock for one step at a time so that cycles and
/// ingest go on between steps. Blocking: call from a blocking thread.
pub fn compact_shared(
    store: &Arc<Mutex<Store>>,
    policy: &CompactPolicy,
) -> crate::store::Result<CompactReport> {
    let mut total = CompactReport::default();
    loop {
        let step = store.lock().expect("store lock").compact_step(policy)?;
        let Some(step) = step else { break };
        total.add(&step);
    }
    Ok(total)
}

/// `spendpager db compact`: compacts now and says what it did.
pub fn compact_command(config: &Config, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let mut store = Store::open(&config.store)?;
    let policy = policy(config, jiff::Timestamp::now().as_millisecond());
    let r = store.compact(&policy)?;
    let when = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    writeln!(
        out,
        "deleted {} raw rows before {}; folded {} minute rollups before {} into {} hourly ones; \
         deleted {} hourly rollups before {}",
        r.raw_rows_deleted,
        when(policy.raw_before_ms),
        r.minute_rollups_folded,
        when(policy.minute_before * 60_000),
        r.hour_rollups_written,
        r.hour_rollups_deleted,
        when(policy.hour_before * 60_000),
    )?;
    Ok(())
}

/// `spendpager db stats`: file size, and count and time span of each table.
pub fn stats_command(
    config: &Config,
    json: bool,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    if !config.store.exists() {
        anyhow::bail!("no store at {} yet", config.store.display());
    }
    let store = Store::open_read_only(&config.store)?;
    let stats = store.stats()?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&stats)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "store {}: {:.1} MB",
        config.store.display(),
        stats.file_bytes as f64 / 1e6
    )?;
    for t in &stats.tables {
        let span = match (&t.oldest, &t.newest) {
            (Some(a), Some(b)) => format!("{a} to {b}"),
            _ => "empty".into(),
        };
        writeln!(out, "  {:<14} {:>12}  {span}", t.name, t.count)?;
    }
    if let Some(m) = &stats.minutes_folded_before {
        writeln!(out, "minute rollups before {m} are kept as hours")?;
    }
    if let Some(r) = &stats.raw_deleted_before {
        writeln!(out, "raw rows before {r} were deleted")?;
    }
    Ok(())
}
