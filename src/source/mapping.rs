//! Where a source's records keep who asked: the per-source attribution mapping.
//!
//! Each format fills `tenant`, `feature`, `user` and `workflow` from the places its source
//! usually keeps them (see the README's format tables). A source whose callers are named
//! elsewhere says so in its configuration, one list of places per field, tried in order:
//!
//! ```yaml
//! attribution:
//!   tenant: [metadata.user_api_key_team_alias, team_id]   # a field, or a path into one
//!   feature: tag:feature                                  # a request tag `feature:X`
//!   workflow: span:app.workflow                           # an OpenTelemetry span attribute
//!   user: resource:enduser.id                             # ... or resource attribute
//! ```
//!
//! A field named here no longer takes the format's default: its first place that holds a value
//! wins, and when none does the field is empty, so the coverage figures show the gap instead
//! of hiding it behind a default the operator meant to replace. Fields not named keep their
//! default. A value that is an object or a list is not a name: the record is set aside.

use crate::row::{CostRow, Dimension};
use serde_json::{Map, Value};
use std::fmt;

/// The fields a mapping may set.
pub const MAPPED: [Dimension; 4] = [
    Dimension::Tenant,
    Dimension::Feature,
    Dimension::User,
    Dimension::Workflow,
];

/// One place a value may sit in a source record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locator {
    /// A top-level field or a dotted path into nested objects (`metadata.team_alias`). A step
    /// that holds a string of JSON (as LiteLLM writes `metadata`) is decoded first.
    Field(Vec<String>),
    /// A tag: LiteLLM's request tag `NAME:value`, or a native row's `tags.NAME`.
    Tag(String),
    /// An OpenTelemetry span attribute, by its full name (`app.workflow`).
    Span(String),
    /// An OpenTelemetry resource attribute (`service.name`).
    Resource(String),
}

impl Locator {
    /// Reads `field:PATH` (or a bare path), `tag:NAME`, `span:ATTR` or `resource:ATTR`.
    pub fn parse(text: &str) -> Result<Locator, String> {
        let text = text.trim();
        let (kind, rest) = match text.split_once(':') {
            Some((k, r)) if ["field", "tag", "span", "resource"].contains(&k) => (k, r.trim()),
            // `attr:x` is a misspelt kind, not a field named so.
            Some((k, _)) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphabetic()) => {
                return Err(format!(
                    "`{text}`: `{k}:` is not a kind of place (field:, tag:, span:, resource:)"
                ));
            }
            _ => ("field", text),
        };
        if rest.is_empty() {
            return Err(format!("`{text}` names no field, tag or attribute"));
        }
        Ok(match kind {
            "tag" => Locator::Tag(rest.to_string()),
            "span" => Locator::Span(rest.to_string()),
            "resource" => Locator::Resource(rest.to_string()),
            _ => {
                let steps: Vec<String> = rest.split('.').map(str::to_string).collect();
                if steps.iter().any(String::is_empty) {
                    return Err(format!("`{rest}` has an empty step in its path"));
                }
                Locator::Field(steps)
            }
        })
    }

    /// The kind's name, as errors and the README use it.
    pub fn kind(&self) -> &'static str {
        match self {
            Locator::Field(_) => "field",
            Locator::Tag(_) => "tag",
            Locator::Span(_) => "span",
            Locator::Resource(_) => "resource",
        }
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Field(p) => f.write_str(&p.join(".")),
            Locator::Tag(n) => write!(f, "tag:{n}"),
            Locator::Span(n) => write!(f, "span:{n}"),
            Locator::Resource(n) => write!(f, "resource:{n}"),
        }
    }
}

/// A source's attribution mapping: for each field it names, the places to try in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub fields: Vec<(Dimension, Vec<Locator>)>,
}

/// What one record offers a mapping to look in.
#[derive(Default)]
pub struct Subject<'a> {
    /// The record itself (a spend log, a span, a usage result).
    pub record: Option<&'a Map<String, Value>>,
    /// Its tags as (name, value) pairs.
    pub tags: Vec<(String, String)>,
    pub span: Option<&'a Map<String, Value>>,
    pub resource: Option<&'a Map<String, Value>>,
}

impl Mapping {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Reads `FIELD=PLACE[,PLACE...]`, as `ingest --map` takes it, into this mapping; a field
    /// given twice keeps the later places.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), String> {
        let (field, places) = spec
            .split_once('=')
            .ok_or_else(|| format!("`{spec}`: write FIELD=PLACE, e.g. tenant=metadata.team"))?;
        let dim = parse_field(field.trim())?;
        let locators = places
            .split(',')
            .map(Locator::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("`{spec}`: {e}"))?;
        self.set(dim, locators);
        Ok(())
    }

    /// Sets the places of one field, replacing any it had.
    pub fn set(&mut self, dim: Dimension, locators: Vec<Locator>) {
        self.fields.retain(|(d, _)| *d != dim);
        self.fields.push((dim, locators));
    }

    /// This mapping with `over`'s fields laid on top.
    pub fn overlay(&self, over: &Mapping) -> Mapping {
        let mut out = self.clone();
        for (d, l) in &over.fields {
            out.set(*d, l.clone());
        }
        out
    }

    /// Sets the row's mapped fields from the record.
    pub fn apply(&self, row: &mut CostRow, subject: &Subject<'_>) -> Result<(), String> {
        for (dim, places) in &self.fields {
            let mut found = None;
            for place in places {
                if let Some(v) = lookup(place, subject)
                    .map_err(|e| format!("attribution `{dim}` from `{place}`: {e}"))?
                {
                    found = Some(v);
                    break;
                }
            }
            let slot = match dim {
                Dimension::Tenant => &mut row.tenant,
                Dimension::Feature => &mut row.feature,
                Dimension::User => &mut row.user,
                _ => &mut row.workflow,
            };
            *slot = found;
        }
        Ok(())
    }
}

/// One of the fields a mapping may set, by name.
pub fn parse_field(name: &str) -> Result<Dimension, String> {
    Dimension::parse(name)
        .filter(|d| MAPPED.contains(d))
        .ok_or_else(|| {
            format!("`{name}` is not an attribution field (tenant, feature, user, workflow)")
        })
}

fn lookup(place: &Locator, s: &Subject<'_>) -> Result<Option<String>, String> {
    match place {
        Locator::Field(path) => match s.record {
            Some(record) => walk(record, path),
            None => Ok(None),
        },
        Locator::Tag(name) => Ok(s
            .tags
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.clone())),
        Locator::Span(key) => attribute(s.span, key),
        Locator::Resource(key) => attribute(s.resource, key),
    }
}

fn attribute(attrs: Option<&Map<String, Value>>, key: &str) -> Result<Option<String>, String> {
    match attrs.and_then(|a| a.get(key)) {
        Some(v) => name_of(v),
        None => Ok(None),
    }
}

/// Follows `path` from `map`; a step that holds a string of JSON (LiteLLM's `metadata`) is
/// read as the object it holds. A path that leads nowhere is no value, not an error.
fn walk(map: &Map<String, Value>, path: &[String]) -> Result<Option<String>, String> {
    let Some((step, rest)) = path.split_first() else {
        return Ok(None);
    };
    let Some(v) = map.get(step) else {
        return Ok(None);
    };
    if rest.is_empty() {
        return name_of(v);
    }
    match v {
        Value::Object(inner) => walk(inner, rest),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(inner)) => walk(&inner, rest),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

/// A value as a name: text as it is, numbers and booleans as written; null and blank are none.
fn name_of(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(_) => Err("is a list, not a name".into()),
        Value::Object(_) => Err("is an object, not a name".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn places_parse_by_their_prefix() {
        let cases = [
            (
                "metadata.team",
                Locator::Field(vec!["metadata".into(), "team".into()]),
            ),
            ("field:team_id", Locator::Field(vec!["team_id".into()])),
            ("tag:feature", Locator::Tag("feature".into())),
            ("span:app.workflow", Locator::Span("app.workflow".into())),
            (
                "resource:service.name",
                Locator::Resource("service.name".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Locator::parse(text).unwrap(), want, "{text}");
            assert_eq!(
                Locator::parse(text).unwrap().to_string(),
                text.trim_start_matches("field:")
            );
        }
        assert!(Locator::parse("tag:").is_err());
        assert!(Locator::parse("attr:team").is_err());
        assert!(Locator::parse("metadata..team").is_err());
    }

    #[test]
    fn the_first_place_with_a_value_wins_and_a_named_field_loses_its_default() {
        let mut m = Mapping::default();
        m.add_spec("tenant=metadata.missing,metadata.team").unwrap();
        m.add_spec("feature=tag:feature").unwrap();
        m.add_spec("workflow=span:app.workflow").unwrap();
        let record = obj(json!({"metadata": "{\"team\": 42}"}));
        let span = obj(json!({"app.workflow": "nightly"}));
        let subject = Subject {
            record: Some(&record),
            tags: vec![("env".into(), "prod".into())],
            span: Some(&span),
            resource: None,
        };
        let mut row = CostRow::new(0, "m");
        row.feature = Some("default".into());
        row.user = Some("kept".into());
        m.apply(&mut row, &subject).unwrap();
        assert_eq!(row.tenant.as_deref(), Some("42"));
        assert_eq!(row.feature, None);
        assert_eq!(row.workflow.as_deref(), Some("nightly"));
        assert_eq!(row.user.as_deref(), Some("kept"));
    }

    #[test]
    fn an_object_is_not_a_name() {
        let mut m = Mapping::default();
        m.add_spec("tenant=metadata").unwrap();
        let record = obj(json!({"metadata": {"team": "a"}}));
        let subject = Subject {
            record: Some(&record),
            ..Subject::default()
        };
        let err = m.apply(&mut CostRow::new(0, "m"), &subject).unwrap_err();
        assert_eq!(
            err,
            "attribution `tenant` from `metadata`: is an object, not a name"
        );
        assert!(m.add_spec("model=x").is_err());
        assert!(m.add_spec("tenant").is_err());
    }
}
