//! The PagerDuty channel: one Events API v2 event per series, `trigger` while it fires and
//! `resolve` when it ends, with the alert's dedup key so PagerDuty folds repeats into one
//! incident. Never grouped: an incident is one series.

use super::words::{contributors_line, truncate};
use super::{Channel, HttpRequest, Rendered};
use crate::alert::{Alert, Status};
use crate::config::Severity;
use crate::secret::Secret;
use serde_json::{Value, json};
use std::time::Duration;

/// PagerDuty refuses a longer summary.
const MAX_SUMMARY: usize = 1024;

pub struct PagerDutyChannel {
    pub name: String,
    pub routing_key: Secret,
    pub url: Secret,
    pub timeout: Duration,
    pub send_resolved: bool,
}

/// PagerDuty's severities: critical, error, warning, info.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Page => "critical",
        Severity::Warn => "warning",
        Severity::Info => "info",
    }
}

/// The event for one alert.
pub fn event(routing_key: &str, alert: &Alert) -> Value {
    let action = match alert.status {
        Status::Firing => "trigger",
        Status::Resolved => "resolve",
    };
    let mut payload = json!({
        "summary": truncate(&alert.summary, MAX_SUMMARY),
        "source": "spendpager",
        "severity": severity(alert.severity),
        "timestamp": alert.at,
        "component": alert.rule,
        "custom_details": {
            "observed_usd": alert.observed_usd,
            "baseline_usd": alert.baseline_usd,
            "limit_usd": alert.limit_usd,
            "ratio": alert.ratio,
            "window": format!("{} to {}", alert.window_start, alert.window_end),
            "contributors": contributors_line(alert),
            "labels": alert.labels,
            "sample_request_ids": alert.sample_request_ids,
        },
    });
    if let Some(Some(tenant)) = alert.labels.get("tenant") {
        payload["group"] = json!(tenant);
    }
    json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": alert.dedup_key,
        "payload": payload,
    })
}

impl Channel for PagerDutyChannel {
    fn name(&self) -> &str {
        &self.name
    }

    /// The configuration refuses `group` for this channel, so each message is one alert.
    fn render(&self, alerts: &[Alert]) -> Rendered {
        let body = event(self.routing_key.expose(), &alerts[0]);
        Rendered::Http(HttpRequest {
            url: self.url.clone(),
            body: serde_json::to_vec(&body).expect("json serialises"),
            headers: vec![("content-type".into(), "application/json".into())],
            timeout: self.timeout,
        })
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}
