//! Cron schedules in a time zone.
//!
//! croner reads crontab syntax (five fields, an optional leading seconds field, POSIX
//! weekdays where 0 is Sunday) and has defined behaviour across clock changes: a fixed local
//! time that a spring-forward skips runs at the end of the gap, and one that a fall-back
//! repeats runs once, at its first occurrence; hourly and finer patterns run once per real
//! hour (case 08).

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A parsed schedule bound to the zone its fields are read in.
#[derive(Clone, Debug)]
pub struct Schedule {
    expr: String,
    cron: Cron,
    tz: TimeZone,
}

impl Schedule {
    /// Parses a crontab expression; the error quotes it.
    pub fn parse(expr: &str, tz: TimeZone) -> Result<Schedule, String> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map_err(|e| format!("cannot read schedule `{expr}`: {e}"))?;
        Ok(Schedule {
            expr: expr.to_string(),
            cron,
            tz,
        })
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let local = after.to_zoned(self.tz.clone());
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// Every fire time in `(from, to]`, in order.
    pub fn fire_times(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = Timestamp> + '_ {
        let mut cursor = from;
        std::iter::from_fn(move || {
            let next = self.next_after(cursor)?;
            if next > to {
                return None;
            }
            cursor = next;
            Some(next)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fires(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(expr, TimeZone::get(zone).unwrap()).unwrap();
        let mut at: Timestamp = from.parse().unwrap();
        (0..n)
            .map(|_| {
                at = s.next_after(at).unwrap();
                at.to_string()
            })
            .collect()
    }

    #[test]
    fn case_08_fall_back_fires_the_first_0130_only() {
        assert_eq!(
            fires("30 1 * * *", "America/New_York", "2025-11-01T12:00:00Z", 3),
            [
                "2025-11-02T05:30:00Z",
                "2025-11-03T06:30:00Z",
                "2025-11-04T06:30:00Z"
            ]
        );
    }

    #[test]
    fn case_08_spring_forward_runs_at_the_end_of_the_gap() {
        assert_eq!(
            fires("30 2 * * *", "America/New_York", "2025-03-08T12:00:00Z", 3),
            [
                "2025-03-09T07:00:00Z",
                "2025-03-10T06:30:00Z",
                "2025-03-11T06:30:00Z"
            ]
        );
    }

    #[test]
    fn case_08_hourly_fires_once_per_real_hour_across_fall_back() {
        assert_eq!(
            fires("0 * * * *", "Europe/Paris", "2020-10-24T23:30:00Z", 4),
            [
                "2020-10-25T00:00:00Z",
                "2020-10-25T01:00:00Z",
                "2020-10-25T02:00:00Z",
                "2020-10-25T03:00:00Z"
            ]
        );
    }

    #[test]
    fn case_08_weekdays_are_crontab_numbers() {
        let weekdays = [
            "2025-12-01T09:00:00Z",
            "2025-12-02T09:00:00Z",
            "2025-12-03T09:00:00Z",
            "2025-12-04T09:00:00Z",
            "2025-12-05T09:00:00Z",
        ];
        assert_eq!(
            fires("0 9 * * 1-5", "UTC", "2025-11-28T12:00:00Z", 5),
            weekdays
        );
        assert_eq!(
            fires("0 9 * * MON-FRI", "UTC", "2025-11-28T12:00:00Z", 5),
            weekdays
        );
        assert_eq!(
            fires("0 9 * * 0", "UTC", "2025-11-28T12:00:00Z", 1),
            ["2025-11-30T09:00:00Z"]
        );
    }

    #[test]
    fn case_08_an_unreadable_schedule_quotes_itself() {
        let err = Schedule::parse("*/5 * * *", TimeZone::UTC).unwrap_err();
        assert!(err.contains("`*/5 * * *`"), "{err}");
        assert!(Schedule::parse("0 */5 * * * *", TimeZone::UTC).is_ok());
    }

    #[test]
    fn fire_times_lists_a_range() {
        let s = Schedule::parse("*/5 * * * *", TimeZone::UTC).unwrap();
        let from: Timestamp = "2025-03-03T00:00:00Z".parse().unwrap();
        let to: Timestamp = "2025-03-03T01:00:00Z".parse().unwrap();
        assert_eq!(s.fire_times(from, to).count(), 12);
    }
}
