//! Detection beyond the first version: budget forecasts.

mod common;

use common::*;
use spendpager::cycle;
use spendpager::store::StoreHistory;

#[test]
fn a_budget_forecast_pages_before_the_limit_and_says_when_it_will_be_crossed() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:
  - name: daily-forecast
    kind: budget
    group_by: [tenant]
    period: day
    limit_usd: 200
    forecast: true
    channels: [out]
  - name: daily-plain
    kind: budget
    group_by: [tenant]
    period: day
    limit_usd: 200
    channels: [out]
",
        s.path("store.db").display()
    ));
    // $10 in every hour for fifteen days, up to 05:00 on the last.
    let start = ts("2026-06-01T00:00:00Z");
    let mut lines = String::new();
    for h in 0..(14 * 24 + 5) {
        let t = start + jiff::SignedDuration::from_hours(h) + jiff::SignedDuration::from_mins(30);
        lines.push_str(&format!("{{\"ts\":\"{t}\",\"request_id\":\"h{h}\",\"model\":\"gpt-4o\",\"cost_usd\":10,\"tenant\":\"acme\"}}\n"));
    }
    let mut store = s.store();
    s.ingest(&mut store, "steady.jsonl", &lines);
    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2026-06-15T05:00:00Z"),
        true,
    )
    .unwrap();
    assert_eq!(
        notes.len(),
        1,
        "only the forecasting rule pages: {notes:#?}"
    );
    let a = &notes[0].alert;
    assert_eq!(a.rule, "daily-forecast");
    assert_eq!(a.observed_usd, 50.0);
    assert_eq!(a.forecast_usd, Some(240.0));
    assert_eq!(
        a.forecast_crosses_at.as_deref(),
        Some("2026-06-15T20:00:00Z")
    );
    assert!(
        a.summary.contains("on course for $240.00") && a.summary.contains("2026-06-15 20:00 UTC"),
        "{}",
        a.summary
    );
}

#[test]
fn a_reconcile_rule_pages_where_two_sources_disagree_and_names_it() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "store: ./store.db\ndelay: 0s\nchannels: { out: { kind: console } }\nrules:
  - name: app-vs-gateway
    kind: reconcile
    sources: [app, litellm]
    group_by: [model]
    period: day
    max_diff_share: 0.05
    min_diff_usd: 10
    channels: [out]
",
    );
    let row = |id: &str, model: &str, usd: f64| {
        format!(
            "{{\"ts\":\"2026-03-02T12:00:00Z\",\"request_id\":\"{id}\",\"model\":\"{model}\",\"cost_usd\":{usd}}}\n"
        )
    };
    s.write(
        "app.jsonl",
        &format!(
            "{}{}{}",
            row("a1", "gpt-4o", 120.0),
            row("a2", "gpt-4o-mini", 50.0),
            row("a3", "ft-only-in-app", 30.0)
        ),
    );
    s.write(
        "gateway.jsonl",
        &format!(
            "{}{}",
            row("g1", "gpt-4o", 95.0),
            row("g2", "gpt-4o-mini", 49.5)
        ),
    );
    assert!(
        s.run(&[
            "ingest",
            "--source",
            "app",
            s.path("app.jsonl").to_str().unwrap()
        ])
        .status
        .success()
    );
    assert!(
        s.run(&[
            "ingest",
            "--source",
            "litellm",
            s.path("gateway.jsonl").to_str().unwrap()
        ])
        .status
        .success()
    );
    // The day is judged once it is over.
    let during = s.run(&["evaluate", "--at", "2026-03-02T23:00:00Z", "--dry-run"]);
    assert_eq!(stdout(&during), "");
    let out = s.run(&["evaluate", "--at", "2026-03-03T00:10:00Z", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alerts: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let models: Vec<&str> = alerts
        .iter()
        .map(|a| a["labels"]["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        ["ft-only-in-app", "gpt-4o"],
        "gpt-4o-mini differs by 1 %: quiet"
    );
    let gpt = &alerts[1];
    assert_eq!(gpt["kind"], "reconcile");
    assert_eq!(gpt["period"], "2026-03-02");
    assert_eq!(
        gpt["sources"][0],
        serde_json::json!({"source": "app", "usd": 120.0})
    );
    assert_eq!(
        gpt["sources"][1],
        serde_json::json!({"source": "litellm", "usd": 95.0})
    );
    let summary = gpt["summary"].as_str().unwrap();
    assert!(summary.contains("app reports $120.00 and litellm reports $95.00 for 2026-03-02, a difference of $25.00 (20.8% of the larger)"), "{summary}");
}
