//! Scoring a backtest against labelled incidents: which were caught, how soon, whether the
//! page named the culprit, and how many pages were for nothing.
//!
//! A labels file is a JSON list of windows: `{"start": RFC 3339, "end": RFC 3339,
//! "series": {"tenant": "acme"}, "name": "retry storm"}`; `series` and `name` are optional.
//! A window is caught by the first firing page between its start and an hour after its end
//! (any rule); it names the culprit when the page's labels or contributors hold every value
//! of `series`. Pages outside every window and its hour of grace are false pages.

use crate::alert::{Alert, Status};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pages this long after a window's end still belong to it.
const GRACE: SignedDuration = SignedDuration::from_hours(1);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub start: Timestamp,
    pub end: Timestamp,
    #[serde(default)]
    pub series: BTreeMap<String, String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabelResult {
    pub name: String,
    pub caught: bool,
    /// Seconds from the window's start to its first page.
    pub time_to_detect_s: Option<i64>,
    pub culprit_named: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LabelScore {
    pub incidents: usize,
    pub caught: usize,
    pub culprit_named: usize,
    pub median_time_to_detect_s: Option<i64>,
    pub false_pages: usize,
    pub false_pages_per_week: f64,
    pub results: Vec<LabelResult>,
}

fn names(alert: &Alert, key: &str, value: &str) -> bool {
    alert.labels.get(key).and_then(|v| v.as_deref()) == Some(value)
        || alert
            .contributors
            .iter()
            .any(|c| c.dimension == key && c.value.as_deref() == Some(value))
}

pub fn score(
    notifications: &[Alert],
    labels: &[Label],
    from: Timestamp,
    to: Timestamp,
) -> LabelScore {
    let pages: Vec<(Timestamp, &Alert)> = notifications
        .iter()
        .filter(|a| a.status == Status::Firing)
        .filter_map(|a| Some((a.at.parse().ok()?, a)))
        .collect();
    let mut explained = vec![false; pages.len()];
    let mut results = Vec::with_capacity(labels.len());
    for (n, l) in labels.iter().enumerate() {
        let mut first: Option<(Timestamp, &Alert)> = None;
        for (i, (t, a)) in pages.iter().enumerate() {
            if *t >= l.start && *t <= l.end + GRACE {
                explained[i] = true;
                if first.is_none_or(|(ft, _)| *t < ft) {
                    first = Some((*t, a));
                }
            }
        }
        // The culprit is named by any page of the window, not only the first.
        let named = pages.iter().any(|(t, a)| {
            *t >= l.start && *t <= l.end + GRACE && l.series.iter().all(|(k, v)| names(a, k, v))
        });
        results.push(LabelResult {
            name: l
                .name
                .clone()
                .unwrap_or_else(|| format!("window {}", n + 1)),
            caught: first.is_some(),
            time_to_detect_s: first.map(|(t, _)| t.as_second() - l.start.as_second()),
            culprit_named: first.is_some() && named,
        });
    }
    let mut delays: Vec<i64> = results.iter().filter_map(|r| r.time_to_detect_s).collect();
    delays.sort_unstable();
    let false_pages = explained.iter().filter(|e| !**e).count();
    let weeks = ((to.as_second() - from.as_second()) as f64 / (7.0 * 86_400.0)).max(1.0 / 7.0);
    LabelScore {
        incidents: labels.len(),
        caught: results.iter().filter(|r| r.caught).count(),
        culprit_named: results.iter().filter(|r| r.culprit_named).count(),
        median_time_to_detect_s: delays
            .get(delays.len() / 2)
            .copied()
            .filter(|_| !delays.is_empty()),
        false_pages,
        false_pages_per_week: false_pages as f64 / weeks,
        results,
    }
}
