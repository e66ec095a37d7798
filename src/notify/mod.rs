//! Channels and delivery. A channel only renders an alert for its medium; sending, the HTTP
//! outcome rule and retries are shared, so every channel behaves the same under failure.

pub mod alertmanager;
pub mod chart;
pub mod console;
pub mod email;
pub mod http;
pub mod ntfy;
pub mod outbox;
pub mod pagerduty;
pub mod sample;
pub mod slack;
pub mod webhook;
pub mod words;

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
    /// A message for an SMTP server.
    Email(Box<email::Outgoing>),
    /// The channel could not make a message (a bad address, an SMTP setup error): the
    /// attempt fails for good with this error.
    Unsendable(String),
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
    /// The least time between two messages to this channel.
    fn min_interval(&self) -> Option<Duration> {
        None
    }
}

/// A channel with a `min_interval`: the same channel, with the pause the outbox keeps.
struct Paced {
    inner: Arc<dyn Channel>,
    interval: Duration,
}

impl Channel for Paced {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn render(&self, alerts: &[Alert]) -> Rendered {
        self.inner.render(alerts)
    }

    fn send_resolved(&self) -> bool {
        self.inner.send_resolved()
    }

    fn min_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }
}

/// Builds the channel for a configuration entry.
pub fn channel(config: &ChannelConfig) -> Arc<dyn Channel> {
    let timeout = config.timeout.as_std();
    let name = config.name.clone();
    let send_resolved = config.send_resolved;
    let built: Arc<dyn Channel> = match &config.kind {
        ChannelKind::Console => Arc::new(console::ConsoleChannel::new(&config.name)),
        ChannelKind::Webhook { url, secret } => Arc::new(webhook::WebhookChannel {
            name,
            url: url.clone(),
            secret: secret.clone(),
            timeout,
            send_resolved,
        }),
        ChannelKind::Slack { url } => Arc::new(slack::SlackChannel {
            name,
            url: url.clone(),
            timeout,
            send_resolved,
        }),
        ChannelKind::Email(email) => Arc::new(email::EmailChannel::new(
            &name,
            (**email).clone(),
            timeout,
            send_resolved,
        )),
        ChannelKind::PagerDuty { routing_key, url } => Arc::new(pagerduty::PagerDutyChannel {
            name,
            routing_key: routing_key.clone(),
            url: Secret::new(url.clone()),
            timeout,
            send_resolved,
        }),
        ChannelKind::Ntfy { url, token } => Arc::new(ntfy::NtfyChannel {
            name,
            url: url.clone(),
            token: token.clone(),
            timeout,
            send_resolved,
        }),
        ChannelKind::Alertmanager { url } => Arc::new(alertmanager::AlertmanagerChannel {
            name,
            url: url.clone(),
            timeout,
            send_resolved,
        }),
    };
    match config.min_interval {
        Some(d) => Arc::new(Paced {
            inner: built,
            interval: d.as_std(),
        }),
        None => built,
    }
}
