//! The daemon as a user runs it: a real process that tails a file, evaluates on its
//! schedule, pages a real receiver on 127.0.0.1, keeps running through a broken reload, and
//! stops cleanly on SIGTERM.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn the_daemon_tails_evaluates_pages_survives_a_bad_reload_and_stops_on_sigterm() {
    let s = Scratch::new();
    let receiver = Receiver::start(vec![], None);
    let url = s.write("hook-url", &receiver.url);
    std::fs::create_dir_all(s.path("logs")).unwrap();
    let config = format!(
        "store: ./store.db
schedule: \"* * * * * *\"
delay: 0s
poll_interval: 1s
sources:
  - {{ name: app, kind: jsonl, path: \"./logs/*.jsonl\" }}
channels:
  hook: {{ kind: webhook, url_file: {} }}
rules:
  - name: tenant-cap
    kind: threshold
    group_by: [tenant]
    window: 5m
    limit_usd: 10
    channels: [hook]
",
        url.display()
    );
    s.write("config.yaml", &config);
    // systemd's notify socket, played by the test: a datagram socket in the scratch folder.
    let notify_path = s.path("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .args(["run", "--config"])
        .arg(s.path("config.yaml"))
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "1000000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // An application appends its cost rows while the daemon runs. Windows are made of
    // closed minutes, so these rows are stamped two minutes ago.
    let now = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(2);
    let mut log = std::fs::File::create(s.path("logs/app.jsonl")).unwrap();
    for i in 0..3 {
        writeln!(
            log,
            "{{\"ts\":\"{now}\",\"request_id\":\"d{i}\",\"model\":\"gpt-4o\",\"cost_usd\":4.0,\"tenant\":\"acme\",\"workflow\":\"nightly-agent\"}}"
        )
        .unwrap();
    }
    log.flush().unwrap();
    let got = receiver.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "the daemon paged once");
    let alert = got[0].json();
    assert_eq!(alert["labels"]["tenant"], "acme");
    assert_eq!(alert["observed_usd"], 12.0);
    assert_eq!(alert["contributors"][0]["value"], "nightly-agent");

    // A broken configuration is refused on SIGHUP; the daemon keeps its rules.
    s.write("config.yaml", "rules: [ {{ nope");
    signal(child.id(), "HUP");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still running after a bad reload"
    );

    signal(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(err.contains("reload refused"), "{err}");
    assert!(err.contains("stopped"), "{err}");
    assert!(
        !err.contains(&receiver.url),
        "the webhook URL never reaches the log"
    );
    // Exactly one page: the alert stayed firing across the cycles that followed.
    assert_eq!(receiver.received().len(), 1);

    // What systemd was told, in order: ready, watchdog pings, status lines, stopping.
    notify.set_nonblocking(true).unwrap();
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = notify.recv(&mut buf) {
        said.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(said[0].contains("READY=1"), "{said:?}");
    assert!(said.iter().any(|m| m.contains("WATCHDOG=1")), "{said:?}");
    assert!(
        said.iter().any(|m| m.contains("STATUS=1 firing")),
        "{said:?}"
    );
    assert!(said.iter().any(|m| m.contains("RELOADING=1")), "{said:?}");
    assert!(said.last().unwrap().contains("STOPPING=1"), "{said:?}");
}

#[test]
fn the_daemon_prints_console_alerts_and_stops_promptly() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("logs")).unwrap();
    s.write(
        "config.yaml",
        "store: ./store.db
schedule: \"* * * * * *\"
delay: 0s
poll_interval: 1s
sources:
  - { name: app, kind: jsonl, path: \"./logs/*.jsonl\" }
channels:
  console: { kind: console }
rules:
  - name: cap
    kind: threshold
    window: 5m
    limit_usd: 1
    channels: [console]
",
    );
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(2);
    s.write(
        "logs/app.jsonl",
        &format!("{{\"ts\":\"{at}\",\"request_id\":\"c1\",\"model\":\"gpt-4o\",\"cost_usd\":5,\"tenant\":\"acme\"}}\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .args(["run", "--config"])
        .arg(s.path("config.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the console channel printed the alert");
    let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(alert["rule"], "cap");
    assert_eq!(alert["observed_usd"], 5.0);
    signal(child.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
