//! The heartbeat: one request after every healthy cycle to a URL another system watches
//! (a dead man's switch), so that a pager that stopped evaluating is noticed from outside.
//! A failed heartbeat is logged and counted, never fatal, and never retried: the next cycle
//! sends the next one.

use crate::config::ops::{HeartbeatConfig, HeartbeatMethod};
use crate::secret::strip_urls;

/// Sends one heartbeat. `at_ms` is the instant the cycle evaluated.
pub async fn send(client: &reqwest::Client, config: &HeartbeatConfig, at_ms: i64, outbox: u64) {
    let request = match config.method {
        HeartbeatMethod::Get => client.get(config.url.expose()),
        HeartbeatMethod::Post => {
            let at = jiff::Timestamp::from_millisecond(at_ms)
                .map(|t| t.to_string())
                .unwrap_or_default();
            client.post(config.url.expose()).json(&serde_json::json!({
                "service": "spendpager",
                "last_evaluation": at,
                "outbox_depth": outbox,
            }))
        }
    };
    let result = request.timeout(config.timeout.as_std()).send().await;
    let failure = match result {
        Ok(r) if r.status().is_success() => None,
        Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
        Err(e) => Some(strip_urls(&e.to_string())),
    };
    match failure {
        None => {
            metrics::counter!("spendpager_heartbeats_total", "outcome" => "ok").increment(1);
            tracing::debug!("heartbeat sent");
        }
        Some(error) => {
            metrics::counter!("spendpager_heartbeats_total", "outcome" => "failed").increment(1);
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}
