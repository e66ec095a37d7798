//! Robust baselines over comparable past windows: the median for location and the median
//! absolute deviation for scale, with a floor so a flat history never makes a cent look
//! infinitely unusual (case 09). Nothing here can return NaN or infinity.

use statrs::statistics::{Data, OrderStatistics};

/// Scale factor that makes the MAD estimate the standard deviation of normal data.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// The baseline of a series from its past comparable windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// Median spend of the comparable windows, in dollars.
    pub location: f64,
    /// Robust standard deviation, in dollars, never below the floor.
    pub scale: f64,
    /// How many comparable windows it was made from.
    pub samples: usize,
}

/// How many of the nearest windows make the recent level.
const RECENT: usize = 3;

/// How many windows of the same kind of day make a weekly level worth believing.
const MIN_KIN: usize = 2;

/// The smallest scale: 5 % of the baseline, and never under one cent.
fn scale_floor(location: f64) -> f64 {
    (0.05 * location.abs()).max(0.01)
}

/// The median of finite values; 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() {
        return 0.0;
    }
    let m = Data::new(finite).median();
    if m.is_finite() { m } else { 0.0 }
}

impl Baseline {
    /// Builds a baseline from past window totals in dollars, nearest first. With no history
    /// the location is 0 and the scale is the floor, so the decision falls to the money
    /// thresholds.
    ///
    /// The location is the median of all windows, or of the nearest few when that is higher:
    /// a series that moved to a new level two days running is judged against that level, so
    /// growth is not an incident that pages every day.
    pub fn from_history(history: &[f64]) -> Baseline {
        Baseline::from_history_by_kind(history, &[])
    }

    /// As [`Baseline::from_history`], where `same_kind[i]` says whether window `i` fell on the
    /// same kind of day (weekday or weekend) as the one judged. With at least two such
    /// windows the location is never below their median either: a consumer app busier at
    /// weekends is judged on a Saturday against its weekends, and a business app quiet at
    /// weekends against its usual day, so neither weekly cycle pages.
    pub fn from_history_by_kind(history: &[f64], same_kind: &[bool]) -> Baseline {
        let recent = median(&history[..history.len().min(RECENT)]);
        let kin: Vec<f64> = history
            .iter()
            .zip(same_kind)
            .filter(|(_, same)| **same)
            .map(|(v, _)| *v)
            .collect();
        let kin = if kin.len() >= MIN_KIN {
            median(&kin)
        } else {
            0.0
        };
        let location = median(history).max(recent).max(kin);
        let deviations: Vec<f64> = history.iter().map(|v| (v - location).abs()).collect();
        let mad = median(&deviations);
        Baseline {
            location,
            scale: (mad * MAD_TO_SIGMA).max(scale_floor(location)),
            samples: history.len(),
        }
    }

    /// How many robust standard deviations `observed` is above the baseline.
    pub fn score(&self, observed: f64) -> f64 {
        let s = (observed - self.location) / self.scale;
        if s.is_finite() { s } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_history_gives_median_and_mad() {
        let b = Baseline::from_history(&[10.0, 12.0, 11.0, 9.0, 10.0, 12.0, 11.0]);
        assert_eq!(b.location, 11.0);
        assert!((b.scale - MAD_TO_SIGMA).abs() < 1e-12);
        assert!((b.score(16.0) - 5.0 / MAD_TO_SIGMA).abs() < 1e-12);
    }

    #[test]
    fn a_recent_level_shift_raises_the_baseline() {
        // nearest first: the last three windows sit at 30, the older ones at 10
        let b = Baseline::from_history(&[30.0, 31.0, 29.0, 10.0, 10.0, 11.0, 9.0, 10.0]);
        assert_eq!(b.location, 30.0);
        // one recent blip does not move it
        let b = Baseline::from_history(&[90.0, 10.0, 11.0, 10.0, 9.0]);
        assert_eq!(b.location, 11.0);
    }

    #[test]
    fn a_busier_kind_of_day_is_judged_against_its_own_kind() {
        // nearest first over a week: a Saturday judged against Fri..Mon (10) and Sun, Sat (25)
        let week = [10.0, 11.0, 10.0, 9.0, 10.0, 25.0, 24.0];
        let kind = [false, false, false, false, false, true, true];
        assert_eq!(Baseline::from_history(&week).location, 10.0);
        assert_eq!(Baseline::from_history_by_kind(&week, &kind).location, 24.5);
        // A quieter kind of day never lowers the baseline below the usual day.
        let monday = [4.0, 3.0, 10.0, 11.0, 10.0, 9.0, 10.0];
        let weekday = [false, false, true, true, true, true, true];
        assert_eq!(
            Baseline::from_history_by_kind(&monday, &weekday).location,
            10.0
        );
        // One window of the kind is not enough to believe in.
        let once = [10.0, 11.0, 10.0, 9.0, 10.0, 10.0, 25.0];
        let one = [false, false, false, false, false, false, true];
        assert_eq!(Baseline::from_history_by_kind(&once, &one).location, 10.0);
    }

    #[test]
    fn flat_and_empty_histories_stay_finite() {
        let flat = Baseline::from_history(&[0.0; 7]);
        assert_eq!(flat.location, 0.0);
        assert_eq!(flat.scale, 0.01);
        assert_eq!(flat.score(12.0), 1200.0);
        let empty = Baseline::from_history(&[]);
        assert_eq!((empty.location, empty.samples), (0.0, 0));
        assert!(empty.score(1.0).is_finite());
        let one = Baseline::from_history(&[2.5]);
        assert_eq!(one.location, 2.5);
        assert!(one.scale.is_finite() && one.scale > 0.0);
    }
}
