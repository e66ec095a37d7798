//! `spendpager demo`: the README's first command. With no configuration at all it builds a
//! scratch store from the bundled real sample (14 days of 38 tenants' traffic derived from
//! Alibaba's ServeGen production traces), backtests the bundled rules over it, and prints
//! what someone would have been paged with.

use crate::alert::{Alert, Status};
use crate::backtest;
use crate::config::Config;
use crate::price::PriceTable;
use crate::source::jsonl;
use crate::store::Store;
use jiff::Timestamp;
use std::io::Write;
use std::path::Path;

/// The bundled sample, gzipped JSON lines (see data/sample/SOURCE.md).
pub const SAMPLE: &[u8] = include_bytes!("../data/sample/servegen-cost-rows.jsonl.gz");

/// The bundled rules, as shipped in rules/.
pub const RULES: &[(&str, &str)] = &[("rules/spend.yaml", include_str!("../rules/spend.yaml"))];

/// Days of history before the replay starts (the bundled spike rule's `min_history`).
const WARM_UP_DAYS: i64 = 3;

/// The demo's configuration: the bundled rules, alerts to the console.
const DEMO_CONFIG: &str = "\
timezone: UTC
schedule: \"*/5 * * * *\"
delay: 2m
channels:
  console: { kind: console }
  oncall: { kind: console }
  team-slack: { kind: console }
";

pub struct DemoOutcome {
    pub report: backtest::BacktestReport,
    pub rows: u64,
    pub tenants: u64,
    pub ingest_seconds: f64,
    pub backtest_seconds: f64,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Builds the scratch store in `dir` and backtests the bundled rules over the sample.
pub fn run_in(dir: &Path) -> anyhow::Result<DemoOutcome> {
    let config = Config::from_yaml(Path::new("demo.yaml"), DEMO_CONFIG, dir, RULES)
        .map_err(|e| anyhow::anyhow!("bundled demo configuration: {e}"))?;
    let mut store = Store::open(&dir.join("demo.db"))?;
    let prices = PriceTable::bundled();
    let started = std::time::Instant::now();
    let report = jsonl::ingest_reader(
        &mut store,
        &prices,
        "servegen-sample",
        "servegen-cost-rows.jsonl",
        flate2::read::GzDecoder::new(SAMPLE),
    )?;
    let ingest_seconds = started.elapsed().as_secs_f64();
    let (first, last) = store
        .time_range()?
        .ok_or_else(|| anyhow::anyhow!("the sample is empty"))?;
    let tenants: u64 =
        store
            .conn()
            .query_row("SELECT count(DISTINCT tenant) FROM rows", [], |r| {
                r.get::<_, i64>(0)
            })? as u64;
    // The first days are warm-up: every tenant is new when the trace begins, which says
    // nothing about the tenant; the replay starts once the spike rule's history exists.
    let from =
        Timestamp::from_millisecond(first)? + jiff::SignedDuration::from_hours(24 * WARM_UP_DAYS);
    let to = Timestamp::from_millisecond(last)? + jiff::SignedDuration::from_hours(1);
    let started = std::time::Instant::now();
    let bt = backtest::run(&config, &store, from, to, None)?;
    Ok(DemoOutcome {
        report: bt,
        rows: report.stored,
        tenants,
        ingest_seconds,
        backtest_seconds: started.elapsed().as_secs_f64(),
        from,
        to,
    })
}

/// Runs the demo in a temporary folder and prints it, for a person or as JSON lines.
pub fn run(json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let result = run_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let o = result?;
    if json {
        for a in &o.report.notifications {
            writeln!(out, "{}", serde_json::to_string(a)?)?;
        }
        return Ok(());
    }
    let firing: Vec<&Alert> = o
        .report
        .notifications
        .iter()
        .filter(|a| a.status == Status::Firing)
        .collect();
    // A page whose alert started earlier is a reminder (`repeat`), not a new incident.
    let new = firing
        .iter()
        .filter(|a| a.started_at.as_deref() == Some(a.at.as_str()))
        .count();
    writeln!(
        out,
        "spendpager demo: {} cost rows of {} tenants (real traffic from Alibaba's ServeGen traces).\n\
         Replayed {} to {}, after {WARM_UP_DAYS} days of history, every 5 minutes ({} cycles),\n\
         with the bundled rules (rules/spend.yaml): {} pages, {new} of them new incidents and {} reminders; {} resolved.\n",
        o.rows,
        o.tenants,
        o.from,
        o.to,
        o.report.cycles,
        firing.len(),
        firing.len() - new,
        o.report.notifications.len() - firing.len()
    )?;
    for a in &firing {
        let severity = format!("{:?}", a.severity).to_lowercase();
        writeln!(
            out,
            "{}  {} [{severity}] {}",
            a.at,
            a.rule,
            crate::alert::model::series_words(a)
        )?;
        if a.started_at.as_deref() != Some(a.at.as_str()) {
            writeln!(
                out,
                "    (reminder: firing since {})",
                a.started_at.as_deref().unwrap_or("?")
            )?;
        }
        writeln!(out, "    {}", a.summary)?;
        writeln!(out)?;
    }
    writeln!(out, "Per rule:")?;
    for (rule, t) in &o.report.per_rule {
        writeln!(
            out,
            "  {rule}: {} over {}, {} resolved",
            plural(t.firing, "page"),
            plural(t.series.len() as u64, "series"),
            t.resolved
        )?;
    }
    writeln!(
        out,
        "\nIngest {:.1}s ({:.0} rows/s), backtest {:.1}s. The same alerts as JSON: spendpager demo --json",
        o.ingest_seconds,
        o.rows as f64 / o.ingest_seconds.max(1e-9),
        o.backtest_seconds
    )?;
    Ok(())
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 || word.ends_with('s') {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("spendpager-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
