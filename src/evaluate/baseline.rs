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
        let recent = median(&history[..history.len().min(RECENT)]);
        let location = median(history).max(recent);
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
