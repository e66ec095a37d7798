//! The cases from the field (shared/cases), each as a test against a real SQLite store.
//! Case 07 (delivery retries) is in tests/delivery.rs; case 08 (schedules) in src/schedule.rs.

mod common;

use common::*;
use spendpager::alert::Status;
use spendpager::backtest;
use spendpager::cycle;
use spendpager::store::StoreHistory;

const CASE_01: &str = r#"{"ts":"2026-03-02T10:00:00Z","request_id":"c1-1","model":"gpt-4o","input_tokens":2006,"cached_input_tokens":1920,"output_tokens":300,"tenant":"acme","feature":"support-bot"}
{"ts":"2026-03-02T10:00:05Z","request_id":"c1-2","model":"gpt-4o","input_tokens":2006,"cached_input_tokens":0,"output_tokens":300,"tenant":"acme","feature":"support-bot"}
{"ts":"2026-03-02T10:00:09Z","request_id":"c1-3","model":"gpt-4o","input_tokens":500,"cached_input_tokens":600,"output_tokens":10,"tenant":"acme","feature":"support-bot"}
"#;

#[test]
fn case_01_cached_prompt_tokens_are_priced_once_at_the_cached_rate() {
    let s = Scratch::new();
    let mut store = s.store();
    let report = s.ingest(&mut store, "c1.jsonl", CASE_01);
    assert_eq!(report.stored, 2);
    assert_eq!(report.set_aside.len(), 1);
    let aside = &report.set_aside[0];
    assert_eq!(aside.line, 3);
    assert!(aside.file.ends_with("c1.jsonl"), "{}", aside.file);
    assert!(
        aside.reason.contains("cached_input_tokens"),
        "{}",
        aside.reason
    );
    assert_eq!(row_cost(&store, "c1-1"), Some(5_615_000));
    assert_eq!(row_cost(&store, "c1-2"), Some(8_015_000));
    assert_eq!(rollup_spend(&store, Some("acme")), 13_630_000);
    assert_eq!(report.priced_usd.to_string(), "0.01363");
}

#[test]
fn case_02_rows_without_a_request_id_are_all_kept_and_not_doubled() {
    let s = Scratch::new();
    let mut store = s.store();
    let lines = r#"{"ts":"2026-03-02T12:00:00Z","request_id":"","model":"gpt-4o-mini","input_tokens":1000,"output_tokens":500,"cost_usd":0.00045,"tenant":"acme","feature":"chat-stream"}
{"ts":"2026-03-02T12:00:00Z","request_id":"","model":"gpt-4o-mini","input_tokens":2000,"output_tokens":1000,"cost_usd":0.0009,"tenant":"acme","feature":"chat-stream"}
{"ts":"2026-03-02T12:00:07Z","model":"gpt-4o-mini","input_tokens":4000,"output_tokens":2000,"cost_usd":0.0018,"tenant":"acme","feature":"chat-stream"}
"#;
    let first = s.ingest(&mut store, "c2.jsonl", lines);
    assert_eq!(
        (first.stored, first.without_request_id, first.duplicates),
        (3, 3, 0)
    );
    assert_eq!(rollup_spend(&store, Some("acme")), 3_150_000);
    let again = s.ingest(&mut store, "c2.jsonl", lines);
    assert_eq!((again.stored, again.duplicates), (0, 3));
    assert_eq!(rollup_spend(&store, Some("acme")), 3_150_000);
}

#[test]
fn case_03_the_same_request_logged_twice_is_counted_once() {
    let s = Scratch::new();
    let mut store = s.store();
    let lines = r#"{"ts":"2026-03-02T11:00:00Z","request_id":"resp_c3","model":"gpt-4o","input_tokens":121,"output_tokens":400,"cost_usd":0.0043025,"tenant":"acme","feature":"agent"}
{"ts":"2026-03-02T11:00:00Z","request_id":"resp_c3","model":"gpt-4o","input_tokens":121,"output_tokens":400,"cost_usd":0.0043025,"tenant":"acme","feature":"agent"}
{"ts":"2026-03-02T11:00:02Z","request_id":"resp_c3","model":"gpt-4o","input_tokens":121,"output_tokens":990,"cost_usd":0.0099,"tenant":"acme","feature":"agent"}
"#;
    let r = s.ingest(&mut store, "c3.jsonl", lines);
    assert_eq!((r.stored, r.duplicates, r.conflicts), (1, 1, 1));
    let conflict = r
        .set_aside
        .iter()
        .find(|a| a.kind == "conflict")
        .expect("the conflict is set aside");
    assert_eq!(conflict.line, 3);
    assert!(conflict.reason.contains("resp_c3"));
    assert_eq!(rollup_spend(&store, Some("acme")), 4_302_500);
    let again = s.ingest(&mut store, "c3.jsonl", lines);
    assert_eq!(again.stored, 0);
    assert_eq!(rollup_spend(&store, Some("acme")), 4_302_500);
    // The conflict is reported again, and recorded once.
    assert_eq!(again.conflicts, 1);
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let recorded: i64 = conn
        .query_row("SELECT count(*) FROM set_aside", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recorded, 1);
}

const CASE_04: &str = r#"{"ts":"2026-03-02T10:00:00Z","request_id":"c4-1","model":"gpt-4o","input_tokens":4000,"output_tokens":0,"cost_usd":0.010,"tenant":"alice","feature":"shared-key-app"}
{"ts":"2026-03-02T10:01:00Z","request_id":"c4-2","model":"gpt-4o","input_tokens":8000,"output_tokens":0,"cost_usd":0.020,"tenant":"bob","feature":"shared-key-app"}
{"ts":"2026-03-02T10:02:00Z","request_id":"c4-3","model":"gpt-4o","input_tokens":16000,"output_tokens":0,"cost_usd":0.040,"feature":"shared-key-app"}
{"ts":"2026-03-02T10:03:00Z","request_id":"c4-4","model":"gpt-4o","input_tokens":400,"output_tokens":0,"cost_usd":0.001,"tenant":"","feature":"shared-key-app"}
{"ts":"2026-03-02T10:04:00Z","request_id":"c4-5","model":"gpt-4o","input_tokens":2000,"output_tokens":0,"cost_usd":0.005,"tenant":"carol","feature":"shared-key-app"}
"#;

#[test]
fn case_04_spend_with_no_owner_is_its_own_bucket() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: tenant-hour-budget\n    kind: budget\n    group_by: [tenant]\n    period: hour\n    limit_usd: 0.030\n    channels: [out]\n",
        s.path("store.db").display()
    ));
    let mut store = s.store();
    s.ingest(&mut store, "c4.jsonl", CASE_04);
    assert_eq!(rollup_spend(&store, Some("alice")), 10_000_000);
    assert_eq!(rollup_spend(&store, Some("bob")), 20_000_000);
    assert_eq!(rollup_spend(&store, Some("carol")), 5_000_000);
    assert_eq!(rollup_spend(&store, None), 41_000_000);

    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2026-03-02T11:00:00Z"),
        true,
    )
    .unwrap();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let a = &notes[0].alert;
    assert_eq!(a.labels.get("tenant"), Some(&None));
    assert_eq!(a.observed_usd, 0.041);
    assert_eq!(a.sample_request_ids, ["c4-3", "c4-4"]);
    assert_eq!(a.unattributed_share, 0.5395);
    assert!(
        a.summary.contains("no tenant") && a.summary.contains("53.9%"),
        "{}",
        a.summary
    );
    assert_eq!(a.period.as_deref(), Some("2026-03-02T10:00"));
}

const CASE_05: &str = r#"{"ts":"2026-08-19T10:00:00Z","request_id":"c5-1","model":"gpt-4o","input_tokens":20000000,"output_tokens":0,"cost_usd":50.00,"tenant":"globex","feature":"etl"}
{"ts":"2026-08-19T15:59:59Z","request_id":"c5-2","model":"gpt-4o","input_tokens":18000000,"output_tokens":0,"cost_usd":45.00,"tenant":"globex","feature":"etl"}
{"ts":"2026-08-19T16:00:00Z","request_id":"c5-3","model":"gpt-4o","input_tokens":12000000,"output_tokens":0,"cost_usd":30.00,"tenant":"globex","feature":"etl"}
{"ts":"2026-08-20T15:00:00Z","request_id":"c5-4","model":"gpt-4o","input_tokens":24000000,"output_tokens":0,"cost_usd":60.00,"tenant":"globex","feature":"etl"}
"#;

fn case_05_config(s: &Scratch) -> spendpager::config::Config {
    s.config(&format!(
        "store: {}\ndelay: 0s\nschedule: \"*/5 * * * *\"\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: globex-daily\n    kind: budget\n    group_by: [tenant]\n    period: day\n    timezone: Asia/Shanghai\n    limit_usd: 100\n    repeat: 24h\n    channels: [out]\n",
        s.path("store.db").display()
    ))
}

#[test]
fn case_05_a_daily_budget_is_a_local_day() {
    let s = Scratch::new();
    let config = case_05_config(&s);
    let mut store = s.store();
    s.ingest(&mut store, "c5.jsonl", CASE_05);
    // Two local days replayed every five minutes: 95.00 and 90.00, never 100.
    let quiet = backtest::run(
        &config,
        &store,
        ts("2026-08-18T12:00:00Z"),
        ts("2026-08-20T15:55:00Z"),
        None,
    )
    .unwrap();
    assert!(quiet.notifications.is_empty(), "{:#?}", quiet.notifications);

    s.ingest(&mut store, "c5-more.jsonl", r#"{"ts":"2026-08-20T15:30:00Z","request_id":"c5-5","model":"gpt-4o","cost_usd":15.00,"tenant":"globex","feature":"etl"}
"#);
    let run = backtest::run(
        &config,
        &store,
        ts("2026-08-18T12:00:00Z"),
        ts("2026-08-20T15:55:00Z"),
        None,
    )
    .unwrap();
    let firing: Vec<_> = run
        .notifications
        .iter()
        .filter(|a| a.status == Status::Firing)
        .collect();
    assert_eq!(firing.len(), 1, "{firing:#?}");
    assert_eq!(
        firing[0].labels.get("tenant"),
        Some(&Some("globex".to_string()))
    );
    assert_eq!(firing[0].period.as_deref(), Some("2026-08-20"));
    assert_eq!(firing[0].observed_usd, 105.0);
    assert_eq!(firing[0].at, "2026-08-20T15:35:00Z");
    assert!(
        firing[0].summary.contains("2026-08-20"),
        "{}",
        firing[0].summary
    );
}

#[test]
fn case_05_new_york_days_of_25_hours_hold_their_late_rows() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\ntimezone: America/New_York\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: daily\n    kind: budget\n    group_by: [tenant]\n    period: day\n    limit_usd: 10\n    channels: [out]\n",
        s.path("store.db").display()
    ));
    let mut store = s.store();
    s.ingest(&mut store, "ny.jsonl", r#"{"ts":"2025-11-02T05:00:00Z","request_id":"ny-1","model":"gpt-4o","cost_usd":6,"tenant":"t"}
{"ts":"2025-11-03T04:30:00Z","request_id":"ny-2","model":"gpt-4o","cost_usd":6,"tenant":"t"}
"#);
    // 04:30Z on the 3rd is still local 2025-11-02 (a 25-hour day): 12.00 reaches the budget.
    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2025-11-03T04:45:00Z"),
        true,
    )
    .unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].alert.period.as_deref(), Some("2025-11-02"));
    assert_eq!(notes[0].alert.observed_usd, 12.0);
}

#[test]
fn case_06_every_total_reads_the_same_cost_and_unknown_is_not_zero() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: acme-cap\n    kind: threshold\n    group_by: [tenant]\n    window: 1h\n    limit_usd: 0.01\n    channels: [out]\n",
        s.path("store.db").display()
    ));
    let mut store = s.store();
    let r = s.ingest(&mut store, "c6.jsonl", r#"{"ts":"2026-03-02T09:00:00Z","request_id":"c6-1","model":"gpt-4o","input_tokens":1000,"output_tokens":150,"cost_usd":0.0050,"tenant":"acme","feature":"search"}
{"ts":"2026-03-02T09:01:00Z","request_id":"c6-2","model":"gpt-4o-mini","input_tokens":10000,"output_tokens":2000,"tenant":"acme","feature":"search"}
{"ts":"2026-03-02T09:02:00Z","request_id":"c6-3","model":"gpt-4o","input_tokens":2006,"cached_input_tokens":1920,"output_tokens":300,"tenant":"acme","feature":"search"}
{"ts":"2026-03-02T09:03:00Z","request_id":"c6-4","model":"acme-finetune-v7","input_tokens":5000,"output_tokens":500,"tenant":"acme","feature":"search"}
{"ts":"2026-03-02T09:04:00Z","request_id":"c6-5","model":"acme-finetune-v7","input_tokens":5000,"output_tokens":500,"tenant":"acme","feature":"search"}
{"ts":"2026-03-02T09:05:00Z","request_id":"c6-6","model":"gpt-4o-mini-2024-07-18","input_tokens":1000,"output_tokens":1000,"tenant":"beta","feature":"search"}
"#);
    assert_eq!(row_cost(&store, "c6-1"), Some(5_000_000));
    assert_eq!(row_cost(&store, "c6-2"), Some(2_700_000));
    assert_eq!(row_cost(&store, "c6-3"), Some(5_615_000));
    assert_eq!(row_cost(&store, "c6-4"), None);
    assert_eq!(row_cost(&store, "c6-6"), Some(750_000));
    // Reported once per model, with the count, never summed as zero.
    assert_eq!(r.unpriced_by_model.len(), 1);
    assert_eq!(r.unpriced_by_model.get("acme-finetune-v7"), Some(&2));
    assert_eq!(r.priced_usd.to_string(), "0.014065");
    assert_eq!(rollup_spend(&store, Some("acme")), 13_315_000);

    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2026-03-02T09:30:00Z"),
        true,
    )
    .unwrap();
    assert_eq!(notes.len(), 1);
    let a = &notes[0].alert;
    assert_eq!(a.observed_usd, 0.013315);
    assert_eq!(a.unpriced_rows, 2);
    assert!(a.summary.contains("0.013315"), "{}", a.summary);
    assert!(a.summary.contains("2 rows had no price"), "{}", a.summary);
}

/// One row per day at noon for each (tenant, day, cost).
fn daily_rows(series: &[(&str, Vec<f64>)]) -> String {
    let mut out = String::new();
    for (tenant, values) in series {
        let first_day = 8 - values.len();
        for (i, v) in values.iter().enumerate() {
            out.push_str(&format!(
                "{{\"ts\":\"2026-05-{:02}T12:00:00Z\",\"request_id\":\"{tenant}-{i}\",\"model\":\"gpt-4o\",\"cost_usd\":{v},\"tenant\":\"{tenant}\"}}\n",
                first_day + i + 1
            ));
        }
    }
    out
}

#[test]
fn case_09_no_history_and_flat_history_neither_silence_nor_spam() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: daily-spike\n    kind: spike\n    group_by: [tenant]\n    window: 1d\n    baseline: {{ lookback: 7d, seasonality: daily }}\n    threshold: {{ sensitivity: 3, min_delta_usd: 5 }}\n    young: {{ min_history: 3d, min_usd: 25 }}\n    channels: [out]\n",
        s.path("store.db").display()
    ));
    let steady = vec![10.0, 12.0, 11.0, 9.0, 10.0, 12.0, 11.0];
    let with = |h: &[f64], last: f64| {
        let mut v = h.to_vec();
        v.push(last);
        v
    };
    let zeros = [0.0; 7];
    let series = vec![
        ("newco", vec![2.50, 40.0]),
        ("fresh", vec![12.0]),
        ("idle-cent", with(&zeros, 0.03)),
        ("idle-twelve", with(&zeros, 12.0)),
        ("steady-14", with(&steady, 14.0)),
        ("steady-16", with(&steady, 16.0)),
        ("steady-30", with(&steady, 30.0)),
    ];
    let mut store = s.store();
    s.ingest(&mut store, "c9.jsonl", &daily_rows(&series));
    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2026-05-09T00:00:00Z"),
        false,
    )
    .unwrap();
    let mut fired: Vec<String> = notes
        .iter()
        .map(|n| n.alert.labels["tenant"].clone().unwrap())
        .collect();
    fired.sort();
    assert_eq!(fired, ["idle-twelve", "newco", "steady-16", "steady-30"]);
    let newco = notes
        .iter()
        .find(|n| n.alert.labels["tenant"].as_deref() == Some("newco"))
        .unwrap();
    assert!(newco.alert.young);
    let idle = notes
        .iter()
        .find(|n| n.alert.labels["tenant"].as_deref() == Some("idle-twelve"))
        .unwrap();
    assert_eq!(idle.alert.ratio, None);
    assert_eq!(idle.alert.baseline_usd, Some(0.0));
    for n in &notes {
        let text = serde_json::to_string(&n.alert).unwrap();
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }
    // Nothing stored is NaN or infinite either.
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let bad: i64 = conn
        .query_row("SELECT count(*) FROM alerts WHERE instr(last_alert, 'NaN') > 0 OR instr(last_alert, 'inf') > 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bad, 0);
}

#[test]
fn case_10_another_process_writing_the_store_is_waited_for() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        &format!(
            "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: cap\n    kind: threshold\n    group_by: [tenant]\n    window: 1h\n    limit_usd: 0.01\n    channels: [out]\n",
            s.path("store.db").display()
        ),
    );
    drop(s.store());
    let batches = 50;
    for b in 0..batches {
        let mut lines = String::new();
        for i in 0..20 {
            lines.push_str(&format!(
                "{{\"ts\":\"2026-06-01T10:{:02}:00Z\",\"request_id\":\"b{b}-{i}\",\"model\":\"gpt-4o\",\"cost_usd\":0.01,\"tenant\":\"t{}\"}}\n",
                i, i % 3
            ));
        }
        s.write(&format!("batch-{b}.jsonl"), &lines);
    }
    std::thread::scope(|scope| {
        let ingest = scope.spawn(|| {
            for b in 0..batches {
                let out = s.run(&[
                    "ingest",
                    "--json",
                    s.path(&format!("batch-{b}.jsonl")).to_str().unwrap(),
                ]);
                assert!(out.status.success(), "ingest {b}: {}", stderr(&out));
                assert!(!stderr(&out).contains("locked"), "{}", stderr(&out));
            }
        });
        let evaluate = scope.spawn(|| {
            for c in 0..20 {
                let at = format!("2026-06-01T11:{:02}:00Z", c);
                let out = s.run(&["evaluate", "--at", &at]);
                assert!(out.status.success(), "evaluate {c}: {}", stderr(&out));
                assert!(!stderr(&out).contains("locked"), "{}", stderr(&out));
            }
        });
        ingest.join().unwrap();
        evaluate.join().unwrap();
    });
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
        .unwrap();
    let cycles: i64 = conn
        .query_row("SELECT count(*) FROM evaluations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1000);
    assert_eq!(cycles, 20);
    assert_eq!(
        rollup_spend(&s.store(), Some("t0"))
            + rollup_spend(&s.store(), Some("t1"))
            + rollup_spend(&s.store(), Some("t2")),
        10_000_000_000
    );
}

#[test]
fn case_04_an_attribution_rule_pages_on_spend_nobody_can_be_billed_for() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: unowned-spend\n    kind: attribution\n    dimension: tenant\n    window: 1h\n    max_share: 0.2\n    min_usd: 0.01\n    channels: [out]\n  - name: unowned-quiet\n    kind: attribution\n    dimension: tenant\n    window: 1h\n    max_share: 0.6\n    min_usd: 0.01\n    channels: [out]\n",
        s.path("store.db").display()
    ));
    let mut store = s.store();
    s.ingest(&mut store, "c4.jsonl", CASE_04);
    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2026-03-02T10:30:00Z"),
        true,
    )
    .unwrap();
    assert_eq!(
        notes.len(),
        1,
        "only the rule allowing 20% pages: {notes:#?}"
    );
    let a = &notes[0].alert;
    assert_eq!(
        (a.rule.as_str(), a.kind.as_str()),
        ("unowned-spend", "attribution")
    );
    assert_eq!(a.observed_usd, 0.041);
    assert_eq!(a.unowned_share, Some(0.5395));
    assert_eq!(a.sample_request_ids, ["c4-3", "c4-4"]);
    assert!(
        a.contributors
            .iter()
            .any(|c| c.dimension == "feature" && c.value.as_deref() == Some("shared-key-app"))
    );
    assert!(
        a.contributors.iter().all(|c| c.dimension != "tenant"),
        "{:?}",
        a.contributors
    );
    assert!(
        a.summary.starts_with(
            "53.9% of all spend in the hour to 2026-03-02 10:30 UTC had no tenant: $0.041"
        ),
        "{}",
        a.summary
    );
}

#[test]
fn a_runaway_rule_names_the_looping_workflow_and_ignores_spend_with_no_caller() {
    let s = Scratch::new();
    let config = s.config(&format!(
        "store: {}\ndelay: 0s\nchannels: {{ out: {{ kind: console }} }}\nrules:\n  - name: runaway-workflow\n    kind: runaway\n    group_by: [workflow]\n    window: 15m\n    max_usd: 5\n    channels: [out]\n",
        s.path("store.db").display()
    ));
    let mut store = s.store();
    let mut lines = String::new();
    for i in 0..12 {
        lines.push_str(&format!("{{\"ts\":\"2026-03-03T03:{:02}:00Z\",\"request_id\":\"loop-{i}\",\"model\":\"gpt-4o\",\"cost_usd\":0.5,\"tenant\":\"acme\",\"workflow\":\"nightly-agent\"}}\n", i));
        lines.push_str(&format!("{{\"ts\":\"2026-03-03T03:{:02}:30Z\",\"request_id\":\"free-{i}\",\"model\":\"gpt-4o\",\"cost_usd\":2.0,\"tenant\":\"acme\"}}\n", i));
    }
    s.ingest(&mut store, "loop.jsonl", &lines);
    let notes = cycle::run_cycle(
        &config,
        &mut store,
        &mut StoreHistory::new(),
        ts("2026-03-03T03:15:00Z"),
        true,
    )
    .unwrap();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let a = &notes[0].alert;
    assert_eq!(
        a.labels.get("workflow"),
        Some(&Some("nightly-agent".to_string()))
    );
    assert_eq!(a.observed_usd, 6.0);
    assert!(a.summary.contains("running past $5.00"), "{}", a.summary);
}
