//! Scoring a rule on the Numenta Anomaly Benchmark, with NAB's own method (standard profile).
//!
//! Each NAB series is loaded as cost rows into a scratch store (one row per data point, its
//! value as the cost), the rule is evaluated at every data point with the daemon's own code,
//! and each time an alert fires counts as one detection at that point. A file's score:
//! detections in the first 15 % of its rows (at most 750) are not scored; in each labelled
//! window only the earliest detection counts, weighted by a sigmoid of its position in the
//! window (near 1 at the window's start, 0 at its end); every other detection is a false
//! positive costing 0.11 times its own sigmoid weight (a full 0.11 before any window, less
//! just after one); a window with no detection costs 1. Raw scores are summed over the files
//! and normalised so that never firing scores 0 and catching every window at its start 100.

use super::run_at;
use crate::alert::Status;
use crate::config::Config;
use crate::price::PriceTable;
use crate::source::jsonl;
use crate::store::Store;
use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

const TP_WEIGHT: f64 = 1.0;
const FP_WEIGHT: f64 = 0.11;
const FN_WEIGHT: f64 = 1.0;

/// NAB's scaled sigmoid: about 1 at the start of a window (-1.0), 0 at its end (0.0), and
/// towards -1 after it; -1 from three window lengths on.
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * position).exp()) - 1.0
    }
}

/// A labelled window as row indexes, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub first: usize,
    pub last: usize,
}

/// The score of one file from its detections (row indexes, any order).
pub fn score_file(rows: usize, windows: &[Window], detections: &[usize]) -> f64 {
    let probation = ((rows as f64 * 0.15) as usize).min(750);
    let mut detections: Vec<usize> = detections
        .iter()
        .copied()
        .filter(|i| *i >= probation)
        .collect();
    detections.sort_unstable();
    detections.dedup();
    let mut caught = vec![false; windows.len()];
    let mut score = 0.0;
    for &i in &detections {
        if let Some(w) = windows.iter().position(|w| w.first <= i && i <= w.last) {
            if !caught[w] {
                caught[w] = true;
                let width = (windows[w].last - windows[w].first + 1) as f64;
                let position = -((windows[w].last + 1 - i) as f64) / width;
                score += TP_WEIGHT * scaled_sigmoid(position);
            }
            continue;
        }
        let before = windows.iter().filter(|w| w.last < i).max_by_key(|w| w.last);
        let weight = match before {
            None => -1.0,
            Some(w) => {
                let width = (w.last - w.first).max(1) as f64;
                scaled_sigmoid((i - w.last) as f64 / width)
            }
        };
        score += FP_WEIGHT * weight;
    }
    score -= FN_WEIGHT * caught.iter().filter(|c| !**c).count() as f64;
    score
}

/// The best a file can score: every window caught at its first row.
pub fn perfect_score(windows: &[Window]) -> f64 {
    windows.len() as f64 * TP_WEIGHT * scaled_sigmoid(-1.0)
}

#[derive(Clone, Debug, Serialize)]
pub struct FileScore {
    pub file: String,
    pub rows: usize,
    pub windows: usize,
    pub detections: usize,
    pub caught: usize,
    pub raw: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct NabReport {
    pub files: Vec<FileScore>,
    /// Normalised: 0 never firing, 100 every window caught at its start.
    pub score: f64,
}

fn nab_time(text: &str) -> anyhow::Result<Timestamp> {
    let civil: jiff::civil::DateTime = text
        .trim()
        .parse()
        .with_context(|| format!("`{text}` is not a NAB timestamp"))?;
    Ok(civil.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp())
}

/// Scores `rule` of `config` on every labelled file under `dir/data` whose path contains
/// `only` (all when empty). `scratch` is a folder for the per-file stores.
pub fn score(
    config: &Config,
    rule: &str,
    dir: &Path,
    only: &str,
    scratch: &Path,
) -> anyhow::Result<NabReport> {
    let labels_path = dir.join("labels/combined_windows.json");
    let labels: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(
        &std::fs::read_to_string(&labels_path)
            .with_context(|| format!("reading {}", labels_path.display()))?,
    )
    .with_context(|| format!("{} is not NAB's window file", labels_path.display()))?;
    let prices = PriceTable::default();
    let mut files = Vec::new();
    let (mut raw_total, mut null_total, mut perfect_total) = (0.0, 0.0, 0.0);
    for (name, spans) in &labels {
        let path = dir.join("data").join(name);
        if !path.exists() || !name.contains(only) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut times = Vec::new();
        let mut lines = String::new();
        for (i, line) in text.lines().skip(1).enumerate() {
            let Some((t, v)) = line.split_once(',') else {
                continue;
            };
            let t = nab_time(t)?;
            let v: f64 = v
                .trim()
                .parse()
                .with_context(|| format!("{}:{}: value", path.display(), i + 2))?;
            lines.push_str(&format!(
                "{{\"ts\":\"{t}\",\"request_id\":\"{i}\",\"model\":\"nab\",\"cost_usd\":{},\"tenant\":\"series\"}}\n",
                v.max(0.0)
            ));
            times.push(t);
        }
        let store_path = scratch.join(format!("nab-{}.db", files.len()));
        let _ = std::fs::remove_file(&store_path);
        let mut store = Store::open(&store_path)?;
        jsonl::ingest_reader(&mut store, &prices, "nab", name, lines.as_bytes())?;
        // Each point is judged when its hour has closed.
        let instants = times
            .iter()
            .map(|t| *t + jiff::SignedDuration::from_hours(1));
        let report = run_at(config, &store, instants, Some(rule))?;
        let detections: Vec<usize> = report
            .notifications
            .iter()
            .filter(|a| a.status == Status::Firing)
            .filter_map(|a| {
                let at: Timestamp = a.at.parse().ok()?;
                let point = at - jiff::SignedDuration::from_hours(1);
                times.iter().position(|t| *t == point)
            })
            .collect();
        let windows: Vec<Window> = spans
            .iter()
            .filter_map(|(a, b)| {
                let (a, b) = (nab_time(a).ok()?, nab_time(b).ok()?);
                let first = times.iter().position(|t| *t >= a)?;
                let last = times.iter().rposition(|t| *t <= b)?;
                (first <= last).then_some(Window { first, last })
            })
            .collect();
        let raw = score_file(times.len(), &windows, &detections);
        let caught = windows
            .iter()
            .filter(|w| detections.iter().any(|i| w.first <= *i && *i <= w.last))
            .count();
        raw_total += raw;
        null_total -= FN_WEIGHT * windows.len() as f64;
        perfect_total += perfect_score(&windows);
        files.push(FileScore {
            file: name.clone(),
            rows: times.len(),
            windows: windows.len(),
            detections: detections.len(),
            caught,
            raw,
        });
        drop(store);
        let _ = std::fs::remove_file(&store_path);
    }
    let score = if perfect_total > null_total {
        100.0 * (raw_total - null_total) / (perfect_total - null_total)
    } else {
        0.0
    };
    Ok(NabReport { files, score })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sigmoid_weights_position_as_nab_does() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298).abs() < 1e-6);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert_eq!(scaled_sigmoid(3.5), -1.0);
    }

    #[test]
    fn a_file_scores_early_catches_misses_and_false_positives() {
        let windows = [
            Window {
                first: 200,
                last: 299,
            },
            Window {
                first: 600,
                last: 699,
            },
        ];
        // 1000 rows: the first 150 are probation.
        assert_eq!(score_file(1000, &windows, &[]), -2.0);
        assert!((score_file(1000, &windows, &[200, 600]) - perfect_score(&windows)).abs() < 1e-12);
        // A detection in probation is ignored; one before any window costs a full 0.11.
        let fp = score_file(1000, &windows, &[100, 160]);
        assert!((fp - (-2.0 - 0.11)).abs() < 1e-12, "{fp}");
        // Only the earliest detection in a window counts; later ones there cost nothing.
        let twice = score_file(1000, &windows, &[250, 260, 600]);
        let once = score_file(1000, &windows, &[250, 600]);
        assert_eq!(twice, once);
        // Just after a window a false positive costs little; far after, the full 0.11.
        let near = score_file(1000, &windows, &[200, 600, 700]);
        let far = score_file(1000, &windows, &[200, 600, 999]);
        assert!(
            near > far && (perfect_score(&windows) - far - 0.11).abs() < 1e-9,
            "{near} {far}"
        );
    }
}
