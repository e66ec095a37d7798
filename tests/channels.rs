//! Each channel end to end through the real binary: rows in, an evaluation at a spike, and
//! what the medium received, field by field. Email goes to a real SMTP server (aiosmtpd,
//! tests/support/smtp_sink.py), Alertmanager to a real Alertmanager, the HTTP channels to the
//! recording receiver of tests/common. Every server listens on 127.0.0.1 and is stopped when
//! its guard drops.

mod common;

use common::*;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tenant name that no header survives unless it is encoded properly.
const TENANT: &str = "Zürich-Bäckerei 東京";

/// Eight days of traffic for `tenant` and `globex`, four rows an hour, and one hour in which
/// the tenant's agent feature answers ten times longer.
fn traffic(tenant: &str, spike_hour: &str) -> String {
    let mut out = String::new();
    let start = ts("2026-04-01T00:00:00Z");
    for h in 0..(8 * 24 + 6) {
        let hour = start + jiff::SignedDuration::from_hours(h);
        let spiking = hour.to_string().starts_with(spike_hour);
        for (q, minute) in [5, 20, 35, 50].into_iter().enumerate() {
            let t = hour + jiff::SignedDuration::from_mins(minute);
            let agent_output = if spiking { 3000 } else { 300 };
            for (who, feature, output) in [
                (tenant, "chat", 200),
                (tenant, "agent", agent_output),
                ("globex", "chat", 150),
            ] {
                let row = serde_json::json!({
                    "ts": t.to_string(),
                    "request_id": format!("{feature}-{h}-{q}-{}", who.len()),
                    "model": "gpt-4o",
                    "requests": 25,
                    "input_tokens": 25 * 1000,
                    "output_tokens": 25 * output,
                    "tenant": who,
                    "feature": feature,
                });
                out.push_str(&row.to_string());
                out.push('\n');
            }
        }
    }
    out
}

const RULE: &str = "rules:
  - name: tenant-spike
    kind: spike
    group_by: [tenant]
    window: 1h
    baseline: { lookback: 7d, seasonality: daily }
    threshold: { sensitivity: 4, min_ratio: 1.5, min_delta_usd: 1 }
    repeat: 4h
    severity: warn
    channels: [out]
";

/// Writes a config whose one channel `out` is `channel` (a YAML flow mapping), with
/// `extra` top-level YAML, and ingests the spike traffic.
fn setup(s: &Scratch, channel: &str, extra: &str) {
    setup_with_env(s, channel, extra, &[]);
}

fn setup_with_env(s: &Scratch, channel: &str, extra: &str, env: &[(&str, &str)]) {
    s.write(
        "config.yaml",
        &format!(
            "store: {}\ndelay: 0s\nchannels:\n  out: {channel}\n{extra}{RULE}",
            s.path("store.db").display()
        ),
    );
    s.write("rows.jsonl", &traffic(TENANT, "2026-04-08T14"));
    let out = Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .arg("--config")
        .arg(s.path("config.yaml"))
        .args(["ingest", s.path("rows.jsonl").to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs `evaluate --at` and returns the alerts it printed.
fn evaluate(s: &Scratch, at: &str) -> (std::process::Output, Vec<Value>) {
    let out = s.run(&["evaluate", "--at", at]);
    let alerts = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an alert line"))
        .collect();
    (out, alerts)
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

// ------------------------------------------------------------------------------------------
// A real SMTP server.

struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink; with `auth`, it requires that user and password.
    fn start(auth: Option<(&str, &str)>) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        // Debian's own interpreter: the one that has python3-aiosmtpd.
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script)
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((user, password)) = auth {
            cmd.env("SINK_USER", user).env("SINK_PASSWORD", password);
        }
        let mut child = cmd.spawn().expect("/usr/bin/python3 runs the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the SMTP sink did not start (is python3-aiosmtpd installed?): {line:?}")
            });
        SmtpSink { child, port, dir }
    }

    /// The messages saved so far, waiting until `n` arrived or `timeout` passed.
    fn messages(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let end = Instant::now() + timeout;
        loop {
            let mut got: Vec<(u64, Value)> = std::fs::read_dir(self.dir.path())
                .unwrap()
                .filter_map(|e| {
                    let p = e.ok()?.path();
                    let stem = p.file_name()?.to_str()?.strip_suffix(".json")?.to_string();
                    let n: u64 = stem.strip_prefix("msg-")?.parse().ok()?;
                    let v = serde_json::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
                    Some((n, v))
                })
                .collect();
            got.sort_by_key(|(n, _)| *n);
            if got.len() >= n || Instant::now() > end {
                return got.into_iter().map(|(_, v)| v).collect();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn image(&self, n: usize) -> Vec<u8> {
        std::fs::read(self.dir.path().join(format!("msg-{n}.png"))).unwrap()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn email_channel(sink: &SmtpSink, to: &str, extra: &str) -> String {
    format!(
        "{{ kind: email, host: 127.0.0.1, port: {}, tls: none, from: \"spendpager <pager@example.test>\", to: [{to}]{extra} }}",
        sink.port
    )
}

#[test]
fn email_arrives_over_smtp_with_the_exact_unicode_subject_both_parts_and_the_chart() {
    let s = Scratch::new();
    let sink = SmtpSink::start(Some(("pager", "s3cret-pw")));
    let pw = s.write("secrets/smtp-password", "s3cret-pw\n");
    s.write("secrets/smtp-user", "pager\n");
    setup(
        &s,
        &email_channel(
            &sink,
            "oncall@example.test, '\"Finance Team\" <finance@example.test>'",
            &format!(
                ", username_file: secrets/smtp-user, password_file: {}",
                pw.display()
            ),
        ),
        "",
    );
    let (out, alerts) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["tenant"], TENANT);
    let observed = alert["observed_usd"].as_f64().unwrap();
    let ratio = alert["ratio"].as_f64().unwrap();
    assert!(ratio > 1.5, "{ratio}");

    let got = sink.messages(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    let m = &got[0];
    // The subject decodes back exactly, and travelled encoded (RFC 2047).
    assert_eq!(
        m["subject"],
        format!("[FIRING] tenant-spike: tenant {TENANT} ${observed:.2} ({ratio:.1}x)")
    );
    let raw_subject = m["raw_subject"].as_str().unwrap();
    assert!(
        raw_subject.is_ascii() && raw_subject.to_ascii_lowercase().contains("=?utf-8?b?"),
        "{raw_subject}"
    );
    assert_eq!(m["mail_from"], "pager@example.test");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["oncall@example.test", "finance@example.test"])
    );
    assert!(
        m["to"].as_str().unwrap().contains("Finance Team"),
        "{}",
        m["to"]
    );
    assert_eq!(m["top_type"], "multipart/alternative");
    let summary = alert["summary"].as_str().unwrap();
    let text = m["text"].as_str().unwrap();
    assert!(text.contains(summary), "{text}");
    assert!(text.contains("feature agent"), "{text}");
    assert!(
        text.contains(alert["dedup_key"].as_str().unwrap()),
        "{text}"
    );
    let html = m["html"].as_str().unwrap();
    assert!(html.contains(summary), "{html}");
    assert!(html.contains("src=\"cid:spend-chart\""), "{html}");
    // The HTML and its image are one multipart/related, the image inline by Content-ID.
    assert_eq!(m["html_parent"], "multipart/related");
    let image = &m["image"];
    assert_eq!(image["content_type"], "image/png");
    assert_eq!(image["content_id"], "<spend-chart>");
    assert_eq!(image["disposition"], "inline");
    let png_bytes = sink.image(1);
    assert_eq!(image["bytes"].as_u64().unwrap() as usize, png_bytes.len());
    assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
    // The chart is the picture drawn: its size, and a red (above the band) spike bar.
    let mut reader = png::Decoder::new(std::io::Cursor::new(&png_bytes))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (480, 160));
    let red = spendpager::notify::chart::BAR_HIGH;
    assert!(
        buf.chunks(4).any(|px| px == red),
        "the spike bucket is drawn above the band"
    );
}

#[test]
fn email_refused_with_550_fails_for_good_quoting_the_server_and_never_the_password() {
    let s = Scratch::new();
    let sink = SmtpSink::start(Some(("pager", "hunter2-pw")));
    let pw = s.write("secrets/smtp-password", "hunter2-pw\n");
    s.write("secrets/smtp-user", "pager\n");
    setup(
        &s,
        &email_channel(
            &sink,
            "refuse-me@example.test",
            &format!(
                ", username_file: secrets/smtp-user, password_file: {}",
                pw.display()
            ),
        ),
        "",
    );
    let (out, _) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("550") && err.contains("no such mailbox here"),
        "{err}"
    );
    assert!(err.contains("delivery refused for good"), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
    assert!(sink.messages(1, Duration::from_millis(300)).is_empty());
    let status = stdout(&s.run(&["status"]));
    assert!(status.contains("failed deliveries: 1"), "{status}");
}

#[test]
fn email_busy_with_451_is_retried_until_max_attempts() {
    let s = Scratch::new();
    let sink = SmtpSink::start(None);
    setup(
        &s,
        &email_channel(&sink, "later@example.test", ""),
        "delivery: { initial_backoff: 1s, max_attempts: 2 }\n",
    );
    let started = Instant::now();
    let (out, _) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("will retry") && err.contains("451"), "{err}");
    assert!(err.contains("gave up after 2 attempts"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn email_groups_the_series_of_one_rule_into_one_message() {
    let s = Scratch::new();
    let sink = SmtpSink::start(None);
    s.write(
        "config.yaml",
        &format!(
            "store: {}\ndelay: 0s\nchannels:\n  out: {}\nrules:
  - name: tenant-limit
    kind: threshold
    group_by: [tenant]
    window: 1h
    limit_usd: 10
    channels: [out]
",
            s.path("store.db").display(),
            email_channel(&sink, "oncall@example.test", "")
        ),
    );
    let mut rows = String::new();
    for (i, (tenant, cost)) in [("acme", 42.0), ("globex", 17.5), (TENANT, 23.25)]
        .into_iter()
        .enumerate()
    {
        rows.push_str(&format!(
            "{{\"ts\":\"2026-04-08T14:30:00Z\",\"request_id\":\"r{i}\",\"model\":\"gpt-4o\",\"cost_usd\":{cost},\"tenant\":\"{tenant}\"}}\n"
        ));
    }
    s.write("rows.jsonl", &rows);
    assert!(
        s.run(&["ingest", s.path("rows.jsonl").to_str().unwrap()])
            .status
            .success()
    );
    let (out, alerts) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(alerts.len(), 3);
    let got = sink.messages(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.messages(2, Duration::ZERO).len(), 1, "one message");
    let m = &got[0];
    assert_eq!(
        m["subject"],
        "[FIRING] tenant-limit: 3 series, largest tenant acme $42.00"
    );
    let text = m["text"].as_str().unwrap();
    for a in &alerts {
        assert!(text.contains(a["summary"].as_str().unwrap()), "{text}");
    }
    // Largest first.
    let (acme, zurich, globex) = (
        text.find("tenant acme").unwrap(),
        text.find(&format!("tenant {TENANT}")).unwrap(),
        text.find("tenant globex").unwrap(),
    );
    assert!(acme < zurich && zurich < globex, "{text}");
}

// ------------------------------------------------------------------------------------------
// HTTP payloads.

#[test]
fn pagerduty_gets_a_trigger_then_a_resolve_under_the_alerts_dedup_key() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let key = s.write("secrets/pd-key", "R0UT1NGKEY0123456789abcdef012345\n");
    setup(
        &s,
        &format!(
            "{{ kind: pagerduty, url: \"{}\", routing_key_file: {} }}",
            receiver.url,
            key.display()
        ),
        "",
    );
    let (out, alerts) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let alert = &alerts[0];
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let e = got[0].json();
    assert_eq!(e["routing_key"], "R0UT1NGKEY0123456789abcdef012345");
    assert_eq!(e["event_action"], "trigger");
    assert_eq!(e["dedup_key"], alert["dedup_key"]);
    let p = &e["payload"];
    assert_eq!(p["summary"], alert["summary"]);
    assert!(p["summary"].as_str().unwrap().chars().count() <= 1024);
    assert_eq!(p["source"], "spendpager");
    assert_eq!(p["severity"], "warning", "severity warn maps to warning");
    assert_eq!(p["timestamp"], "2026-04-08T15:00:00Z");
    assert_eq!(p["component"], "tenant-spike");
    assert_eq!(p["group"], TENANT);
    let d = &p["custom_details"];
    assert_eq!(d["observed_usd"], alert["observed_usd"]);
    assert_eq!(d["baseline_usd"], alert["baseline_usd"]);
    assert_eq!(d["ratio"], alert["ratio"]);
    assert_eq!(d["labels"]["tenant"], TENANT);
    assert_eq!(d["sample_request_ids"], alert["sample_request_ids"]);
    assert!(
        d["contributors"]
            .as_str()
            .unwrap()
            .starts_with("feature agent $"),
        "{}",
        d["contributors"]
    );
    assert_eq!(header(&got[0], "content-type"), "application/json");

    let (out, _) = evaluate(&s, "2026-04-08T16:05:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    let r = got[1].json();
    assert_eq!(r["event_action"], "resolve");
    assert_eq!(r["dedup_key"], alert["dedup_key"]);
}

/// Decodes one RFC 2047 `=?UTF-8?B?...?=` word, as ntfy does.
fn decode_encoded_word(value: &str) -> String {
    let inner = value
        .strip_prefix("=?UTF-8?B?")
        .and_then(|v| v.strip_suffix("?="))
        .unwrap_or_else(|| panic!("not an encoded word: {value}"));
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut n = 0;
    let mut out = Vec::new();
    for c in inner.chars().filter(|c| *c != '=') {
        bits = (bits << 6) | alphabet.find(c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn ntfy_gets_title_priority_tags_token_and_the_summary_as_body() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let url = s.write(
        "secrets/ntfy-url",
        &format!("{}/spend-alerts\n", receiver.url),
    );
    setup_with_env(
        &s,
        &format!(
            "{{ kind: ntfy, url_file: {}, token_env: SPENDPAGER_TEST_NTFY_TOKEN }}",
            url.display()
        ),
        "",
        &[("SPENDPAGER_TEST_NTFY_TOKEN", "tk_abc123")],
    );
    // The token comes from the environment of the process that reads the config.
    let run = |at: &str| {
        Command::new(env!("CARGO_BIN_EXE_spendpager"))
            .arg("--config")
            .arg(s.path("config.yaml"))
            .args(["evaluate", "--at", at])
            .env("SPENDPAGER_TEST_NTFY_TOKEN", "tk_abc123")
            .output()
            .unwrap()
    };
    let out = run("2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let alert: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let r = &got[0];
    let title = decode_encoded_word(header(r, "title"));
    assert_eq!(
        title,
        format!(
            "FIRING tenant-spike: tenant {TENANT} ${:.2} ({:.1}x)",
            alert["observed_usd"].as_f64().unwrap(),
            alert["ratio"].as_f64().unwrap()
        )
    );
    assert_eq!(header(r, "priority"), "4", "severity warn is priority 4");
    assert_eq!(header(r, "tags"), "rotating_light,tenant-spike");
    assert_eq!(header(r, "authorization"), "Bearer tk_abc123");
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        alert["summary"].as_str().unwrap()
    );

    let out = run("2026-04-08T16:05:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2);
    assert_eq!(header(&got[1], "priority"), "2");
    assert_eq!(header(&got[1], "tags"), "white_check_mark,tenant-spike");
    assert!(decode_encoded_word(header(&got[1], "title")).starts_with("RESOLVED tenant-spike"));
}

fn verify(secret: &[u8], r: &Received) -> bool {
    let ts = header(r, "x-spendpager-timestamp");
    let sig = header(r, "x-spendpager-signature");
    let Some(hex) = sig.strip_prefix("v1=") else {
        return false;
    };
    let Ok(expected) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&r.body);
    mac.verify_slice(&expected).is_ok()
}

#[test]
fn a_signed_webhook_verifies_with_its_secret_and_fails_with_another() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let url = s.write("secrets/url", &receiver.url);
    let secret = s.write("secrets/signing", "whsec_7e1f0c2a9b\n");
    setup(
        &s,
        &format!(
            "{{ kind: webhook, url_file: {}, secret_file: {} }}",
            url.display(),
            secret.display()
        ),
        "",
    );
    let (out, alerts) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.json()["dedup_key"], alerts[0]["dedup_key"]);
    let sent: i64 = header(r, "x-spendpager-timestamp").parse().unwrap();
    let now = jiff::Timestamp::now().as_second();
    assert!((now - sent).abs() <= 60, "timestamp {sent} vs now {now}");
    assert!(verify(b"whsec_7e1f0c2a9b", r), "the right secret verifies");
    assert!(!verify(b"whsec_7e1f0c2a9c", r), "a wrong secret fails");
    let mut tampered = r.clone();
    let mut body = tampered.body.to_vec();
    body[10] ^= 1;
    tampered.body = body.into();
    assert!(
        !verify(b"whsec_7e1f0c2a9b", &tampered),
        "a changed body fails"
    );
}

#[test]
fn an_unsigned_webhook_carries_no_signature_headers() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let url = s.write("secrets/url", &receiver.url);
    setup(
        &s,
        &format!("{{ kind: webhook, url_file: {} }}", url.display()),
        "",
    );
    let (out, _) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert!(got[0].headers.get("x-spendpager-signature").is_none());
    assert!(got[0].headers.get("x-spendpager-timestamp").is_none());
}

fn three_tenants_over_the_limit(s: &Scratch, channel: &str) {
    s.write(
        "config.yaml",
        &format!(
            "store: {}\ndelay: 0s\nchannels:\n  out: {channel}\nrules:
  - name: tenant-limit
    kind: threshold
    group_by: [tenant]
    window: 1h
    limit_usd: 10
    channels: [out]
",
            s.path("store.db").display(),
        ),
    );
    let mut rows = String::new();
    for (i, tenant) in ["acme", "globex", "initech"].into_iter().enumerate() {
        rows.push_str(&format!(
            "{{\"ts\":\"2026-04-08T14:30:00Z\",\"request_id\":\"r{i}\",\"model\":\"gpt-4o\",\"cost_usd\":42.0,\"tenant\":\"{tenant}\"}}\n"
        ));
    }
    s.write("rows.jsonl", &rows);
    assert!(
        s.run(&["ingest", s.path("rows.jsonl").to_str().unwrap()])
            .status
            .success()
    );
}

#[test]
fn min_interval_keeps_messages_to_one_channel_a_second_apart() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let url = s.write("secrets/url", &receiver.url);
    three_tenants_over_the_limit(
        &s,
        &format!(
            "{{ kind: webhook, url_file: {}, min_interval: 1s }}",
            url.display()
        ),
    );
    let (out, alerts) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(alerts.len(), 3);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(990), "{gap:?}");
    }
    let mut tenants: Vec<String> = got
        .iter()
        .map(|r| r.json()["labels"]["tenant"].as_str().unwrap().to_string())
        .collect();
    tenants.sort();
    assert_eq!(tenants, ["acme", "globex", "initech"]);
}

#[test]
fn without_min_interval_the_same_three_go_out_at_once() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let url = s.write("secrets/url", &receiver.url);
    three_tenants_over_the_limit(
        &s,
        &format!("{{ kind: webhook, url_file: {} }}", url.display()),
    );
    let (out, _) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(got[2].at - got[0].at < Duration::from_millis(900));
}

// ------------------------------------------------------------------------------------------
// A real Alertmanager.

struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A plain HTTP/1.0 GET on 127.0.0.1: the status code and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

impl Alertmanager {
    fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: quiet\nreceivers:\n  - name: quiet\n",
        )
        .unwrap();
        // A free port: bound and released; Alertmanager takes it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage: PathBuf = dir.path().join("data");
        let child = Command::new("/usr/bin/prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager is installed");
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let end = Instant::now() + Duration::from_secs(20);
        while http_get(port, "/-/ready").map(|(c, _)| c) != Some(200) {
            assert!(Instant::now() < end, "Alertmanager did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }

    fn alerts(&self) -> Vec<Value> {
        let (code, body) = http_get(self.port, "/api/v2/alerts").expect("GET /api/v2/alerts");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_alertmanager_lists_the_alert_with_its_labels_and_annotations() {
    let am = Alertmanager::start();
    let s = Scratch::new();
    setup(
        &s,
        &format!(
            "{{ kind: alertmanager, url: \"http://127.0.0.1:{}/\" }}",
            am.port
        ),
        "",
    );
    let (out, alerts) = evaluate(&s, "2026-04-08T15:00:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    let alert = &alerts[0];

    let listed = am.alerts();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let a = &listed[0];
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "tenant-spike");
    assert_eq!(labels["severity"], "warn");
    assert_eq!(labels["dedup_key"], alert["dedup_key"]);
    assert_eq!(labels["tenant"], TENANT);
    assert_eq!(labels.as_object().unwrap().len(), 4, "{labels}");
    let ann = &a["annotations"];
    assert_eq!(ann["summary"], alert["summary"]);
    assert_eq!(
        ann["observed_usd"],
        format!("{:.2}", alert["observed_usd"].as_f64().unwrap())
    );
    assert_eq!(
        ann["baseline_usd"],
        format!("{:.2}", alert["baseline_usd"].as_f64().unwrap())
    );
    assert!(
        ann["contributors"]
            .as_str()
            .unwrap()
            .starts_with("feature agent $"),
        "{ann}"
    );
    assert_eq!(a["status"]["state"], "active");
    let starts: jiff::Timestamp = a["startsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(starts, ts("2026-04-08T15:00:00Z"));

    // The resolution ends the same alert (same labels, so the same fingerprint).
    let fingerprint = a["fingerprint"].clone();
    let (out, resolved) = evaluate(&s, "2026-04-08T16:05:00Z");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(resolved[0]["status"], "resolved");
    // Alertmanager (0.25) leaves an alert whose endsAt has passed out of its list: the
    // resolution reached the same alert, or it would still be listed as active.
    let after = am.alerts();
    assert!(
        after.iter().all(|x| x["fingerprint"] != fingerprint),
        "still listed after the resolution: {after:?}"
    );
    assert!(after.is_empty(), "{after:?}");
}

// ------------------------------------------------------------------------------------------
// `notify test` and the configuration.

#[test]
fn notify_test_sends_a_marked_sample_and_exits_non_zero_when_refused() {
    let s = Scratch::new();
    let ok = Receiver::start(vec![], None);
    let refusing = Receiver::start(vec![(400, None, "bad payload")], None);
    let ok_url = s.write("secrets/ok", &ok.url);
    let bad_url = s.write("secrets/bad", &refusing.url);
    s.write(
        "config.yaml",
        &format!(
            "store: {}\nchannels:\n  good: {{ kind: webhook, url_file: {} }}\n  bad: {{ kind: webhook, url_file: {} }}\n",
            s.path("store.db").display(),
            ok_url.display(),
            bad_url.display()
        ),
    );
    let out = s.run(&["notify", "test", "good"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "delivered: test notification to `good`\n");
    let got = ok.received();
    assert_eq!(got.len(), 1);
    let a = got[0].json();
    assert_eq!(a["rule"], "spendpager-test");
    assert_eq!(a["labels"]["test"], "true");
    assert!(
        a["summary"]
            .as_str()
            .unwrap()
            .starts_with("TEST notification")
    );
    assert_eq!(a["dedup_key"], "spendpager-test-good");

    let out = s.run(&["notify", "test", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("refused") && text.contains("HTTP 400") && text.contains("bad payload"),
        "{text}"
    );
    assert_eq!(refusing.received().len(), 1, "a test is not retried");

    let out = s.run(&["notify", "test", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("good"), "{}", stderr(&out));
    // Nothing was queued or recorded.
    assert!(!s.path("store.db").exists());
}

#[test]
fn notify_test_reaches_a_real_smtp_server() {
    let s = Scratch::new();
    let sink = SmtpSink::start(None);
    s.write(
        "config.yaml",
        &format!(
            "store: {}\nchannels:\n  mail: {}\n",
            s.path("store.db").display(),
            email_channel(&sink, "oncall@example.test", "")
        ),
    );
    let out = s.run(&["notify", "test", "mail"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = sink.messages(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["subject"],
        "[FIRING] spendpager-test: tenant example-tenant, test true $10.44 (2.2x)"
    );
    assert_eq!(got[0]["image"]["content_type"], "image/png");
}

#[test]
fn channel_configs_refuse_foreign_keys_cleartext_smtp_off_this_machine_and_grouped_pages() {
    let s = Scratch::new();
    s.write("key", "k\n");
    s.write(
        "config.yaml",
        "channels:
  a: { kind: email, host: smtp.example.com, tls: none, from: a@example.test, to: [b@example.test] }
  b: { kind: pagerduty, routing_key_file: key, group: true }
  c: { kind: ntfy, url_env: SPENDPAGER_TEST_UNSET_URL, host: x }
  d: { kind: email, host: 127.0.0.1, from: not an address, to: [b@example.test] }
  e: { kind: pagerduty }
",
    );
    let out = s.run(&["rules", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        "channels.a.tls: `tls: none` sends mail and passwords in the clear",
        "channels.b.group: a PagerDuty incident is one series",
        "channels.c.host: `host` does not apply to a ntfy channel",
        "channels.d.from: not an email address",
        "channels.e.routing_key_env: a routing key is required",
        "5 error(s)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}
