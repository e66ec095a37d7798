//! A fleet: fifty series (twenty-five tenants with two features each) of very different sizes,
//! from cents to tens of dollars an hour, each with its own daily cycle in its own time of
//! day, a weekly cycle (business tenants quiet at weekends, consumer tenants busier), noisy
//! hours, and the quiet patterns the pager must leave alone. Two weeks are scored after a
//! week of history, at a five-minute schedule with one-hour windows, with the library's own
//! label scoring (`backtest --labels`).
//!
//! Targets (issue 3): every incident caught with its culprit named within half an hour of
//! its onset; at most one false page in the two weeks across the fifty series; the quiet
//! patterns never paged.

mod common;

use common::*;
use spendpager::backtest::{self, labels};
use std::collections::BTreeMap;

/// The rules both labelled worlds are scored with.
const RULES: &str = include_str!("fixtures/world-rules.yaml");

const DAY0: &str = "2026-03-02T00:00:00Z"; // a Monday
/// Rows are written every ten minutes.
const STEP_MIN: i64 = 10;
const DAYS: i64 = 21;

fn at(day: i64, hour: i64) -> jiff::Timestamp {
    ts(DAY0) + jiff::SignedDuration::from_hours(day * 24 + hour)
}

/// What one request costs on gpt-4o-mini with 1,500 tokens in and 300 out, in dollars.
const MINI_REQUEST_USD: f64 = 1500.0 * 0.15e-6 + 300.0 * 0.6e-6;

#[derive(Clone, Copy, PartialEq)]
enum Week {
    /// Weekends at a third.
    Business,
    /// Weekends half as busy again.
    Consumer,
    Flat,
}

struct Tenant {
    name: String,
    /// Peak dollars an hour, per feature.
    peak_usd: f64,
    /// Hours the daily cycle is shifted by (the tenant's users live elsewhere).
    shift: i64,
    week: Week,
}

/// A smooth daily cycle: low at night, peaking in the afternoon.
fn daily(hour: f64) -> f64 {
    let x = (hour - 15.0) / 24.0 * std::f64::consts::TAU;
    0.55 + 0.45 * x.cos()
}

fn weekly(week: Week, weekday: i64) -> f64 {
    match (week, weekday >= 5) {
        (Week::Business, true) => 0.35,
        (Week::Consumer, true) => 1.5,
        _ => 1.0,
    }
}

struct Incident {
    name: &'static str,
    series: &'static [(&'static str, &'static str)],
    start: jiff::Timestamp,
    end: jiff::Timestamp,
}

fn incidents() -> Vec<Incident> {
    vec![
        Incident {
            name: "answers ten times longer",
            series: &[("tenant", "c03"), ("feature", "chat")],
            start: at(8, 14),
            end: at(8, 17),
        },
        Incident {
            name: "retry storm",
            series: &[("tenant", "c05")],
            start: at(10, 10),
            end: at(10, 12),
        },
        Incident {
            name: "agent looping all night",
            series: &[("workflow", "nightly-agent")],
            start: at(12, 1),
            end: at(12, 6),
        },
        Incident {
            name: "traffic moved to a pricier model",
            series: &[("tenant", "c09")],
            start: at(15, 13),
            end: at(15, 16),
        },
        Incident {
            name: "a new tenant spending hard",
            series: &[("tenant", "newco")],
            start: at(17, 10),
            end: at(17, 14),
        },
        Incident {
            name: "spend with no tenant",
            series: &[],
            start: at(19, 15),
            end: at(19, 17),
        },
    ]
}

/// Tenants whose patterns are quiet on purpose and must never page.
const QUIET: [&str; 4] = ["c20", "c21", "c22", "c23"];

fn tenants(noise: &mut Noise) -> Vec<Tenant> {
    (0..25)
        .map(|i| {
            // From two cents to forty dollars an hour at the peak, spread evenly in log.
            let peak_usd = 0.02 * (2000f64).powf(noise.next());
            let week = match i % 3 {
                0 => Week::Business,
                1 => Week::Consumer,
                _ => Week::Flat,
            };
            Tenant {
                name: format!("c{i:02}"),
                peak_usd,
                shift: (noise.next() * 24.0) as i64 - 12,
                week,
            }
        })
        .map(|mut t| {
            // The incidents' tenants are big enough for a change to be worth a page.
            if ["c03", "c05", "c09"].contains(&t.name.as_str()) {
                t.peak_usd = t.peak_usd.max(8.0);
            }
            match t.name.as_str() {
                // A big nightly batch, every night at the same hour.
                "c20" => t.peak_usd = 1.0,
                // Growth of four percent a day.
                "c21" => t.peak_usd = 6.0,
                // A tenant spending cents.
                "c22" => t.peak_usd = 0.03,
                // A consumer tenant whose weekends are much busier.
                "c23" => t.week = Week::Consumer,
                _ => {}
            }
            t
        })
        .collect()
}

struct Rows {
    out: String,
    id: u64,
}

impl Rows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        t: jiff::Timestamp,
        tenant: Option<&str>,
        feature: &str,
        model: &str,
        requests: u64,
        output: u64,
        workflow: Option<&str>,
    ) {
        if requests == 0 {
            return;
        }
        self.id += 1;
        let mut extra = String::new();
        if let Some(t) = tenant {
            extra.push_str(&format!(",\"tenant\":\"{t}\""));
        }
        if let Some(w) = workflow {
            extra.push_str(&format!(",\"workflow\":\"{w}\""));
        }
        self.out.push_str(&format!(
            "{{\"ts\":\"{t}\",\"request_id\":\"f{}\",\"model\":\"{model}\",\"requests\":{requests},\"input_tokens\":{},\"output_tokens\":{},\"feature\":\"{feature}\"{extra}}}\n",
            self.id,
            1500 * requests,
            output * requests
        ));
    }
}

fn fleet() -> (String, Vec<Incident>) {
    let mut noise = Noise(2026);
    let tenants = tenants(&mut noise);
    let incidents = incidents();
    let within = |t: jiff::Timestamp, i: usize| t >= incidents[i].start && t < incidents[i].end;
    let mut rows = Rows {
        out: String::new(),
        id: 0,
    };
    let steps_per_day = 24 * 60 / STEP_MIN;
    let mut busy_hour = vec![1.0; tenants.len()];
    for step in 0..DAYS * steps_per_day {
        let t = ts(DAY0) + jiff::SignedDuration::from_mins(step * STEP_MIN);
        let day = step / steps_per_day;
        let minute_of_day = (step % steps_per_day) * STEP_MIN;
        let hour = minute_of_day / 60;
        // Noisy hours: now and then a tenant has an hour a third busier than usual.
        if minute_of_day % 60 == 0 {
            for b in busy_hour.iter_mut() {
                *b = if noise.next() < 0.03 { 1.3 } else { 1.0 };
            }
        }
        for (i, tenant) in tenants.iter().enumerate() {
            let local_min = step * STEP_MIN + tenant.shift * 60;
            let local_hour = local_min.rem_euclid(1440) as f64 / 60.0;
            let weekday = local_min.div_euclid(1440).rem_euclid(7);
            let mut level =
                tenant.peak_usd * daily(local_hour) * weekly(tenant.week, weekday) * busy_hour[i];
            if tenant.name == "c21" {
                level *= 1.04f64.powi(day as i32);
            }
            for feature in ["chat", "search"] {
                let usd = level * noise.around(0.25) * STEP_MIN as f64 / 60.0;
                let mut requests = (usd / MINI_REQUEST_USD).round() as u64;
                let mut output = 300;
                let mut model = "gpt-4o-mini";
                match (tenant.name.as_str(), feature) {
                    ("c03", "chat") if within(t, 0) => output = 3000,
                    ("c05", "search") if within(t, 1) => requests *= 5,
                    ("c09", "chat") if within(t, 3) => model = "gpt-4o",
                    // The cents tenant blips to twenty times its usual now and then.
                    ("c22", _) if step % 97 == 0 => requests = requests.max(1) * 20,
                    _ => {}
                }
                rows.push(
                    t,
                    Some(&tenant.name),
                    feature,
                    model,
                    requests,
                    output,
                    None,
                );
            }
            // The nightly batch: a hundred times the tenant's usual, at 02:00 UTC, every night.
            if tenant.name == "c20" && hour == 2 {
                let usd = 100.0 * noise.around(0.1) * STEP_MIN as f64 / 60.0;
                let requests = (usd / MINI_REQUEST_USD).round() as u64;
                rows.push(t, Some("c20"), "batch", "gpt-4o-mini", requests, 300, None);
            }
        }
        if within(t, 2) {
            rows.push(
                t,
                Some("c07"),
                "agent",
                "gpt-4o",
                300,
                800,
                Some("nightly-agent"),
            );
        }
        if within(t, 4) {
            rows.push(t, Some("newco"), "chat", "gpt-4o", 300, 600, None);
        }
        if within(t, 5) {
            rows.push(t, None, "chat", "gpt-4o", 1500, 500, None);
        }
    }
    (rows.out, incidents)
}

#[test]
fn fifty_series_over_two_weeks_page_for_incidents_and_almost_never_otherwise() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nschedule: \"*/5 * * * *\"\nchannels: {{ out: {{ kind: console }} }}\n{RULES}",
        s.path("store.db").display()
    ));
    let (rows, incidents) = fleet();
    let mut store = s.store();
    let r = s.ingest(&mut store, "fleet.jsonl", &rows);
    assert_eq!(r.set_aside.len(), 0);
    let (from, to) = (at(7, 0), at(DAYS, 0));
    let report = backtest::run(&config, &store, from, to, None).unwrap();
    let label_list: Vec<labels::Label> = incidents
        .iter()
        .map(|i| labels::Label {
            start: i.start,
            end: i.end,
            series: i
                .series
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            name: Some(i.name.to_string()),
        })
        .collect();
    let score = labels::score(&report.notifications, &label_list, from, to);
    let series: std::collections::BTreeSet<_> = report
        .notifications
        .iter()
        .map(|a| (a.rule.clone(), a.labels.clone()))
        .collect();
    eprintln!(
        "fleet: {} of {} incidents caught, {} with the culprit named, median time to detect {} min (max {} min); {} false pages in 14 days ({:.2} a week) across 50 series; {} pages in all over {} paged series",
        score.caught,
        score.incidents,
        score.culprit_named,
        score.median_time_to_detect_s.unwrap_or(-60) / 60,
        score
            .results
            .iter()
            .filter_map(|r| r.time_to_detect_s)
            .max()
            .unwrap_or(-60)
            / 60,
        score.false_pages,
        score.false_pages_per_week,
        report
            .notifications
            .iter()
            .filter(|a| a.status == spendpager::alert::Status::Firing)
            .count(),
        series.len(),
    );
    for a in report
        .notifications
        .iter()
        .filter(|a| a.status == spendpager::alert::Status::Firing)
    {
        eprintln!("  page {} {} {:?} {}", a.at, a.rule, a.labels, a.summary);
    }
    for r in &score.results {
        assert!(r.caught && r.culprit_named, "{r:?}");
        assert!(r.time_to_detect_s.unwrap() <= 30 * 60, "{r:?}");
    }
    assert!(score.false_pages <= 1, "{score:#?}");
    for a in &report.notifications {
        let tenant = a
            .labels
            .get("tenant")
            .cloned()
            .flatten()
            .unwrap_or_default();
        assert!(
            !QUIET.contains(&tenant.as_str()),
            "a quiet pattern paged: {a:?}"
        );
    }
}
