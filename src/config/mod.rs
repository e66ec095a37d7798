//! The configuration: one YAML file (and a folder of rule files), read into a raw model that
//! refuses unknown keys, then validated once into the typed model that the daemon, `rules
//! check` and the backtest all share. Every error names the file, line, column and field.

mod attribution;
mod channel;
pub mod ops;
pub mod postgres;
mod raw;
mod rule;
pub mod units;

pub use channel::{PAGERDUTY_URL, SECRETS_OPTIONAL};
pub use raw::{ChannelKindName, Period, Seasonality, Severity, SmtpTls, SourceKindName};
pub use rule::{Growth, MAX_COMPARABLE_WINDOWS, MuteWindow, Rule, RuleKind, SpikeRule};

use crate::money::Usd;
use crate::row::Dimension;
use crate::schedule::Schedule;
use crate::secret::Secret;
use jiff::tz::TimeZone;
use raw::{RawConfig, RawRule, RawRulesFile, RawSource};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use units::Dur;

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub store: PathBuf,
    pub timezone: TimeZone,
    pub schedule: Schedule,
    /// Windows are judged this long after they close, so late rows are in.
    pub delay: Dur,
    pub poll_interval: Dur,
    pub prices: Option<PathBuf>,
    pub sources: Vec<SourceConfig>,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub rules: Vec<Rule>,
    pub delivery: DeliveryConfig,
    /// `/metrics` and `/healthz`, the heartbeat and retention.
    pub ops: ops::OpsConfig,
    /// Files the configuration was read from, for reload and messages.
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Debug)]
pub enum SourceConfig {
    Jsonl {
        name: String,
        pattern: String,
        /// `native` unless the source says `format:`.
        format: crate::source::formats::Format,
        /// Empty unless the source says `attribution:`.
        mapping: crate::source::mapping::Mapping,
    },
    SqliteTable {
        name: String,
        path: PathBuf,
        table: String,
        cursor: Option<String>,
        columns: BTreeMap<String, String>,
        ts_format: TsFormat,
    },
    /// LiteLLM's spend-log table in PostgreSQL.
    Postgres(Box<postgres::PostgresSourceConfig>),
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Jsonl { name, .. } | SourceConfig::SqliteTable { name, .. } => name,
            SourceConfig::Postgres(c) => &c.name,
        }
    }
}

/// How an application's table stores its timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsFormat {
    Rfc3339,
    UnixSeconds,
    UnixMillis,
}

#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
    pub timeout: Dur,
    pub send_resolved: bool,
    /// Whether the series of one rule that change in one cycle go out as one message.
    pub group: bool,
    /// The least time between two messages to this channel; none when absent.
    pub min_interval: Option<Dur>,
}

#[derive(Clone, Debug)]
pub enum ChannelKind {
    Console,
    /// With a `secret`, each request carries an HMAC-SHA256 signature.
    Webhook {
        url: Secret,
        secret: Option<Secret>,
    },
    Slack {
        url: Secret,
    },
    Email(Box<EmailConfig>),
    /// PagerDuty Events API v2.
    PagerDuty {
        routing_key: Secret,
        url: String,
    },
    /// An ntfy topic URL, with an optional access token.
    Ntfy {
        url: Secret,
        token: Option<Secret>,
    },
    /// The base URL of an Alertmanager (`/api/v2/alerts` is appended).
    Alertmanager {
        url: Secret,
    },
}

/// An SMTP server and the addresses of the email channel.
#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
    pub from: lettre::message::Mailbox,
    pub to: Vec<lettre::message::Mailbox>,
}

#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    pub fallback: Option<String>,
    pub initial_backoff: Dur,
    pub max_backoff: Dur,
    pub cycle_deadline: Dur,
    /// After this many failed attempts a message is failed for good (and goes to the
    /// fallback). `None`, the default: a rate limit or an outage delays a page, never drops it.
    pub max_attempts: Option<i64>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            fallback: None,
            initial_backoff: Dur(1),
            max_backoff: Dur::minutes(5),
            cycle_deadline: Dur(30),
            max_attempts: None,
        }
    }
}

/// One problem in the configuration, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found; loading never stops at the first.
#[derive(Clone, Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors for one file while validating it.
struct Problems<'a> {
    file: &'a Path,
    errors: &'a mut Vec<ConfigError>,
}

impl Problems<'_> {
    fn at<T>(&mut self, span: &Spanned<T>, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: Some(span.referenced.line()),
            column: Some(span.referenced.column()),
            field: field.into(),
            message: message.into(),
        });
    }

    /// As [`Problems::at`], at a place already taken from a span.
    fn at_place(&mut self, at: Place, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: Some(at.0),
            column: Some(at.1),
            field: field.into(),
            message: message.into(),
        });
    }

    fn file_level(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: None,
            column: None,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Parses YAML into `T`, keeping the path of the field at fault (`rules[1].limit_usd`)
/// beside the line and column of the error.
fn parse_yaml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| yaml_error(file, &e, path))
}

fn yaml_error(file: &Path, e: &serde_saphyr::Error, field: String) -> ConfigError {
    let loc = e.location();
    // The message carries a snippet of the file; keep its first line, without the location
    // prefix, since the location is printed in front of it.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML");
    let mut message = first.strip_prefix("error: ").unwrap_or(first);
    if message.starts_with("line ")
        && let Some((_, rest)) = message.split_once(": ")
    {
        message = rest;
    }
    // The parser's advice to programmers is not for the person editing the file.
    let message = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(message)
        .to_string();
    ConfigError {
        file: file.to_path_buf(),
        line: loc.map(|l| l.line()),
        column: loc.map(|l| l.column()),
        field: if field == "." {
            String::new()
        } else {
            field.replace(".value", "").replace(".?", "")
        },
        message,
    }
}

impl Config {
    /// Reads and validates a configuration file and the rule files it names.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Config::from_yaml(path, &text, &base, &[])
    }

    /// Builds a configuration from YAML text. `extra_rules` are (file name, text) pairs read
    /// as rule files, as the demo does with its bundled rules.
    pub fn from_yaml(
        path: &Path,
        text: &str,
        base: &Path,
        extra_rules: &[(&str, &str)],
    ) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();
        let raw: RawConfig = match parse_yaml(path, text) {
            Ok(raw) => raw,
            Err(e) => return Err(ConfigErrors(vec![e])),
        };
        let resolve = |p: &Path| normalise(&base.join(p));
        let mut files = vec![path.to_path_buf()];

        let timezone = raw.timezone.map(|z| z.0).unwrap_or(TimeZone::UTC);
        let mut p = Problems {
            file: path,
            errors: &mut errors,
        };
        let schedule = match &raw.schedule {
            Some(s) => match Schedule::parse(&s.value, timezone.clone()) {
                Ok(s) => Some(s),
                Err(m) => {
                    p.at(s, "schedule", m);
                    None
                }
            },
            None => Some(Schedule::parse("*/5 * * * *", timezone.clone()).expect("default")),
        };

        let mut sources = Vec::new();
        let mut names = HashSet::new();
        for s in &raw.sources {
            if !names.insert(s.value.name.clone()) {
                p.at(
                    s,
                    "sources.name",
                    format!("source `{}` is defined twice", s.value.name),
                );
            }
            if let Some(src) = validate_source(s, &resolve, &mut p) {
                sources.push(src);
            }
        }

        let mut channels = BTreeMap::new();
        for (name, c) in &raw.channels {
            if let Some(ch) = channel::validate(name, c, &resolve, &mut p) {
                channels.insert(name.clone(), ch);
            }
        }
        let known: HashSet<&str> = raw.channels.keys().map(String::as_str).collect();

        let mut delivery = DeliveryConfig::default();
        if let Some(d) = &raw.delivery {
            if let Some(f) = &d.fallback {
                if !known.contains(f.as_str()) {
                    p.file_level("delivery.fallback", format!("no channel named `{f}`"));
                }
                delivery.fallback = Some(f.clone());
            }
            delivery.initial_backoff = d.initial_backoff.unwrap_or(delivery.initial_backoff);
            delivery.max_backoff = d.max_backoff.unwrap_or(delivery.max_backoff);
            delivery.cycle_deadline = d.cycle_deadline.unwrap_or(delivery.cycle_deadline);
            match d.max_attempts {
                Some(0) => p.file_level("delivery.max_attempts", "must be at least 1"),
                Some(n) => delivery.max_attempts = Some(i64::from(n)),
                None => {}
            }
        }

        let ops = ops::validate(
            raw.http.as_ref(),
            raw.heartbeat.as_ref(),
            raw.retention.as_ref(),
            &resolve,
            &mut p,
        );

        let mut rules = Vec::new();
        let mut rule_names: HashSet<String> = HashSet::new();
        validate_rules(
            &raw.rules,
            &timezone,
            &known,
            &mut rule_names,
            &mut rules,
            &mut p,
        );

        if let Some(dir) = &raw.rules_dir {
            let dir = resolve(dir);
            match rule_files(&dir) {
                Ok(list) => {
                    for file in list {
                        files.push(file.clone());
                        match std::fs::read_to_string(&file) {
                            Ok(text) => read_rules_file(
                                &file,
                                &text,
                                &timezone,
                                &known,
                                &mut rule_names,
                                &mut rules,
                                p.errors,
                            ),
                            Err(e) => p.file_level(
                                "rules_dir",
                                format!("cannot read {}: {e}", file.display()),
                            ),
                        }
                    }
                }
                Err(e) => p.file_level("rules_dir", format!("cannot list {}: {e}", dir.display())),
            }
        }
        for (name, text) in extra_rules {
            read_rules_file(
                Path::new(name),
                text,
                &timezone,
                &known,
                &mut rule_names,
                &mut rules,
                &mut errors,
            );
        }

        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        Ok(Config {
            store: resolve(&raw.store.unwrap_or_else(|| PathBuf::from("spendpager.db"))),
            timezone,
            schedule: schedule.expect("no errors means the schedule parsed"),
            delay: raw.delay.unwrap_or(Dur::minutes(2)),
            poll_interval: raw.poll_interval.unwrap_or(Dur(30)),
            prices: raw.prices.as_deref().map(resolve),
            sources,
            channels,
            rules,
            delivery,
            ops,
            files,
        })
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// Refuses the kind-specific keys a rule's kind does not use: one table, read once, instead
/// of a list per kind.
/// Line and column of a value in its file.
type Place = (u64, u64);

fn place<T>(span: &Spanned<T>) -> Place {
    (span.referenced.line(), span.referenced.column())
}

fn refuse_unused_keys(raw: &RawRule, p: &mut Problems<'_>, field: &dyn Fn(&str) -> String) {
    use raw::RuleKindName as K;
    let name = place(&raw.name);
    // Where each key is written, when it is: its own line where the key keeps one.
    let keys: [(&str, Option<Place>, &[K]); 14] = [
        (
            "window",
            raw.window.as_ref().map(place),
            &[K::Spike, K::Threshold, K::Attribution, K::Runaway],
        ),
        (
            "baseline",
            raw.baseline.is_some().then_some(name),
            &[K::Spike],
        ),
        (
            "threshold",
            raw.threshold.is_some().then_some(name),
            &[K::Spike],
        ),
        ("young", raw.young.is_some().then_some(name), &[K::Spike]),
        (
            "limit_usd",
            raw.limit_usd.as_ref().map(place),
            &[K::Threshold, K::Budget],
        ),
        (
            "period",
            raw.period.is_some().then_some(name),
            &[K::Budget, K::Reconcile],
        ),
        (
            "forecast",
            raw.forecast.is_some().then_some(name),
            &[K::Budget],
        ),
        (
            "dimension",
            raw.dimension.as_ref().map(place),
            &[K::Attribution],
        ),
        (
            "max_share",
            raw.max_share.as_ref().map(place),
            &[K::Attribution],
        ),
        (
            "min_usd",
            raw.min_usd.as_ref().map(place),
            &[K::Attribution],
        ),
        ("max_usd", raw.max_usd.as_ref().map(place), &[K::Runaway]),
        (
            "sources",
            (!raw.sources.is_empty()).then_some(name),
            &[K::Reconcile],
        ),
        (
            "max_diff_share",
            raw.max_diff_share.is_some().then_some(name),
            &[K::Reconcile],
        ),
        (
            "min_diff_usd",
            raw.min_diff_usd.as_ref().map(place),
            &[K::Reconcile],
        ),
    ];
    for (key, at, kinds) in keys {
        if let Some(at) = at
            && !kinds.contains(&raw.kind)
        {
            p.at_place(
                at,
                field(key),
                format!("is not used by kind {}", rule_kind_word(raw.kind)),
            );
        }
    }
}

fn rule_kind_word(k: raw::RuleKindName) -> &'static str {
    match k {
        raw::RuleKindName::Spike => "spike",
        raw::RuleKindName::Threshold => "threshold",
        raw::RuleKindName::Budget => "budget",
        raw::RuleKindName::Attribution => "attribution",
        raw::RuleKindName::Runaway => "runaway",
        raw::RuleKindName::Reconcile => "reconcile",
    }
}

/// Minutes after midnight of `HH:MM`.
fn clock(text: &str) -> Option<i32> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Drops `.` components, so that messages say `/etc/spendpager/rules/a.yaml`, not
/// `/etc/spendpager/./rules/a.yaml`.
fn normalise(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// The `*.yaml` and `*.yml` files of a rules folder, in name order.
fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

fn read_rules_file(
    file: &Path,
    text: &str,
    timezone: &TimeZone,
    known: &HashSet<&str>,
    names: &mut HashSet<String>,
    rules: &mut Vec<Rule>,
    errors: &mut Vec<ConfigError>,
) {
    match parse_yaml::<RawRulesFile>(file, text) {
        Ok(raw) => {
            let mut p = Problems { file, errors };
            validate_rules(&raw.rules, timezone, known, names, rules, &mut p);
        }
        Err(e) => errors.push(e),
    }
}

fn validate_source(
    s: &Spanned<RawSource>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<SourceConfig> {
    let raw = &s.value;
    let field = |f: &str| format!("sources[{}].{f}", raw.name);
    if raw.kind != SourceKindName::Jsonl && raw.format.is_some() {
        p.at(
            s,
            field("format"),
            "is only for kind jsonl (a table maps its `columns`)",
        );
    }
    if raw.kind == SourceKindName::SqliteTable && raw.attribution.is_some() {
        p.at(
            s,
            field("attribution"),
            "is only for kinds jsonl and postgres (a table maps its `columns`)",
        );
    }
    if raw.kind == SourceKindName::Postgres {
        return postgres::validate(s, resolve, p);
    }
    for (set, key) in [
        (raw.connection.is_some(), "connection"),
        (raw.schema.is_some(), "schema"),
        (raw.overlap.is_some(), "overlap"),
    ] {
        if set {
            p.at(s, field(key), "is only for kind postgres");
        }
    }
    if raw.path.is_empty() {
        p.at(s, field("path"), "is required");
        return None;
    }
    match raw.kind {
        SourceKindName::Postgres => None,
        SourceKindName::Jsonl => {
            use crate::source::formats::Format;
            let format = match &raw.format {
                None => Format::Native,
                Some(f) => match Format::from_name(&f.value) {
                    Some(format) => format,
                    None => {
                        p.at(
                            f,
                            field("format"),
                            format!(
                                "`{}`: use native, litellm, portkey, otel, openai-usage, \
                                 openai-costs or anthropic-usage",
                                f.value
                            ),
                        );
                        return None;
                    }
                },
            };
            let mapping = match &raw.attribution {
                Some(a) => attribution::validate(a, format, &format!("sources[{}]", raw.name), p),
                None => Default::default(),
            };
            for (set, key) in [
                (raw.table.is_some(), "table"),
                (raw.cursor.is_some(), "cursor"),
                (!raw.columns.is_empty(), "columns"),
                (raw.ts_format.is_some(), "ts_format"),
            ] {
                if set {
                    p.at(s, field(key), "is only for kind sqlite_table");
                }
            }
            let pattern = resolve(Path::new(&raw.path)).to_string_lossy().into_owned();
            if let Err(e) = glob::Pattern::new(&pattern) {
                p.at(s, field("path"), format!("not a valid glob: {e}"));
                return None;
            }
            Some(SourceConfig::Jsonl {
                name: raw.name.clone(),
                pattern,
                format,
                mapping,
            })
        }
        SourceKindName::SqliteTable => {
            let Some(table) = raw.table.clone() else {
                p.at(s, field("table"), "is required for kind sqlite_table");
                return None;
            };
            let ts_format = match raw.ts_format.as_deref() {
                None | Some("rfc3339") => TsFormat::Rfc3339,
                Some("unix_s") => TsFormat::UnixSeconds,
                Some("unix_ms") => TsFormat::UnixMillis,
                Some(other) => {
                    p.at(
                        s,
                        field("ts_format"),
                        format!("`{other}`: use rfc3339, unix_s or unix_ms"),
                    );
                    return None;
                }
            };
            for key in raw.columns.keys() {
                if !crate::row::FIELDS.contains(&key.as_str()) {
                    p.at(
                        s,
                        field("columns"),
                        format!(
                            "`{key}` is not a row field (one of {})",
                            crate::row::FIELDS.join(", ")
                        ),
                    );
                }
            }
            Some(SourceConfig::SqliteTable {
                name: raw.name.clone(),
                path: resolve(Path::new(&raw.path)),
                table,
                cursor: raw.cursor.clone(),
                columns: raw.columns.clone(),
                ts_format,
            })
        }
    }
}

fn validate_rules(
    raws: &[Spanned<RawRule>],
    timezone: &TimeZone,
    known: &HashSet<&str>,
    names: &mut HashSet<String>,
    rules: &mut Vec<Rule>,
    p: &mut Problems<'_>,
) {
    for r in raws {
        if let Some(rule) = validate_rule(r, timezone, known, names, p) {
            rules.push(rule);
        }
    }
}

fn validate_rule(
    r: &Spanned<RawRule>,
    timezone: &TimeZone,
    known: &HashSet<&str>,
    names: &mut HashSet<String>,
    p: &mut Problems<'_>,
) -> Option<Rule> {
    let raw = &r.value;
    let name = raw.name.value.clone();
    let field = |f: &str| format!("rules[{name}].{f}");
    let before = p.errors.len();
    if name.trim().is_empty() {
        p.at(&raw.name, field("name"), "must not be empty");
    } else if !names.insert(name.clone()) {
        p.at(
            &raw.name,
            field("name"),
            format!("rule `{name}` is defined twice"),
        );
    }

    let mut group_by = Vec::new();
    for g in &raw.group_by {
        match Dimension::parse(&g.value) {
            Some(d) if group_by.contains(&d) => p.at(
                g,
                field("group_by"),
                format!("`{}` is listed twice", g.value),
            ),
            Some(d) => group_by.push(d),
            None => p.at(
                g,
                field("group_by"),
                format!(
                    "`{}` is not a dimension (tenant, feature, model, provider, user, workflow)",
                    g.value
                ),
            ),
        }
    }
    let mut filter = Vec::new();
    for (key, values) in &raw.filter {
        match Dimension::parse(key) {
            Some(d) => filter.push((d, values.clone().into_vec())),
            None => p.at(r, field("match"), format!("`{key}` is not a dimension")),
        }
    }
    let mut channels = Vec::new();
    for c in &raw.channels {
        if !known.contains(c.value.as_str()) {
            p.at(
                c,
                field("channels"),
                format!("no channel named `{}`", c.value),
            );
        }
        channels.push(c.value.clone());
    }
    if channels.is_empty() {
        p.at(
            &raw.name,
            field("channels"),
            "at least one channel is required",
        );
    }

    refuse_unused_keys(raw, p, &field);
    let kind = match raw.kind {
        raw::RuleKindName::Spike => {
            let window = required_window(raw, p, &field);
            let baseline = raw.baseline.as_ref();
            let threshold = raw.threshold.as_ref();
            let young = raw.young.as_ref();
            let spike = SpikeRule {
                window: window.unwrap_or(Dur::hours(1)),
                lookback: baseline.and_then(|b| b.lookback).unwrap_or(Dur::days(14)),
                seasonality: baseline
                    .and_then(|b| b.seasonality)
                    .unwrap_or(Seasonality::Daily),
                sensitivity: threshold
                    .and_then(|t| t.sensitivity.as_ref())
                    .map_or(4.0, |s| s.value),
                min_ratio: threshold
                    .and_then(|t| t.min_ratio.as_ref())
                    .map_or(1.0, |s| s.value),
                min_delta: money(
                    threshold.and_then(|t| t.min_delta_usd.as_ref()),
                    &field("threshold.min_delta_usd"),
                    p,
                )
                .unwrap_or(Usd::from_nanos(1_000_000_000)),
                min_history: young.and_then(|y| y.min_history).unwrap_or(Dur::days(3)),
                young_min: money(
                    young.and_then(|y| y.min_usd.as_ref()),
                    &field("young.min_usd"),
                    p,
                )
                .unwrap_or(Usd::from_nanos(25_000_000_000)),
            };
            if !(spike.sensitivity.is_finite() && spike.sensitivity > 0.0) {
                p.at_place(
                    threshold
                        .and_then(|t| t.sensitivity.as_ref())
                        .map_or(place(&raw.name), place),
                    field("threshold.sensitivity"),
                    "must be a number above 0",
                );
            }
            if !(spike.min_ratio.is_finite() && spike.min_ratio >= 1.0) {
                p.at_place(
                    threshold
                        .and_then(|t| t.min_ratio.as_ref())
                        .map_or(place(&raw.name), place),
                    field("threshold.min_ratio"),
                    "must be at least 1.0",
                );
            }
            if spike.lookback < spike.window {
                p.at(
                    &raw.name,
                    field("baseline.lookback"),
                    "must be at least the window",
                );
            }
            let step = match spike.seasonality {
                Seasonality::Daily => Dur::days(1),
                Seasonality::Weekly => Dur::days(7),
                Seasonality::None => spike.window,
            };
            let windows = spike.lookback.seconds() / step.seconds().max(1);
            if windows > rule::MAX_COMPARABLE_WINDOWS {
                p.at(
                    &raw.name,
                    field("baseline.lookback"),
                    format!(
                        "{} holds {windows} comparable windows; at most {} (use seasonality daily or a shorter lookback)",
                        spike.lookback,
                        rule::MAX_COMPARABLE_WINDOWS
                    ),
                );
            }
            if spike.lookback < step {
                p.at(
                    &raw.name,
                    field("baseline.lookback"),
                    format!(
                        "{} holds no comparable window for seasonality {:?}",
                        spike.lookback, spike.seasonality
                    )
                    .to_lowercase(),
                );
            }
            RuleKind::Spike(spike)
        }
        raw::RuleKindName::Threshold => {
            let window = required_window(raw, p, &field);
            let limit = required_limit(raw, p, &field);
            RuleKind::Threshold {
                window: window.unwrap_or(Dur::hours(1)),
                limit: limit.unwrap_or(Usd::ZERO),
            }
        }
        raw::RuleKindName::Attribution => {
            let window = required_window(raw, p, &field);
            let dimension = match &raw.dimension {
                Some(d) => match Dimension::parse(&d.value) {
                    Some(dim) if dim != Dimension::Model && dim != Dimension::Provider => Some(dim),
                    _ => {
                        p.at(
                            d,
                            field("dimension"),
                            format!("`{}`: use tenant, feature, user or workflow", d.value),
                        );
                        None
                    }
                },
                None => {
                    p.at(
                        &raw.name,
                        field("dimension"),
                        "is required for kind attribution (tenant, feature, user or workflow)",
                    );
                    None
                }
            };
            if dimension.is_some_and(|d| group_by.contains(&d)) {
                p.at(
                    &raw.name,
                    field("group_by"),
                    "cannot hold the attribution dimension itself",
                );
            }
            let max_share = raw.max_share.as_ref().map_or(0.2, |s| s.value);
            if !(0.0..1.0).contains(&max_share) {
                p.at_place(
                    raw.max_share.as_ref().map_or(place(&raw.name), place),
                    field("max_share"),
                    "must be a share from 0 up to (not including) 1",
                );
            }
            RuleKind::Attribution {
                dimension: dimension.unwrap_or(Dimension::Tenant),
                window: window.unwrap_or(Dur::hours(1)),
                max_share,
                min_usd: money(raw.min_usd.as_ref(), &field("min_usd"), p)
                    .unwrap_or(Usd::from_nanos(1_000_000_000)),
            }
        }
        raw::RuleKindName::Reconcile => {
            let sources = match raw.sources.as_slice() {
                [a, b] if a != b => [a.clone(), b.clone()],
                _ => {
                    p.at(
                        &raw.name,
                        field("sources"),
                        "name exactly two different sources to compare",
                    );
                    [String::new(), String::new()]
                }
            };
            let period = raw.period.unwrap_or_else(|| {
                p.at(
                    &raw.name,
                    field("period"),
                    "is required for kind reconcile (hour, day, week or month)",
                );
                Period::Day
            });
            let max_diff_share = raw.max_diff_share.unwrap_or(0.05);
            if !(max_diff_share.is_finite() && max_diff_share >= 0.0) {
                p.at(
                    &raw.name,
                    field("max_diff_share"),
                    "must be a share of 0 or more",
                );
            }
            RuleKind::Reconcile {
                sources,
                period,
                max_diff_share,
                min_diff: money(raw.min_diff_usd.as_ref(), &field("min_diff_usd"), p)
                    .unwrap_or(Usd::from_nanos(1_000_000_000)),
            }
        }
        raw::RuleKindName::Runaway => {
            if group_by.is_empty() {
                p.at(
                    &raw.name,
                    field("group_by"),
                    "is required for kind runaway: the callers to watch, like [workflow]",
                );
            }
            let window = required_window(raw, p, &field);
            let limit = match &raw.max_usd {
                Some(m) => money(Some(m), &field("max_usd"), p),
                None => {
                    p.at(&raw.name, field("max_usd"), "is required for kind runaway");
                    None
                }
            };
            RuleKind::Runaway {
                window: window.unwrap_or(Dur::minutes(15)),
                limit: limit.unwrap_or(Usd::ZERO),
            }
        }
        raw::RuleKindName::Budget => {
            let limit = required_limit(raw, p, &field);
            let period = raw.period.unwrap_or_else(|| {
                p.at(
                    &raw.name,
                    field("period"),
                    "is required for kind budget (hour, day, week or month)",
                );
                Period::Day
            });
            RuleKind::Budget {
                period,
                limit: limit.unwrap_or(Usd::ZERO),
                forecast: raw.forecast.unwrap_or(false),
            }
        }
    };
    let rule_zone = raw
        .timezone
        .as_ref()
        .map(|z| z.0.clone())
        .unwrap_or_else(|| timezone.clone());
    let mut mute = Vec::new();
    for m in &raw.mute {
        match (clock(&m.value.from), clock(&m.value.to)) {
            (Some(start), Some(end)) if start != end => mute.push(MuteWindow {
                start,
                end,
                timezone: m
                    .value
                    .timezone
                    .as_ref()
                    .map(|z| z.0.clone())
                    .unwrap_or_else(|| rule_zone.clone()),
            }),
            (Some(_), Some(_)) => p.at(m, field("mute"), "from and to are the same time"),
            _ => p.at(
                m,
                field("mute"),
                format!("`{}` to `{}`: times are HH:MM", m.value.from, m.value.to),
            ),
        }
    }
    let renotify = match &raw.renotify {
        Some(r) if !(r.value.growth.is_finite() && r.value.growth > 0.0) => {
            p.at(
                r,
                field("renotify.growth"),
                "must be a share above 0, like 0.5 for half again",
            );
            None
        }
        Some(r) => Some(Growth {
            share: r.value.growth,
            min: money(r.value.min_usd.as_ref(), &field("renotify.min_usd"), p)
                .unwrap_or(Usd::ZERO),
        }),
        None => None,
    };
    if p.errors.len() > before {
        return None;
    }
    Some(Rule {
        name,
        kind,
        group_by,
        filter,
        pending_for: raw.pending_for.unwrap_or(Dur(0)),
        keep_firing_for: raw.keep_firing_for.unwrap_or(Dur(0)),
        repeat: raw.repeat.unwrap_or(Dur::hours(4)),
        severity: raw.severity.unwrap_or(Severity::Page),
        channels,
        timezone: raw
            .timezone
            .as_ref()
            .map(|z| z.0.clone())
            .unwrap_or_else(|| timezone.clone()),
        origin: format!("{}:{}", p.file.display(), raw.name.referenced.line()),
        mute,
        renotify,
    })
}

fn required_window(
    raw: &RawRule,
    p: &mut Problems<'_>,
    field: &dyn Fn(&str) -> String,
) -> Option<Dur> {
    match &raw.window {
        None => {
            p.at(&raw.name, field("window"), "is required");
            None
        }
        Some(w) if w.value.seconds() < 60 || w.value.seconds() % 60 != 0 => {
            p.at(
                w,
                field("window"),
                format!("{} must be a whole number of minutes", w.value),
            );
            None
        }
        Some(w) if w.value.seconds() > MAX_WINDOW.seconds() => {
            p.at(
                w,
                field("window"),
                format!("{} is longer than {MAX_WINDOW}; use a budget rule with a period for longer spans", w.value),
            );
            None
        }
        Some(w) => Some(w.value),
    }
}

/// The longest window a rule may judge: evaluation reads every minute of it.
const MAX_WINDOW: Dur = Dur::days(31);

fn required_limit(
    raw: &RawRule,
    p: &mut Problems<'_>,
    field: &dyn Fn(&str) -> String,
) -> Option<Usd> {
    match &raw.limit_usd {
        Some(l) => match money(Some(l), &field("limit_usd"), p) {
            Some(v) if v > Usd::ZERO => Some(v),
            Some(_) => {
                p.at(l, field("limit_usd"), "must be above 0");
                None
            }
            None => None,
        },
        None => {
            p.at(&raw.name, field("limit_usd"), "is required");
            None
        }
    }
}

/// A dollar amount that was read but may be invalid; its error carries its own location.
fn money(
    value: Option<&Spanned<units::Dollars>>,
    field: &str,
    p: &mut Problems<'_>,
) -> Option<Usd> {
    let v = value?;
    match &v.value.0 {
        Ok(usd) => Some(*usd),
        Err(message) => {
            p.at(v, field, message.clone());
            None
        }
    }
}
