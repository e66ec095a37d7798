//! The cost row: one LLM request (or an aggregate of several), its tokens, its cost and who
//! asked for it. Every source ends in these rows; every later stage reads only them.
//!
//! Parsing is strict and explains itself: a row that breaks a rule is refused with the field
//! and the reason, so the caller can set it aside with its line while the good rows go in.

use crate::money::Usd;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

mod fast;

/// The attribution and breakdown dimensions a rule can group by or explain with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Tenant,
    Feature,
    Model,
    Provider,
    User,
    Workflow,
}

impl Dimension {
    /// Every dimension, in the order rollups store them.
    pub const ALL: [Dimension; 6] = [
        Dimension::Tenant,
        Dimension::Feature,
        Dimension::Model,
        Dimension::Provider,
        Dimension::User,
        Dimension::Workflow,
    ];

    /// The dimensions that name a caller, plus the model, which explain an increase.
    pub const EXPLAINING: [Dimension; 5] = [
        Dimension::Tenant,
        Dimension::Feature,
        Dimension::User,
        Dimension::Workflow,
        Dimension::Model,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Tenant => "tenant",
            Dimension::Feature => "feature",
            Dimension::Model => "model",
            Dimension::Provider => "provider",
            Dimension::User => "user",
            Dimension::Workflow => "workflow",
        }
    }

    pub fn parse(name: &str) -> Option<Dimension> {
        Dimension::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Position in [`Dimension::ALL`], used to index fixed-size arrays of values.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The row fields a column mapping may name.
pub const FIELDS: &[&str] = &[
    "ts",
    "model",
    "provider",
    "request_id",
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_usd",
    "tenant",
    "feature",
    "user",
    "workflow",
    "tags",
];

/// The most tokens (or requests) one row may claim: far beyond any real request, and small
/// enough that sums over millions of rows cannot overflow.
pub const MAX_COUNT: u64 = 1_000_000_000_000_000;
/// The most one row may cost, in dollars; a larger figure is a unit mistake, not a request.
pub const MAX_ROW_USD: f64 = 10_000_000.0;

/// One validated cost row, as sources hand it to the store.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostRow {
    /// When the request happened, in milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub provider: Option<String>,
    pub model: String,
    pub request_id: Option<String>,
    /// How many requests this row stands for (usage exports aggregate).
    pub requests: u64,
    /// The whole prompt, cached reads and cache writes included.
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    /// The cost the source reported; when present it wins over the price table.
    pub cost_usd: Option<Usd>,
    pub tenant: Option<String>,
    pub feature: Option<String>,
    pub user: Option<String>,
    pub workflow: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Why a row was refused: the field at fault and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub field: Option<&'static str>,
    pub reason: String,
}

impl RowError {
    fn field(field: &'static str, reason: impl Into<String>) -> RowError {
        RowError {
            field: Some(field),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RowError {}

impl CostRow {
    /// A row with only the required fields set; the rest take their defaults.
    pub fn new(ts_ms: i64, model: impl Into<String>) -> CostRow {
        CostRow {
            ts_ms,
            provider: None,
            model: model.into(),
            request_id: None,
            requests: 1,
            input_tokens: 0,
            cached_input_tokens: 0,
            cache_write_tokens: 0,
            output_tokens: 0,
            cost_usd: None,
            tenant: None,
            feature: None,
            user: None,
            workflow: None,
            tags: BTreeMap::new(),
        }
    }

    /// Parses one native JSON line.
    pub fn from_json_line(line: &str) -> Result<CostRow, RowError> {
        // A byte-order mark some editors put at the start of a file is not part of the row.
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        // Most lines are well formed: read them straight into their fields. Anything the
        // typed reader does not take (a wrong type, a duplicate key, a bad value) is read
        // again as a JSON value, whose checks say exactly what is wrong.
        if let Some(row) = fast::parse(line) {
            return Ok(row);
        }
        let value: Value = serde_json::from_str(line).map_err(|e| RowError {
            field: None,
            reason: format!("not valid JSON: {e}"),
        })?;
        match value {
            Value::Object(map) => CostRow::from_json_object(&map),
            _ => Err(RowError {
                field: None,
                reason: "expected a JSON object".into(),
            }),
        }
    }

    /// Reads a native row from a JSON object. Unknown keys are ignored so that producers can
    /// add fields without breaking older readers.
    pub fn from_json_object(map: &Map<String, Value>) -> Result<CostRow, RowError> {
        let ts_text = match map.get("ts") {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => return Err(RowError::field("ts", "is required")),
            Some(_) => return Err(RowError::field("ts", "expected an RFC 3339 string")),
        };
        let ts: Timestamp = ts_text.parse().map_err(|e| {
            RowError::field(
                "ts",
                format!("`{ts_text}` is not RFC 3339 with an offset: {e}"),
            )
        })?;
        let model =
            opt_string(map, "model")?.ok_or_else(|| RowError::field("model", "is required"))?;
        let mut row = CostRow::new(ts.as_millisecond(), model);
        row.provider = opt_string(map, "provider")?;
        row.request_id = opt_string(map, "request_id")?;
        row.requests = opt_count(map, "requests")?.unwrap_or(1);
        if row.requests == 0 {
            return Err(RowError::field("requests", "must be at least 1"));
        }
        row.input_tokens = opt_count(map, "input_tokens")?.unwrap_or(0);
        row.cached_input_tokens = opt_count(map, "cached_input_tokens")?.unwrap_or(0);
        row.cache_write_tokens = opt_count(map, "cache_write_tokens")?.unwrap_or(0);
        row.output_tokens = opt_count(map, "output_tokens")?.unwrap_or(0);
        row.cost_usd = match map.get("cost_usd") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v > MAX_ROW_USD) => {
                return Err(RowError::field(
                    "cost_usd",
                    format!("{n} is more than one row can cost ({MAX_ROW_USD} USD)"),
                ));
            }
            Some(Value::Number(n)) => {
                let usd = n.as_f64().and_then(Usd::from_f64).ok_or_else(|| {
                    RowError::field("cost_usd", format!("{n} is not a usable amount"))
                })?;
                if usd < Usd::ZERO {
                    return Err(RowError::field("cost_usd", format!("{n} is negative")));
                }
                Some(usd)
            }
            Some(other) => {
                return Err(RowError::field(
                    "cost_usd",
                    format!("expected a number of dollars, got {}", type_name(other)),
                ));
            }
        };
        row.tenant = opt_string(map, "tenant")?;
        row.feature = opt_string(map, "feature")?;
        row.user = opt_string(map, "user")?;
        row.workflow = opt_string(map, "workflow")?;
        row.tags = match map.get("tags") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(tags)) => {
                let mut out = BTreeMap::new();
                for (k, v) in tags {
                    match v {
                        Value::String(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        other => {
                            return Err(RowError::field(
                                "tags",
                                format!("tag `{k}` must be a string, got {}", type_name(other)),
                            ));
                        }
                    }
                }
                out
            }
            Some(other) => {
                return Err(RowError::field(
                    "tags",
                    format!("expected a map of strings, got {}", type_name(other)),
                ));
            }
        };
        row.validate()?;
        Ok(row)
    }

    /// Checks the rules that hold between fields; sources that build rows in code call it too.
    pub fn validate(&self) -> Result<(), RowError> {
        for (field, v) in [
            ("requests", self.requests),
            ("input_tokens", self.input_tokens),
            ("cached_input_tokens", self.cached_input_tokens),
            ("cache_write_tokens", self.cache_write_tokens),
            ("output_tokens", self.output_tokens),
        ] {
            if v > MAX_COUNT {
                return Err(RowError::field(
                    field,
                    format!("{v} is more than one row can hold ({MAX_COUNT})"),
                ));
            }
        }
        if self.model.is_empty() {
            return Err(RowError::field("model", "is required"));
        }
        if self.requests == 0 {
            return Err(RowError::field("requests", "must be at least 1"));
        }
        if self.cached_input_tokens > self.input_tokens {
            return Err(RowError::field(
                "cached_input_tokens",
                format!(
                    "{} is more than input_tokens {} (input_tokens counts the whole prompt, \
                     cached part included)",
                    self.cached_input_tokens, self.input_tokens
                ),
            ));
        }
        if self
            .cached_input_tokens
            .saturating_add(self.cache_write_tokens)
            > self.input_tokens
        {
            return Err(RowError::field(
                "cache_write_tokens",
                format!(
                    "cached_input_tokens {} plus cache_write_tokens {} is more than \
                     input_tokens {}",
                    self.cached_input_tokens, self.cache_write_tokens, self.input_tokens
                ),
            ));
        }
        Ok(())
    }

    /// The value of one dimension; absent and empty are the same "no owner".
    pub fn dimension(&self, d: Dimension) -> Option<&str> {
        let v = match d {
            Dimension::Tenant => self.tenant.as_deref(),
            Dimension::Feature => self.feature.as_deref(),
            Dimension::Model => Some(self.model.as_str()),
            Dimension::Provider => self.provider.as_deref(),
            Dimension::User => self.user.as_deref(),
            Dimension::Workflow => self.workflow.as_deref(),
        };
        v.filter(|s| !s.is_empty())
    }

    /// A digest of everything the row says, independent of key order in its source. Two rows
    /// with the same request id and the same digest are one request logged twice.
    pub fn content_digest(&self) -> [u8; 32] {
        let canonical = serde_json::to_vec(self).expect("a cost row always serialises");
        Sha256::digest(&canonical).into()
    }
}

/// How a JSON value is named in an error (`expected a number, got a string`).
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional string; empty counts as absent, as the row format says.
fn opt_string(map: &Map<String, Value>, key: &'static str) -> Result<Option<String>, RowError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RowError::field(
            key,
            format!("expected a string, got {}", type_name(other)),
        )),
    }
}

/// An optional non-negative integer count.
fn opt_count(map: &Map<String, Value>, key: &'static str) -> Result<Option<u64>, RowError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else if n.as_i64().is_some() {
                Err(RowError::field(key, format!("{n} is negative")))
            } else if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f > 0.0) {
                Err(RowError::field(key, format!("{n} is too large")))
            } else {
                Err(RowError::field(key, format!("{n} is not a whole number")))
            }
        }
        Some(other) => Err(RowError::field(
            key,
            format!("expected a whole number, got {}", type_name(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_row_parses_with_defaults_applied() {
        let row = CostRow::from_json_line(
            r#"{"ts":"2026-03-02T10:00:00+01:00","model":"gpt-4o","tenant":"","tags":{"env":"prod"}}"#,
        )
        .unwrap();
        assert_eq!(row.ts_ms, 1_772_442_000_000);
        assert_eq!(row.requests, 1);
        assert_eq!(row.tenant, None);
        assert_eq!(row.tags.get("env").map(String::as_str), Some("prod"));
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let cases = [
            (r#"{"model":"m"}"#, "ts"),
            (r#"{"ts":"2026-03-02 10:00:00","model":"m"}"#, "ts"),
            (r#"{"ts":"2026-03-02T10:00:00Z"}"#, "model"),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","output_tokens":-3}"#,
                "output_tokens",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","input_tokens":"12"}"#,
                "input_tokens",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","requests":0}"#,
                "requests",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":-1}"#,
                "cost_usd",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","tenant":7}"#,
                "tenant",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","input_tokens":18000000000000000000}"#,
                "input_tokens",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","output_tokens":1e20}"#,
                "output_tokens",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":9000000000}"#,
                "cost_usd",
            ),
            (
                r#"{"ts":"2026-03-02T10:00:00Z","model":"m","input_tokens":5,"cached_input_tokens":6}"#,
                "cached_input_tokens",
            ),
        ];
        for (line, field) in cases {
            let err = CostRow::from_json_line(line).unwrap_err();
            assert_eq!(err.field, Some(field), "{line}: {err}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_row() {
        assert!(
            CostRow::from_json_line("\u{feff}{\"ts\":\"2026-03-02T10:00:00Z\",\"model\":\"m\"}")
                .is_ok()
        );
    }

    #[test]
    fn digest_ignores_key_order_but_not_content() {
        let a = CostRow::from_json_line(
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","output_tokens":1}"#,
        );
        let b = CostRow::from_json_line(
            r#"{"output_tokens":1,"model":"m","ts":"2026-03-02T10:00:00Z"}"#,
        );
        let c = CostRow::from_json_line(
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","output_tokens":2}"#,
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert_eq!(a.content_digest(), b.content_digest());
        assert_ne!(a.content_digest(), c.content_digest());
    }
}
