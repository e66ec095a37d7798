//! The operations keys of the configuration: the HTTP endpoint for `/metrics` and `/healthz`,
//! the heartbeat that tells another system the pager is alive, and how long the store keeps
//! raw rows and minute rollups.
//!
//! ```yaml
//! http: { listen: 127.0.0.1:9464 }          # absent: no endpoint
//! http:                                     # with POST /ingest for applications' rows
//!   listen: 127.0.0.1:9464
//!   ingest: { token_env: SPENDPAGER_INGEST_TOKEN, max_body: 1MiB, source: http }
//! heartbeat: { url_env: HEARTBEAT_URL, method: post }
//! retention: { raw: 30d, minute: 14d, hour: 400d }
//! ```

use super::units::{ByteSize, Dur};
use super::{Problems, Rule, RuleKind};
use crate::config::{Period, Seasonality};
use crate::secret::Secret;
use crate::source::formats::Format;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// `host:port`; loopback unless the operator writes another address.
    pub listen: String,
    pub ingest: Option<RawIngest>,
}

/// `http.ingest`: the bearer token applications send, the largest body, the source name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_credential: Option<String>,
    pub max_body: Option<ByteSize>,
    pub source: Option<String>,
    /// Where the callers of `POST /v1/traces` spans are named (span and resource attributes).
    pub attribution: Option<super::attribution::RawAttribution>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum HeartbeatMethod {
    #[default]
    Get,
    Post,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    pub url_credential: Option<String>,
    pub method: Option<HeartbeatMethod>,
    pub timeout: Option<Dur>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub raw: Option<Dur>,
    pub minute: Option<Dur>,
    pub hour: Option<Dur>,
}

/// Where `/metrics` and `/healthz` (and, when configured, `POST /ingest`) are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub ingest: Option<IngestConfig>,
}

/// `POST /ingest`: rows sent by applications, stored under `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestConfig {
    pub token: Secret,
    pub max_body: u64,
    pub source: String,
    /// The attribution mapping of OTLP spans posted to `/v1/traces`.
    pub otel_mapping: crate::source::mapping::Mapping,
}

/// The largest `POST /ingest` body unless `max_body` says otherwise.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;

/// A request made after every healthy cycle, so that a silent pager is noticed elsewhere.
#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    pub url: Secret,
    pub method: HeartbeatMethod,
    pub timeout: Dur,
}

/// How long each kind of data is kept. Defaults: raw rows 30 days, minute rollups 14 days
/// (but never less than the rules need, see [`RetentionConfig::minute_horizon`]), hourly
/// rollups 400 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    pub raw: Dur,
    pub minute: Dur,
    pub hour: Dur,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw: Dur::days(30),
            minute: Dur::days(14),
            hour: Dur::days(400),
        }
    }
}

impl RetentionConfig {
    /// How far back minute rollups are kept: the configured `minute`, raised to the reach of
    /// the longest-looking rule. A rule's windows and their comparable past windows end on
    /// any minute, so they need minute precision over their whole reach; only what lies
    /// beyond every rule (backtests of old history, reports) is served from hourly rollups.
    pub fn minute_horizon(&self, rules: &[Rule], delay: Dur) -> Dur {
        let reach = rules.iter().map(rule_reach).max().unwrap_or(Dur(0));
        let need = Dur(reach.seconds() + delay.seconds());
        self.minute.max(need)
    }
}

/// How far back from its judged minute a rule reads, with a day to spare for clock changes.
pub fn rule_reach(rule: &Rule) -> Dur {
    let day = Dur::days(1).seconds();
    let secs = match &rule.kind {
        RuleKind::Spike(s) => {
            let step = match s.seasonality {
                Seasonality::Daily => day,
                Seasonality::Weekly => 7 * day,
                Seasonality::None => s.window.seconds(),
            };
            let count = (s.lookback.seconds() / step.max(1)).min(super::MAX_COMPARABLE_WINDOWS);
            count * step + s.window.seconds() + day
        }
        RuleKind::Threshold { window, .. }
        | RuleKind::Attribution { window, .. }
        | RuleKind::Runaway { window, .. } => 7 * day + window.seconds() + day,
        RuleKind::Reconcile { period, .. } => {
            let one = match period {
                Period::Hour => 3600,
                Period::Day => day,
                Period::Week => 7 * day,
                Period::Month => 31 * day,
            };
            2 * one + day
        }
        RuleKind::Budget {
            period, forecast, ..
        } => {
            let one = match period {
                Period::Hour => 3600,
                Period::Day => day,
                Period::Week => 7 * day,
                Period::Month => 31 * day,
            };
            // A forecast reads two weeks of hours for its profile.
            let profile = if *forecast { 14 * day } else { 0 };
            (4 * one).max(profile) + day
        }
    };
    Dur(secs)
}

/// The three keys, validated.
#[derive(Clone, Debug, Default)]
pub struct OpsConfig {
    pub http: Option<HttpConfig>,
    pub heartbeat: Option<HeartbeatConfig>,
    pub retention: RetentionConfig,
}

fn validate_ingest(
    i: &RawIngest,
    resolve: &dyn Fn(&Path) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<IngestConfig> {
    let optional = super::SECRETS_OPTIONAL.load(std::sync::atomic::Ordering::Relaxed);
    let token = match (&i.token_env, &i.token_file, &i.token_credential) {
        (Some(env), None, None) => Secret::from_env(env),
        (None, Some(file), None) => Secret::from_file(&resolve(file)),
        (None, None, Some(cred)) => Secret::from_credential(cred),
        (None, None, None) => {
            Err("a token is required: token_env, token_file or token_credential".into())
        }
        _ => Err("give only one of token_env, token_file and token_credential".into()),
    };
    // One key given but its secret unreadable is fine for commands that never serve.
    let one_key = [
        i.token_env.is_some(),
        i.token_file.is_some(),
        i.token_credential.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count()
        == 1;
    let token = match token {
        Ok(t) => t,
        Err(_) if optional && one_key => Secret::new(super::channel::UNREAD_SECRET),
        Err(m) => {
            p.file_level("http.ingest", m);
            return None;
        }
    };
    let max_body = i.max_body.map_or(DEFAULT_MAX_BODY, |b| b.0);
    if max_body == 0 {
        p.file_level("http.ingest.max_body", "must be at least 1 byte");
    }
    let source = i.source.clone().unwrap_or_else(|| "http".into());
    if source.trim().is_empty() {
        p.file_level("http.ingest.source", "must not be empty");
    }
    let otel_mapping = i
        .attribution
        .as_ref()
        .map(|a| super::attribution::validate(a, Format::Otel, "http.ingest", p))
        .unwrap_or_default();
    Some(IngestConfig {
        token,
        max_body,
        source,
        otel_mapping,
    })
}

pub(super) fn validate(
    http: Option<&RawHttp>,
    heartbeat: Option<&RawHeartbeat>,
    retention: Option<&RawRetention>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    p: &mut Problems<'_>,
) -> OpsConfig {
    let mut ops = OpsConfig::default();
    if let Some(h) = http {
        match h.listen.parse::<SocketAddr>() {
            Ok(addr) => {
                ops.http = Some(HttpConfig {
                    listen: addr,
                    ingest: h
                        .ingest
                        .as_ref()
                        .and_then(|i| validate_ingest(i, resolve, p)),
                })
            }
            Err(_) => p.file_level(
                "http.listen",
                format!(
                    "`{}` is not an address and port, like 127.0.0.1:9464",
                    h.listen
                ),
            ),
        }
    }
    if let Some(b) = heartbeat {
        // Like the channels' secrets, optional for commands that never send anything.
        let optional = super::SECRETS_OPTIONAL.load(std::sync::atomic::Ordering::Relaxed);
        let unread = |r: Result<Secret, String>| match r {
            Err(_) if optional => Ok(Secret::new(super::channel::UNREAD_SECRET)),
            other => other,
        };
        let url = match (&b.url_env, &b.url_file, &b.url_credential) {
            (Some(env), None, None) => unread(Secret::from_env(env)),
            (None, Some(file), None) => unread(Secret::from_file(&resolve(file))),
            (None, None, Some(cred)) => unread(Secret::from_credential(cred)),
            (None, None, None) => {
                Err("a URL is required: url_env, url_file or url_credential".into())
            }
            _ => Err("give only one of url_env, url_file and url_credential".into()),
        };
        match url {
            Ok(url)
                if url.expose().starts_with("http://") || url.expose().starts_with("https://") =>
            {
                ops.heartbeat = Some(HeartbeatConfig {
                    url,
                    method: b.method.unwrap_or_default(),
                    timeout: b.timeout.unwrap_or(Dur(10)),
                });
            }
            Ok(_) => p.file_level("heartbeat", "the URL must start with http:// or https://"),
            Err(m) => p.file_level("heartbeat", m),
        }
    }
    if let Some(r) = retention {
        let d = RetentionConfig::default();
        ops.retention = RetentionConfig {
            raw: r.raw.unwrap_or(d.raw),
            minute: r.minute.unwrap_or(d.minute),
            hour: r.hour.unwrap_or(d.hour),
        };
        for (key, v) in [
            ("raw", ops.retention.raw),
            ("minute", ops.retention.minute),
            ("hour", ops.retention.hour),
        ] {
            if v < Dur::hours(1) {
                p.file_level(format!("retention.{key}"), "must be at least 1h");
            }
        }
        if ops.retention.hour < ops.retention.minute {
            p.file_level(
                "retention.hour",
                "must be at least retention.minute: minutes are folded into hours",
            );
        }
    }
    ops
}
