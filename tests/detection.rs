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
