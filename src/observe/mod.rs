//! The pager watching itself: Prometheus metrics, the health that `/healthz` reports, and the
//! heartbeat sent after every healthy cycle.
//!
//! Metrics go through the `metrics` facade; nothing is recorded until the daemon installs the
//! Prometheus recorder (only when `http.listen` is configured), so the commands and the tests
//! that run cycles in-process pay nothing. The names:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `spendpager_evaluations_total` | counter | `outcome` (`ok`, `error`) |
//! | `spendpager_evaluation_duration_seconds` | histogram | |
//! | `spendpager_series_evaluated` | gauge, last cycle | |
//! | `spendpager_series_evaluated_total` | counter | |
//! | `spendpager_alerts` | gauge | `state` (`inactive`, `pending`, `firing`, `resolved`) |
//! | `spendpager_last_evaluation_timestamp_seconds` | gauge | |
//! | `spendpager_deliveries_total` | counter | `channel`, `outcome` (`delivered`, `retry`, `failed`) |
//! | `spendpager_outbox_depth` | gauge | |
//! | `spendpager_source_lag_seconds` | gauge, at scrape | `source` |
//! | `spendpager_rows_stored_total` | counter | `source` |
//! | `spendpager_rows_set_aside_total` | counter | `source` |
//! | `spendpager_rows_duplicate_total` | counter | `source` |
//! | `spendpager_records_skipped_total` | counter | `source`: trace spans that are no model call |
//! | `spendpager_heartbeats_total` | counter | `outcome` (`ok`, `failed`) |
//! | `spendpager_compactions_total` | counter | `outcome` |
//! | `spendpager_source_rows`, `spendpager_attribution_rows_share`, `spendpager_attribution_spend_share` | gauge, at scrape | see `coverage.rs` |

pub mod coverage;
pub mod heartbeat;
mod otlp;
pub mod server;

use crate::store::{IngestReport, Store};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the evaluation-duration buckets, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many schedule periods may pass without a cycle before `/healthz` says 503.
pub const STALE_PERIODS: i64 = 3;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("spendpager_evaluation_duration_seconds".into()),
            DURATION_BUCKETS,
        )?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// What `/healthz` and the lag gauges read; the daemon updates it, the HTTP server reads it.
#[derive(Debug)]
pub struct Health {
    started_ms: i64,
    /// Wall-clock end of the last successful cycle, and the instant it evaluated.
    last_cycle: Mutex<Option<(i64, i64)>>,
    outbox_depth: AtomicU64,
    /// The longest gap between two fire times of the schedule.
    period_ms: AtomicI64,
    /// The newest row's timestamp per source.
    newest: Mutex<BTreeMap<String, i64>>,
}

/// The answer `/healthz` gives.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HealthReport {
    pub healthy: bool,
    /// The instant the last successful cycle evaluated, RFC 3339.
    pub last_evaluation: Option<String>,
    /// Seconds since the last successful cycle ended (or since start, before the first).
    pub age_s: i64,
    pub period_s: i64,
    pub outbox_depth: u64,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Health {
    pub fn new(period: Duration) -> Health {
        Health {
            started_ms: now_ms(),
            last_cycle: Mutex::new(None),
            outbox_depth: AtomicU64::new(0),
            period_ms: AtomicI64::new(period.as_millis() as i64),
            newest: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn set_period(&self, period: Duration) {
        self.period_ms
            .store(period.as_millis() as i64, Ordering::Relaxed);
    }

    pub fn set_outbox_depth(&self, depth: u64) {
        self.outbox_depth.store(depth, Ordering::Relaxed);
        metrics::gauge!("spendpager_outbox_depth").set(depth as f64);
    }

    /// Records a successful cycle that evaluated at `at_ms`.
    pub fn cycle_done(&self, at_ms: i64) {
        *self.last_cycle.lock().expect("health lock") = Some((now_ms(), at_ms));
    }

    /// Remembers the newest row a source has stored.
    pub fn saw_rows(&self, source: &str, newest_ms: i64) {
        let mut m = self.newest.lock().expect("health lock");
        let e = m.entry(source.to_string()).or_insert(newest_ms);
        *e = (*e).max(newest_ms);
    }

    /// Healthy while the last successful cycle (or the start, before the first) is at most
    /// [`STALE_PERIODS`] schedule periods old.
    pub fn report(&self) -> HealthReport {
        self.report_at(now_ms())
    }

    /// [`Health::report`] as seen at `now`, in milliseconds.
    pub fn report_at(&self, now: i64) -> HealthReport {
        let last = *self.last_cycle.lock().expect("health lock");
        let since = last.map_or(self.started_ms, |(end, _)| end);
        let period = self.period_ms.load(Ordering::Relaxed).max(1000);
        let age = now - since;
        HealthReport {
            healthy: age <= STALE_PERIODS * period,
            last_evaluation: last.and_then(|(_, at)| {
                jiff::Timestamp::from_millisecond(at)
                    .ok()
                    .map(|t| t.to_string())
            }),
            age_s: age / 1000,
            period_s: period / 1000,
            outbox_depth: self.outbox_depth.load(Ordering::Relaxed),
        }
    }

    /// Sets the lag gauges to the seconds between now and each source's newest row.
    pub fn update_lag(&self) {
        let now = now_ms();
        for (source, newest) in self.newest.lock().expect("health lock").iter() {
            metrics::gauge!("spendpager_source_lag_seconds", "source" => source.clone())
                .set((now - newest) as f64 / 1000.0);
        }
    }
}

/// Counts what one poll of a source stored and set aside.
pub fn ingested(source: &str, report: &IngestReport) {
    let s = source.to_string();
    metrics::counter!("spendpager_rows_stored_total", "source" => s.clone())
        .increment(report.stored);
    metrics::counter!("spendpager_rows_set_aside_total", "source" => s.clone())
        .increment(report.set_aside.len() as u64);
    metrics::counter!("spendpager_rows_duplicate_total", "source" => s.clone())
        .increment(report.duplicates);
    if report.skipped > 0 {
        metrics::counter!("spendpager_records_skipped_total", "source" => s)
            .increment(report.skipped);
    }
}

/// Counts one delivery attempt's outcome.
pub fn delivery(channel: &str, outcome: &'static str) {
    metrics::counter!("spendpager_deliveries_total", "channel" => channel.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Records one evaluation cycle: its duration, outcome and how many series it judged.
pub fn evaluation(elapsed: Duration, ok: bool, series: usize) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("spendpager_evaluations_total", "outcome" => outcome).increment(1);
    metrics::histogram!("spendpager_evaluation_duration_seconds").record(elapsed.as_secs_f64());
    if ok {
        metrics::gauge!("spendpager_series_evaluated").set(series as f64);
        metrics::counter!("spendpager_series_evaluated_total").increment(series as u64);
    }
}

/// After a cycle: the alert-state gauges, the last evaluation time and the outbox depth, read
/// from the store.
pub fn after_cycle(store: &Store, health: &Health) {
    let mut by_state: BTreeMap<&str, u64> = ["inactive", "pending", "firing", "resolved"]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    let alerts = store.load_alerts().unwrap_or_default();
    for a in &alerts {
        if let Some(n) = by_state.get_mut(a.state.as_str()) {
            *n += 1;
        }
    }
    for (state, n) in by_state {
        metrics::gauge!("spendpager_alerts", "state" => state).set(n as f64);
    }
    if let Ok(Some(ms)) = store.last_evaluation() {
        metrics::gauge!("spendpager_last_evaluation_timestamp_seconds").set(ms as f64 / 1000.0);
    }
    if let Ok(depth) = store.outbox_depth() {
        health.set_outbox_depth(depth);
    }
}

/// The newest stored row of each named source, to start the lag gauges from.
pub fn load_newest(store: &Store, sources: &[&str], health: &Health) {
    for s in sources {
        if let Ok(Some(ms)) = store.newest_row_ms(s) {
            health.saw_rows(s, ms);
        }
    }
}

/// The longest gap between consecutive fire times of `schedule` over the next few fires.
pub fn schedule_period(schedule: &crate::schedule::Schedule) -> Duration {
    let mut at = jiff::Timestamp::now();
    let mut longest = 0i64;
    let mut prev = schedule.next_after(at);
    for _ in 0..8 {
        let Some(p) = prev else { break };
        at = p;
        let Some(next) = schedule.next_after(at) else {
            break;
        };
        longest = longest.max(next.as_millisecond() - p.as_millisecond());
        prev = Some(next);
    }
    Duration::from_millis(longest.max(1000) as u64)
}

/// Reads the outbox depth after a delivery pass changed it.
pub async fn outbox_changed(store: &std::sync::Arc<Mutex<Store>>, health: &std::sync::Arc<Health>) {
    let (store, health) = (store.clone(), health.clone());
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(depth) = store.lock().expect("store lock").outbox_depth() {
            health.set_outbox_depth(depth);
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_turns_stale_after_three_periods_without_a_cycle() {
        let h = Health::new(Duration::from_secs(60));
        let t0 = h.started_ms;
        assert!(h.report_at(t0 + 1000).healthy, "starting up is not dead");
        assert!(h.report_at(t0 + 180_000).healthy);
        let stale = h.report_at(t0 + 181_000);
        assert!(!stale.healthy);
        assert_eq!(stale.last_evaluation, None);
        h.cycle_done(1_700_000_000_000);
        let now = now_ms();
        let fresh = h.report_at(now + 1000);
        assert!(fresh.healthy);
        assert_eq!(
            fresh.last_evaluation.as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert!(!h.report_at(now + 181_000).healthy);
    }

    #[test]
    fn the_period_is_the_longest_gap_between_fire_times() {
        let s = crate::schedule::Schedule::parse("*/5 * * * *", jiff::tz::TimeZone::UTC).unwrap();
        assert_eq!(schedule_period(&s), Duration::from_secs(300));
    }
}
