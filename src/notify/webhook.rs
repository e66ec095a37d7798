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

    fn render(&self, alert: &Alert) -> Rendered {
        Rendered::Http(HttpRequest {
            url: self.url.clone(),
            body: serde_json::to_vec(alert).expect("alerts serialise"),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-spendpager-dedup-key".into(), alert.dedup_key.clone()),
                ("x-spendpager-status".into(), alert.status.as_str().into()),
            ],
            timeout: self.timeout,
        })
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}
