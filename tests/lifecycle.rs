//! The alert lifecycle across processes: silences hold pages and their expiry resumes them,
//! mute windows, growth re-notification, and a daemon killed during delivery that, restarted,
//! delivers its page exactly once.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn setup(s: &Scratch, receiver: &Receiver, rule_extra: &str) {
    let url = s.write("hook-url", &receiver.url);
    s.write(
        "config.yaml",
        &format!(
            "store: ./store.db
delay: 0s
schedule: \"* * * * * *\"
poll_interval: 1s
sources:
  - {{ name: app, kind: jsonl, path: \"./logs/*.jsonl\" }}
channels:
  hook: {{ kind: webhook, url_file: {} }}
delivery: {{ initial_backoff: 1s }}
rules:
  - name: cap
    kind: threshold
    group_by: [tenant]
    window: 2h
    limit_usd: 10
    repeat: 6h
    channels: [hook]
{rule_extra}",
            url.display()
        ),
    );
}

fn row(id: &str, at: jiff::Timestamp, usd: f64) -> String {
    format!(
        "{{\"ts\":\"{at}\",\"request_id\":\"{id}\",\"model\":\"gpt-4o\",\"cost_usd\":{usd},\"tenant\":\"acme\"}}\n"
    )
}

fn ingest(s: &Scratch, name: &str, lines: &str) {
    s.write(name, lines);
    let out = s.run(&["ingest", s.path(name).to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn evaluate(s: &Scratch, at: jiff::Timestamp) -> String {
    let out = s.run(&["evaluate", "--at", &at.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_silence_holds_the_page_and_its_expiry_resumes_it() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    setup(&s, &receiver, "");
    let now = jiff::Timestamp::now();
    ingest(
        &s,
        "a.jsonl",
        &row("r1", now - jiff::SignedDuration::from_mins(10), 42.0),
    );

    let add = s.run(&[
        "silence",
        "add",
        "--match",
        "tenant=acme",
        "--for",
        "2h",
        "--comment",
        "launch",
    ]);
    assert!(add.status.success(), "{}", stderr(&add));
    assert!(
        stdout(&add).starts_with("silence 1: tenant=acme from "),
        "{}",
        stdout(&add)
    );
    let list = stdout(&s.run(&["silence", "list"]));
    assert!(
        list.contains("tenant=acme") && list.contains("active") && list.contains("launch"),
        "{list}"
    );

    // Held: recorded and visible, not sent.
    assert_eq!(evaluate(&s, now + jiff::SignedDuration::from_secs(5)), "");
    assert_eq!(receiver.received().len(), 0);
    let status = stdout(&s.run(&["status"]));
    assert!(
        status.contains("firing cap tenant=acme") && status.contains("held by silence 1"),
        "{status}"
    );

    // A silence on another tenant holds nothing here; expiring ours lets the page out.
    assert!(
        s.run(&["silence", "add", "--match", "tenant=globex", "--for", "1h"])
            .status
            .success()
    );
    let expire = s.run(&["silence", "expire", "1"]);
    assert!(expire.status.success(), "{}", stderr(&expire));
    assert!(
        !s.run(&["silence", "expire", "1"]).status.success(),
        "an expired silence cannot expire again"
    );
    let later = now + jiff::SignedDuration::from_mins(1);
    let printed = evaluate(&s, later);
    assert!(printed.contains("\"status\":\"firing\""), "{printed}");
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["labels"]["tenant"], "acme");
    // And only once.
    assert_eq!(evaluate(&s, later + jiff::SignedDuration::from_mins(1)), "");
    assert_eq!(receiver.received().len(), 1);
}

#[test]
fn a_resolution_is_not_sent_for_a_page_that_never_went_out() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    setup(&s, &receiver, "");
    ingest(&s, "a.jsonl", &row("r1", ts("2026-04-08T14:30:00Z"), 42.0));
    assert!(
        s.run(&[
            "silence",
            "add",
            "--match",
            "rule=cap",
            "--for",
            "6h",
            "--start",
            "2026-04-08T12:00:00Z"
        ])
        .status
        .success()
    );
    assert_eq!(evaluate(&s, ts("2026-04-08T15:00:00Z")), "");
    // The window moves past the row while still silenced: resolved quietly.
    assert_eq!(evaluate(&s, ts("2026-04-08T17:00:00Z")), "");
    // After the silence there is nothing left to say.
    assert_eq!(evaluate(&s, ts("2026-04-08T19:00:00Z")), "");
    assert_eq!(receiver.received().len(), 0);
}

#[test]
fn a_mute_window_holds_pages_in_its_hours_only() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    setup(
        &s,
        &receiver,
        "    mute: [{ from: \"14:00\", to: \"16:00\", timezone: UTC }]\n",
    );
    ingest(&s, "a.jsonl", &row("r1", ts("2026-04-08T14:30:00Z"), 42.0));
    assert_eq!(evaluate(&s, ts("2026-04-08T15:00:00Z")), "");
    let out = evaluate(&s, ts("2026-04-08T16:05:00Z"));
    assert!(out.contains("\"status\":\"firing\""), "{out}");
    assert_eq!(receiver.wait_for(1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn a_firing_series_that_keeps_growing_pages_again_before_repeat() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    setup(
        &s,
        &receiver,
        "    renotify: { growth: 1.0, min_usd: 20 }\n",
    );
    ingest(&s, "a.jsonl", &row("r1", ts("2026-04-08T14:30:00Z"), 42.0));
    assert!(evaluate(&s, ts("2026-04-08T15:00:00Z")).contains("firing"));
    // Grown by 30 (71%): not enough.
    ingest(&s, "b.jsonl", &row("r2", ts("2026-04-08T15:01:00Z"), 30.0));
    assert_eq!(evaluate(&s, ts("2026-04-08T15:05:00Z")), "");
    // Doubled and by more than 20: page again, well before the 6h repeat.
    ingest(&s, "c.jsonl", &row("r3", ts("2026-04-08T15:06:00Z"), 20.0));
    let again = evaluate(&s, ts("2026-04-08T15:10:00Z"));
    assert!(again.contains("\"observed_usd\":92.0"), "{again}");
    let got = receiver.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].json()["dedup_key"], got[1].json()["dedup_key"]);
}

fn spawn_daemon(s: &Scratch) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .args(["run", "--config"])
        .arg(s.path("config.yaml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_daemon_killed_during_delivery_delivers_exactly_once_after_restart() {
    let s = Scratch::new();
    // The receiver fails the first two attempts; the daemon is killed after the first.
    let receiver = Receiver::start(vec![(503, None, "busy"), (503, None, "busy")], None);
    setup(&s, &receiver, "");
    std::fs::create_dir_all(s.path("logs")).unwrap();
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(3);
    s.write("logs/app.jsonl", &row("k1", at, 42.0));

    let mut first = spawn_daemon(&s);
    assert_eq!(
        receiver.wait_for(1, Duration::from_secs(20)).len(),
        1,
        "the first attempt arrived"
    );
    first.kill().unwrap(); // SIGKILL: no drain, no goodbye
    first.wait().unwrap();

    let mut second = spawn_daemon(&s);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Give it time to do anything more it would wrongly do.
    std::thread::sleep(Duration::from_secs(3));
    Command::new("kill")
        .arg("-TERM")
        .arg(second.id().to_string())
        .status()
        .unwrap();
    assert!(second.wait().unwrap().success());

    let got = receiver.received();
    assert_eq!(got.len(), 3, "503, 503, then one accepted delivery");
    let keys: Vec<String> = got
        .iter()
        .map(|r| r.json()["dedup_key"].as_str().unwrap().to_string())
        .collect();
    assert!(keys.iter().all(|k| *k == keys[0]));
    let ats: Vec<String> = got
        .iter()
        .map(|r| r.json()["at"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ats.iter().all(|a| *a == ats[0]),
        "the restart did not fire the alert again: {ats:?}"
    );
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let queued: i64 = conn
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(queued, 0);
}
