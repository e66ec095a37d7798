//! The ntfy channel: a POST to the topic URL whose body is the alert's summary, with the
//! title, priority and tags in headers. Header values must be ASCII, so a title with other
//! characters (a tenant named in Japanese) travels as an RFC 2047 encoded word, which ntfy
//! decodes.

use super::words::{ascii_header, headline, status_word};
use super::{Channel, HttpRequest, Rendered};
use crate::alert::{Alert, Status};
use crate::config::Severity;
use crate::secret::Secret;
use std::time::Duration;

pub struct NtfyChannel {
    pub name: String,
    pub url: Secret,
    pub token: Option<Secret>,
    pub timeout: Duration,
    pub send_resolved: bool,
}

/// ntfy's priorities run from 1 (min) to 5 (max); a resolution is low.
pub fn priority(alert: &Alert) -> u8 {
    match (alert.status, alert.severity) {
        (Status::Resolved, _) => 2,
        (Status::Firing, Severity::Page) => 5,
        (Status::Firing, Severity::Warn) => 4,
        (Status::Firing, Severity::Info) => 3,
    }
}

/// The emoji tag ntfy shows, then the rule (tags are comma-separated).
pub fn tags(alert: &Alert) -> String {
    let icon = match alert.status {
        Status::Firing => "rotating_light",
        Status::Resolved => "white_check_mark",
    };
    format!("{icon},{}", alert.rule.replace(',', " "))
}

/// The headers and body for one alert, or for a rule's series as a list.
pub fn message(alerts: &[Alert]) -> (Vec<(String, String)>, String) {
    let first = &alerts[0];
    let (title, body) = match alerts {
        [one] => (
            format!(
                "{} {}: {}",
                status_word(one.status),
                one.rule,
                headline(one)
            ),
            one.summary.clone(),
        ),
        many => {
            let mut sorted: Vec<&Alert> = many.iter().collect();
            sorted.sort_by(|a, b| b.observed_usd.total_cmp(&a.observed_usd));
            let lines: Vec<&str> = sorted.iter().map(|a| a.summary.as_str()).collect();
            (
                format!(
                    "{} {}: {} series",
                    status_word(first.status),
                    first.rule,
                    many.len()
                ),
                lines.join("\n\n"),
            )
        }
    };
    let top = alerts
        .iter()
        .map(priority)
        .max()
        .expect("a message has an alert");
    let headers = vec![
        ("title".to_string(), ascii_header(&title)),
        ("priority".to_string(), top.to_string()),
        ("tags".to_string(), ascii_header(&tags(first))),
        (
            "content-type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        ),
    ];
    (headers, body)
}

impl Channel for NtfyChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn render(&self, alerts: &[Alert]) -> Rendered {
        let (mut headers, body) = message(alerts);
        if let Some(token) = &self.token {
            headers.push(("authorization".into(), format!("Bearer {}", token.expose())));
        }
        Rendered::Http(HttpRequest {
            url: self.url.clone(),
            body: body.into_bytes(),
            headers,
            timeout: self.timeout,
        })
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}
