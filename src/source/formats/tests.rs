//! The format readers on the edge-case fixtures: each bad record set aside with its line,
//! its place in the document and its reason, the good ones read exactly.

use super::*;
use crate::money::Usd;

fn fixture(name: &str) -> String {
    let p = format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// (line, reason) of each set-aside record.
fn aside(b: &IngestBatch) -> Vec<(u64, String)> {
    b.malformed
        .iter()
        .map(|a| (a.line, a.reason.clone()))
        .collect()
}

fn assert_reasons(b: &IngestBatch, want: &[(u64, &str)]) {
    let got = aside(b);
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for ((line, reason), (wline, wstart)) in got.iter().zip(want) {
        assert_eq!(line, wline, "{reason}");
        assert!(
            reason.starts_with(wstart),
            "line {line}: `{reason}` should start `{wstart}`"
        );
    }
}

#[test]
fn litellm_edge_cases_are_set_aside_by_line_with_their_reason() {
    let b = parse(
        Format::Litellm,
        &fixture("litellm/edge_cases.jsonl"),
        "f",
        "cli",
    );
    let ids: Vec<(u64, &str)> = b
        .rows
        .iter()
        .map(|(r, p)| (p.line, r.request_id.as_deref().unwrap()))
        .collect();
    assert_eq!(ids, [(1, "e1"), (9, "e7")]);
    let e1 = &b.rows[0].0;
    assert_eq!(e1.ts_ms, 1_740_830_400_250);
    assert_eq!(
        (e1.input_tokens, e1.cached_input_tokens, e1.output_tokens),
        (100, 60, 50)
    );
    assert_eq!(e1.cost_usd, Some(Usd::from_nanos(1_500_000)));
    assert_eq!(e1.tenant.as_deref(), Some("team-9"));
    assert_reasons(
        &b,
        &[
            (
                2,
                "field `spend`: expected a number of dollars, got a string",
            ),
            (4, "field `startTime`: `yesterday` is not a date and time"),
            (
                5,
                "field `cached_input_tokens`: 150 is more than input_tokens 100",
            ),
            (6, "field `model`: is required"),
            (7, "field `request_tags`: a string that is not valid JSON"),
            (8, "not valid JSON"),
        ],
    );
    assert!(b.malformed[0].raw.contains("\"e2\""));
}

#[test]
fn a_litellm_array_is_read_element_by_element() {
    let text = r#"[{"request_id":"a","startTime":"2025-03-01 12:00:00","model":"gpt-4o"}, 7]"#;
    let b = parse(Format::Litellm, text, "f", "cli");
    assert_eq!(b.rows.len(), 1);
    assert_reasons(&b, &[(2, "[1]: expected a spend-log object, got a number")]);
}

#[test]
fn a_broken_document_is_one_reason_not_one_per_line() {
    let b = parse(Format::OpenaiUsage, "{\n  \"data\": [\n", "f", "cli");
    assert_reasons(&b, &[(1, "not valid JSON")]);
}

#[test]
fn openai_usage_edge_cases() {
    let b = parse(
        Format::OpenaiUsage,
        &fixture("openai-usage-api/usage_edge_cases.json"),
        "f",
        "cli",
    );
    assert_eq!(b.rows.len(), 2);
    let (first, pos) = &b.rows[0];
    assert_eq!(pos.line, 1);
    assert_eq!(first.ts_ms, 1_740_787_200_000);
    assert_eq!(first.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(
        (
            first.requests,
            first.input_tokens,
            first.cached_input_tokens
        ),
        (4, 2000, 1500)
    );
    assert_eq!(
        (first.tenant.as_deref(), first.user.as_deref()),
        (Some("proj_search"), Some("user_a"))
    );
    assert_eq!(
        first.tags.get("api_key_id").map(String::as_str),
        Some("key_1")
    );
    assert_eq!(first.tags.get("batch").map(String::as_str), Some("false"));
    assert_eq!(
        first.request_id.as_deref(),
        Some("openai-usage:1740787200000:proj_search:user_a:key_1:gpt-4o-mini-2024-07-18:false:-")
    );
    // No requests counted still stands for at least one.
    assert_eq!((b.rows[1].1.line, b.rows[1].0.requests), (5, 1));
    assert_reasons(
        &b,
        &[
            (
                2,
                "data[0].results[1]: field `cached_input_tokens`: 300 is more than input_tokens 100",
            ),
            (
                3,
                "data[0].results[2]: field `input_tokens`: 50.5 is not a whole number",
            ),
            (
                4,
                "data[0].results[3]: field `batch`: expected a boolean, got a string",
            ),
            (
                6,
                "data[1].results[0]: field `start_time`: expected Unix seconds, got a string",
            ),
        ],
    );
}

#[test]
fn openai_costs_other_currencies_are_set_aside_never_converted() {
    let b = parse(
        Format::OpenaiCosts,
        &fixture("openai-usage-api/costs_edge_cases.json"),
        "f",
        "cli",
    );
    let got: Vec<(u64, Option<&str>, Option<Usd>)> = b
        .rows
        .iter()
        .map(|(r, p)| (p.line, r.feature.as_deref(), r.cost_usd))
        .collect();
    assert_eq!(
        got,
        [
            (
                1,
                Some("GPT-4o, input"),
                Some(Usd::from_nanos(1_250_000_000))
            ),
            (
                2,
                Some("GPT-4o, output"),
                Some(Usd::from_nanos(750_000_000))
            ),
        ]
    );
    assert_eq!(b.rows[0].0.tenant.as_deref(), Some("proj_search"));
    assert_eq!(b.rows[0].0.model, "openai-costs");
    assert_ne!(b.rows[0].0.request_id, b.rows[1].0.request_id);
    assert_reasons(
        &b,
        &[
            (
                3,
                "data[0].results[2]: field `amount.currency`: `eur` is not USD; amounts are not converted",
            ),
            (
                4,
                "data[0].results[3]: field `amount.currency`: is required",
            ),
            (
                5,
                "data[0].results[4]: field `amount.value`: -1 is negative",
            ),
            (
                6,
                "data[0].results[5]: field `amount`: expected an object, got a number",
            ),
        ],
    );
}

#[test]
fn anthropic_usage_edge_cases() {
    let b = parse(
        Format::AnthropicUsage,
        &fixture("anthropic/edge_cases.json"),
        "f",
        "cli",
    );
    assert_eq!(b.rows.len(), 1);
    let (row, pos) = &b.rows[0];
    assert_eq!(pos.line, 4);
    assert_eq!((row.input_tokens, row.output_tokens), (0, 7));
    assert_eq!(row.tenant.as_deref(), Some("wrkspc_x"));
    assert_reasons(
        &b,
        &[
            (
                1,
                "data[0].results[0]: field `uncached_input_tokens`: expected a whole number, got a string",
            ),
            (2, "data[0].results[1]: field `model`: is null"),
            (
                3,
                "data[0].results[2]: cache_creation: field `ephemeral_5m_input_tokens`: -4 is negative",
            ),
            (5, "data[1].results[0]: field `starting_at`: is required"),
        ],
    );
}

#[test]
fn native_rows_take_a_mapping_from_their_fields_and_tags() {
    let mut m = Mapping::default();
    m.add_spec("tenant=tag:team").unwrap();
    m.add_spec("workflow=job.name").unwrap();
    let text = "{\"ts\":\"2026-03-02T10:00:00Z\",\"model\":\"m\",\"tenant\":\"x\",\"tags\":{\"team\":\"acme\"},\"job\":{\"name\":\"etl\"}}\n{}\n";
    let b = parse_mapped(Format::Native, &m, text, "f", "cli");
    let row = &b.rows[0].0;
    assert_eq!(
        (row.tenant.as_deref(), row.workflow.as_deref()),
        (Some("acme"), Some("etl"))
    );
    assert_reasons(&b, &[(2, "field `ts`: is required")]);
}

#[test]
fn native_is_the_jsonl_parser() {
    let b = parse(
        Format::Native,
        "{\"ts\":\"2026-03-02T10:00:00Z\",\"model\":\"m\"}\n{}\n",
        "f",
        "cli",
    );
    assert_eq!(b.rows.len(), 1);
    assert_reasons(&b, &[(2, "field `ts`: is required")]);
}
