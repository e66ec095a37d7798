//! Delivery from the outbox: each queued message is sent to its channel, retried with
//! exponential backoff and jitter (or after the receiver's Retry-After), and removed only when
//! the channel accepted it. A permanent refusal moves it to the failed list and, when one is
//! configured, to the fallback channel. A channel with a `min_interval` gets its messages at
//! least that far apart: the deliverer remembers when it last sent to each channel.

use super::{Channel, Outcome, Rendered, http};
use crate::alert::Alert;
use crate::config::DeliveryConfig;
use crate::store::{OutboxMessage, Store};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one delivery pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
    /// Messages still queued when the pass ended.
    pub left: u64,
}

pub struct Deliverer {
    channels: HashMap<String, Arc<dyn Channel>>,
    client: reqwest::Client,
    config: DeliveryConfig,
    /// When set, console messages count as delivered without printing: the command already
    /// printed the same alert JSON on standard output.
    pub console_already_printed: bool,
    /// When each paced channel was last sent a message.
    last_sent: Mutex<HashMap<String, Instant>>,
}

/// The longest pause between two attempts, whatever the receiver asks.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

type SharedStore = Arc<Mutex<Store>>;

async fn with_store<T: Send + 'static>(
    store: &SharedStore,
    f: impl FnOnce(&mut Store) -> crate::store::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let store = store.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut guard = store.lock().expect("store lock poisoned");
        f(&mut guard)
    })
    .await?;
    Ok(result?)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Deliverer {
    pub fn new(channels: HashMap<String, Arc<dyn Channel>>, config: DeliveryConfig) -> Deliverer {
        Deliverer {
            channels,
            client: http::client(),
            config,
            console_already_printed: false,
            last_sent: Mutex::new(HashMap::new()),
        }
    }

    /// How long to wait before the next message to `channel` may go, for its min_interval.
    fn pause_for(&self, channel: &str) -> Duration {
        let Some(interval) = self.channels.get(channel).and_then(|c| c.min_interval()) else {
            return Duration::ZERO;
        };
        let last = self
            .last_sent
            .lock()
            .expect("last-sent lock")
            .get(channel)
            .copied();
        last.map(|t| interval.saturating_sub(t.elapsed()))
            .unwrap_or(Duration::ZERO)
    }

    fn mark_sent(&self, channel: &str) {
        if self
            .channels
            .get(channel)
            .is_some_and(|c| c.min_interval().is_some())
        {
            self.last_sent
                .lock()
                .expect("last-sent lock")
                .insert(channel.to_string(), Instant::now());
        }
    }

    /// The pause before attempt `attempts + 1`: doubling from the initial backoff, capped,
    /// with up to 20 % jitter so that many senders do not retry in step.
    fn backoff(&self, attempts: i64) -> Duration {
        let base = self.config.initial_backoff.as_std().as_secs_f64().max(0.05);
        let cap = self.config.max_backoff.as_std().as_secs_f64().max(base);
        let raw = base * 2f64.powi(attempts.clamp(0, 30) as i32);
        Duration::from_secs_f64((raw * (1.0 + 0.2 * fastrand::f64())).min(cap))
    }

    /// Attempts one queued message once.
    async fn attempt(&self, msg: &OutboxMessage) -> Outcome {
        let alerts: Vec<Alert> = match serde_json::from_str::<Vec<Alert>>(&msg.payload)
            .or_else(|_| serde_json::from_str::<Alert>(&msg.payload).map(|a| vec![a]))
        {
            Ok(a) if !a.is_empty() => a,
            Ok(_) => {
                return Outcome::Failed {
                    error: "empty queued message".into(),
                };
            }
            Err(e) => {
                return Outcome::Failed {
                    error: format!("unreadable queued alert: {e}"),
                };
            }
        };
        self.send(&msg.channel, &alerts).await
    }

    /// Renders `alerts` for the channel named `channel` and sends them once, outside the
    /// outbox: the path every queued message takes, and what `notify test` uses.
    pub async fn send(&self, channel: &str, alerts: &[Alert]) -> Outcome {
        let Some(channel) = self.channels.get(channel) else {
            return Outcome::Failed {
                error: format!("no channel named `{channel}` in the configuration"),
            };
        };
        match channel.render(alerts) {
            Rendered::Stdout(line) => {
                if !self.console_already_printed {
                    let mut out = std::io::stdout().lock();
                    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                        return Outcome::Retry {
                            after: None,
                            error: "stdout is not writable".into(),
                        };
                    }
                }
                Outcome::Delivered
            }
            Rendered::Http(req) => http::post(&self.client, &req).await,
            Rendered::Email(out) => super::email::send(&out).await,
            Rendered::Unsendable(error) => Outcome::Failed { error },
        }
    }

    /// Sends what is due, waiting for retries, until the outbox is empty or `deadline`
    /// passes; what is left stays queued for the next pass.
    pub async fn deliver(
        &self,
        store: &SharedStore,
        deadline: Instant,
    ) -> anyhow::Result<DeliveryStats> {
        let mut stats = DeliveryStats::default();
        loop {
            let due = with_store(store, |s| s.due_messages(now_ms(), 100)).await?;
            if due.is_empty() {
                let queued = with_store(store, |s| s.outbox()).await?;
                let Some(next) = queued.iter().map(|m| m.next_attempt_ms).min() else {
                    break;
                };
                let wait = Duration::from_millis((next - now_ms()).max(0) as u64);
                if Instant::now() + wait > deadline {
                    stats.left = queued.len() as u64;
                    break;
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            for msg in due {
                if Instant::now() >= deadline {
                    stats.left = with_store(store, |s| s.outbox()).await?.len() as u64;
                    return Ok(stats);
                }
                // Pace the channel; the store is not locked while waiting.
                let pause = self.pause_for(&msg.channel);
                if !pause.is_zero() {
                    if Instant::now() + pause > deadline {
                        stats.left = with_store(store, |s| s.outbox()).await?.len() as u64;
                        return Ok(stats);
                    }
                    tokio::time::sleep(pause).await;
                }
                self.mark_sent(&msg.channel);
                let outcome = self.attempt(&msg).await;
                let span = tracing::info_span!("delivery", channel = %msg.channel, dedup_key = %msg.dedup_key, status = %msg.status, attempt = msg.attempts + 1);
                let _enter = span.enter();
                match outcome {
                    Outcome::Delivered => {
                        tracing::info!("notification delivered");
                        crate::observe::delivery(&msg.channel, "delivered");
                        stats.delivered += 1;
                        let id = msg.id;
                        with_store(store, move |s| s.delivered(id)).await?;
                    }
                    Outcome::Retry { error, .. }
                        if self
                            .config
                            .max_attempts
                            .is_some_and(|max| msg.attempts + 1 >= max) =>
                    {
                        let error =
                            format!("gave up after {} attempts; last: {error}", msg.attempts + 1);
                        let fallback = self.config.fallback.clone().filter(|f| *f != msg.channel);
                        tracing::error!(channel = %msg.channel, dedup_key = %msg.dedup_key, %error, "delivery abandoned");
                        crate::observe::delivery(&msg.channel, "failed");
                        stats.failed += 1;
                        let id = msg.id;
                        with_store(store, move |s| s.failed(id, &error, fallback.as_deref()))
                            .await?;
                    }
                    Outcome::Retry { after, error } => {
                        // The receiver's Retry-After is honoured, but never below the initial
                        // backoff (a `Retry-After: 0` must not become a tight loop) and never
                        // beyond an hour.
                        let floor = self.config.initial_backoff.as_std();
                        let pause = after
                            .map(|ra| ra.max(floor))
                            .unwrap_or_else(|| self.backoff(msg.attempts))
                            .min(MAX_PAUSE);
                        tracing::warn!(channel = %msg.channel, dedup_key = %msg.dedup_key, %error, retry_in_ms = pause.as_millis() as u64, "delivery failed; will retry");
                        crate::observe::delivery(&msg.channel, "retry");
                        stats.retried += 1;
                        let (id, next) = (msg.id, now_ms() + pause.as_millis() as i64);
                        with_store(store, move |s| s.retry_later(id, next, &error)).await?;
                    }
                    Outcome::Failed { error } => {
                        let fallback = self.config.fallback.clone().filter(|f| *f != msg.channel);
                        tracing::error!(channel = %msg.channel, dedup_key = %msg.dedup_key, %error, fallback = fallback.as_deref().unwrap_or("none"), "delivery refused for good");
                        crate::observe::delivery(&msg.channel, "failed");
                        stats.failed += 1;
                        let id = msg.id;
                        with_store(store, move |s| s.failed(id, &error, fallback.as_deref()))
                            .await?;
                    }
                }
            }
            if Instant::now() >= deadline {
                stats.left = with_store(store, |s| s.outbox()).await?.len() as u64;
                break;
            }
        }
        Ok(stats)
    }
}
