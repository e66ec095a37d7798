//! Attribution coverage as Prometheus gauges, the figures `spendpager sources` prints:
//!
//! | metric | labels |
//! |---|---|
//! | `spendpager_source_rows` | `source` |
//! | `spendpager_attribution_rows_share` | `source`, `field` (`tenant`, `feature`, `user`, `workflow`), `kind` (`all`, `streamed`, `retried`, `cached`) |
//! | `spendpager_attribution_spend_share` | the same; spend shares leave unpriced rows out |
//! | `spendpager_source_lag_seconds` | `source`: now minus the newest stored row |
//!
//! They are read from the store at scrape time, at most once per [`REFRESH`]: the query reads
//! every raw row of each source, which is too much to repeat for every scrape of a busy
//! store, and the shares move slowly. A share with nothing to divide (no priced spend) is not
//! exported, rather than exported as a number that would read as "none".

use crate::store::{FieldShare, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The least time between two readings of coverage from the store.
pub const REFRESH: Duration = Duration::from_secs(30);

/// What the metrics page needs to publish coverage.
pub struct CoverageGauges {
    pub store: Arc<Mutex<Store>>,
    /// The configured sources, listed even before they have rows.
    pub sources: Vec<String>,
    last: Mutex<Option<Instant>>,
}

impl CoverageGauges {
    pub fn new(store: Arc<Mutex<Store>>, sources: Vec<String>) -> CoverageGauges {
        CoverageGauges {
            store,
            sources,
            last: Mutex::new(None),
        }
    }

    /// Sets the gauges from the store unless they were set less than [`REFRESH`] ago.
    /// Blocking: call it off the async workers.
    pub fn refresh(&self) {
        {
            let mut last = self.last.lock().expect("coverage lock");
            if last.is_some_and(|t| t.elapsed() < REFRESH) {
                return;
            }
            *last = Some(Instant::now());
        }
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let names: Vec<&str> = self.sources.iter().map(String::as_str).collect();
        let all = match self
            .store
            .lock()
            .expect("store lock")
            .coverage(&names, now_ms)
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read attribution coverage for /metrics");
                return;
            }
        };
        for c in all {
            let source = c.name.clone();
            metrics::gauge!("spendpager_source_rows", "source" => source.clone())
                .set(c.rows as f64);
            if let Some(lag) = c.lag_s {
                metrics::gauge!("spendpager_source_lag_seconds", "source" => source.clone())
                    .set(lag as f64);
            }
            let kinds = std::iter::once(("all", &c.fields))
                .chain(c.kinds.iter().map(|(k, v)| (*k, &v.fields)));
            for (kind, fields) in kinds {
                for (field, share) in fields {
                    set_share(&source, field, kind, share);
                }
            }
        }
    }
}

fn set_share(source: &str, field: &'static str, kind: &'static str, share: &FieldShare) {
    let labels = [
        ("source", source.to_string()),
        ("field", field.to_string()),
        ("kind", kind.to_string()),
    ];
    if let Some(v) = share.rows_share {
        metrics::gauge!("spendpager_attribution_rows_share", &labels).set(v);
    }
    if let Some(v) = share.spend_share {
        metrics::gauge!("spendpager_attribution_spend_share", &labels).set(v);
    }
}
