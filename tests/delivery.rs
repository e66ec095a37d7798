//! End to end through the real binary: rows in, an evaluation at a spike, the alert received
//! by a real HTTP server on 127.0.0.1 with the caller named; a quiet instant that sends
//! nothing; the resolve; Slack's message; and the retry rules of case 07.

mod common;

use common::*;
use std::time::Duration;

/// Eight days of hourly traffic for two tenants, and one hour in which acme's agent feature
/// answers ten times longer.
fn traffic(spike_hour: &str) -> String {
    let mut out = String::new();
    let start = ts("2026-04-01T00:00:00Z");
    for h in 0..(8 * 24 + 6) {
        let t = start + jiff::SignedDuration::from_hours(h);
        let hour = t.to_string();
        let wiggle = (h % 5) as u64;
        let agent_output = if hour.starts_with(spike_hour) {
            3000
        } else {
            300
        };
        for (tenant, feature, requests, input, output, user) in [
            ("acme", "chat", 100 + wiggle, 1000, 200, "u1"),
            ("acme", "agent", 50, 2000, agent_output, "u2"),
            ("globex", "chat", 80 + wiggle, 800, 150, "u3"),
        ] {
            out.push_str(&format!(
                "{{\"ts\":\"{}\",\"request_id\":\"{tenant}-{feature}-{h}\",\"model\":\"gpt-4o\",\"requests\":{requests},\"input_tokens\":{},\"output_tokens\":{},\"tenant\":\"{tenant}\",\"feature\":\"{feature}\",\"user\":\"{user}\"}}\n",
                t + jiff::SignedDuration::from_mins(10),
                input * requests,
                output * requests
            ));
        }
    }
    out
}

fn config(s: &Scratch, receiver: &Receiver, channel_kind: &str, extra: &str) -> String {
    let url = s.write("secrets/hook-url", &format!("{}\n", receiver.url));
    format!(
        "store: {}
delay: 0s
channels:
  hook: {{ kind: {channel_kind}, url_file: {} }}
{extra}rules:
  - name: tenant-spike
    kind: spike
    group_by: [tenant]
    window: 1h
    baseline: {{ lookback: 7d, seasonality: daily }}
    threshold: {{ sensitivity: 4, min_ratio: 1.5, min_delta_usd: 1 }}
    repeat: 4h
    channels: [hook]
",
        s.path("store.db").display(),
        url.display()
    )
}

#[test]
fn a_spike_pages_the_webhook_naming_the_caller_and_a_quiet_hour_sends_nothing() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    s.write("config.yaml", &config(&s, &receiver, "webhook", ""));
    s.write("rows.jsonl", &traffic("2026-04-08T14"));
    let out = s.run(&["ingest", "--json", s.path("rows.jsonl").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["stored"], 594);
    assert_eq!(report["set_aside"].as_array().unwrap().len(), 0);

    // A quiet hour: nothing printed, nothing sent.
    let quiet = s.run(&["evaluate", "--at", "2026-04-08T12:00:00Z"]);
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    assert_eq!(stdout(&quiet), "");
    assert_eq!(receiver.received().len(), 0);

    // The spike hour, judged when it closes.
    let spike = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z"]);
    assert!(spike.status.success(), "{}", stderr(&spike));
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let alert = got[0].json();
    assert_eq!(alert["rule"], "tenant-spike");
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["tenant"], "acme");
    assert_eq!(alert["window_start"], "2026-04-08T14:00:00Z");
    assert_eq!(alert["window_end"], "2026-04-08T15:00:00Z");
    let top = &alert["contributors"][0];
    assert_eq!(
        (top["dimension"].as_str(), top["value"].as_str()),
        (Some("feature"), Some("agent"))
    );
    assert!(top["share_of_increase"].as_f64().unwrap() > 0.95, "{top}");
    let out_ratio = alert["drivers"]["output_tokens_per_request"]
        .as_f64()
        .unwrap();
    assert!(out_ratio > 3.0, "{out_ratio}");
    assert!((alert["drivers"]["requests"].as_f64().unwrap() - 1.0).abs() < 0.05);
    assert!(
        alert["summary"].as_str().unwrap().contains("feature agent"),
        "{}",
        alert["summary"]
    );
    assert_eq!(alert["sample_request_ids"][0], "acme-agent-182");
    assert_eq!(
        got[0].headers["x-spendpager-dedup-key"].to_str().unwrap(),
        alert["dedup_key"].as_str().unwrap()
    );
    // The command printed the same alert.
    let printed: serde_json::Value =
        serde_json::from_str(stdout(&spike).lines().next().unwrap()).unwrap();
    assert_eq!(printed["dedup_key"], alert["dedup_key"]);

    // The same instant again: the alert is firing already and repeat has not passed.
    let again = s.run(&["evaluate", "--at", "2026-04-08T15:05:00Z"]);
    assert_eq!(stdout(&again), "");
    // Back to normal: one resolved notification with the same key.
    let resolved = s.run(&["evaluate", "--at", "2026-04-08T16:05:00Z"]);
    assert!(resolved.status.success());
    let got = receiver.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    let r = got[1].json();
    assert_eq!(r["status"], "resolved");
    assert_eq!(r["dedup_key"], alert["dedup_key"]);
    assert_eq!(r["started_at"], "2026-04-08T15:00:00Z");
    // A dry run decides but sends and records nothing.
    let dry = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z", "--dry-run"]);
    assert!(stdout(&dry).contains("\"status\":\"firing\""));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(receiver.received().len(), 2);
}

#[test]
fn slack_gets_a_message_a_person_reads_at_3am() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    s.write("config.yaml", &config(&s, &receiver, "slack", ""));
    s.write("rows.jsonl", &traffic("2026-04-08T14"));
    assert!(
        s.run(&["ingest", s.path("rows.jsonl").to_str().unwrap()])
            .status
            .success()
    );
    let out = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let msg = got[0].json();
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(
        header.contains("FIRING")
            && header.contains("tenant-spike")
            && header.contains("tenant acme"),
        "{header}"
    );
    let all = msg.to_string();
    assert!(all.contains("feature *agent*"), "{all}");
    assert!(
        all.contains("*Spent*") && all.contains("*Against*") && all.contains("usual $"),
        "{all}"
    );
    assert!(
        msg["text"]
            .as_str()
            .unwrap()
            .starts_with("FIRING: Tenant acme spent $")
    );
}

fn one_alert(s: &Scratch, receiver: &Receiver, extra: &str) {
    s.write("config.yaml", &config(s, receiver, "webhook", extra));
    s.write("rows.jsonl", "{\"ts\":\"2026-04-08T14:30:00Z\",\"request_id\":\"r1\",\"model\":\"gpt-4o\",\"cost_usd\":42.0,\"tenant\":\"acme\"}\n");
    assert!(
        s.run(&["ingest", s.path("rows.jsonl").to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn case_07a_a_429_with_retry_after_is_retried_after_the_pause() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![(429, Some("2"), "slow down")], None);
    one_alert(&s, &receiver, "");
    let out = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert!(
        got[1].at - got[0].at >= Duration::from_secs(2),
        "{:?}",
        got[1].at - got[0].at
    );
    assert_eq!(got[0].body, got[1].body);
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let queued: i64 = conn
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0);
}

#[test]
fn case_07b_server_errors_are_retried_with_growing_pauses() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![(500, None, "oops"), (500, None, "oops")], None);
    one_alert(&s, &receiver, "delivery: { initial_backoff: 1s }\n");
    let out = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let (first, second) = (got[1].at - got[0].at, got[2].at - got[1].at);
    assert!(first >= Duration::from_millis(1000), "{first:?}");
    assert!(second > first, "{first:?} then {second:?}");
}

#[test]
fn case_07c_a_400_is_not_retried_and_goes_to_the_fallback() {
    let s = Scratch::new();
    let receiver = Receiver::start(
        vec![(400, None, "invalid_payload: blocks[0] is wrong")],
        None,
    );
    let fallback = Receiver::start(vec![], None);
    let fallback_url = s.write("secrets/fallback-url", &fallback.url);
    one_alert(
        &s,
        &receiver,
        &format!(
            "  backup: {{ kind: webhook, url_file: {} }}\ndelivery: {{ fallback: backup }}\n",
            fallback_url.display()
        ),
    );
    let out = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(receiver.received().len(), 1);
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 400") && err.contains("invalid_payload"),
        "{err}"
    );
    assert!(
        !err.contains(&receiver.url),
        "the webhook URL is a secret: {err}"
    );
    let got = fallback.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["labels"]["tenant"], "acme");
    // Still in the alert book, and listed as failed.
    let status = s.run(&["status"]);
    let text = stdout(&status);
    assert!(text.contains("firing tenant-spike tenant=acme"), "{text}");
    assert!(
        text.contains("failed deliveries: 1") && text.contains("HTTP 400"),
        "{text}"
    );
}

#[test]
fn case_07d_a_long_rate_limit_keeps_the_page_queued_across_runs() {
    let s = Scratch::new();
    let limited: Vec<Answer> = std::iter::repeat_n((429, Some("1"), "rate limited"), 4).collect();
    let receiver = Receiver::start(limited, None);
    one_alert(&s, &receiver, "delivery: { cycle_deadline: 2s }\n");
    // The first run gives up for this cycle with the message still queued.
    let first = s.run(&["evaluate", "--at", "2026-04-08T15:00:00Z"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("still queued"),
        "{}",
        stderr(&first)
    );
    let n = receiver.received().len();
    assert!((2..=3).contains(&n), "{n}");
    // Later runs are new processes: the queue survives them, and the page goes out once.
    for minute in [5, 10, 15] {
        let out = s.run(&[
            "evaluate",
            "--at",
            &format!("2026-04-08T15:{minute:02}:00Z"),
        ]);
        assert!(out.status.success());
    }
    let got = receiver.received();
    assert_eq!(got.len(), 5);
    for pair in got.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_secs(1));
    }
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let queued: i64 = conn
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0);
    let delivered_firing = got
        .iter()
        .filter(|r| r.json()["status"] == "firing")
        .count();
    assert_eq!(
        delivered_firing, 5,
        "every attempt carries the same single page"
    );
}
