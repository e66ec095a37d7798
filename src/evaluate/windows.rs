//! Which minutes a rule looks at: the window it judges and the comparable past windows its
//! baseline is made of. Calendar periods are local to the rule's zone, and local days are not
//! always 24 hours (case 05).

use crate::config::{Period, Rule, RuleKind, Seasonality, units::Dur};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// Minutes `[start, end)` since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn start_ms(&self) -> i64 {
        self.start * 60_000
    }
    pub fn end_ms(&self) -> i64 {
        self.end * 60_000
    }
    pub fn start_ts(&self) -> Timestamp {
        Timestamp::from_millisecond(self.start_ms()).unwrap_or(Timestamp::UNIX_EPOCH)
    }
    pub fn end_ts(&self) -> Timestamp {
        Timestamp::from_millisecond(self.end_ms()).unwrap_or(Timestamp::UNIX_EPOCH)
    }
    pub fn minutes(&self) -> i64 {
        self.end - self.start
    }
}

/// What a rule looks at for one evaluation.
#[derive(Clone, Debug)]
pub struct Plan {
    pub current: Span,
    /// Past windows, nearest first, that the baseline is made of.
    pub comparable: Vec<Span>,
    /// For each comparable window, whether it falls on the same kind of day (weekday or
    /// weekend, in the rule's zone) as the current one. All true unless the seasonality is
    /// daily: there a Saturday is also judged against the Saturdays and Sundays before it.
    pub same_kind: Vec<bool>,
    /// The local calendar period, for budgets: `2026-08-20`, `2026-W34`, `2026-08`.
    pub period: Option<String>,
    /// Where that period ends, in minutes since the epoch.
    pub period_end: Option<i64>,
}

/// The last whole minute that is `delay` before `at`: windows end there.
pub fn judged_until(at: Timestamp, delay: Dur) -> i64 {
    (at.as_second() - delay.seconds()).div_euclid(60)
}

use crate::config::MAX_COMPARABLE_WINDOWS as MAX_COMPARABLE;

/// The same window `k` days (or weeks) earlier in local time: across a clock change the
/// comparable hour is the same hour on the wall clock, not 24 real hours before.
fn calendar_shift(span: Span, days: i64, tz: &TimeZone) -> Option<Span> {
    let start = Timestamp::from_second(span.start * 60)
        .ok()?
        .to_zoned(tz.clone());
    let earlier = start.checked_sub(days.days()).ok()?;
    let s = earlier.timestamp().as_second().div_euclid(60);
    Some(Span {
        start: s,
        end: s + span.minutes(),
    })
}

/// Whether a window starts on a Saturday or a Sunday in `tz`.
fn weekend(span: Span, tz: &TimeZone) -> bool {
    let day = span.start_ts().to_zoned(tz.clone()).weekday();
    matches!(
        day,
        jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
    )
}

pub fn plan(rule: &Rule, at: Timestamp, delay: Dur) -> Plan {
    let end = judged_until(at, delay);
    let tz = &rule.timezone;
    match &rule.kind {
        RuleKind::Reconcile { period, .. } => {
            // The last complete period: both sources have had their chance to report it.
            let last = Timestamp::from_second((end - 1) * 60).unwrap_or(Timestamp::UNIX_EPOCH);
            let (current_start, _) = period_start(last, *period, tz);
            let previous =
                shift_period(&current_start, *period, -1).unwrap_or(current_start.clone());
            let (_, label) = period_start(previous.timestamp(), *period, tz);
            let minute = |z: &Zoned| z.timestamp().as_second().div_euclid(60);
            Plan {
                current: Span {
                    start: minute(&previous),
                    end: minute(&current_start),
                },
                comparable: Vec::new(),
                same_kind: Vec::new(),
                period: Some(label),
                period_end: Some(minute(&current_start)),
            }
        }
        RuleKind::Spike(s) => {
            let w = s.window.seconds() / 60;
            let current = Span {
                start: end - w,
                end,
            };
            let step = match s.seasonality {
                Seasonality::Daily => 1440,
                Seasonality::Weekly => 7 * 1440,
                Seasonality::None => w,
            };
            let count = (s.lookback.seconds() / 60 / step).clamp(0, MAX_COMPARABLE);
            let comparable = (1..=count)
                .filter_map(|k| match s.seasonality {
                    Seasonality::Daily => calendar_shift(current, k, tz),
                    Seasonality::Weekly => calendar_shift(current, 7 * k, tz),
                    Seasonality::None => Some(Span {
                        start: current.start - k * w,
                        end: current.end - k * w,
                    }),
                })
                .collect::<Vec<Span>>();
            let same_kind = match s.seasonality {
                Seasonality::Daily => {
                    let kind = weekend(current, tz);
                    comparable.iter().map(|c| weekend(*c, tz) == kind).collect()
                }
                _ => vec![true; comparable.len()],
            };
            Plan {
                current,
                comparable,
                same_kind,
                period: None,
                period_end: None,
            }
        }
        RuleKind::Threshold { window, .. }
        | RuleKind::Attribution { window, .. }
        | RuleKind::Runaway { window, .. } => {
            let current = Span {
                start: end - window.seconds() / 60,
                end,
            };
            let comparable: Vec<Span> = (1..=7)
                .filter_map(|k| calendar_shift(current, k, tz))
                .collect();
            Plan {
                current,
                same_kind: vec![true; comparable.len()],
                comparable,
                period: None,
                period_end: None,
            }
        }
        RuleKind::Budget { period, .. } => {
            // The period holding the last judged minute, so that a cycle just after midnight
            // still closes the day before.
            let last = Timestamp::from_second((end - 1) * 60).unwrap_or(Timestamp::UNIX_EPOCH);
            let (start, label) = period_start(last, *period, tz);
            let start_min = start.timestamp().as_second().div_euclid(60);
            let current = Span {
                start: start_min,
                end,
            };
            let elapsed = end - start_min;
            let comparable = (1..=3)
                .filter_map(|k| {
                    let earlier = shift_period(&start, *period, -k)?;
                    let s = earlier.timestamp().as_second().div_euclid(60);
                    Some(Span {
                        start: s,
                        end: s + elapsed,
                    })
                })
                .collect::<Vec<Span>>();
            let period_end =
                shift_period(&start, *period, 1).map(|z| z.timestamp().as_second().div_euclid(60));
            Plan {
                current,
                same_kind: vec![true; comparable.len()],
                comparable,
                period: Some(label),
                period_end,
            }
        }
    }
}

/// The start of the local period holding `t`, and the period's name.
pub fn period_start(t: Timestamp, period: Period, tz: &TimeZone) -> (Zoned, String) {
    let z = t.to_zoned(tz.clone());
    let day_start = |z: &Zoned| z.start_of_day().unwrap_or_else(|_| z.clone());
    match period {
        Period::Hour => {
            let s = z
                .with()
                .minute(0)
                .second(0)
                .subsec_nanosecond(0)
                .build()
                .unwrap_or_else(|_| z.clone());
            let label = s.strftime("%Y-%m-%dT%H:00").to_string();
            (s, label)
        }
        Period::Day => {
            let s = day_start(&z);
            (s.clone(), s.strftime("%Y-%m-%d").to_string())
        }
        Period::Week => {
            let back = z.weekday().to_monday_zero_offset();
            let monday = z
                .checked_sub(i64::from(back).days())
                .unwrap_or_else(|_| z.clone());
            let s = day_start(&monday);
            (s.clone(), s.strftime("%G-W%V").to_string())
        }
        Period::Month => {
            let first = z.first_of_month().unwrap_or_else(|_| z.clone());
            let s = day_start(&first);
            (s.clone(), s.strftime("%Y-%m").to_string())
        }
    }
}

pub(crate) fn shift_period(start: &Zoned, period: Period, k: i64) -> Option<Zoned> {
    let span = match period {
        Period::Hour => k.hours(),
        Period::Day => k.days(),
        Period::Week => k.weeks(),
        Period::Month => k.months(),
    };
    start.checked_add(span).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn case_05_local_days_in_shanghai() {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let (s, label) = period_start(ts("2026-08-19T10:00:00Z"), Period::Day, &tz);
        assert_eq!(s.timestamp(), ts("2026-08-18T16:00:00Z"));
        assert_eq!(label, "2026-08-19");
        let (s, label) = period_start(ts("2026-08-19T16:00:00Z"), Period::Day, &tz);
        assert_eq!(s.timestamp(), ts("2026-08-19T16:00:00Z"));
        assert_eq!(label, "2026-08-20");
    }

    #[test]
    fn case_05_new_york_days_of_25_and_23_hours() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let (s, label) = period_start(ts("2025-11-03T04:30:00Z"), Period::Day, &tz);
        assert_eq!(label, "2025-11-02");
        assert_eq!(s.timestamp(), ts("2025-11-02T04:00:00Z"));
        let next = shift_period(&s, Period::Day, 1).unwrap();
        assert_eq!(next.timestamp(), ts("2025-11-03T05:00:00Z"));
        let (s, _) = period_start(ts("2025-03-09T12:00:00Z"), Period::Day, &tz);
        let next = shift_period(&s, Period::Day, 1).unwrap();
        assert_eq!(
            next.timestamp().as_second() - s.timestamp().as_second(),
            23 * 3600
        );
    }

    #[test]
    fn daily_comparable_windows_keep_the_wall_clock_hour_across_dst() {
        let tz = TimeZone::get("Europe/Paris").unwrap();
        // 10:00-11:00 local on 2025-03-31 (CEST) against 10:00-11:00 local on 2025-03-29 (CET)
        let now = Span {
            start: ts("2025-03-31T08:00:00Z").as_second() / 60,
            end: ts("2025-03-31T09:00:00Z").as_second() / 60,
        };
        let back = calendar_shift(now, 2, &tz).unwrap();
        assert_eq!(back.start * 60, ts("2025-03-29T09:00:00Z").as_second());
        assert_eq!(back.minutes(), 60);
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let (s, label) = period_start(ts("2025-03-06T12:00:00Z"), Period::Week, &TimeZone::UTC);
        assert_eq!(s.timestamp(), ts("2025-03-03T00:00:00Z"));
        assert_eq!(label, "2025-W10");
        let (s, label) = period_start(ts("2025-03-06T12:00:00Z"), Period::Month, &TimeZone::UTC);
        assert_eq!(s.timestamp(), ts("2025-03-01T00:00:00Z"));
        assert_eq!(label, "2025-03");
    }
}
