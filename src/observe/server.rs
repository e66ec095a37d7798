//! The HTTP endpoint: `GET /metrics` in Prometheus text format and `GET /healthz` with a
//! small JSON body, 200 while the cycles are recent and 503 when they are not.

use super::Health;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Clone)]
struct Shared {
    health: Arc<Health>,
    handle: PrometheusHandle,
}

async fn metrics_page(State(s): State<Shared>) -> Response {
    s.health.update_lag();
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

/// Binds `addr` now (so a taken port is a start-up error) and returns the server, which
/// runs until `stop` resolves.
pub async fn bind(
    addr: SocketAddr,
    health: Arc<Health>,
    handle: PrometheusHandle,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("http.listen {addr}: cannot listen: {e}"))?;
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .with_state(Shared { health, handle });
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
