//! `POST /ingest` on the real daemon, over real HTTP on 127.0.0.1: the bearer token, the
//! reply, idempotency by request id, the body limit, both body shapes, the stored rows, and a
//! log that never carries the token.

mod common;

use common::http::*;
use common::*;

const TOKEN: &str = "tok-3c9a1f0e-never-in-the-log";

fn post(port: u16, token: Option<&str>, content_type: &str, body: &[u8]) -> (u16, String) {
    post_to(port, "/ingest", token, content_type, body)
}

fn row_count(s: &Scratch) -> i64 {
    let db = rusqlite::Connection::open(s.path("store.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn post_ingest_on_the_running_daemon() {
    let s = Scratch::new();
    let port = free_port();
    s.write("ingest-token", &format!("{TOKEN}\n"));
    s.write(
        "config.yaml",
        &format!(
            "store: ./store.db
schedule: \"0 0 * * *\"
http:
  listen: 127.0.0.1:{port}
  ingest: {{ token_file: ./ingest-token, max_body: 4KiB, source: apps }}
channels:
  out: {{ kind: console }}
"
        ),
    );
    let child = start_daemon(&s, port);

    let now = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1);
    let mut lines = String::new();
    for i in 0..3 {
        lines.push_str(&format!(
            "{{\"ts\":\"{now}\",\"request_id\":\"h{i}\",\"model\":\"gpt-4o\",\"cost_usd\":0.25,\"tenant\":\"acme\"}}\n"
        ));
    }
    lines.push_str("{\"ts\": \"yesterday-ish\", \"model\": \"gpt-4o\"}\n");
    lines.push_str(&format!(
        "{{\"ts\":\"{now}\",\"request_id\":\"h-unpriced\",\"model\":\"no-such-model-x\",\"input_tokens\":10}}\n"
    ));

    // No token, then a wrong one: 401 with a JSON error, nothing stored.
    let (status, body) = post(port, None, "application/x-ndjson", lines.as_bytes());
    assert_eq!(status, 401, "{body}");
    assert!(json(&body)["error"].is_string(), "{body}");
    let (status, body) = post(
        port,
        Some("not-the-token"),
        "application/x-ndjson",
        lines.as_bytes(),
    );
    assert_eq!(status, 401, "{body}");
    assert!(json(&body)["error"].is_string(), "{body}");
    let (status, _) = post(
        port,
        Some(&format!("{TOKEN}x")),
        "application/x-ndjson",
        lines.as_bytes(),
    );
    assert_eq!(status, 401, "a token with a suffix is wrong");
    assert_eq!(row_count(&s), 0, "a refused request stores nothing");

    // The right token: good rows stored, the bad one set aside with its line and reason.
    let (status, body) = post(port, Some(TOKEN), "application/x-ndjson", lines.as_bytes());
    assert_eq!(status, 200, "{body}");
    let reply = json(&body);
    assert_eq!(reply["stored"], 4, "{body}");
    assert_eq!(reply["duplicates"], 0, "{body}");
    assert_eq!(reply["conflicts"], 0, "{body}");
    let aside = reply["set_aside"].as_array().expect("set_aside is a list");
    assert_eq!(aside.len(), 1, "{body}");
    assert_eq!(aside[0]["line"], 4, "{body}");
    assert!(
        aside[0]["reason"].as_str().unwrap().contains("ts"),
        "the reason names the field: {body}"
    );
    assert_eq!(reply["unpriced_by_model"]["no-such-model-x"], 1, "{body}");

    // The same body again: nothing new.
    let (status, body) = post(port, Some(TOKEN), "application/x-ndjson", lines.as_bytes());
    assert_eq!(status, 200, "{body}");
    let reply = json(&body);
    assert_eq!(reply["stored"], 0, "{body}");
    assert_eq!(reply["duplicates"], 4, "{body}");

    // Over max_body (4 KiB): 413, nothing stored.
    let mut big = String::new();
    for i in 0..60 {
        big.push_str(&format!(
            "{{\"ts\":\"{now}\",\"request_id\":\"big{i}\",\"model\":\"gpt-4o\",\"cost_usd\":0.01}}\n"
        ));
    }
    assert!(big.len() > 4096);
    let (status, body) = post(port, Some(TOKEN), "application/x-ndjson", big.as_bytes());
    assert_eq!(status, 413, "{body}");
    assert_eq!(row_count(&s), 4, "an oversized body stores nothing");

    // A JSON array of rows, with a bad element reported by its index + 1.
    let array = format!(
        "[{{\"ts\":\"{now}\",\"request_id\":\"a1\",\"model\":\"gpt-4o\",\"cost_usd\":1.5,\"tenant\":\"beta\"}},
          {{\"ts\":\"{now}\",\"request_id\":\"a2\",\"model\":\"gpt-4o\",\"cost_usd\":0.5,\"tenant\":\"beta\"}},
          42]"
    );
    let (status, body) = post(port, Some(TOKEN), "application/json", array.as_bytes());
    assert_eq!(status, 200, "{body}");
    let reply = json(&body);
    assert_eq!(reply["stored"], 2, "{body}");
    assert_eq!(reply["set_aside"][0]["line"], 3, "{body}");
    let (status, body) = post(port, Some(TOKEN), "application/json", array.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["stored"], 0, "{body}");
    assert_eq!(json(&body)["duplicates"], 2, "{body}");

    // A body that is neither shape's content type.
    let (status, _) = post(port, Some(TOKEN), "text/csv", b"a,b\n");
    assert_eq!(status, 415);

    let err = stop(child);

    // The rows are in the store under the configured source name.
    let db = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let mut q = db
        .prepare("SELECT source, request_id, model, cost_nanos FROM rows ORDER BY request_id")
        .unwrap();
    let rows: Vec<(String, String, String, Option<i64>)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        ids,
        ["a1", "a2", "h-unpriced", "h0", "h1", "h2"],
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.0 == "apps"), "{rows:?}");
    assert_eq!(rows[0].3, Some(1_500_000_000), "{rows:?}");
    assert_eq!(rows[3].3, Some(250_000_000), "{rows:?}");

    // `status` lists the endpoint as a source with what it stored.
    let status = stdout(&s.run(&["status"]));
    assert!(
        status.contains("source apps (POST /ingest, /v1/traces): 6 rows, newest row"),
        "{status}"
    );

    assert!(err.contains("serving POST /ingest"), "{err}");
    assert!(err.contains("missing or wrong bearer token"), "{err}");
    assert!(
        !err.contains(TOKEN),
        "the token never reaches the log:\n{err}"
    );
}

#[test]
fn ingest_config_is_checked() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "store: ./store.db\nhttp: { listen: 127.0.0.1:9, ingest: { max_body: 1 parsec } }\n",
    );
    let out = s.run(&["rules", "check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("parsec"), "{}", stderr(&out));

    s.write(
        "config.yaml",
        "store: ./store.db\nhttp: { listen: 127.0.0.1:9, ingest: { max_body: 256KiB } }\n",
    );
    let out = s.run(&["rules", "check"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a token is required"),
        "{}",
        stderr(&out)
    );
}
