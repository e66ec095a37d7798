//! The HTTP endpoint: `GET /metrics` in Prometheus text format and `GET /healthz` with a
//! small JSON body, 200 while the cycles are recent and 503 when they are not; and, when
//! `http.ingest` is configured, `POST /ingest` for applications that send their cost rows.
//!
//! `POST /ingest` takes `Authorization: Bearer <token>` and a body of native rows, either JSON
//! lines (`application/x-ndjson`) or a JSON array of row objects (`application/json`). The
//! rows are validated and stored like a JSONL file's, under the configured source name and
//! with positions `http:<line>` (or `http:<index + 1>` in an array), so a body sent again
//! stores nothing new. A missing or wrong token is 401 and a body over `max_body` is 413;
//! neither stores anything. `POST /v1/traces` takes OTLP/JSON traces the same way (see
//! `otlp.rs`).

use super::Health;
use crate::config::ops::IngestConfig;
use crate::price::PriceTable;
use crate::row::CostRow;
use crate::source::jsonl::parse_lines;
use crate::store::{IngestBatch, IngestReport, Position, Store};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The file label of rows that came through `POST /ingest`.
pub const INGEST_LABEL: &str = "http";

/// What `POST /ingest` needs from the daemon.
pub struct IngestEndpoint {
    pub config: IngestConfig,
    pub store: Arc<Mutex<Store>>,
    /// The daemon's price table, replaced on reload.
    pub prices: Arc<Mutex<PriceTable>>,
    pub health: Arc<Health>,
}

#[derive(Clone)]
struct Shared {
    health: Arc<Health>,
    handle: PrometheusHandle,
    coverage: Option<Arc<super::coverage::CoverageGauges>>,
}

async fn metrics_page(State(s): State<Shared>) -> Response {
    s.health.update_lag();
    if let Some(c) = s.coverage.clone() {
        // The coverage lag, read from the store, replaces the one kept in memory.
        let _ = tokio::task::spawn_blocking(move || c.refresh()).await;
    }
    s.handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.handle.render(),
    )
        .into_response()
}

async fn healthz(State(s): State<Shared>) -> Response {
    let report = s.health.report();
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

/// The reply to a good `POST /ingest` (and the body of a `POST /v1/traces` reply).
#[derive(Serialize)]
pub(super) struct IngestReply {
    pub stored: u64,
    pub duplicates: u64,
    pub conflicts: u64,
    /// Spans that are not model calls (only `/v1/traces` has them).
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: u64,
    pub set_aside: Vec<AsideReply>,
    pub unpriced_by_model: BTreeMap<String, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
pub(super) struct AsideReply {
    pub line: u64,
    pub reason: String,
}

pub(super) fn refuse(status: StatusCode, message: &str) -> Response {
    let body = axum::Json(serde_json::json!({ "error": message }));
    if status == StatusCode::UNAUTHORIZED {
        (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
    } else {
        (status, body).into_response()
    }
}

/// Whether the request carries `Authorization: Bearer <token>`. The comparison is of
/// digests, in time independent of where they differ, so neither the content nor the length
/// of the token can be learnt from timing.
pub(super) fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(token.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Reads a body into a batch: a JSON array of row objects, or JSON lines. An array that is
/// not valid JSON as a whole is refused, since its rows cannot be told apart.
fn parse_body(source: &str, body: &[u8]) -> Result<IngestBatch, String> {
    let mut batch = IngestBatch::new(source);
    // Replacing bad bytes would rename a tenant; the sender still has the body to fix.
    let text = std::str::from_utf8(body).map_err(|e| {
        format!(
            "the body is not valid UTF-8 (byte {}); nothing was stored",
            e.valid_up_to() + 1
        )
    })?;
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    if trimmed.starts_with('[') {
        let items: Vec<serde_json::Value> = serde_json::from_str(trimmed)
            .map_err(|e| format!("the body is not a JSON array of rows: {e}"))?;
        for (i, item) in items.iter().enumerate() {
            let pos = Position {
                file: INGEST_LABEL.to_string(),
                line: i as u64 + 1,
            };
            let raw = item.to_string();
            match CostRow::from_json_line(&raw) {
                Ok(row) => batch.rows.push((row, pos)),
                Err(e) => batch.set_aside(pos, e.to_string(), &raw),
            }
        }
    } else {
        parse_lines(&mut batch, INGEST_LABEL, text, 1);
    }
    Ok(batch)
}

/// Whether the body's declared type is one this endpoint reads; no type reads as JSON lines.
fn readable_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(v) = v.to_str() else {
        return false;
    };
    let mime = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "text/plain"
    )
}

async fn ingest(State(ep): State<Arc<IngestEndpoint>>, req: Request) -> Response {
    if !authorized(req.headers(), ep.config.token.expose()) {
        tracing::warn!("POST /ingest refused: missing or wrong bearer token");
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    if !readable_type(req.headers()) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/x-ndjson (JSON lines) or application/json (an array of rows)",
        );
    }
    let body = match read_body(&ep, req, "POST /ingest").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let batch = match parse_body(&ep.config.source, &body) {
        Ok(b) => b,
        Err(m) => return refuse(StatusCode::BAD_REQUEST, &m),
    };
    match store_batch(&ep, batch, "POST /ingest").await {
        Ok(report) => (StatusCode::OK, axum::Json(IngestReply::from(report))).into_response(),
        Err(refused) => refused,
    }
}

/// Reads the body; the limit is set by the route's DefaultBodyLimit, and over it is 413.
pub(super) async fn read_body(
    ep: &IngestEndpoint,
    req: Request,
    route: &'static str,
) -> Result<Bytes, Response> {
    Bytes::from_request(req, &()).await.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("the body is over {} bytes", ep.config.max_body)
        } else {
            "cannot read the body".to_string()
        };
        tracing::warn!(status = status.as_u16(), "{route} refused: {message}");
        refuse(status, &message)
    })
}

/// Stores a parsed batch under the store lock, off the async workers, and counts and logs
/// it; a failure is the 500 to answer.
pub(super) async fn store_batch(
    ep: &Arc<IngestEndpoint>,
    batch: IngestBatch,
    route: &'static str,
) -> Result<IngestReport, Response> {
    let ep2 = ep.clone();
    let result = tokio::task::spawn_blocking(move || -> anyhow::Result<IngestReport> {
        let prices = ep2.prices.lock().expect("prices lock").clone();
        let mut store = ep2.store.lock().expect("store lock");
        Ok(store.ingest(&batch, &prices)?)
    })
    .await;
    let report = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::error!(error = %format!("{e:#}"), "{route}: storing failed");
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storing the rows failed",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "{route}: the store task failed");
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storing the rows failed",
            ));
        }
    };
    let source = ep.config.source.as_str();
    super::ingested(source, &report);
    if let Some(ms) = report.newest_ts_ms {
        ep.health.saw_rows(source, ms);
    }
    tracing::info!(
        source,
        stored = report.stored,
        duplicates = report.duplicates,
        conflicts = report.conflicts,
        set_aside = report.set_aside.len(),
        skipped = report.skipped,
        "{route}"
    );
    for a in report.set_aside.iter().take(20) {
        tracing::warn!(source = %a.source, line = a.line, reason = %a.reason, "row set aside");
    }
    Ok(report)
}

impl From<IngestReport> for IngestReply {
    fn from(report: IngestReport) -> IngestReply {
        IngestReply {
            stored: report.stored,
            duplicates: report.duplicates,
            conflicts: report.conflicts,
            skipped: report.skipped,
            set_aside: report
                .set_aside
                .into_iter()
                .map(|a| AsideReply {
                    line: a.line,
                    reason: a.reason,
                })
                .collect(),
            unpriced_by_model: report.unpriced_by_model,
        }
    }
}

/// Binds `addr` now (so a taken port is a start-up error) and returns the server, which
/// runs until `stop` resolves.
pub async fn bind(
    addr: SocketAddr,
    health: Arc<Health>,
    handle: PrometheusHandle,
    coverage: Option<super::coverage::CoverageGauges>,
    ingest_endpoint: Option<IngestEndpoint>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("http.listen {addr}: cannot listen: {e}"))?;
    let mut app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .with_state(Shared {
            health,
            handle,
            coverage: coverage.map(Arc::new),
        });
    if let Some(ep) = ingest_endpoint {
        let limit = usize::try_from(ep.config.max_body).unwrap_or(usize::MAX);
        let source = ep.config.source.clone();
        app = app.merge(
            Router::new()
                .route("/ingest", post(ingest))
                .route("/v1/traces", post(super::otlp::traces))
                .layer(DefaultBodyLimit::max(limit))
                .with_state(Arc::new(ep)),
        );
        tracing::info!(listen = %addr, source = %source, max_body = limit, "serving POST /ingest and POST /v1/traces");
    }
    tracing::info!(listen = %addr, "serving /metrics and /healthz");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    }))
}
