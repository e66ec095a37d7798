//! A generator of labelled worlds: tenants and features with daily cycles, the incidents the
//! pager exists for, and the patterns it must leave alone, with the incidents' windows as
//! labels. The bundled-style rules are replayed over two weeks at a five-minute schedule and
//! scored: every incident caught within half an hour of its onset, its culprit named, and no
//! page for the quiet patterns.

mod common;

use common::*;
use spendpager::alert::Status;
use spendpager::backtest;

struct Incident {
    name: &'static str,
    rule: &'static str,
    /// The label the page must carry, as `dimension=value`.
    culprit: &'static str,
    start: jiff::Timestamp,
    end: jiff::Timestamp,
}

const DAY0: &str = "2026-02-02T00:00:00Z"; // a Monday

fn at(day: i64, hour: i64) -> jiff::Timestamp {
    ts(DAY0) + jiff::SignedDuration::from_hours(day * 24 + hour)
}

/// Daytime peak, quiet nights.
fn daily_shape(hour: i64) -> f64 {
    match hour {
        0..=6 => 0.2,
        7..=8 => 0.6,
        9..=17 => 1.0,
        18..=21 => 0.6,
        _ => 0.3,
    }
}

fn world() -> (String, Vec<Incident>) {
    let mut noise = Noise(42);
    let mut out = String::new();
    let mut id = 0u64;
    let mut row = |t: jiff::Timestamp,
                   tenant: Option<&str>,
                   feature: &str,
                   model: &str,
                   requests: u64,
                   input: u64,
                   output: u64,
                   workflow: Option<&str>| {
        id += 1;
        let tenant = tenant
            .map(|t| format!(",\"tenant\":\"{t}\""))
            .unwrap_or_default();
        let workflow = workflow
            .map(|w| format!(",\"workflow\":\"{w}\""))
            .unwrap_or_default();
        out.push_str(&format!(
            "{{\"ts\":\"{t}\",\"request_id\":\"w{id}\",\"model\":\"{model}\",\"requests\":{requests},\"input_tokens\":{},\"output_tokens\":{},\"feature\":\"{feature}\"{tenant}{workflow}}}\n",
            input * requests,
            output * requests
        ));
    };
    let incidents = vec![
        Incident {
            name: "prompt change: answers ten times longer",
            rule: "feature-spike",
            culprit: "feature=chat",
            start: at(10, 14),
            end: at(10, 17),
        },
        Incident {
            name: "retry storm",
            rule: "feature-spike",
            culprit: "tenant=t2",
            start: at(11, 9),
            end: at(11, 11),
        },
        Incident {
            name: "agent looping all night",
            rule: "runaway-workflow",
            culprit: "workflow=agent-loop",
            start: at(12, 1),
            end: at(12, 6),
        },
        Incident {
            name: "traffic moved to a pricier model",
            rule: "feature-spike",
            culprit: "tenant=t4",
            start: at(12, 13),
            end: at(12, 16),
        },
        Incident {
            name: "a new tenant spending hard",
            rule: "feature-spike",
            culprit: "tenant=newco",
            start: at(13, 10),
            end: at(13, 14),
        },
        Incident {
            name: "spend with no tenant",
            rule: "unowned-spend",
            culprit: "",
            start: at(13, 15),
            end: at(13, 17),
        },
    ];
    let within = |t: jiff::Timestamp, i: usize| t >= incidents[i].start && t < incidents[i].end;
    for step in 0..(14 * 24 * 12) {
        let t = ts(DAY0) + jiff::SignedDuration::from_mins(step * 5);
        let day = step / (24 * 12);
        let hour = (step / 12) % 24;
        let shape = daily_shape(hour);
        for tenant in ["t1", "t2", "t3", "t4"] {
            for (feature, base_requests) in [("chat", 400.0), ("search", 250.0)] {
                let mut requests = (base_requests * shape * noise.around(0.15))
                    .round()
                    .max(1.0) as u64;
                let mut output = 300;
                let mut model = "gpt-4o-mini";
                if tenant == "t1" && feature == "chat" && within(t, 0) {
                    output = 3000;
                }
                if tenant == "t2" && feature == "search" && within(t, 1) {
                    requests *= 5;
                }
                if tenant == "t4" && feature == "chat" && within(t, 3) {
                    model = "gpt-4o";
                }
                row(
                    t,
                    Some(tenant),
                    feature,
                    model,
                    requests,
                    1500,
                    output,
                    None,
                );
            }
        }
        // Quiet: a nightly batch that is big but regular.
        if hour == 2 {
            let requests = (400.0 * noise.around(0.1)) as u64;
            row(t, Some("t5"), "batch", "gpt-4o", requests, 3000, 500, None);
        }
        // Quiet: steady growth of 3 % a day.
        let grown = (300.0 * shape * 1.03f64.powi(day as i32) * noise.around(0.1)).round() as u64;
        row(
            t,
            Some("t6"),
            "chat",
            "gpt-4o-mini",
            grown.max(1),
            1500,
            300,
            None,
        );
        // Quiet: a tenant spending cents, with blips large in ratio only.
        let blip = if step % 97 == 0 { 20 } else { 1 };
        row(t, Some("t7"), "chat", "gpt-4o-mini", blip, 200, 50, None);
        // The loop: a workflow calling the model all night.
        if within(t, 2) {
            row(
                t,
                Some("t3"),
                "agent",
                "gpt-4o",
                200,
                4000,
                800,
                Some("agent-loop"),
            );
        }
        // A tenant never seen before, spending hard from its first hour.
        if t >= incidents[4].start && t < incidents[4].end {
            row(t, Some("newco"), "chat", "gpt-4o", 150, 2000, 600, None);
        }
        // Spend that arrives with no tenant.
        if within(t, 5) {
            row(t, None, "chat", "gpt-4o", 60, 2000, 500, None);
        }
    }
    (out, incidents)
}

/// The rules both labelled worlds are scored with.
const RULES: &str = include_str!("fixtures/world-rules.yaml");

#[test]
fn every_incident_is_caught_and_named_and_the_quiet_patterns_are_left_alone() {
    let s = Scratch::new();
    let config = s.config(&format!("store: {}\ndelay: 0s\nschedule: \"*/5 * * * *\"\nchannels: {{ out: {{ kind: console }} }}\n{RULES}", s.path("store.db").display()));
    let (rows, incidents) = world();
    let mut store = s.store();
    let r = s.ingest(&mut store, "world.jsonl", &rows);
    assert_eq!(r.set_aside.len(), 0);
    let report = backtest::run(&config, &store, at(8, 0), at(14, 0), None).unwrap();
    let pages: Vec<_> = report
        .notifications
        .iter()
        .filter(|a| a.status == Status::Firing)
        .collect();

    let mut matched = vec![false; pages.len()];
    let mut delays = Vec::new();
    for inc in &incidents {
        let hit = pages.iter().enumerate().find(|(_, a)| {
            let t: jiff::Timestamp = a.at.parse().unwrap();
            a.rule == inc.rule
                && t > inc.start
                && t <= inc.end + jiff::SignedDuration::from_hours(1)
                && (inc.culprit.is_empty() || {
                    let (k, v) = inc.culprit.split_once('=').unwrap();
                    a.labels.get(k).and_then(|x| x.as_deref()) == Some(v)
                        || a.contributors
                            .iter()
                            .any(|c| c.dimension == k && c.value.as_deref() == Some(v))
                })
        });
        let (i, page) = hit.unwrap_or_else(|| {
            panic!(
                "not caught: {}\n{:#?}",
                inc.name,
                pages
                    .iter()
                    .map(|a| (&a.at, &a.rule, &a.labels))
                    .collect::<Vec<_>>()
            )
        });
        matched[i] = true;
        let t: jiff::Timestamp = page.at.parse().unwrap();
        let delay = t.as_second() - inc.start.as_second();
        assert!(
            delay <= 30 * 60,
            "{}: detected {delay} s after onset",
            inc.name
        );
        delays.push(delay);
        // Other pages during the incident (a second rule, a second series of the same
        // change, a reminder) are the incident too, not false pages.
        for (j, other) in pages.iter().enumerate() {
            let ot: jiff::Timestamp = other.at.parse().unwrap();
            if ot >= inc.start && ot <= inc.end + jiff::SignedDuration::from_hours(1) {
                matched[j] = true;
            }
        }
    }
    let false_pages: Vec<_> = pages
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(a, _)| (a.at.clone(), a.rule.clone(), a.labels.clone()))
        .collect();
    delays.sort_unstable();
    eprintln!(
        "worlds: {} of {} incidents caught with their culprit named; median time to detect {} min (max {} min); {} false pages in 6 days; {} pages in all",
        delays.len(),
        incidents.len(),
        delays[delays.len() / 2] / 60,
        delays.last().unwrap() / 60,
        false_pages.len(),
        pages.len()
    );
    // Six days of a dozen tenants and features: at most one false page, and never one for the quiet patterns.
    assert!(false_pages.len() <= 1, "false pages: {false_pages:#?}");
    // The quiet patterns (a big regular nightly batch, steady growth, a tenant spending cents)
    // are never paged at all.
    for a in &pages {
        let tenant = a
            .labels
            .get("tenant")
            .cloned()
            .flatten()
            .unwrap_or_default();
        assert!(
            !["t5", "t6", "t7"].contains(&tenant.as_str()),
            "a quiet pattern paged: {a:?}"
        );
    }
    // The explanation names the driver of each kind of change.
    let driver = |rule: &str, label: (&str, &str)| {
        pages
            .iter()
            .find(|a| {
                a.rule == rule && a.labels.get(label.0).and_then(|v| v.as_deref()) == Some(label.1)
            })
            .map(|a| a.drivers.clone())
    };
    let longer = driver("feature-spike", ("tenant", "t1")).expect("t1 paged");
    assert!(
        longer.output_tokens_per_request.unwrap() > 3.0,
        "{longer:?}"
    );
    let storm = driver("feature-spike", ("tenant", "t2")).expect("t2 paged");
    assert!(storm.requests.unwrap() > 3.0, "{storm:?}");
    let pricier = driver("feature-spike", ("tenant", "t4")).expect("t4 paged");
    // Caught within minutes of the switch, the hour is part cheap and part dear: the price
    // per token is the driver that moved, requests and tokens per request did not.
    assert!(pricier.cost_per_token.unwrap() > 2.0, "{pricier:?}");
    assert!(
        (0.8..1.25).contains(&pricier.requests.unwrap()),
        "{pricier:?}"
    );
    assert!(
        (0.9..1.1).contains(&pricier.output_tokens_per_request.unwrap()),
        "{pricier:?}"
    );
}

#[test]
fn backtest_labels_scores_the_same_world_from_the_command_line() {
    let s = Scratch::new();
    s.write("config.yaml", &format!("store: ./store.db\ndelay: 0s\nschedule: \"*/5 * * * *\"\nchannels: {{ out: {{ kind: console }} }}\n{RULES}"));
    let (rows, incidents) = world();
    s.write("world.jsonl", &rows);
    assert!(
        s.run(&["ingest", s.path("world.jsonl").to_str().unwrap()])
            .status
            .success()
    );
    let labels: Vec<serde_json::Value> = incidents
        .iter()
        .map(|i| {
            let series = match i.culprit.split_once('=') {
                Some((k, v)) => serde_json::json!({ k: v }),
                None => serde_json::json!({}),
            };
            serde_json::json!({"start": i.start.to_string(), "end": i.end.to_string(), "series": series, "name": i.name})
        })
        .collect();
    // One more window in which nothing happened: it must be missed.
    let mut labels = labels;
    labels.push(serde_json::json!({"start": at(9, 12).to_string(), "end": at(9, 13).to_string(), "name": "nothing"}));
    s.write("labels.json", &serde_json::to_string(&labels).unwrap());
    let out = s.run(&[
        "backtest",
        "--from",
        &at(8, 0).to_string(),
        "--to",
        &at(14, 0).to_string(),
        "--labels",
        s.path("labels.json").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let score: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(score["incidents"], 7);
    assert_eq!(score["caught"], 6);
    assert_eq!(score["culprit_named"], 6);
    assert_eq!(score["false_pages"], 0);
    assert_eq!(score["results"][6]["caught"], false);
    assert!(score["median_time_to_detect_s"].as_i64().unwrap() <= 30 * 60);
    assert!(
        err.contains("labels: 6 of 7 caught, 6 with the culprit named"),
        "{err}"
    );
}
