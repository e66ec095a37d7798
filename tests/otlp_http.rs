//! `POST /v1/traces` and the coverage gauges on the real daemon, over real HTTP on 127.0.0.1:
//! the token, the OTLP/JSON body plain and gzipped, the reply with its per-span reasons,
//! idempotency, the limits; a Portkey file the daemon polls; and the coverage shares that
//! `/metrics` then reports for both sources.

mod common;

use common::http::*;
use common::*;
use std::io::Write;

const TOKEN: &str = "otlp-tok-51d0c2";

/// The fixture's spans moved to the last few hours (their start times all begin
/// `177244`), so that the daemon's retention keeps them.
fn traces() -> Vec<u8> {
    let p = format!(
        "{}/tests/fixtures/formats/otel/genai_traces.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let recent = jiff::Timestamp::now().as_second() / 10_000 - 1;
    std::fs::read_to_string(p)
        .unwrap()
        .replace("\"177244", &format!("\"{recent}"))
        .into_bytes()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body).unwrap();
    z.finish().unwrap()
}

/// The value of the sample of `name` whose labels include every one of `labels`.
fn gauge(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn otlp_traces_on_the_running_daemon_and_their_coverage_on_metrics() {
    let s = Scratch::new();
    let port = free_port();
    s.write("ingest-token", TOKEN);
    s.write(
        "config.yaml",
        &format!(
            "store: ./store.db
schedule: \"0 0 * * *\"
poll_interval: 1s
sources:
  - name: pk
    kind: jsonl
    format: portkey
    path: ./portkey.jsonl
    attribution: {{ feature: metadata.product }}
http:
  listen: 127.0.0.1:{port}
  ingest:
    token_file: ./ingest-token
    max_body: 64KiB
    source: otlp
    attribution: {{ feature: span:app.feature }}
channels:
  out: {{ kind: console }}
"
        ),
    );
    // A Portkey export the daemon tails: two calls of a minute ago, 0.42 and 1.5 cents.
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1);
    s.write(
        "portkey.jsonl",
        &format!(
            "{{\"id\":\"p1\",\"created_at\":\"{at}\",\"ai_model\":\"gpt-4o\",\"cost\":0.42,\"metadata\":{{\"_user\":\"u1\",\"product\":\"search\"}}}}
{{\"id\":\"p2\",\"created_at\":\"{at}\",\"ai_model\":\"gpt-4o\",\"cost\":1.5,\"metadata\":{{\"_user\":\"u2\"}}}}
"
        ),
    );
    let child = start_daemon(&s, port);
    let body = traces();

    let (status, _) = post_to(port, "/v1/traces", None, "application/json", &body);
    assert_eq!(status, 401);
    let (status, _) = post_to(
        port,
        "/v1/traces",
        Some(TOKEN),
        "application/x-protobuf",
        &body,
    );
    assert_eq!(status, 415);
    let (status, _) = post_to(port, "/v1/traces", Some(TOKEN), "application/json", b"[1]");
    assert_eq!(status, 400);

    let (status, reply) = post_to(port, "/v1/traces", Some(TOKEN), "application/json", &body);
    assert_eq!(status, 200, "{reply}");
    let r = json(&reply);
    assert_eq!(
        (r["stored"].as_u64(), r["skipped"].as_u64()),
        (Some(3), Some(2)),
        "{reply}"
    );
    assert_eq!(r["unpriced_by_model"]["acme-finetune-v7"], 1, "{reply}");
    let aside = r["set_aside"].as_array().unwrap();
    assert_eq!(aside.len(), 2, "{reply}");
    assert_eq!(aside[1]["line"], 6, "{reply}");
    assert_eq!(
        aside[1]["reason"],
        "resourceSpans[0].scopeSpans[0].spans[5]: attribute `gen_ai.usage.input_tokens`: expected an intValue, got a string"
    );
    assert_eq!(r["partialSuccess"]["rejectedSpans"], 2, "{reply}");
    assert!(
        r["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("2 spans rejected; the first: resourceSpans[0].scopeSpans[0].spans[4]"),
        "{reply}"
    );

    // Bytes that are not UTF-8 would rename a tenant if replaced: refused whole, on both
    // endpoints, with where the first bad byte is.
    let latin1: &[u8] = b"{\"ts\":\"2026-03-02T10:00:00Z\",\"model\":\"gpt-4o\",\"cost_usd\":1,\"tenant\":\"caf\xe9\"}\n";
    let auth = format!("Bearer {TOKEN}");
    for path in ["/v1/traces", "/ingest"] {
        let headers = [
            ("Content-Type", "application/json"),
            ("Authorization", auth.as_str()),
        ];
        let (status, reply) = request(port, "POST", path, &headers, latin1).unwrap();
        assert_eq!(status, 400, "{path}: {reply}");
        assert!(
            reply.contains("the body is not valid UTF-8 (byte 73); nothing was stored"),
            "{path}: {reply}"
        );
    }

    // The exporter retries the batch, gzipped: nothing new.
    let zipped = gzip(&body);
    let headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Authorization", &format!("Bearer {TOKEN}")),
    ];
    let (status, reply) = request(port, "POST", "/v1/traces", &headers, &zipped).unwrap();
    assert_eq!(status, 200, "{reply}");
    let r = json(&reply);
    assert_eq!(
        (r["stored"].as_u64(), r["duplicates"].as_u64()),
        (Some(0), Some(3)),
        "{reply}"
    );

    // Over 64 KiB once unzipped, though small on the wire: 413.
    let mut big = String::from("{\"resourceSpans\":[],\"pad\":\"");
    big.push_str(&"x".repeat(70 * 1024));
    big.push_str("\"}");
    let small = gzip(big.as_bytes());
    assert!(small.len() < 64 * 1024);
    let (status, _) = request(port, "POST", "/v1/traces", &headers, &small).unwrap();
    assert_eq!(status, 413);
    let (status, _) = post_to(
        port,
        "/v1/traces",
        Some(TOKEN),
        "application/json",
        big.as_bytes(),
    );
    assert_eq!(status, 413);

    // The daemon has polled the Portkey file by now (every second).
    let db = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let pk = loop {
        let got: Vec<(String, i64, Option<String>)> = db
            .prepare("SELECT request_id, cost_nanos, feature FROM rows WHERE source = 'pk' ORDER BY request_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if got.len() == 2 || std::time::Instant::now() > end {
            break got;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        pk,
        [
            ("p1".to_string(), 4_200_000, Some("search".to_string())),
            ("p2".to_string(), 15_000_000, None)
        ]
    );

    // Coverage of source `otlp`: the tenant is on all three rows; the user on two (both
    // priced: all the priced spend); the mapped feature on the first only,
    // 0.005615 of 0.0072275 priced.
    let (status, page) = request(port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200);
    let share = |name: &str, field: &str| {
        gauge(
            &page,
            name,
            &[("source", "otlp"), ("field", field), ("kind", "all")],
        )
    };
    assert_eq!(
        gauge(&page, "spendpager_source_rows", &[("source", "otlp")]),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        share("spendpager_attribution_rows_share", "tenant"),
        Some(1.0),
        "{page}"
    );
    let user = share("spendpager_attribution_rows_share", "user").unwrap();
    assert!((user - 2.0 / 3.0).abs() < 1e-9, "{user}");
    assert_eq!(
        share("spendpager_attribution_spend_share", "user"),
        Some(1.0)
    );
    let feature = share("spendpager_attribution_spend_share", "feature").unwrap();
    assert!(
        (feature - 5_615_000.0 / 7_227_500.0).abs() < 1e-9,
        "{feature}"
    );
    assert_eq!(
        share("spendpager_attribution_rows_share", "workflow"),
        Some(0.0)
    );
    // The cached kind: the two rows with cache reads.
    let cached = gauge(
        &page,
        "spendpager_attribution_rows_share",
        &[("source", "otlp"), ("field", "user"), ("kind", "cached")],
    );
    assert_eq!(cached, Some(1.0), "{page}");
    assert!(
        gauge(
            &page,
            "spendpager_source_lag_seconds",
            &[("source", "otlp")]
        )
        .is_some(),
        "{page}"
    );
    // And of the polled source: the mapped feature on p1, 0.42 of 1.92 cents.
    assert_eq!(
        gauge(&page, "spendpager_source_rows", &[("source", "pk")]),
        Some(2.0)
    );
    let pk_feature = gauge(
        &page,
        "spendpager_attribution_spend_share",
        &[("source", "pk"), ("field", "feature"), ("kind", "all")],
    )
    .unwrap();
    assert!((pk_feature - 0.42 / 1.92).abs() < 1e-9, "{pk_feature}");

    let err = stop(child);
    assert!(err.contains("POST /v1/traces"), "{err}");
    assert!(!err.contains(TOKEN), "the token never reaches the log");
}
