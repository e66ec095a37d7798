//! Shared test harness: scratch folders, real SQLite stores, the real binary, and a real HTTP
//! receiver on 127.0.0.1 that records what it is sent and answers as the test scripts.
#![allow(dead_code)]

pub mod http;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use spendpager::config::Config;
use spendpager::price::PriceTable;
use spendpager::source::jsonl;
use spendpager::store::{IngestReport, Store};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod postgres;

/// A scratch folder with a config file, a store and files written into it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes `config.yaml` and loads it.
    pub fn config(&self, yaml: &str) -> Config {
        let p = self.write("config.yaml", yaml);
        Config::load(&p).unwrap_or_else(|e| panic!("config should load:\n{e}"))
    }

    pub fn store(&self) -> Store {
        Store::open(&self.path("store.db")).expect("store opens")
    }

    /// Ingests JSON lines through the same path as `spendpager ingest`.
    pub fn ingest(&self, store: &mut Store, name: &str, lines: &str) -> IngestReport {
        let p = self.write(name, lines);
        jsonl::ingest_once(store, &PriceTable::bundled(), "cli", p.to_str().unwrap())
            .expect("ingest")
    }

    /// Runs the real binary with this folder's config.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_spendpager"))
            .arg("--config")
            .arg(self.path("config.yaml"))
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the binary runs")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A scripted answer: status, Retry-After, body.
pub type Answer = (u16, Option<&'static str>, &'static str);

#[derive(Default)]
struct ReceiverState {
    got: Vec<Received>,
    script: VecDeque<Answer>,
    /// Answer given once the script runs out.
    then: Option<Answer>,
}

/// A real HTTP server on 127.0.0.1 that records requests.
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
    _runtime: tokio::runtime::Runtime,
}

async fn record(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    s.got.push(Received {
        at: Instant::now(),
        headers,
        body,
    });
    let (status, retry_after, text) = s.script.pop_front().or(s.then).unwrap_or((200, None, "ok"));
    let mut resp = (StatusCode::from_u16(status).unwrap(), text).into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

impl Receiver {
    /// Starts a receiver answering `script` in order, then `then` (default 200).
    pub fn start(script: Vec<Answer>, then: Option<Answer>) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(ReceiverState {
            script: script.into(),
            then,
            ..Default::default()
        }));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(record).with_state(state.clone());
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
            _runtime: runtime,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    /// Waits until `n` requests arrived or `timeout` passed.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > end {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Nano-dollars of one stored row, or None when it is unpriced.
pub fn row_cost(store: &Store, request_id: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.query_row(
        "SELECT cost_nanos FROM rows WHERE request_id = ?1",
        [request_id],
        |r| r.get(0),
    )
    .unwrap()
}

/// Total priced spend in the rollups for one tenant (None = no tenant), in nano-dollars.
pub fn rollup_spend(store: &Store, tenant: Option<&str>) -> i64 {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.query_row(
        "SELECT coalesce(sum(r.cost_nanos), 0) FROM rollup_minute r JOIN combos c ON c.id = r.combo
         WHERE c.tenant = ?1",
        [tenant.unwrap_or("")],
        |r| r.get(0),
    )
    .unwrap()
}

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small deterministic noise source, so every run scores the same world.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as f64) / ((1u64 << 31) as f64)
    }
    /// A factor around 1, ±`spread`.
    pub fn around(&mut self, spread: f64) -> f64 {
        1.0 + spread * (2.0 * self.next() - 1.0)
    }
}
