//! The daemon: polls sources, evaluates on the cron schedule, delivers from the outbox, and
//! handles signals. SIGHUP reloads the configuration (a broken file keeps the running one);
//! SIGTERM and SIGINT stop it, after in-flight deliveries drain or a deadline passes.
//!
//! Under systemd (`Type=notify`) it reports READY once the store is open and the rules are
//! loaded, pings the watchdog from the scheduler loop (so a hung evaluation stops the pings
//! and systemd restarts it), and keeps a STATUS line with what is firing and queued. Outside
//! systemd these notifications do nothing.
//!
//! The store is used from blocking threads only; the async side waits on them.

use crate::config::Config;
use crate::cycle;
use crate::notify::outbox::Deliverer;
use crate::notify::{self, Channel};
use crate::observe::{self, Health};
use crate::price::PriceTable;
use crate::source::{self, Source};
use crate::store::{Store, StoreHistory};
use anyhow::Context;
use jiff::Timestamp;
use sd_notify::NotifyState;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

/// How long SIGTERM waits for deliveries in flight.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Everything that a reload replaces at once.
struct Running {
    config: Config,
    prices: PriceTable,
    sources: Vec<Box<dyn Source>>,
    deliverer: Arc<Deliverer>,
}

fn build(config: Config) -> anyhow::Result<Running> {
    let prices = match &config.prices {
        Some(p) => PriceTable::with_overrides(p)?,
        None => PriceTable::bundled(),
    };
    let sources = config.sources.iter().map(source::build).collect();
    let channels: HashMap<String, Arc<dyn Channel>> = config
        .channels
        .iter()
        .map(|(n, c)| (n.clone(), notify::channel(c)))
        .collect();
    let deliverer = Arc::new(Deliverer::new(channels, config.delivery.clone()));
    Ok(Running {
        config,
        prices,
        sources,
        deliverer,
    })
}

/// The last fire time at or before `now`, starting from `next`: after a pause the missed
/// times are skipped, not replayed in a burst.
fn latest_due(config: &Config, next: Timestamp, now: Timestamp) -> Timestamp {
    let mut at = next;
    while let Some(after) = config.schedule.next_after(at) {
        if after > now {
            break;
        }
        at = after;
    }
    at
}

fn sleep_until(t: Timestamp) -> tokio::time::Sleep {
    let wait = (t.as_millisecond() - Timestamp::now().as_millisecond()).max(0);
    tokio::time::sleep(Duration::from_millis(wait as u64))
}

fn systemd(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The STATUS line: what is firing, when the last cycle ran, what waits to be sent.
fn status_line(store: &Store) -> String {
    let firing = store
        .load_alerts()
        .map(|a| a.iter().filter(|a| a.state == "firing").count())
        .unwrap_or(0);
    let queued = store.outbox().map(|q| q.len()).unwrap_or(0);
    let last = store
        .last_evaluation()
        .ok()
        .flatten()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| "never".into());
    format!("{firing} firing; last evaluation {last}; {queued} queued for delivery")
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(config_path: PathBuf, config: Config) -> anyhow::Result<()> {
    let store_path = config.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&store_path)).await??;
    let store = Arc::new(Mutex::new(store));
    let mut running = build(config)?;
    let mut history = StoreHistory::new();
    let wake_delivery = Arc::new(Notify::new());
    let mut sigterm = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // Shared with `POST /ingest`: the prices it stores with. What it stores goes through the
    // same store, whose change log keeps the cycle's cached windows current.
    let prices = Arc::new(Mutex::new(running.prices.clone()));
    let health = start_observing(&running.config, &store, &prices, &stop_rx).await?;
    let heartbeat_client = notify::http::client();
    let mut compact_tick = tokio::time::interval(crate::retention::EVERY);
    systemd(&[
        NotifyState::Ready,
        NotifyState::Status("started; waiting for the first evaluation"),
    ]);
    let mut watchdog = tokio::time::interval(
        sd_notify::watchdog_enabled()
            .map(|d| d / 2)
            .unwrap_or(Duration::from_secs(3600)),
    );
    tracing::info!(
        config = %config_path.display(),
        rules = running.config.rules.len(),
        sources = running.sources.len(),
        schedule = running.config.schedule.expr(),
        "spendpager started"
    );

    let delivery = {
        let store = store.clone();
        let wake = wake_delivery.clone();
        let deliverer = Arc::new(Mutex::new((
            running.deliverer.clone(),
            running.config.delivery.cycle_deadline,
        )));
        let handle_deliverer = deliverer.clone();
        let mut stop = stop_rx.clone();
        let health = health.clone();
        let task = tokio::spawn(async move {
            loop {
                let (d, pass) = deliverer.lock().expect("deliverer lock").clone();
                let deadline = Instant::now() + pass.as_std();
                match d.deliver(&store, deadline).await {
                    Ok(st) if st.delivered + st.failed + st.retried > 0 => {
                        observe::outbox_changed(&store, &health).await
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "delivery pass failed"),
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => break,
                }
            }
        });
        (task, handle_deliverer)
    };

    let mut next_fire = running.config.schedule.next_after(Timestamp::now());
    let mut poll_tick = tokio::time::interval(
        running
            .config
            .poll_interval
            .as_std()
            .max(Duration::from_secs(1)),
    );
    loop {
        let fire = async {
            match next_fire {
                Some(t) => sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = watchdog.tick() => systemd(&[NotifyState::Watchdog]),
            _ = sighup.recv() => {
                tracing::info!(config = %config_path.display(), "SIGHUP: reloading configuration");
                let mut reloading = vec![NotifyState::Reloading];
                if let Ok(now) = NotifyState::monotonic_usec_now() {
                    reloading.push(now);
                }
                systemd(&reloading);
                match Config::load(&config_path) {
                    Ok(c) => match build(c) {
                        Ok(r) => {
                            if r.config.store != running.config.store {
                                tracing::warn!(store = %running.config.store.display(), "a new store path takes effect on restart; keeping the open store");
                            }
                            running = r;
                            *prices.lock().expect("prices lock") = running.prices.clone();
                            *delivery.1.lock().expect("deliverer lock") = (running.deliverer.clone(), running.config.delivery.cycle_deadline);
                            next_fire = running.config.schedule.next_after(Timestamp::now());
                            health.set_period(observe::schedule_period(&running.config.schedule));
                            tracing::info!(rules = running.config.rules.len(), "configuration reloaded");
                        }
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the running configuration"),
                    },
                    Err(errors) => {
                        for e in &errors.0 {
                            tracing::error!(error = %e, "reload refused; keeping the running configuration");
                        }
                    }
                }
                systemd(&[NotifyState::Ready]);
            }
            _ = poll_tick.tick() => {
                poll(&mut running, &store, &mut history, &health).await;
            }
            _ = compact_tick.tick() => {
                let (policy, store2) = (crate::retention::policy(&running.config, Timestamp::now().as_millisecond()), store.clone());
                match tokio::task::spawn_blocking(move || crate::retention::compact_shared(&store2, &policy)).await? {
                    Ok(r) => {
                        metrics::counter!("spendpager_compactions_total", "outcome" => "ok").increment(1);
                        tracing::info!(raw_deleted = r.raw_rows_deleted, minutes_folded = r.minute_rollups_folded, hours_deleted = r.hour_rollups_deleted, "compacted the store");
                        history.invalidate();
                    }
                    Err(e) => {
                        metrics::counter!("spendpager_compactions_total", "outcome" => "error").increment(1);
                        tracing::error!(error = %e, "compaction failed; will try again");
                    }
                }
            }
            _ = fire => {
                let due = next_fire.expect("fire only completes when set");
                let at = latest_due(&running.config, due, Timestamp::now());
                if at != due {
                    tracing::warn!(skipped_from = %due, evaluating = %at, "missed fire times during a pause; evaluating the latest only");
                }
                poll(&mut running, &store, &mut history, &health).await;
                let (config, store2, health2) = (running.config.clone(), store.clone(), health.clone());
                let mut hist = std::mem::take(&mut history);
                let result = tokio::task::spawn_blocking(move || {
                    let mut s = store2.lock().expect("store lock");
                    let started = Instant::now();
                    let r = cycle::run_cycle(&config, &mut s, &mut hist, at, false);
                    match &r {
                        Ok(_) => health2.cycle_done(at.as_millisecond()),
                        Err(_) => observe::evaluation(started.elapsed(), false, 0),
                    }
                    observe::after_cycle(&s, &health2);
                    let status = status_line(&s);
                    systemd(&[NotifyState::Status(&status)]);
                    (r, hist)
                }).await?;
                history = result.1;
                if let (Ok(_), Some(hb)) = (&result.0, &running.config.ops.heartbeat) {
                    let (client, hb, depth) = (heartbeat_client.clone(), hb.clone(), health.report().outbox_depth);
                    tokio::spawn(async move { observe::heartbeat::send(&client, &hb, at.as_millisecond(), depth).await });
                }
                match result.0 {
                    Ok(notes) if !notes.is_empty() => wake_delivery.notify_one(),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %format!("{e:#}"), at = %at, "evaluation cycle failed"),
                }
                next_fire = running.config.schedule.next_after(at.max(Timestamp::now()));
            }
        }
    }

    tracing::info!("stopping: draining deliveries");
    systemd(&[NotifyState::Stopping]);
    // One deadline for all of it: the delivery task's pass in flight and the final drain.
    let stop_by = Instant::now() + DRAIN_DEADLINE;
    let _ = stop_tx.send(true);
    if tokio::time::timeout_at(stop_by.into(), delivery.0)
        .await
        .is_err()
    {
        tracing::warn!(
            "a delivery pass was still running at the deadline; its messages stay queued"
        );
    }
    let d = running.deliverer.clone();
    let drained = d.deliver(&store, stop_by).await;
    match drained {
        Ok(stats) => tracing::info!(
            delivered = stats.delivered,
            left_queued = stats.left,
            "stopped"
        ),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "drain failed; messages stay queued"),
    }
    Ok(())
}

/// Polls every source once; a failing source is logged and the rest go on.
async fn poll(
    running: &mut Running,
    store: &Arc<Mutex<Store>>,
    history: &mut StoreHistory,
    health: &Arc<Health>,
) {
    let sources = std::mem::take(&mut running.sources);
    let prices = running.prices.clone();
    let store = store.clone();
    let health = health.clone();
    // What a poll stores reaches the cached windows through the store's change log.
    let sources = tokio::task::spawn_blocking(move || {
        let mut sources = sources;
        let mut s = store.lock().expect("store lock");
        for src in sources.iter_mut() {
            match src.poll(&mut s, &prices) {
                Ok(r) => {
                    observe::ingested(src.name(), &r);
                    if let Some(ms) = r.newest_ts_ms {
                        health.saw_rows(src.name(), ms);
                    }
                    if r.stored + r.set_aside.len() as u64 + r.skipped > 0 {
                        tracing::info!(source = src.name(), stored = r.stored, duplicates = r.duplicates,
                            conflicts = r.conflicts, set_aside = r.set_aside.len(), skipped = r.skipped,
                            unpriced = r.unpriced_rows(), "ingested");
                    }
                    for a in r.set_aside.iter().take(20) {
                        tracing::warn!(source = %a.source, file = %a.file, line = a.line, reason = %a.reason, "row set aside");
                    }
                }
                Err(e) => tracing::warn!(source = src.name(), error = %format!("{e:#}"), "source poll failed"),
            }
        }
        sources
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "source poll task failed");
        // What it stored before failing may not have been logged: read everything again.
        history.invalidate();
        Vec::new()
    });
    if sources.is_empty() && !running.config.sources.is_empty() {
        running.sources = running.config.sources.iter().map(source::build).collect();
    } else {
        running.sources = sources;
    }
}

/// Sets up the pager's own health and, when `http.listen` is configured, the metrics
/// recorder and the endpoint, which stops with the daemon. A port that cannot be bound is a
/// start-up error.
async fn start_observing(
    config: &Config,
    store: &Arc<Mutex<Store>>,
    prices: &Arc<Mutex<PriceTable>>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Arc<Health>> {
    let health = Arc::new(Health::new(observe::schedule_period(&config.schedule)));
    let names: Vec<String> = config
        .sources
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    let (store2, health2) = (store.clone(), health.clone());
    tokio::task::spawn_blocking(move || {
        let s = store2.lock().expect("store lock");
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        observe::load_newest(&s, &names, &health2);
        observe::after_cycle(&s, &health2);
    })
    .await?;
    if let Some(http) = &config.ops.http {
        let handle = observe::install()?;
        let mut stop = stop.clone();
        let ingest = http
            .ingest
            .as_ref()
            .map(|c| observe::server::IngestEndpoint {
                config: c.clone(),
                store: store.clone(),
                prices: prices.clone(),
                health: health.clone(),
            });
        let configured = config.sources.iter().map(|s| s.name().to_string());
        let coverage = observe::coverage::CoverageGauges::new(store.clone(), configured.collect());
        observe::server::bind(
            http.listen,
            health.clone(),
            handle,
            Some(coverage),
            ingest,
            async move {
                let _ = stop.changed().await;
            },
        )
        .await?;
    }
    Ok(health)
}
