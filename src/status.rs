//! `spendpager status`: what is firing, what waits in the outbox, what failed for good, when
//! the last evaluation ran, and where each source is; and `spendpager sources`: how much of
//! each source's rows and spend carry each attribution field.

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
    let lag = |newest: Option<i64>| {
        newest
            .map(|ms| format!("newest row {} ({}s ago)", when(ms), (now_ms - ms) / 1000))
            .unwrap_or_else(|| "no rows yet".into())
    };
    for s in &config.sources {
        let cursors: Result<Vec<(String, String)>> = store.cursors(s.name());
        let (rows, newest) = store.source_rows(s.name())?;
        writeln!(
            out,
            "source {}: {rows} rows, {}, {} cursor entries",
            s.name(),
            lag(newest),
            cursors?.len()
        )?;
    }
    // The HTTP ingest endpoint is a source too, with no cursor: applications push to it.
    if let Some(ingest) = config.ops.http.as_ref().and_then(|h| h.ingest.as_ref()) {
        let (rows, newest) = store.source_rows(&ingest.source)?;
        writeln!(
            out,
            "source {} (POST /ingest, /v1/traces): {rows} rows, {}",
            ingest.source,
            lag(newest)
        )?;
    }
    Ok(())
}

fn percent(share: Option<f64>) -> String {
    share
        .map(|s| format!("{:.0}%", s * 100.0))
        .unwrap_or_else(|| "-".into())
}

/// `spendpager sources`: per source its rows, lag and spend, and per attribution field the
/// share of rows / share of spend that carry a value, for all rows and per kind of row.
pub fn print_sources(
    config: &Config,
    store: &Store,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let names: Vec<&str> = config.sources.iter().map(|s| s.name()).collect();
    let list = store.coverage(&names, jiff::Timestamp::now().as_millisecond())?;
    if json {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&serde_json::json!({ "sources": list }))?
        )?;
        return Ok(());
    }
    if list.is_empty() {
        writeln!(out, "no sources configured and no rows stored")?;
    }
    for s in &list {
        let newest = match (&s.newest, s.lag_s) {
            (Some(t), Some(lag)) => format!("newest row {t} ({lag}s ago)"),
            _ => "no rows yet".into(),
        };
        writeln!(
            out,
            "source {}: {} rows, {newest}, ${} priced, {} unpriced rows",
            s.name,
            s.rows,
            s.priced_usd.human(),
            s.unpriced_rows
        )?;
        if s.rows == 0 {
            continue;
        }
        let mut head = format!("  {:<10}{:>8}", "", "rows");
        for f in crate::store::FIELDS {
            head.push_str(&format!("  {f:<13}"));
        }
        writeln!(out, "{}  (share of rows / share of spend)", head.trim_end())?;
        let all = std::iter::once(("all", s.rows, &s.fields));
        let kinds = s.kinds.iter().map(|(k, c)| (*k, c.rows, &c.fields));
        for (kind, rows, fields) in all.chain(kinds) {
            let mut line = format!("  {kind:<10}{rows:>8}");
            for f in crate::store::FIELDS {
                let share = fields.get(f).copied().unwrap_or_default();
                let cell = format!(
                    "{} / {}",
                    percent(share.rows_share),
                    percent(share.spend_share)
                );
                line.push_str(&format!("  {cell:<13}"));
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}
