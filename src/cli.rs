//! The commands. Each is a few lines over the library; errors gain their context here.

use crate::config::Config;
use crate::cycle;
use crate::notify::outbox::Deliverer;
use crate::notify::{self, Channel};
use crate::price::PriceTable;
use crate::source::formats::{self, Format};
use crate::source::mapping::Mapping;
use crate::store::{IngestReport, Store, StoreHistory};
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use jiff::Timestamp;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "spendpager",
    version,
    about = "Pages someone when LLM spend spikes, and names who caused it"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, env = "SPENDPAGER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store cost rows from files (or - for standard input) and report what happened.
    Ingest {
        /// The source the rows are stored under (their identity is source and request id).
        #[arg(long, default_value = "cli")]
        source: String,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// The files' format: native rows, or a gateway or provider export.
        #[arg(long, value_enum, default_value = "native")]
        format: Format,
        /// Where an attribution field comes from, as a source's `attribution` says it:
        /// `tenant=metadata.team`, `feature=tag:feature`, `workflow=span:app.workflow`
        /// (repeatable; laid over the mapping of the configured source named by --source).
        #[arg(long = "map", value_name = "FIELD=PLACE")]
        map: Vec<String>,
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// One evaluation cycle at an instant; prints its notifications as JSON lines.
    Evaluate {
        /// The instant: RFC 3339 with an offset, a date (midnight UTC), or `now` (the default).
        #[arg(long)]
        at: Option<String>,
        /// Decide and print, but record nothing and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replay the schedule over stored history and print what would have been sent.
    Backtest {
        #[arg(long, required_unless_present = "nab")]
        from: Option<String>,
        #[arg(long, required_unless_present = "nab")]
        to: Option<String>,
        #[arg(long, required_if_eq_any = [("nab", "")])]
        rule: Option<String>,
        /// Score --rule on a Numenta Anomaly Benchmark folder (data/ and labels/) instead.
        #[arg(long)]
        nab: Option<PathBuf>,
        /// With --nab: only files whose path contains this (e.g. realAdExchange).
        #[arg(long, default_value = "")]
        nab_filter: String,
        /// Score the run against labelled incident windows (a JSON list of
        /// {start, end, series?, name?}); the score goes to standard error as JSON.
        #[arg(long)]
        labels: Option<PathBuf>,
    },
    /// Check the configuration and rules.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// Run the daemon.
    Run,
    /// Backtest the bundled rules over the bundled real sample; needs no configuration.
    Demo {
        /// Print the notifications as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Show firing alerts, the outbox, failed deliveries, the last evaluation and sources.
    Status,
    /// Attribution coverage per source: rows, lag, spend, and the share of rows and spend
    /// that carry each attribution field, split by streamed, retried and cached rows.
    Sources {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Hold pages back: add, list and expire silences.
    Silence {
        #[command(subcommand)]
        action: SilenceAction,
    },
    /// Work with the notification channels.
    Notify {
        #[command(subcommand)]
        action: NotifyAction,
    },
    /// Inspect and compact the store.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Measure ingest and evaluation on generated data (release builds give real figures).
    Bench {
        /// Smaller sizes, done in well under a minute.
        #[arg(long)]
        quick: bool,
        /// Where the generated stores go (default: a temporary folder, removed after).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum DbAction {
    /// File size, row counts and time spans of rows, rollups, outbox and alerts.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Apply the retention now: delete old raw rows, fold old minute rollups into hours.
    Compact,
}

#[derive(Subcommand, Debug)]
enum SilenceAction {
    /// Silence the alerts whose labels match every --match.
    Add {
        /// key=value or key!=value over rule, severity and the labels; repeatable.
        #[arg(long = "match", required = true)]
        matchers: Vec<String>,
        /// How long, like 2h or 30m.
        #[arg(long = "for")]
        duration: String,
        /// When it starts, RFC 3339 (default: now).
        #[arg(long)]
        start: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// The silences that have not ended (or all of them).
    List {
        #[arg(long)]
        all: bool,
    },
    /// End a silence now.
    Expire { id: i64 },
}

#[derive(Subcommand, Debug)]
enum NotifyAction {
    /// Send a sample alert, marked as a test, through a channel; exit non-zero unless it
    /// was delivered.
    Test {
        /// The channel's name under `channels:`.
        channel: String,
    },
}

#[derive(Subcommand, Debug)]
enum RulesAction {
    /// Validate; exit 0, or non-zero with every error.
    Check,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match dispatch(cli) {
        Ok(code) => code,
        // A reader that went away (`| head`) is not an error worth a message.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let json = std::env::var("SPENDPAGER_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn config_path(cli: &Cli) -> anyhow::Result<PathBuf> {
    match &cli.config {
        Some(p) => Ok(p.clone()),
        None if Path::new("spendpager.yaml").exists() => Ok(PathBuf::from("spendpager.yaml")),
        None => bail!(
            "no configuration: pass --config FILE or set SPENDPAGER_CONFIG (or try `spendpager demo`)"
        ),
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let path = config_path(cli)?;
    Config::load(&path).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

fn prices(config: &Config) -> anyhow::Result<PriceTable> {
    Ok(match &config.prices {
        Some(p) => PriceTable::with_overrides(p)?,
        None => PriceTable::bundled(),
    })
}

/// Reads `now`, RFC 3339, or a plain date (midnight UTC).
pub fn parse_instant(text: &str) -> anyhow::Result<Timestamp> {
    if text == "now" {
        return Ok(Timestamp::now());
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return Ok(d.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp());
    }
    bail!("`{text}` is not a time: use RFC 3339 with an offset, like 2025-03-10T14:00:00Z")
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that never deliver do not need the channels' secrets.
    let delivers = matches!(
        cli.command,
        Command::Run | Command::Evaluate { .. } | Command::Rules { .. } | Command::Notify { .. }
    );
    crate::config::SECRETS_OPTIONAL.store(!delivers, std::sync::atomic::Ordering::Relaxed);
    // Not locked for the whole command: the daemon's console channel writes to stdout from
    // its delivery task, and a lock held here would block it for good.
    let mut out = std::io::stdout();
    match &cli.command {
        Command::Demo { json } => {
            crate::demo::run(*json, &mut out)?;
        }
        Command::Rules {
            action: RulesAction::Check,
        } => {
            let path = config_path(&cli)?;
            match Config::load(&path) {
                Ok(c) => {
                    writeln!(
                        out,
                        "ok: {} rules, {} channels, {} sources in {} files",
                        c.rules.len(),
                        c.channels.len(),
                        c.sources.len(),
                        c.files.len()
                    )?;
                }
                Err(errors) => {
                    for e in &errors.0 {
                        eprintln!("{e}");
                    }
                    eprintln!("{} error(s)", errors.0.len());
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Command::Ingest {
            source,
            json,
            format,
            map,
            files,
        } => {
            let config = load_config(&cli)?;
            let mapping = ingest_mapping(&config, source, *format, map)?;
            let prices = prices(&config)?;
            let mut store = Store::open(&config.store)?;
            let mut report = IngestReport::default();
            for f in files {
                report.merge(formats::ingest_once(
                    &mut store, &prices, source, *format, &mapping, f,
                )?);
            }
            if *json {
                writeln!(out, "{}", serde_json::to_string(&report)?)?;
            } else {
                print_ingest(&mut out, &report)?;
            }
        }
        Command::Evaluate { at, dry_run } => {
            let config = load_config(&cli)?;
            let at = match at {
                Some(t) => parse_instant(t)?,
                None => Timestamp::now(),
            };
            let mut store = Store::open(&config.store)?;
            if !dry_run
                && let Some(last) = store.last_evaluation()?
                && last > at.as_millisecond()
            {
                bail!(
                    "the store was last evaluated at {}, after {at}: recording an earlier cycle would replay out of order (use --dry-run, or backtest)",
                    Timestamp::from_millisecond(last)?
                );
            }
            let mut history = StoreHistory::new();
            let notes = cycle::run_cycle(&config, &mut store, &mut history, at, *dry_run)?;
            for n in &notes {
                writeln!(out, "{}", serde_json::to_string(&n.alert)?)?;
            }
            out.flush()?;
            if !dry_run {
                let stats = deliver_now(&config, store)?;
                if stats.left > 0 || stats.failed > 0 {
                    eprintln!(
                        "delivery: {} delivered, {} failed for good, {} still queued for the next cycle",
                        stats.delivered, stats.failed, stats.left
                    );
                }
            }
        }
        Command::Backtest {
            nab: Some(dir),
            rule,
            nab_filter,
            ..
        } => {
            let config = load_config(&cli)?;
            let Some(rule) = rule else {
                bail!("--nab needs --rule NAME")
            };
            if config.rule(rule).is_none() {
                bail!("no rule named `{rule}`");
            }
            let scratch =
                std::env::temp_dir().join(format!("spendpager-nab-{}", std::process::id()));
            std::fs::create_dir_all(&scratch)?;
            let report = crate::backtest::nab::score(&config, rule, dir, nab_filter, &scratch);
            let _ = std::fs::remove_dir_all(&scratch);
            let report = report?;
            for f in &report.files {
                writeln!(
                    out,
                    "{}: {} rows, {} of {} windows caught, {} detections, raw {:.3}",
                    f.file, f.rows, f.caught, f.windows, f.detections, f.raw
                )?;
            }
            writeln!(
                out,
                "NAB score (standard profile, normalised): {:.1}",
                report.score
            )?;
        }
        Command::Backtest {
            from,
            to,
            rule,
            labels,
            ..
        } => {
            let config = load_config(&cli)?;
            let (Some(from), Some(to)) = (from, to) else {
                bail!("--from and --to are required")
            };
            let (from, to) = (parse_instant(from)?, parse_instant(to)?);
            if to <= from {
                bail!("--to must be after --from");
            }
            let store = Store::open(&config.store)?;
            let report = crate::backtest::run(&config, &store, from, to, rule.as_deref())?;
            for a in &report.notifications {
                writeln!(out, "{}", serde_json::to_string(a)?)?;
            }
            eprintln!("backtest {from} to {to}: {} cycles", report.cycles);
            for (name, t) in &report.per_rule {
                eprintln!(
                    "  {name}: {} notifications ({} firing, {} resolved) over {} series",
                    t.notifications,
                    t.firing,
                    t.resolved,
                    t.series.len()
                );
            }
            if let Some(path) = labels {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let list: Vec<crate::backtest::labels::Label> = serde_json::from_str(&text)
                    .with_context(|| {
                        format!(
                            "{}: not a list of {{start, end, series?, name?}}",
                            path.display()
                        )
                    })?;
                let score = crate::backtest::labels::score(&report.notifications, &list, from, to);
                eprintln!(
                    "labels: {} of {} caught, {} with the culprit named, median time to detect {}, {} false pages ({:.2} a week)",
                    score.caught,
                    score.incidents,
                    score.culprit_named,
                    score
                        .median_time_to_detect_s
                        .map(|s| format!("{} min", s / 60))
                        .unwrap_or_else(|| "-".into()),
                    score.false_pages,
                    score.false_pages_per_week
                );
                eprintln!("{}", serde_json::to_string(&score)?);
            }
        }

        Command::Run => {
            let path = config_path(&cli)?;
            let config =
                Config::load(&path).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(crate::daemon::run(path, config))?;
        }
        Command::Silence { action } => {
            let config = load_config(&cli)?;
            let mut store = Store::open(&config.store)?;
            silence(&mut store, action, &mut out)?;
        }
        Command::Db { action } => {
            let config = load_config(&cli)?;
            match action {
                DbAction::Stats { json } => {
                    crate::retention::stats_command(&config, *json, &mut out)?
                }
                DbAction::Compact => crate::retention::compact_command(&config, &mut out)?,
            }
        }
        Command::Bench { quick, dir } => {
            crate::bench::run(*quick, dir.as_deref(), &mut out)?;
        }
        Command::Status => {
            let config = load_config(&cli)?;
            if !config.store.exists() {
                bail!(
                    "no store at {} yet: nothing has been ingested or evaluated",
                    config.store.display()
                );
            }
            let store = Store::open_read_only(&config.store)?;
            crate::status::print(&config, &store, &mut out)?;
        }
        Command::Sources { json } => {
            let config = load_config(&cli)?;
            if !config.store.exists() {
                bail!(
                    "no store at {} yet: nothing has been ingested",
                    config.store.display()
                );
            }
            let store = Store::open_read_only(&config.store)?;
            crate::status::print_sources(&config, &store, *json, &mut out)?;
        }
        Command::Notify {
            action: NotifyAction::Test { channel },
        } => {
            let config = load_config(&cli)?;
            let Some(c) = config.channels.get(channel) else {
                let names: Vec<&str> = config.channels.keys().map(String::as_str).collect();
                bail!(
                    "no channel named `{channel}`; the configuration has: {}",
                    names.join(", ")
                );
            };
            let channels = HashMap::from([(channel.clone(), notify::channel(c))]);
            let deliverer = Deliverer::new(channels, config.delivery.clone());
            let now = Timestamp::from_second(Timestamp::now().as_second())?;
            let alert = notify::sample::test_alert(channel, now);
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let outcome = rt.block_on(deliverer.send(channel, &[alert]));
            return Ok(match outcome {
                notify::Outcome::Delivered => {
                    writeln!(out, "delivered: test notification to `{channel}`")?;
                    ExitCode::SUCCESS
                }
                notify::Outcome::Retry { error, .. } => {
                    writeln!(
                        out,
                        "not delivered: `{channel}` failed for now (a real alert would be retried): {error}"
                    )?;
                    ExitCode::from(2)
                }
                notify::Outcome::Failed { error } => {
                    writeln!(out, "not delivered: `{channel}` refused it: {error}")?;
                    ExitCode::from(1)
                }
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn silence(store: &mut Store, action: &SilenceAction, out: &mut dyn Write) -> anyhow::Result<()> {
    use crate::alert::silence::Matcher;
    let now = Timestamp::now();
    match action {
        SilenceAction::Add {
            matchers,
            duration,
            start,
            comment,
        } => {
            let matchers: Vec<Matcher> = matchers
                .iter()
                .map(|m| Matcher::parse(m).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<_>>()?;
            let span = crate::config::units::Dur::parse(duration)
                .map_err(|e| anyhow::anyhow!("--for: {e}"))?;
            if span.seconds() <= 0 {
                bail!("--for must be longer than nothing");
            }
            let starts = match start {
                Some(s) => parse_instant(s)?,
                None => now,
            };
            let starts_ms = starts.as_millisecond();
            let ends_ms = starts_ms + span.seconds() * 1000;
            let id = store.add_silence(
                &serde_json::to_string(&matchers)?,
                starts_ms,
                ends_ms,
                comment,
            )?;
            let ends = Timestamp::from_millisecond(ends_ms)?;
            let text: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
            writeln!(
                out,
                "silence {id}: {} from {starts} to {ends}",
                text.join(",")
            )?;
        }
        SilenceAction::List { all } => {
            let list = store.silences((!all).then(|| now.as_millisecond()))?;
            if list.is_empty() {
                writeln!(out, "no silences")?;
            }
            for s in list {
                let m: Vec<Matcher> = serde_json::from_str(&s.matchers).unwrap_or_default();
                let text: Vec<String> = m.iter().map(|m| m.to_string()).collect();
                let when = |ms: i64| {
                    Timestamp::from_millisecond(ms)
                        .map(|t| t.to_string())
                        .unwrap_or_default()
                };
                let state = match s.expired_ms {
                    Some(e) if e < s.ends_ms => format!("expired {}", when(e)),
                    _ if s.ends_ms <= now.as_millisecond() => "ended".into(),
                    _ if s.starts_ms > now.as_millisecond() => "pending".into(),
                    _ => "active".into(),
                };
                writeln!(
                    out,
                    "{}  {}  {} to {}  {state}  {}",
                    s.id,
                    text.join(","),
                    when(s.starts_ms),
                    when(s.ends_ms),
                    s.comment
                )?;
            }
        }
        SilenceAction::Expire { id } => {
            if !store.expire_silence(*id, now.as_millisecond())? {
                bail!("no silence {id} that is still running");
            }
            writeln!(out, "silence {id} expired")?;
        }
    }
    Ok(())
}

/// Delivers what the cycle queued, within the configured deadline.
fn deliver_now(
    config: &Config,
    store: Store,
) -> anyhow::Result<crate::notify::outbox::DeliveryStats> {
    let channels: HashMap<String, Arc<dyn Channel>> = config
        .channels
        .iter()
        .map(|(n, c)| (n.clone(), notify::channel(c)))
        .collect();
    let mut deliverer = Deliverer::new(channels, config.delivery.clone());
    deliverer.console_already_printed = true;
    let store = Arc::new(Mutex::new(store));
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(deliverer.deliver(
        &store,
        Instant::now() + config.delivery.cycle_deadline.as_std(),
    ))
}

/// The mapping `ingest` reads with: the configured source's of that name (when it reads the
/// same format), then each `--map`, checked against the format as the configuration is.
fn ingest_mapping(
    config: &Config,
    source: &str,
    format: Format,
    specs: &[String],
) -> anyhow::Result<Mapping> {
    let mut mapping = config
        .sources
        .iter()
        .find_map(|s| match s {
            crate::config::SourceConfig::Jsonl {
                name,
                format: f,
                mapping,
                ..
            } if name == source && *f == format => Some(mapping.clone()),
            _ => None,
        })
        .unwrap_or_default();
    for spec in specs {
        let mut one = Mapping::default();
        one.add_spec(spec)
            .map_err(|e| anyhow::anyhow!("--map {e}"))?;
        for (_, places) in &one.fields {
            if let Some(bad) = places.iter().find(|l| !format.offers(l.kind())) {
                anyhow::bail!(
                    "--map `{spec}`: a {} place is not in {format:?} records",
                    bad.kind()
                );
            }
        }
        mapping = mapping.overlay(&one);
    }
    Ok(mapping)
}

fn print_ingest(out: &mut dyn Write, r: &IngestReport) -> std::io::Result<()> {
    writeln!(
        out,
        "stored {} rows (${} priced), {} duplicates, {} conflicts, {} set aside",
        r.stored,
        r.priced_usd,
        r.duplicates,
        r.conflicts,
        r.set_aside.len()
    )?;
    if r.without_request_id > 0 {
        writeln!(
            out,
            "{} stored rows had no request id: their identity is their content and position in the file",
            r.without_request_id
        )?;
    }
    if r.skipped > 0 {
        writeln!(
            out,
            "{} records skipped: not model calls (trace spans of other work)",
            r.skipped
        )?;
    }
    for a in r.set_aside.iter().take(50) {
        writeln!(
            out,
            "  set aside {}:{} ({}): {}",
            a.file, a.line, a.kind, a.reason
        )?;
    }
    if r.set_aside.len() > 50 {
        writeln!(out, "  … and {} more", r.set_aside.len() - 50)?;
    }
    for (model, n) in &r.unpriced_by_model {
        writeln!(
            out,
            "unpriced: {n} rows of model {model} have no cost and no price; their spend is not counted"
        )?;
    }
    Ok(())
}
