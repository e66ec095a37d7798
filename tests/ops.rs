//! The pager watching itself, as an operator sees it: the real daemon serving `/metrics` and
//! `/healthz` on 127.0.0.1, and sending its heartbeat to a real receiver after each cycle.

mod common;

use common::http::{free_port, start_daemon, stop};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// GET `path` from 127.0.0.1:`port`: the status code and the body, or None while nothing
/// listens yet.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The value of one sample line (`name{labels} value`) in a Prometheus page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Waits until `check` gives a value, or panics with `what` after `timeout`.
fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_healthz_and_heartbeat_from_the_running_daemon() {
    let s = Scratch::new();
    let heartbeat = Receiver::start(vec![], None);
    let hb_url = s.write("heartbeat-url", &heartbeat.url);
    let port = free_port();
    std::fs::create_dir_all(s.path("logs")).unwrap();
    let now = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(2);
    let mut lines = String::new();
    for i in 0..7 {
        lines.push_str(&format!(
            "{{\"ts\":\"{now}\",\"request_id\":\"m{i}\",\"model\":\"gpt-4o\",\"cost_usd\":0.5,\"tenant\":\"t{}\"}}\n",
            i % 3
        ));
    }
    lines.push_str("{\"this is\": not json\n");
    s.write("logs/app.jsonl", &lines);
    s.write(
        "config.yaml",
        &format!(
            "store: ./store.db
schedule: \"* * * * * *\"
delay: 0s
poll_interval: 1s
http: {{ listen: 127.0.0.1:{port} }}
heartbeat: {{ url_file: {}, method: post }}
sources:
  - {{ name: app, kind: jsonl, path: \"./logs/*.jsonl\" }}
channels:
  out: {{ kind: console }}
rules:
  - name: tenant-cap
    kind: threshold
    group_by: [tenant]
    window: 5m
    limit_usd: 100
    channels: [out]
",
            hb_url.display()
        ),
    );
    let child = start_daemon(&s, port);

    // Rows stored equals what was written; the bad line is counted as set aside.
    let page = eventually(Duration::from_secs(20), "a cycle after ingest", || {
        let (status, page) = get(port, "/metrics")?;
        assert_eq!(status, 200);
        let evaluated = sample(&page, "spendpager_evaluations_total{outcome=\"ok\"}")?;
        (evaluated >= 1.0 && page.contains("spendpager_alerts")).then_some(page)
    });
    assert_eq!(
        sample(&page, "spendpager_rows_stored_total{source=\"app\"}"),
        Some(7.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "spendpager_rows_set_aside_total{source=\"app\"}"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "spendpager_series_evaluated"),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "spendpager_alerts{state=\"firing\"}"),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "spendpager_outbox_depth"),
        Some(0.0),
        "{page}"
    );
    let lag = sample(&page, "spendpager_source_lag_seconds{source=\"app\"}").expect(&page);
    assert!((100.0..400.0).contains(&lag), "lag {lag}");
    assert!(
        page.contains("spendpager_evaluation_duration_seconds_bucket{le=\"0.005\"}"),
        "{page}"
    );
    assert!(
        page.contains("# TYPE spendpager_rows_stored_total counter"),
        "{page}"
    );

    let (status, body) = get(port, "/healthz").unwrap();
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["healthy"], true);
    assert_eq!(health["outbox_depth"], 0);
    assert!(health["last_evaluation"].is_string(), "{body}");

    let beats = heartbeat.wait_for(1, Duration::from_secs(10));
    assert!(!beats.is_empty(), "a heartbeat after a healthy cycle");
    let beat = beats[0].json();
    assert_eq!(beat["service"], "spendpager");
    assert!(beat["last_evaluation"].is_string());

    let err = stop(child);
    assert!(err.contains("serving /metrics and /healthz"), "{err}");
    assert!(
        !err.contains(&heartbeat.url),
        "the heartbeat URL never reaches the log"
    );
    assert!(get(port, "/healthz").is_none(), "the endpoint stopped");
}

#[test]
fn a_failing_heartbeat_is_logged_and_the_daemon_goes_on() {
    let s = Scratch::new();
    let heartbeat = Receiver::start(vec![], Some((500, None, "down")));
    let hb_url = s.write("heartbeat-url", &heartbeat.url);
    s.write(
        "config.yaml",
        &format!(
            "store: ./store.db
schedule: \"* * * * * *\"
heartbeat: {{ url_file: {} }}
channels:
  out: {{ kind: console }}
",
            hb_url.display()
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .args(["run", "--config"])
        .arg(s.path("config.yaml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let got = heartbeat.wait_for(2, Duration::from_secs(15));
    assert!(got.len() >= 2, "heartbeats go on after a failure");
    let err = stop(child);
    assert!(err.contains("heartbeat failed"), "{err}");
    assert!(err.contains("HTTP 500"), "{err}");
}

#[test]
fn a_taken_port_is_a_start_up_error() {
    let s = Scratch::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    s.write(
        "config.yaml",
        &format!("store: ./store.db\nhttp: {{ listen: 127.0.0.1:{port} }}\n"),
    );
    let out = s.run(&["run"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot listen"), "{}", stderr(&out));
}
