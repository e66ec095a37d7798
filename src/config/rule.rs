//! Alert rules, typed and validated: what the evaluator and the alert book read.

use super::raw::{Period, Seasonality, Severity};
use super::units::Dur;
use crate::money::Usd;
use crate::row::Dimension;
use jiff::tz::TimeZone;

/// How many comparable windows a spike baseline may be made of.
pub const MAX_COMPARABLE_WINDOWS: i64 = 400;

/// One alert rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    /// The dimensions whose values make one series; empty means one series for all spend.
    pub group_by: Vec<Dimension>,
    /// Only rows whose dimension value is one of these are counted.
    pub filter: Vec<(Dimension, Vec<String>)>,
    /// How long the condition must hold before the alert fires.
    pub pending_for: Dur,
    /// How long a firing alert stays firing after its condition ends, so that a series
    /// hovering at the line does not flap.
    pub keep_firing_for: Dur,
    /// How long a firing alert stays quiet before it is sent again.
    pub repeat: Dur,
    pub severity: Severity,
    pub channels: Vec<String>,
    /// Calendar periods are read in this zone.
    pub timezone: TimeZone,
    /// Where the rule was written, for messages: `rules/spend.yaml:12`.
    pub origin: String,
    /// Daily time ranges in which this rule's pages are held back.
    pub mute: Vec<MuteWindow>,
    /// Page again before `repeat` when a firing series has grown this much since its last page.
    pub renotify: Option<Growth>,
}

/// A daily local time range, `22:00` to `07:00` wrapping midnight.
#[derive(Clone, Debug)]
pub struct MuteWindow {
    /// Minutes after local midnight.
    pub start: i32,
    pub end: i32,
    pub timezone: TimeZone,
}

impl MuteWindow {
    pub fn covers(&self, at: jiff::Timestamp) -> bool {
        let local = at.to_zoned(self.timezone.clone());
        let m = i32::from(local.hour()) * 60 + i32::from(local.minute());
        if self.start <= self.end {
            self.start <= m && m < self.end
        } else {
            m >= self.start || m < self.end
        }
    }
}

impl std::fmt::Display for MuteWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// Growth that earns an early page: both a share and an amount over the last page's spend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Growth {
    pub share: f64,
    pub min: Usd,
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    /// Spend in the window far above its baseline.
    Spike(SpikeRule),
    /// Spend in the trailing window reaches a limit.
    Threshold { window: Dur, limit: Usd },
    /// Spend in the current calendar period reaches a limit.
    Budget {
        period: Period,
        limit: Usd,
        /// Also fire when the period is on course to reach the limit.
        forecast: bool,
    },
    /// Spend with no value for `dimension` is more than `max_share` of the window's spend,
    /// and at least `min_usd`.
    Attribution {
        dimension: Dimension,
        window: Dur,
        max_share: f64,
        min_usd: Usd,
    },
    /// One caller (a series with a value) spends `limit` in a short window: the 3am loop.
    Runaway { window: Dur, limit: Usd },
    /// Two sources report different spend for the same calendar period: page when they
    /// differ by more than `max_diff_share` of the larger and by at least `min_diff`.
    Reconcile {
        sources: [String; 2],
        period: Period,
        max_diff_share: f64,
        min_diff: Usd,
    },
}

#[derive(Clone, Debug)]
pub struct SpikeRule {
    pub window: Dur,
    pub lookback: Dur,
    pub seasonality: Seasonality,
    /// How many robust standard deviations above the baseline count as a spike.
    pub sensitivity: f64,
    /// The window must also be at least this multiple of the baseline.
    pub min_ratio: f64,
    /// And at least this much money above it.
    pub min_delta: Usd,
    /// A series younger than this is judged by `young_min` alone.
    pub min_history: Dur,
    pub young_min: Usd,
}

impl Rule {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RuleKind::Spike(_) => "spike",
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Budget { .. } => "budget",
            RuleKind::Attribution { .. } => "attribution",
            RuleKind::Runaway { .. } => "runaway",
            RuleKind::Reconcile { .. } => "reconcile",
        }
    }

    /// Whether a row with these dimension values is counted by this rule.
    pub fn matches<'a>(&self, value: impl Fn(Dimension) -> Option<&'a str>) -> bool {
        self.filter
            .iter()
            .all(|(d, allowed)| value(*d).is_some_and(|v| allowed.iter().any(|a| a == v)))
    }
}
