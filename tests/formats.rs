//! `spendpager ingest --format` through the real binary on the real gateway and provider
//! samples (and fixtures written here): the `--json` report and the rows the store holds.

mod common;

use common::*;
use serde_json::Value;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn scratch() -> Scratch {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        &format!(
            "store: {}\nchannels: {{ out: {{ kind: console }} }}\nrules: []\n",
            s.path("store.db").display()
        ),
    );
    s
}

fn ingest(s: &Scratch, format: &str, file: &str) -> Value {
    let out = s.run(&["ingest", "--json", "--format", format, file]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// (stored, number set aside, priced_usd) of a report.
fn figures(r: &Value) -> (u64, usize, f64) {
    (
        r["stored"].as_u64().unwrap(),
        r["set_aside"].as_array().unwrap().len(),
        r["priced_usd"].as_f64().unwrap(),
    )
}

/// One stored row, as the store holds it.
#[derive(Debug, PartialEq, Default)]
struct Stored {
    request_id: String,
    ts_ms: i64,
    model: String,
    provider: Option<String>,
    requests: i64,
    input: i64,
    cached: i64,
    cache_write: i64,
    output: i64,
    cost_nanos: Option<i64>,
    /// 0 given by the source, 1 from the price table, 2 unknown.
    basis: i64,
    tenant: Option<String>,
    feature: Option<String>,
    user: Option<String>,
}

fn rows(s: &Scratch) -> Vec<Stored> {
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let mut q = conn
        .prepare(
            "SELECT request_id, ts_ms, model, provider, requests, input_tokens,
                    cached_input_tokens, cache_write_tokens, output_tokens, cost_nanos,
                    cost_basis, tenant, feature, user
             FROM rows ORDER BY id",
        )
        .unwrap();
    q.query_map([], |r| {
        Ok(Stored {
            request_id: r.get(0)?,
            ts_ms: r.get(1)?,
            model: r.get(2)?,
            provider: r.get(3)?,
            requests: r.get(4)?,
            input: r.get(5)?,
            cached: r.get(6)?,
            cache_write: r.get(7)?,
            output: r.get(8)?,
            cost_nanos: r.get(9)?,
            basis: r.get(10)?,
            tenant: r.get(11)?,
            feature: r.get(12)?,
            user: r.get(13)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn the_litellm_spend_log_sample_stores_its_reported_spend_once() {
    let s = scratch();
    let file = fixture("litellm/spend_logs_payload.json");
    let r = ingest(&s, "litellm", &file);
    assert_eq!(figures(&r), (1, 0, 0.000225));
    assert_eq!(
        rows(&s),
        [Stored {
            request_id: "chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027".to_string(),
            ts_ms: 1_737_710_446_847,
            model: "gpt-4o".to_string(),
            provider: some("openai"),
            requests: 1,
            input: 10,
            cached: 0,
            cache_write: 0,
            output: 20,
            cost_nanos: Some(225_000),
            // given by the source
            basis: 0,
            tenant: None,
            feature: None,
            user: None,
        }]
    );
    // Read again: a duplicate, nothing added.
    let again = ingest(&s, "litellm", &file);
    assert_eq!(figures(&again), (0, 0, 0.0));
    assert_eq!(again["duplicates"], 1);
    assert_eq!(rows(&s).len(), 1);
}

#[test]
fn litellm_edge_cases_are_set_aside_with_file_line_and_reason() {
    let s = scratch();
    let r = ingest(&s, "litellm", &fixture("litellm/edge_cases.jsonl"));
    // e1 costs what it reported; e7 (gpt-4o-mini) is priced by the table:
    // 1000 x 0.15/1e6 + 100 x 0.60/1e6 = 0.00021.
    assert_eq!(figures(&r), (2, 6, 0.00171));
    let lines: Vec<u64> = r["set_aside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 4, 5, 6, 7, 8]);
    let first = &r["set_aside"][0];
    assert_eq!(first["kind"], "malformed");
    assert!(
        first["file"]
            .as_str()
            .unwrap()
            .ends_with("edge_cases.jsonl")
    );
    assert!(
        first["reason"].as_str().unwrap().contains("field `spend`"),
        "{first}"
    );
    let stored = rows(&s);
    assert_eq!(
        stored[0].cached, 60,
        "cached reads from prompt_tokens_details"
    );
    assert_eq!(stored[1].cost_nanos, Some(210_000));
    assert_eq!(stored[1].basis, 1, "priced by the table");
}

#[test]
fn the_openai_usage_sample_is_set_aside_until_grouped_by_model() {
    let s = scratch();
    let r = ingest(
        &s,
        "openai-usage",
        &fixture("openai-usage-api/usage_completions.example_response.json"),
    );
    assert_eq!(figures(&r), (0, 1, 0.0));
    assert!(
        r["set_aside"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("group_by=model"),
        "{r}"
    );

    // The same page grouped by model and project: priced by the table.
    let grouped = std::fs::read_to_string(fixture(
        "openai-usage-api/usage_completions.example_response.json",
    ))
    .unwrap()
    .replace("\"model\": null", "\"model\": \"gpt-4o\"")
    .replace("\"project_id\": null", "\"project_id\": \"proj_1\"");
    let file = s.write("grouped.json", &grouped);
    let r = ingest(&s, "openai-usage", path_str(&file));
    // 500 uncached x 2.5/1e6 + 400 cached x 1.25/1e6 + 100 written at the input rate
    // + 500 output x 10/1e6 = 0.00125 + 0.0005 + 0.00025 + 0.005
    assert_eq!(figures(&r), (1, 0, 0.007));
    assert_eq!(
        rows(&s),
        [Stored {
            request_id: "openai-usage:1730419200000:proj_1:-:-:gpt-4o:-:-".to_string(),
            ts_ms: 1_730_419_200_000,
            model: "gpt-4o".to_string(),
            provider: some("openai"),
            requests: 5,
            input: 1000,
            cached: 400,
            cache_write: 100,
            output: 500,
            cost_nanos: Some(7_000_000),
            basis: 1,
            tenant: some("proj_1"),
            feature: None,
            user: None,
        }]
    );
    let again = ingest(&s, "openai-usage", path_str(&file));
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
}

#[test]
fn the_openai_costs_sample_stores_six_cents_and_other_currencies_are_refused() {
    let s = scratch();
    let r = ingest(
        &s,
        "openai-costs",
        &fixture("openai-usage-api/costs.example_response.json"),
    );
    assert_eq!(figures(&r), (1, 0, 0.06));
    assert_eq!(
        rows(&s),
        [Stored {
            request_id: "openai-costs:1730419200000:-:-:-".to_string(),
            ts_ms: 1_730_419_200_000,
            model: "openai-costs".to_string(),
            provider: some("openai"),
            requests: 1,
            input: 0,
            cached: 0,
            cache_write: 0,
            output: 0,
            cost_nanos: Some(60_000_000),
            basis: 0,
            tenant: None,
            feature: None,
            user: None,
        }]
    );

    let r = ingest(
        &s,
        "openai-costs",
        &fixture("openai-usage-api/costs_edge_cases.json"),
    );
    assert_eq!(figures(&r), (2, 4, 2.0));
    let eur = &r["set_aside"][0];
    assert_eq!(eur["line"], 3);
    assert!(
        eur["reason"].as_str().unwrap().contains("`eur` is not USD"),
        "{eur}"
    );
    let stored = rows(&s);
    assert_eq!(stored[1].tenant.as_deref(), Some("proj_search"));
    assert_eq!(stored[1].feature.as_deref(), Some("GPT-4o, input"));
}

#[test]
fn the_anthropic_report_is_normalised_and_priced_by_the_table() {
    let s = scratch();
    let r = ingest(
        &s,
        "anthropic-usage",
        &fixture("anthropic/usage_report.json"),
    );
    // Sonnet 4, day 1: 1500 x 3/1e6 + 6000 read x 0.3/1e6 + 1000 written x 3.75/1e6
    // + 900 x 15/1e6 = 0.02355; day 2: 2000 x 3/1e6 + 300 x 15/1e6 = 0.0105.
    // Haiku 3.5 under that name has no price in the bundled table.
    assert_eq!(figures(&r), (3, 0, 0.03405));
    assert_eq!(r["unpriced_by_model"]["claude-3-5-haiku-20241022"], 1);
    let stored = rows(&s);
    assert_eq!(
        stored
            .iter()
            .map(|r| (r.input, r.cached, r.cache_write, r.output, r.cost_nanos))
            .collect::<Vec<_>>(),
        [
            (8500, 6000, 1000, 900, Some(23_550_000)),
            (450, 0, 50, 120, None),
            (2000, 0, 0, 300, Some(10_500_000)),
        ]
    );
    assert_eq!(stored[0].tenant.as_deref(), Some("wrkspc_support"));

    let r = ingest(&s, "anthropic-usage", &fixture("anthropic/edge_cases.json"));
    assert_eq!(figures(&r).0, 1);
    let lines: Vec<u64> = r["set_aside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2, 3, 5]);
}

#[test]
fn native_stays_the_default_and_an_unknown_format_is_refused() {
    let s = scratch();
    let file = s.write(
        "rows.jsonl",
        "{\"ts\":\"2026-03-02T10:00:00Z\",\"request_id\":\"n1\",\"model\":\"gpt-4o\",\"cost_usd\":0.5}\n",
    );
    let out = s.run(&["ingest", "--json", path_str(&file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(figures(&r), (1, 0, 0.5));

    let out = s.run(&["ingest", "--format", "helicone", path_str(&file)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("litellm"), "{}", stderr(&out));
}
