//! `spendpager status`: what is firing, what waits in the outbox, what failed for good, when
//! the last evaluation ran, and where each source is.

use crate::config::Config;
use crate::store::{Result, Store};
use std::io::Write;

fn when(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn print(config: &Config, store: &Store, out: &mut dyn Write) -> anyhow::Result<()> {
    let alerts = store.load_alerts()?;
    let firing: Vec<_> = alerts
        .iter()
        .filter(|a| a.state == "firing" || a.state == "pending")
        .collect();
    writeln!(out, "alerts: {} firing or pending", firing.len())?;
    for a in firing {
        let held = a
            .held_by
            .as_deref()
            .map(|h| format!(", held by {h}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {} {} {} since {} (key {}{held})",
            a.state,
            a.rule,
            a.series,
            when(a.since_ms),
            a.dedup_key
        )?;
    }
    let silences = store.silences(Some(jiff::Timestamp::now().as_millisecond()))?;
    writeln!(out, "silences: {} not ended", silences.len())?;
    for s in &silences {
        writeln!(
            out,
            "  {} {} until {} {}",
            s.id,
            s.matchers,
            when(s.ends_ms),
            s.comment
        )?;
    }
    let queued = store.outbox()?;
    writeln!(out, "outbox: {} queued", queued.len())?;
    for m in queued.iter().take(20) {
        writeln!(
            out,
            "  {} {} {} attempts {} next {} {}",
            m.channel,
            m.status,
            m.dedup_key,
            m.attempts,
            when(m.next_attempt_ms),
            m.last_error.as_deref().unwrap_or("")
        )?;
    }
    let failed = store.failed_deliveries()?;
    writeln!(out, "failed deliveries: {}", failed.len())?;
    for f in failed.iter().rev().take(20) {
        writeln!(
            out,
            "  {} {} {} {}: {}",
            when(f.failed_ms),
            f.channel,
            f.status,
            f.dedup_key,
            f.error
        )?;
    }
    match store.last_evaluation()? {
        Some(ms) => writeln!(out, "last evaluation: {}", when(ms))?,
        None => writeln!(out, "last evaluation: never")?,
    }
    let now_ms = jiff::Timestamp::now().as_millisecond();
    for s in &config.sources {
        let cursors: Result<Vec<(String, String)>> = store.cursors(s.name());
        let (rows, newest) = store.source_rows(s.name())?;
        let lag = newest
            .map(|ms| format!("newest row {} ({}s ago)", when(ms), (now_ms - ms) / 1000))
            .unwrap_or_else(|| "no rows yet".into());
        writeln!(
            out,
            "source {}: {rows} rows, {lag}, {} cursor entries",
            s.name(),
            cursors?.len()
        )?;
    }
    Ok(())
}
