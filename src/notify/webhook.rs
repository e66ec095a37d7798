//! The webhook channel: the alert JSON, POSTed as it is.

use super::{Channel, HttpRequest, Rendered};
use crate::alert::Alert;
use crate::secret::Secret;
use std::time::Duration;

pub struct WebhookChannel {
    pub name: String,
    pub url: Secret,
    pub timeout: Duration,
    pub send_resolved: bool,
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }

    /// One alert is its JSON object; a group (only when configured) is an array of them.
    fn render(&self, alerts: &[Alert]) -> Rendered {
        let body = match alerts {
            [one] => serde_json::to_vec(one),
            many => serde_json::to_vec(many),
        }
        .expect("alerts serialise");
        let first = &alerts[0];
        Rendered::Http(HttpRequest {
            url: self.url.clone(),
            body,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-spendpager-dedup-key".into(), first.dedup_key.clone()),
                ("x-spendpager-status".into(), first.status.as_str().into()),
            ],
            timeout: self.timeout,
        })
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}
