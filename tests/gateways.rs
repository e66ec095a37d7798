//! Portkey exports and OpenTelemetry traces through the real binary and the real polling code:
//! exact stored rows and costs, the attribution mapping from the configuration and from
//! `ingest --map`, its checks with file, line and field, and file sources in any format.

mod common;

use common::*;
use serde_json::Value;
use spendpager::price::PriceTable;
use spendpager::source;

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn scratch(sources: &str) -> Scratch {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        &format!("store: ./store.db\nchannels: {{ out: {{ kind: console }} }}\n{sources}"),
    );
    s
}

fn ingest(s: &Scratch, args: &[&str]) -> Value {
    let mut all = vec!["ingest", "--json"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// (request id, cost in nano-dollars, cost basis, tenant, feature, user, workflow) per row.
type Row = (
    String,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn rows(s: &Scratch, source: &str) -> Vec<Row> {
    let db = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let mut q = db
        .prepare(
            "SELECT request_id, cost_nanos, cost_basis, tenant, feature, user, workflow
             FROM rows WHERE source = ?1 ORDER BY ts_ms, request_id",
        )
        .unwrap();
    q.query_map([source], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn a_portkey_export_stores_its_cents_as_exact_dollars() {
    let s = scratch("");
    let file = fixture("portkey/export.jsonl");
    let r = ingest(&s, &["--format", "portkey", &file]);
    // 0.5615 + 0.42 cents given, gpt-4o-mini priced by the table (1000 x 0.15/1e6 +
    // 100 x 0.6/1e6 = 0.00021), and a semantic-cache hit's given zero.
    assert_eq!(r["stored"], 4, "{r}");
    assert_eq!(r["priced_usd"].as_f64(), Some(0.010025), "{r}");
    let lines: Vec<u64> = r["set_aside"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 5, 6, 7]);
    let got: Vec<(String, Option<i64>, i64)> = rows(&s, "cli")
        .into_iter()
        .map(|r| (r.0, r.1, r.2))
        .collect();
    assert_eq!(
        got,
        [
            ("pk-log-0001".into(), Some(5_615_000), 0),
            ("pk-log-0002".into(), Some(4_200_000), 0),
            ("pk-log-0003".into(), Some(210_000), 1),
            ("pk-log-0008".into(), Some(0), 0),
        ]
    );
    let again = ingest(&s, &["--format", "portkey", &file]);
    assert_eq!(
        (again["stored"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(4))
    );

    // Coverage: every row names its user and tenant, half of them (56 % of the spend) a
    // feature; pk-log-0002 is streamed and retried, as its stream_mode and retry count say.
    let out = s.run(&["sources", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let c: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cli = &c["sources"][0];
    assert_eq!(cli["name"], "cli");
    assert_eq!(cli["fields"]["user"]["rows_share"], 1.0);
    assert_eq!(cli["fields"]["tenant"]["rows_share"], 1.0);
    assert_eq!(cli["fields"]["feature"]["rows_share"], 0.5);
    let spend = cli["fields"]["feature"]["spend_share"].as_f64().unwrap();
    assert!(
        (spend - 5_615_000.0 / 10_025_000.0).abs() < 1e-12,
        "{spend}"
    );
    assert_eq!(cli["kinds"]["streamed"]["rows"], 1, "{cli}");
    assert_eq!(cli["kinds"]["retried"]["rows"], 1, "{cli}");
    assert_eq!(cli["kinds"]["cached"]["rows"], 2, "{cli}");
}

#[test]
fn otel_spans_are_priced_by_the_response_model_and_other_spans_are_skipped() {
    let s = scratch("");
    let file = fixture("otel/genai_traces.json");
    let r = ingest(&s, &["--format", "otel", &file]);
    // gpt-4o-2024-08-06 (case 01): 86 x 2.5/1e6 + 1920 x 1.25/1e6 + 300 x 10/1e6 = 0.005615;
    // claude-sonnet-4: 50 x 3/1e6 + 1000 x 0.3/1e6 + 150 x 3.75/1e6 + 40 x 15/1e6 = 0.0016125.
    assert_eq!(r["stored"], 3, "{r}");
    assert_eq!(r["skipped"], 2, "{r}");
    assert_eq!(r["priced_usd"].as_f64(), Some(0.0072275), "{r}");
    assert_eq!(r["unpriced_by_model"]["acme-finetune-v7"], 1, "{r}");
    assert_eq!(r["set_aside"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(
        rows(&s, "cli"),
        [
            (
                "5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174".into(),
                Some(5_615_000),
                1,
                some("acme"),
                None,
                some("u-1"),
                None
            ),
            (
                "0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331".into(),
                None,
                2,
                some("acme"),
                None,
                None,
                None
            ),
            (
                "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7".into(),
                Some(1_612_500),
                1,
                some("globex"),
                None,
                some("svc-digest"),
                None
            ),
        ]
    );
    let out = s.run(&["ingest", "--format", "otel", &file]);
    assert!(
        stdout(&out).contains("2 records skipped: not model calls"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("3 duplicates"), "{}", stdout(&out));
}

#[test]
fn one_shot_ingest_takes_the_sources_mapping_and_map_flags() {
    let s = scratch(
        "sources:
  - name: traces
    kind: jsonl
    format: otel
    path: ./traces/*.jsonl
    attribution:
      feature: span:app.feature
      workflow: [span:missing.workflow, span:app.workflow]
",
    );
    let file = fixture("otel/genai_traces.json");
    ingest(&s, &["--source", "traces", "--format", "otel", &file]);
    let first = rows(&s, "traces").remove(0);
    assert_eq!(
        (first.3, first.4, first.5, first.6),
        (
            some("acme"),
            some("support-bot"),
            some("u-1"),
            some("ticket-triage")
        )
    );
    // --map lays a field over the source's mapping.
    ingest(
        &s,
        &[
            "--source",
            "traces",
            "--format",
            "otel",
            "--map",
            "tenant=resource:service.name",
            &file,
        ],
    );
    ingest(
        &s,
        &[
            "--source",
            "other",
            "--format",
            "otel",
            "--map",
            "tenant=resource:service.name",
            &file,
        ],
    );
    let other = rows(&s, "other");
    assert_eq!(
        other.iter().map(|r| r.3.as_deref()).collect::<Vec<_>>(),
        [
            Some("support-api"),
            Some("support-api"),
            Some("digest-worker")
        ]
    );
    assert_eq!(other[0].4, None, "source `other` has no configured mapping");

    let out = s.run(&[
        "ingest",
        "--format",
        "litellm",
        "--map",
        "tenant=span:x",
        &file,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a span place is not in"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn attribution_places_are_checked_with_file_line_and_field() {
    let s = scratch(
        "sources:
  - name: gw
    kind: jsonl
    format: litellm
    path: ./gw.jsonl
    attribution:
      tenant: span:team
      feature: [tag:feature, \"metadata..x\"]
  - name: app
    kind: sqlite_table
    path: ./app.db
    table: calls
    format: otel
  - name: odd
    kind: jsonl
    format: helicone
    path: ./odd.jsonl
",
    );
    let out = s.run(&["rules", "check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let file = s.path("config.yaml").display().to_string();
    for want in [
        format!(
            "{file}:9:15: sources[gw].attribution.tenant: `span:team`: a span place is not in litellm records (use a field path or tag:NAME)"
        ),
        format!(
            "{file}:10:16: sources[gw].attribution.feature: `metadata..x` has an empty step in its path"
        ),
        "sources[app].format: is only for kind jsonl".to_string(),
        "sources[odd].format: `helicone`: use native, litellm, portkey, otel".to_string(),
    ] {
        assert!(err.contains(&want), "missing `{want}` in:\n{err}");
    }
}

#[test]
fn file_sources_poll_gateway_lines_and_rewritten_documents() {
    let s = scratch(
        "sources:
  - name: traces
    kind: jsonl
    format: otel
    path: ./otel/*.jsonl
    attribution: { feature: span:app.feature }
  - name: portkey
    kind: jsonl
    format: portkey
    path: ./portkey.jsonl
  - name: anthropic
    kind: jsonl
    format: anthropic-usage
    path: ./reports/*.json
",
    );
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("otel/genai_traces.json")).unwrap())
            .unwrap();
    std::fs::create_dir_all(s.path("otel")).unwrap();
    std::fs::create_dir_all(s.path("reports")).unwrap();
    let export = std::fs::read_to_string(fixture("portkey/export.jsonl")).unwrap();
    let export: Vec<&str> = export.lines().collect();
    // One export request per line, the last one still being written.
    s.write("otel/spans.jsonl", &format!("{trace}\n{{\"resourceSpans\""));
    s.write("portkey.jsonl", &format!("{}\n{}\n", export[0], export[1]));
    let report = std::fs::read_to_string(fixture("anthropic/usage_report.json")).unwrap();
    s.write("reports/august.json", &report);

    let config = s.config(&std::fs::read_to_string(s.path("config.yaml")).unwrap());
    let mut sources: Vec<_> = config.sources.iter().map(source::build).collect();
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut poll = |store: &mut spendpager::store::Store| -> Vec<(u64, u64, u64)> {
        sources
            .iter_mut()
            .map(|src| {
                let r = src.poll(store, &prices).unwrap();
                (r.stored, r.duplicates, r.set_aside.len() as u64)
            })
            .collect()
    };
    assert_eq!(poll(&mut store), [(3, 0, 2), (2, 0, 0), (3, 0, 0)]);
    let traces = rows(&s, "traces");
    assert_eq!(
        traces[0].4.as_deref(),
        Some("support-bot"),
        "the source's mapping applies"
    );
    assert_eq!(traces[0].1, Some(5_615_000));

    // Nothing new: nothing read. Then the half-written line is finished and the export grows.
    assert_eq!(poll(&mut store), [(0, 0, 0), (0, 0, 0), (0, 0, 0)]);
    let mut second = trace.clone();
    second["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["spanId"] = "00f067aa0ba902b8".into();
    let mut otel = std::fs::OpenOptions::new()
        .write(true)
        .open(s.path("otel/spans.jsonl"))
        .unwrap();
    use std::io::{Seek, Write};
    otel.seek(std::io::SeekFrom::Start(trace.to_string().len() as u64 + 1))
        .unwrap();
    writeln!(otel, "{second}").unwrap();
    let mut pk = std::fs::OpenOptions::new()
        .append(true)
        .open(s.path("portkey.jsonl"))
        .unwrap();
    writeln!(pk, "{}", export[2]).unwrap();
    // The report rewritten with one more day: the old rows are duplicates, the new one stored.
    let mut doc: Value = serde_json::from_str(&report).unwrap();
    let mut extra = doc["data"][1].clone();
    extra["starting_at"] = "2025-08-03T00:00:00Z".into();
    doc["data"].as_array_mut().unwrap().push(extra);
    s.write("reports/august.json", &doc.to_string());
    // The new line's spans: one new span id, the two other rows are the same calls again.
    assert_eq!(poll(&mut store), [(1, 2, 2), (1, 0, 0), (1, 3, 0)]);
    assert_eq!(rows(&s, "traces").len(), 4);
    assert_eq!(
        rows(&s, "portkey")[2].1,
        Some(210_000),
        "priced gpt-4o-mini"
    );
    assert_eq!(rows(&s, "anthropic").len(), 4);
}
