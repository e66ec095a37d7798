//! `spendpager sources` through the real binary: rows ingested with known shares of each
//! attribution field, and the exact shares of rows and spend it reports, overall and for
//! streamed, retried and cached rows; each source on its own; lag from the newest row.

mod common;

use common::*;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

/// The newest `app` row is this far behind the start of the test.
const APP_LAG_S: i64 = 3600;

fn scratch() -> Scratch {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        &format!(
            "store: {}\nsources:\n  - {{ name: app, kind: jsonl, path: \"./logs/*.jsonl\" }}\n  - {{ name: idle, kind: jsonl, path: \"./idle/*.jsonl\" }}\nchannels: {{ out: {{ kind: console }} }}\nrules: []\n",
            s.path("store.db").display()
        ),
    );
    s
}

/// One native row `secs` seconds before `newest`, with `extra` JSON members appended.
fn row(newest: Timestamp, secs: i64, id: &str, extra: &str) -> String {
    let ts = newest - SignedDuration::from_secs(secs);
    format!(
        "{{\"ts\":\"{ts}\",\"request_id\":\"{id}\",\"model\":\"gpt-4o\",\"input_tokens\":1000,\"output_tokens\":100{extra}}}\n"
    )
}

/// Ten `app` rows: 8 carry a tenant, 5 a feature, 1 a user, none a workflow. Three are
/// streamed and two of those lost their tenant. Priced spend is $10 over nine rows; the tenth
/// row's model has no price.
fn app_rows(newest: Timestamp) -> String {
    let t = ",\"tenant\":\"acme\"";
    let f = ",\"feature\":\"chat\"";
    [
        row(
            newest,
            90,
            "a1",
            &format!("{t}{f},\"user\":\"u1\",\"cost_usd\":1.0,\"tags\":{{\"attempt\":\"1\"}}"),
        ),
        row(
            newest,
            80,
            "a2",
            &format!("{t}{f},\"cost_usd\":1.0,\"tags\":{{\"stream\":\"false\"}}"),
        ),
        row(newest, 70, "a3", &format!("{t}{f},\"cost_usd\":1.0")),
        row(newest, 60, "a4", &format!("{t}{f},\"cost_usd\":1.0")),
        row(newest, 50, "a5", &format!("{t}{f},\"cost_usd\":1.0")),
        row(
            newest,
            40,
            "a6",
            &format!("{t},\"cost_usd\":1.0,\"tags\":{{\"attempt\":\"2\"}}"),
        ),
        row(
            newest,
            30,
            "a7",
            &format!("{t},\"cost_usd\":1.0,\"cached_input_tokens\":500"),
        ),
        row(
            newest,
            20,
            "a8",
            &format!("{t},\"cost_usd\":2.0,\"tags\":{{\"stream\":\"true\"}}"),
        ),
        row(
            newest,
            10,
            "a9",
            ",\"cost_usd\":1.0,\"tags\":{\"streamed\":\"true\"}",
        ),
        row(newest, 0, "a10", ",\"tags\":{\"stream\":\"true\"}").replace("gpt-4o", "in-house-llm"),
    ]
    .concat()
}

fn ingest(s: &Scratch, source: &str, name: &str, text: &str) {
    let file = s.write(name, text);
    let out = s.run(&["ingest", "--source", source, file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// (rows_share, spend_share) of one field.
fn shares(fields: &Value, field: &str) -> (Option<f64>, Option<f64>) {
    (
        fields[field]["rows_share"].as_f64(),
        fields[field]["spend_share"].as_f64(),
    )
}

#[test]
fn sources_reports_exact_shares_the_streamed_split_and_lag_per_source() {
    let s = scratch();
    let start = Timestamp::now();
    let newest = Timestamp::from_second(start.as_second() - APP_LAG_S).unwrap();
    ingest(&s, "app", "app.jsonl", &app_rows(newest));
    // Two rows under the default `cli` source: both with a tenant, one with a workflow.
    let cli_rows = [
        row(
            newest,
            7200,
            "c1",
            ",\"tenant\":\"globex\",\"cost_usd\":3.0",
        ),
        row(
            newest,
            7000,
            "c2",
            ",\"tenant\":\"globex\",\"workflow\":\"nightly\",\"cost_usd\":1.0",
        ),
    ]
    .concat();
    ingest(&s, "cli", "cli.jsonl", &cli_rows);

    let out = s.run(&["sources", "--json"]);
    let end = Timestamp::now();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let list = v["sources"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["app", "idle", "cli"],
        "configured first, then the rest"
    );

    let app = &list[0];
    assert_eq!(app["rows"], 10);
    assert_eq!(app["priced_usd"].as_f64(), Some(10.0));
    assert_eq!(app["unpriced_rows"], 1);
    assert_eq!(app["newest"].as_str(), Some(newest.to_string().as_str()));
    let lag = app["lag_s"].as_i64().unwrap();
    let lo = (start.as_millisecond() - newest.as_millisecond()) / 1000;
    let hi = (end.as_millisecond() - newest.as_millisecond()) / 1000;
    assert!(
        lo >= APP_LAG_S && (lo..=hi).contains(&lag),
        "lag {lag} not in {lo}..={hi}"
    );

    let f = &app["fields"];
    // Tenant: 8 of 10 rows; $9 of $10 (the unpriced row is in neither spend figure).
    assert_eq!(shares(f, "tenant"), (Some(0.8), Some(0.9)));
    assert_eq!(shares(f, "feature"), (Some(0.5), Some(0.5)));
    assert_eq!(shares(f, "user"), (Some(0.1), Some(0.1)));
    assert_eq!(shares(f, "workflow"), (Some(0.0), Some(0.0)));

    let kinds = app["kinds"].as_object().unwrap();
    let mut kind_names: Vec<&str> = kinds.keys().map(String::as_str).collect();
    kind_names.sort();
    assert_eq!(kind_names, ["cached", "retried", "streamed"]);
    // Streamed: a8 ($2, tenant), a9 ($1, no tenant), a10 (unpriced, no tenant). The tenant
    // falls off: 1 of 3 rows against 8 of 10 overall, $2 of $3 of spend. `stream: false`
    // (a2) is not streamed.
    let streamed = &kinds["streamed"];
    assert_eq!(streamed["rows"], 3);
    assert_eq!(streamed["priced_usd"].as_f64(), Some(3.0));
    let (rows_share, spend_share) = shares(&streamed["fields"], "tenant");
    assert_eq!(rows_share, Some(1.0 / 3.0));
    assert_eq!(spend_share, Some(2.0 / 3.0));
    assert!(rows_share.unwrap() < 0.8);
    assert_eq!(
        shares(&streamed["fields"], "feature"),
        (Some(0.0), Some(0.0))
    );
    // Retried is a6 only (attempt 2; a1's attempt 1 is a first try); cached is a7 only.
    assert_eq!(kinds["retried"]["rows"], 1);
    assert_eq!(
        shares(&kinds["retried"]["fields"], "tenant"),
        (Some(1.0), Some(1.0))
    );
    assert_eq!(kinds["cached"]["rows"], 1);
    assert_eq!(
        shares(&kinds["cached"]["fields"], "feature"),
        (Some(0.0), Some(0.0))
    );

    // A configured source with no rows is listed, with nothing to share.
    let idle = &list[1];
    assert_eq!(idle["rows"], 0);
    assert!(idle["newest"].is_null() && idle["lag_s"].is_null());
    assert_eq!(shares(&idle["fields"], "tenant"), (None, None));
    assert!(idle["kinds"].as_object().unwrap().is_empty());

    // The `cli` rows are counted on their own, not mixed into `app`.
    let cli = &list[2];
    assert_eq!(cli["rows"], 2);
    assert_eq!(cli["priced_usd"].as_f64(), Some(4.0));
    assert_eq!(cli["unpriced_rows"], 0);
    assert_eq!(shares(&cli["fields"], "tenant"), (Some(1.0), Some(1.0)));
    assert_eq!(shares(&cli["fields"], "workflow"), (Some(0.5), Some(0.25)));
    let cli_lag = cli["lag_s"].as_i64().unwrap();
    assert!(cli_lag >= lo + 7000 && cli_lag <= hi + 7000, "{cli_lag}");
    assert!(cli["kinds"].as_object().unwrap().is_empty());

    // The table says the same for people.
    let out = s.run(&["sources"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("source app: 10 rows, newest row "), "{text}");
    assert!(text.contains("$10.00 priced, 1 unpriced rows"), "{text}");
    let line = |kind: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} line in {text}"))
            .to_string()
    };
    assert!(line("all").contains("80% / 90%"), "{text}");
    assert!(line("streamed").contains("33% / 67%"), "{text}");
    assert!(text.contains("source idle: 0 rows, no rows yet"), "{text}");
    assert!(text.contains("source cli: 2 rows"), "{text}");
}
