//! `POST /v1/traces`: OpenTelemetry traces sent straight to the pager, as OTLP/HTTP with a
//! JSON body (`Content-Type: application/json`, optionally `Content-Encoding: gzip`).
//!
//! It sits beside `POST /ingest` and shares its rules: the same bearer token (401 without it),
//! the same `max_body` (413, counted after gunzipping too), and rows stored under the same
//! source, checked and stored like a file's. Spans that are GenAI model calls become rows (see
//! `source::formats::otel`); the others are counted as `skipped`. The request id of a row is
//! `traceId:spanId`, so an exporter retrying a batch stores nothing new.
//!
//! The reply is our ingest reply with OTLP's `partialSuccess` beside it, so an OTLP exporter
//! reads how many spans were rejected and why, and a person reads each reason with its span.
//! Protobuf bodies are refused with 415: only the JSON encoding is read.

use super::server::{IngestEndpoint, IngestReply, authorized, read_body, refuse, store_batch};
use crate::source::formats::{self, Format};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::io::Read;
use std::sync::Arc;

/// The file label of rows that came through `POST /v1/traces`.
pub const OTLP_LABEL: &str = "otlp";

#[derive(serde::Serialize)]
struct TracesReply {
    #[serde(flatten)]
    ingest: IngestReply,
    #[serde(rename = "partialSuccess")]
    partial_success: PartialSuccess,
}

/// OTLP's own answer: zero rejected spans and no message when all went in.
#[derive(serde::Serialize)]
struct PartialSuccess {
    #[serde(rename = "rejectedSpans")]
    rejected_spans: u64,
    #[serde(rename = "errorMessage", skip_serializing_if = "String::is_empty")]
    error_message: String,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

fn gzipped(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// Gunzips at most `limit` bytes; more is the same 413 as a body over the limit.
fn gunzip(body: &[u8], limit: u64) -> Result<Vec<u8>, (StatusCode, String)> {
    let mut out = Vec::new();
    let mut reader = flate2::read::MultiGzDecoder::new(body).take(limit.saturating_add(1));
    reader.read_to_end(&mut out).map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "the body is not valid gzip".to_string(),
        )
    })?;
    if out.len() as u64 > limit {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the unzipped body is over {limit} bytes"),
        ));
    }
    Ok(out)
}

pub(super) async fn traces(State(ep): State<Arc<IngestEndpoint>>, req: Request) -> Response {
    const ROUTE: &str = "POST /v1/traces";
    if !authorized(req.headers(), ep.config.token.expose()) {
        tracing::warn!("{ROUTE} refused: missing or wrong bearer token");
        return refuse(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    }
    if !is_json(req.headers()) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send OTLP/JSON (application/json); the protobuf encoding is not read",
        );
    }
    let zipped = gzipped(req.headers());
    let body = match read_body(&ep, req, ROUTE).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let body = if zipped {
        match gunzip(&body, ep.config.max_body) {
            Ok(b) => b,
            Err((status, message)) => return refuse(status, &message),
        }
    } else {
        body.to_vec()
    };
    // Replacing bad bytes would rename a tenant; the sender still has the body to fix.
    let text = match std::str::from_utf8(&body) {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body is not valid UTF-8 (byte {}); nothing was stored",
                    e.valid_up_to() + 1
                ),
            );
        }
    };
    // One export request: a body that is not one JSON object is refused whole.
    if !matches!(
        serde_json::from_str::<serde_json::Value>(text),
        Ok(serde_json::Value::Object(_))
    ) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "the body is not an OTLP/JSON export request (one JSON object)",
        );
    }
    let batch = formats::parse_mapped(
        Format::Otel,
        &ep.config.otel_mapping,
        text,
        OTLP_LABEL,
        &ep.config.source,
    );
    let report = match store_batch(&ep, batch, ROUTE).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let rejected = report.set_aside.len() as u64;
    let error_message = match report.set_aside.first() {
        Some(a) if rejected > 1 => format!("{rejected} spans rejected; the first: {}", a.reason),
        Some(a) => a.reason.clone(),
        None => String::new(),
    };
    let reply = TracesReply {
        ingest: IngestReply::from(report),
        partial_success: PartialSuccess {
            rejected_spans: rejected,
            error_message,
        },
    };
    (StatusCode::OK, axum::Json(reply)).into_response()
}
