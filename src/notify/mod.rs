//! Channels and delivery. A channel only renders an alert for its medium; sending, the HTTP
//! outcome rule and retries are shared, so every channel behaves the same under failure.

pub mod console;
pub mod http;
pub mod outbox;
pub mod slack;
pub mod webhook;

use crate::alert::Alert;
use crate::config::{ChannelConfig, ChannelKind};
use crate::secret::Secret;
use std::sync::Arc;
use std::time::Duration;

/// What a channel turns an alert into.
pub enum Rendered {
    /// A line for standard output.
    Stdout(String),
    /// A request to POST.
    Http(HttpRequest),
}

pub struct HttpRequest {
    pub url: Secret,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

/// How one delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again later; `after` is the receiver's Retry-After when it gave one.
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// The receiver refused the message and will refuse it again.
    Failed {
        error: String,
    },
}

/// The one interface every channel implements.
pub trait Channel: Send + Sync {
    fn name(&self) -> &str;
    /// Renders one message: a single alert, or, for a channel configured to group, the
    /// series of one rule that changed in one cycle.
    fn render(&self, alerts: &[Alert]) -> Rendered;
    /// Whether resolved notifications go to this channel.
    fn send_resolved(&self) -> bool {
        true
    }
}

/// Builds the channel for a configuration entry.
pub fn channel(config: &ChannelConfig) -> Arc<dyn Channel> {
    let timeout = config.timeout.as_std();
    match &config.kind {
        ChannelKind::Console => Arc::new(console::ConsoleChannel::new(&config.name)),
        ChannelKind::Webhook { url } => Arc::new(webhook::WebhookChannel {
            name: config.name.clone(),
            url: url.clone(),
            timeout,
            send_resolved: config.send_resolved,
        }),
        ChannelKind::Slack { url } => Arc::new(slack::SlackChannel {
            name: config.name.clone(),
            url: url.clone(),
            timeout,
            send_resolved: config.send_resolved,
        }),
    }
}
