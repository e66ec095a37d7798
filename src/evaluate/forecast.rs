//! Budget forecasts: where a period's spend is heading.
//!
//! The rest of the period is projected hour by hour from the series' own profile, the
//! average spend at each local hour of the day over the last two weeks, scaled by the day of
//! the week, and then by the recent run rate: how the last six hours compare with what the
//! profile expected of them. With no profile to speak of, the recent rate is carried forward.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// How far back the profile reaches, in hours.
pub const PROFILE_HOURS: i64 = 14 * 24;
/// How many recent hours set the run rate.
const RECENT_HOURS: usize = 6;
/// The run-rate factor is kept within these bounds, so one odd hour cannot project a month.
const RATE_BOUNDS: (f64, f64) = (0.1, 10.0);

/// A projection of the period's total.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// Spend expected by the end of the period, in dollars.
    pub total_usd: f64,
    /// The minute (since the epoch) the limit is expected to be reached, if it is.
    pub crosses_at_minute: Option<i64>,
}

fn local(hour_start_minute: i64, tz: &TimeZone) -> (usize, usize) {
    let z = Timestamp::from_second(hour_start_minute * 60)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone());
    (
        z.hour() as usize,
        z.weekday().to_monday_zero_offset() as usize,
    )
}

/// Projects the period. `hourly` is the spend of each whole hour before `now_minute`, oldest
/// first, ending at the hour that holds `now_minute`'s start (`hourly_end_minute`).
pub fn project(
    spent_usd: f64,
    limit_usd: f64,
    hourly: &[f64],
    hourly_end_minute: i64,
    now_minute: i64,
    period_end_minute: i64,
    tz: &TimeZone,
) -> Forecast {
    let n = hourly.len() as i64;
    let start = hourly_end_minute - n * 60;
    // Average spend per local hour of day, and each weekday's share of a normal day.
    let (mut by_hour, mut hour_n) = ([0.0f64; 24], [0u32; 24]);
    let (mut by_day, mut day_n) = ([0.0f64; 7], [0u32; 7]);
    for (i, v) in hourly.iter().enumerate() {
        let (h, d) = local(start + i as i64 * 60, tz);
        by_hour[h] += v;
        hour_n[h] += 1;
        by_day[d] += v;
        day_n[d] += 1;
    }
    let hour_avg: Vec<f64> = (0..24)
        .map(|h| {
            if hour_n[h] > 0 {
                by_hour[h] / f64::from(hour_n[h])
            } else {
                0.0
            }
        })
        .collect();
    let day_avg: Vec<f64> = (0..7)
        .map(|d| {
            if day_n[d] > 0 {
                by_day[d] / f64::from(day_n[d])
            } else {
                0.0
            }
        })
        .collect();
    let seen_days: Vec<f64> = day_avg.iter().copied().filter(|v| *v > 0.0).collect();
    let mean_day = if seen_days.is_empty() {
        0.0
    } else {
        seen_days.iter().sum::<f64>() / seen_days.len() as f64
    };
    let expected = |minute: i64| -> f64 {
        let (h, d) = local(minute.div_euclid(60) * 60, tz);
        let weekday = if mean_day > 0.0 && day_avg[d] > 0.0 {
            day_avg[d] / mean_day
        } else {
            1.0
        };
        hour_avg[h] * weekday
    };

    // The recent run rate against what the profile expected of the same hours.
    let recent: Vec<f64> = hourly.iter().rev().take(RECENT_HOURS).copied().collect();
    let recent_actual: f64 = recent.iter().sum();
    let recent_expected: f64 = (0..recent.len() as i64)
        .map(|k| expected(hourly_end_minute - (k + 1) * 60))
        .sum();
    let flat_rate = if recent.is_empty() {
        0.0
    } else {
        recent_actual / recent.len() as f64
    };
    let rate = if recent_expected > 0.0 {
        (recent_actual / recent_expected).clamp(RATE_BOUNDS.0, RATE_BOUNDS.1)
    } else {
        1.0
    };
    let mut total = spent_usd;
    let mut crosses = (spent_usd >= limit_usd).then_some(now_minute);
    let mut minute = now_minute;
    while minute < period_end_minute {
        let next = ((minute.div_euclid(60)) + 1) * 60;
        let step_end = next.min(period_end_minute);
        let fraction = (step_end - minute) as f64 / 60.0;
        let per_hour = if recent_expected > 0.0 {
            expected(minute) * rate
        } else {
            flat_rate
        };
        let before = total;
        total += per_hour * fraction;
        if crosses.is_none() && total >= limit_usd && per_hour > 0.0 {
            let into = ((limit_usd - before) / per_hour * 60.0).ceil() as i64;
            crosses = Some((minute + into).min(step_end));
        }
        minute = step_end;
    }
    let total_usd = if total.is_finite() { total } else { spent_usd };
    Forecast {
        total_usd,
        crosses_at_minute: crosses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_projects_linearly_and_says_when_it_crosses() {
        // $10 an hour every hour for two weeks; $50 spent by 05:00 of a 24h day.
        let hourly = vec![10.0; 336];
        let day_start = 20_000 * 1440;
        let now = day_start + 5 * 60;
        let f = project(
            50.0,
            200.0,
            &hourly,
            now,
            now,
            day_start + 1440,
            &TimeZone::UTC,
        );
        assert!((f.total_usd - 240.0).abs() < 1e-9, "{f:?}");
        // 150 more at $10/h: 15 hours after 05:00.
        assert_eq!(f.crosses_at_minute, Some(now + 15 * 60));
    }

    #[test]
    fn a_daily_profile_shapes_the_rest_of_the_day() {
        // Busy 09:00-17:00 at $30/h, $0 otherwise: the night adds nothing.
        let mut hourly = Vec::new();
        for h in 0..336 {
            hourly.push(if (9..17).contains(&(h % 24)) {
                30.0
            } else {
                0.0
            });
        }
        let day_start = 20_000 * 1440;
        let now = day_start + 18 * 60; // after the busy hours
        let f = project(
            240.0,
            300.0,
            &hourly,
            now,
            now,
            day_start + 1440,
            &TimeZone::UTC,
        );
        assert!((f.total_usd - 240.0).abs() < 1e-9, "{f:?}");
        assert_eq!(f.crosses_at_minute, None);
    }

    #[test]
    fn a_run_rate_above_the_profile_scales_it() {
        // The profile says about $10/h; the last six hours ran at $20/h. Those hours are in the
        // profile too (13 days at 10 and one at 20: 10.714), so the rate is 120 / 64.29.
        let mut hourly = vec![10.0; 330];
        hourly.extend([20.0; 6]);
        let day_start = 20_000 * 1440;
        let now = day_start + 12 * 60;
        let f = project(
            0.0,
            1e9,
            &hourly,
            now,
            now,
            day_start + 1440,
            &TimeZone::UTC,
        );
        let rate = 120.0 / (6.0 * (13.0 * 10.0 + 20.0) / 14.0);
        assert!((f.total_usd - 12.0 * 10.0 * rate).abs() < 1e-6, "{f:?}");
        assert!((f.total_usd - 224.0).abs() < 1e-6, "{f:?}");
    }
}
