//! The configuration exactly as written in YAML. Unknown keys are refused here; meaning is
//! checked in `validate`, which turns these into the typed model.

use super::units::{Dollars, Dur, OneOrMany, Zone};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub store: Option<PathBuf>,
    pub timezone: Option<Zone>,
    pub schedule: Option<Spanned<String>>,
    pub delay: Option<Dur>,
    pub poll_interval: Option<Dur>,
    pub prices: Option<PathBuf>,
    #[serde(default)]
    pub sources: Vec<Spanned<RawSource>>,
    #[serde(default)]
    pub channels: BTreeMap<String, Spanned<RawChannel>>,
    pub rules_dir: Option<PathBuf>,
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
    pub delivery: Option<RawDelivery>,
    pub http: Option<super::ops::RawHttp>,
    pub heartbeat: Option<super::ops::RawHeartbeat>,
    pub retention: Option<super::ops::RawRetention>,
}

/// A rules file: only `rules:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRulesFile {
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceKindName {
    Jsonl,
    SqliteTable,
    Postgres,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub name: String,
    pub kind: SourceKindName,
    /// jsonl: a file or glob; sqlite_table: the database file. Required for both.
    #[serde(default)]
    pub path: String,
    pub table: Option<String>,
    /// sqlite_table: a column that only grows; `rowid` when absent.
    pub cursor: Option<String>,
    /// sqlite_table: row field -> column name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// sqlite_table: how `ts` is stored: `rfc3339` (default), `unix_s` or `unix_ms`.
    pub ts_format: Option<String>,
    /// postgres: where and as whom to connect.
    pub connection: Option<super::postgres::RawConnection>,
    /// postgres: the table's schema; the role's search path when absent.
    pub schema: Option<String>,
    /// postgres: how far behind the cursor each poll reads again, for rows written late.
    pub overlap: Option<Dur>,
    /// jsonl: the files' format (`native` by default, or a gateway or provider export).
    pub format: Option<Spanned<String>>,
    /// jsonl: where tenant, feature, user and workflow come from.
    pub attribution: Option<super::attribution::RawAttribution>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKindName {
    Console,
    Webhook,
    Slack,
    Email,
    Pagerduty,
    Ntfy,
    Alertmanager,
}

/// How the email channel secures its SMTP connection.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (usually port 587); refused if the server
    /// does not offer it.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Implicit,
    /// No encryption at all: only for a relay on the same machine.
    None,
}

/// One channel as written. Which keys apply depends on `kind`; `validate` refuses the ones
/// that do not.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub kind: ChannelKindName,
    /// webhook, slack, ntfy, alertmanager: the URL (for alertmanager also `url`).
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    pub url_credential: Option<String>,
    /// pagerduty, alertmanager: a URL that is not a secret.
    pub url: Option<String>,
    pub timeout: Option<Dur>,
    /// Send resolved notifications too (default: on).
    pub send_resolved: Option<bool>,
    /// One message per rule and cycle for all its series (default: on for slack and email).
    pub group: Option<bool>,
    /// The least time between two messages to this channel.
    pub min_interval: Option<Dur>,
    /// webhook: the HMAC signing secret.
    pub secret_env: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_credential: Option<String>,
    /// pagerduty: the integration's routing key.
    pub routing_key_env: Option<String>,
    pub routing_key_file: Option<PathBuf>,
    pub routing_key_credential: Option<String>,
    /// ntfy: an access token.
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// email: the SMTP server.
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<SmtpTls>,
    pub username_env: Option<String>,
    pub username_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_credential: Option<String>,
    pub from: Option<String>,
    pub to: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelivery {
    /// Where a notification goes when its channel refuses it for good.
    pub fallback: Option<String>,
    /// First retry pause; it doubles per attempt, with jitter.
    pub initial_backoff: Option<Dur>,
    pub max_backoff: Option<Dur>,
    /// How long one cycle keeps retrying before leaving the rest queued for the next.
    pub cycle_deadline: Option<Dur>,
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleKindName {
    Spike,
    Threshold,
    Budget,
    Attribution,
    Runaway,
    Reconcile,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Seasonality {
    None,
    Daily,
    Weekly,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warn,
    Page,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    pub lookback: Option<Dur>,
    pub seasonality: Option<Seasonality>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    pub sensitivity: Option<Spanned<f64>>,
    pub min_ratio: Option<Spanned<f64>>,
    pub min_delta_usd: Option<Spanned<Dollars>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawYoung {
    pub min_history: Option<Dur>,
    pub min_usd: Option<Spanned<Dollars>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: Spanned<String>,
    pub kind: RuleKindName,
    #[serde(default)]
    pub group_by: Vec<Spanned<String>>,
    #[serde(default, rename = "match")]
    pub filter: BTreeMap<String, OneOrMany>,
    pub window: Option<Spanned<Dur>>,
    pub baseline: Option<RawBaseline>,
    pub threshold: Option<RawThreshold>,
    pub young: Option<RawYoung>,
    #[serde(rename = "for")]
    pub pending_for: Option<Dur>,
    pub keep_firing_for: Option<Dur>,
    pub repeat: Option<Dur>,
    pub severity: Option<Severity>,
    #[serde(default)]
    pub channels: Vec<Spanned<String>>,
    pub limit_usd: Option<Spanned<Dollars>>,
    /// attribution: the dimension whose missing values are unowned spend.
    pub dimension: Option<Spanned<String>>,
    /// attribution: page above this share of unowned spend.
    pub max_share: Option<Spanned<f64>>,
    /// attribution: and when the unowned spend is at least this much.
    pub min_usd: Option<Spanned<Dollars>>,
    /// reconcile: the two sources whose spend is compared.
    #[serde(default)]
    pub sources: Vec<String>,
    /// reconcile: page when they differ by more than this share of the larger...
    pub max_diff_share: Option<f64>,
    /// reconcile: ...and by at least this much.
    pub min_diff_usd: Option<Spanned<Dollars>>,
    /// runaway: page when one caller spends this much in the window.
    pub max_usd: Option<Spanned<Dollars>>,
    pub period: Option<Period>,
    /// budget: also page when the projected period spend crosses the limit.
    pub forecast: Option<bool>,
    pub timezone: Option<Zone>,
    #[serde(default)]
    pub mute: Vec<Spanned<RawMute>>,
    pub renotify: Option<Spanned<RawRenotify>>,
}

/// `{ from: "22:00", to: "07:00", timezone: Europe/Paris }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMute {
    pub from: String,
    pub to: String,
    pub timezone: Option<Zone>,
}

/// `{ growth: 0.5, min_usd: 20 }`: page again when spend grew 50 % and 20 USD since the last page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRenotify {
    pub growth: f64,
    pub min_usd: Option<Spanned<Dollars>>,
}
