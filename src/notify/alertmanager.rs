//! The Alertmanager channel: alerts POSTed to `/api/v2/alerts` as Alertmanager's own alert
//! objects, so its routing, silences and receivers take over from there. The labels identify
//! the series (Alertmanager fingerprints them), so a resolution carries the same labels as
//! its firing and an `endsAt`.
//!
//! A firing alert carries no `endsAt`: Alertmanager then ends it after its `resolve_timeout`
//! (5 minutes by default) unless it is sent again, so set `resolve_timeout` above the rules'
//! `repeat`, or expect it to look resolved between reminders.

use super::words::contributors_line;
use super::{Channel, HttpRequest, Rendered};
use crate::alert::{Alert, Status};
use crate::secret::Secret;
use serde_json::{Map, Value, json};
use std::time::Duration;

pub struct AlertmanagerChannel {
    pub name: String,
    /// The base URL, as configured.
    pub url: Secret,
    pub timeout: Duration,
    pub send_resolved: bool,
}

/// `<base>/api/v2/alerts`, whether or not the base ends in a slash.
pub fn alerts_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// Alertmanager's object for one alert. `now` is the end of a resolved alert.
pub fn alert_object(alert: &Alert, now: jiff::Timestamp) -> Value {
    let mut labels = Map::new();
    for (k, v) in &alert.labels {
        labels.insert(k.clone(), json!(v.as_deref().unwrap_or("none")));
    }
    // The fixed labels win over a group_by label of the same name.
    labels.insert("alertname".into(), json!(alert.rule));
    labels.insert(
        "severity".into(),
        json!(format!("{:?}", alert.severity).to_lowercase()),
    );
    labels.insert("dedup_key".into(), json!(alert.dedup_key));

    let mut annotations = Map::new();
    annotations.insert("summary".into(), json!(alert.summary));
    annotations.insert(
        "observed_usd".into(),
        json!(format!("{:.2}", alert.observed_usd)),
    );
    if let Some(b) = alert.baseline_usd {
        annotations.insert("baseline_usd".into(), json!(format!("{b:.2}")));
    }
    if let Some(l) = alert.limit_usd {
        annotations.insert("limit_usd".into(), json!(format!("{l:.2}")));
    }
    if !alert.contributors.is_empty() {
        annotations.insert("contributors".into(), json!(contributors_line(alert)));
    }
    if !alert.sample_request_ids.is_empty() {
        annotations.insert(
            "sample_request_ids".into(),
            json!(alert.sample_request_ids.join(", ")),
        );
    }

    let starts = alert.started_at.as_deref().unwrap_or(&alert.at);
    let mut object = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": starts,
    });
    if alert.status == Status::Resolved {
        object["endsAt"] = json!(now.to_string());
    }
    object
}

impl Channel for AlertmanagerChannel {
    fn name(&self) -> &str {
        &self.name
    }

    /// Alertmanager takes a list, so a group is simply its alerts.
    fn render(&self, alerts: &[Alert]) -> Rendered {
        let now = jiff::Timestamp::now();
        let body: Vec<Value> = alerts.iter().map(|a| alert_object(a, now)).collect();
        Rendered::Http(HttpRequest {
            url: Secret::new(alerts_url(self.url.expose())),
            body: serde_json::to_vec(&body).expect("json serialises"),
            headers: vec![("content-type".into(), "application/json".into())],
            timeout: self.timeout,
        })
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}
