//! The Slack channel: an incoming-webhook message laid out for someone woken at 3am: what
//! happened, how much, against what, and who.

use super::{Channel, HttpRequest, Rendered};
use crate::alert::{Alert, Status};
use crate::secret::Secret;
use serde_json::{Value, json};
use std::time::Duration;

pub struct SlackChannel {
    pub name: String,
    pub url: Secret,
    pub timeout: Duration,
    pub send_resolved: bool,
}

use super::words::usd;

fn who(alert: &Alert) -> String {
    if alert.labels.is_empty() {
        return "all spend".into();
    }
    alert
        .labels
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k} *{v}*"),
            None => format!("*no {k}*"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Block Kit message for an alert.
pub fn message(alert: &Alert) -> Value {
    let (icon, word) = match alert.status {
        Status::Firing => (":rotating_light:", "FIRING"),
        Status::Resolved => (":white_check_mark:", "RESOLVED"),
    };
    let title = format!(
        "{icon} {word}: {} ({})",
        alert.rule,
        who(alert).replace('*', "")
    );
    let against = match (alert.baseline_usd, alert.limit_usd) {
        (_, Some(limit)) => format!("limit {}", usd(limit)),
        (Some(b), None) => format!("usual {}", usd(b)),
        _ => "no baseline".into(),
    };
    let ratio = alert
        .ratio
        .map(|r| format!(" ({r:.1}x)"))
        .unwrap_or_default();
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Spent*\n{}{ratio}", usd(alert.observed_usd))}),
        json!({"type": "mrkdwn", "text": format!("*Against*\n{against}")}),
        json!({"type": "mrkdwn", "text": format!("*Window*\n{} → {}", alert.window_start, alert.window_end)}),
        json!({"type": "mrkdwn", "text": format!("*Who*\n{}", who(alert))}),
    ];
    if alert.unattributed_share > 0.0 {
        fields.push(json!({"type": "mrkdwn", "text": format!("*No tenant*\n{:.1}% of spend", alert.unattributed_share * 100.0)}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&alert.summary, 2900)}}),
        json!({"type": "section", "fields": fields}),
    ];
    if !alert.contributors.is_empty() {
        let lines: Vec<String> = alert
            .contributors
            .iter()
            .take(6)
            .map(|c| {
                format!(
                    "• {} *{}*: {} (usually {}), {:.0}% of the increase",
                    c.dimension,
                    c.value.as_deref().unwrap_or("(none)"),
                    usd(c.observed_usd),
                    usd(c.baseline_usd),
                    c.share_of_increase * 100.0
                )
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Who carries it*\n{}", lines.join("\n"))}}));
    }
    let mut context =
        format!("severity {:?} · dedup {}", alert.severity, alert.dedup_key).to_lowercase();
    if !alert.sample_request_ids.is_empty() {
        context.push_str(&format!(
            " · requests {}",
            alert.sample_request_ids.join(", ")
        ));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&context, 2900)}]}));
    json!({ "text": truncate(&format!("{word}: {}", alert.summary), 3000), "blocks": blocks })
}

/// Several series of one rule in one message: a line each, largest first.
pub fn group_message(alerts: &[Alert]) -> Value {
    let first = &alerts[0];
    let (icon, word) = match first.status {
        Status::Firing => (":rotating_light:", "FIRING"),
        Status::Resolved => (":white_check_mark:", "RESOLVED"),
    };
    let title = format!("{icon} {word}: {} ({} series)", first.rule, alerts.len());
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by(|a, b| b.observed_usd.total_cmp(&a.observed_usd));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title, 150)}}),
    ];
    for a in sorted.iter().take(10) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("*{}*: {}", who(a), a.summary), 2900)}}));
    }
    if alerts.len() > 10 {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!("and {} more series", alerts.len() - 10)}]}));
    }
    let text = format!(
        "{word}: {} for {} series; largest: {}",
        first.rule,
        alerts.len(),
        sorted[0].summary
    );
    json!({ "text": truncate(&text, 3000), "blocks": blocks })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn render(&self, alerts: &[Alert]) -> Rendered {
        let body = match alerts {
            [one] => message(one),
            many => group_message(many),
        };
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
