//! OpenTelemetry traces in OTLP/JSON (`ExportTraceServiceRequest`: a file exporter's JSON
//! lines, one document, or the body of `POST /v1/traces`), read with the GenAI semantic
//! conventions.
//!
//! Which spans are rows: a span is a model call when it carries `gen_ai.*` attributes and its
//! `gen_ai.operation.name` is not an agent or tool step (`invoke_agent`, `create_agent`,
//! `execute_tool`), whose usage, when present, repeats the calls beneath it. Other spans are
//! skipped and counted, not set aside: a trace is mostly spans that are not model calls. A
//! model call without a model is set aside, since it cannot be priced.
//!
//! Identity: the request id is `traceId:spanId`. It is present on every span, unique per call,
//! and the same when an exporter sends a batch again, so a retried export stores nothing new.
//! `gen_ai.response.id` is kept as tag `response_id`: it is missing on failed calls and not
//! unique across providers.
//!
//! Tokens: the conventions count `gen_ai.usage.input_tokens` with the cache reads and writes
//! inside it, as we do (case 01); the older spellings of each attribute are read when the
//! current one is absent. Cost: the conventions have none, so rows are priced from the table
//! by `gen_ai.response.model` (else `gen_ai.request.model`); a non-standard `gen_ai.usage.cost`
//! in USD is taken when a span carries it.

use super::{Record, documents, type_name, usd};
use crate::row::CostRow;
use crate::source::mapping::{Locator, Mapping, Subject};
use serde_json::{Map, Number, Value};

/// Operations that are not one model call.
const NOT_CALLS: [&str; 3] = ["invoke_agent", "create_agent", "execute_tool"];

/// The attribute names read for each quantity, current spelling first.
const INPUT: [&str; 2] = ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"];
const OUTPUT: [&str; 2] = [
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
];
const CACHE_READ: [&str; 3] = [
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
];
const CACHE_WRITE: [&str; 3] = [
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
];

/// The spans of a text, as records, and how many spans were skipped as not model calls.
pub(crate) fn records(text: &str, mapping: &Mapping) -> (Vec<Record>, u64) {
    let docs = documents(text);
    let one_document = docs.len() == 1;
    let mapping = default_mapping().overlay(mapping);
    let mapping = &mapping;
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut ordinal = 0u64;
    for (line, doc_place, doc) in docs {
        // A record's position: its line in JSON lines, else its span's number in the document
        // (skipped spans counted, so the number finds the span).
        let mut push = |ordinal: u64, place: String, row: Result<CostRow, String>, raw: String| {
            out.push(Record {
                line: if one_document { ordinal } else { line },
                place,
                row,
                raw,
            })
        };
        let doc = match doc {
            Ok(Value::Object(d)) => d,
            Ok(other) => {
                let why = format!("expected an OTLP export object, got {}", type_name(&other));
                ordinal += 1;
                push(ordinal, doc_place, Err(why), other.to_string());
                continue;
            }
            Err(e) => {
                ordinal += 1;
                push(ordinal, doc_place, Err(e), String::new());
                continue;
            }
        };
        // `{}` is a valid, empty export request (proto3 JSON leaves empty lists out).
        if doc.is_empty() {
            continue;
        }
        let Some(Value::Array(resources)) = doc.get("resourceSpans") else {
            let why = "field `resourceSpans`: expected an array".to_string();
            ordinal += 1;
            push(ordinal, doc_place, Err(why), Value::Object(doc).to_string());
            continue;
        };
        let prefix = if doc_place.is_empty() {
            String::new()
        } else {
            format!("{doc_place} ")
        };
        for (r, rs) in resources.iter().enumerate() {
            let resource = rs
                .get("resource")
                .and_then(|res| res.get("attributes"))
                .map(attributes)
                .unwrap_or_default();
            let scopes = rs.get("scopeSpans").and_then(Value::as_array);
            for (s, scope) in scopes.into_iter().flatten().enumerate() {
                let spans = scope.get("spans").and_then(Value::as_array);
                for (k, span) in spans.into_iter().flatten().enumerate() {
                    ordinal += 1;
                    let place = format!("{prefix}resourceSpans[{r}].scopeSpans[{s}].spans[{k}]");
                    let Value::Object(span) = span else {
                        let why = format!("expected a span object, got {}", type_name(span));
                        push(ordinal, place, Err(why), span.to_string());
                        continue;
                    };
                    match row(span, &resource, mapping) {
                        Ok(None) => skipped += 1,
                        Ok(Some(row)) => push(ordinal, place, Ok(row), String::new()),
                        Err(e) => push(
                            ordinal,
                            place,
                            Err(e),
                            Value::Object(span.clone()).to_string(),
                        ),
                    }
                }
            }
        }
    }
    (out, skipped)
}

/// OTLP's list of `{key, value: AnyValue}` as plain JSON: `intValue` (a string in OTLP/JSON)
/// becomes a number, `arrayValue` a list, `kvlistValue` an object.
pub(crate) fn attributes(list: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for kv in list.as_array().into_iter().flatten() {
        if let (Some(Value::String(k)), Some(v)) = (kv.get("key"), kv.get("value")) {
            out.insert(k.clone(), any_value(v));
        }
    }
    out
}

fn any_value(v: &Value) -> Value {
    let Some(o) = v.as_object() else {
        return Value::Null;
    };
    if let Some(s) = o.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = o.get("intValue") {
        return match i {
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(|n| Value::Number(n.into()))
                .unwrap_or_else(|_| Value::String(s.clone())),
            other => other.clone(),
        };
    }
    if let Some(d) = o.get("doubleValue") {
        return d.clone();
    }
    if let Some(b) = o.get("boolValue") {
        return b.clone();
    }
    if let Some(a) = o.get("arrayValue") {
        let items = a.get("values").and_then(Value::as_array);
        return Value::Array(items.into_iter().flatten().map(any_value).collect());
    }
    if let Some(kv) = o.get("kvlistValue") {
        return Value::Object(attributes(kv.get("values").unwrap_or(&Value::Null)));
    }
    if let Some(b) = o.get("bytesValue") {
        return b.clone();
    }
    Value::Null
}

/// One span to a row, `None` when it is not a model call. `mapping` is the whole mapping,
/// defaults included.
fn row(
    span: &Map<String, Value>,
    resource: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Option<CostRow>, String> {
    let attrs = span.get("attributes").map(attributes).unwrap_or_default();
    if !attrs.keys().any(|k| k.starts_with("gen_ai.")) {
        return Ok(None);
    }
    let operation = text(&attrs, "gen_ai.operation.name")?;
    if operation
        .as_deref()
        .is_some_and(|op| NOT_CALLS.contains(&op))
    {
        return Ok(None);
    }
    let requested = text(&attrs, "gen_ai.request.model")?;
    let answered = text(&attrs, "gen_ai.response.model")?;
    let model = answered.clone().or(requested.clone()).ok_or(
        "attribute `gen_ai.request.model`: is required (nor is there a `gen_ai.response.model`); \
         a model call without a model cannot be priced",
    )?;
    let ts = start_ms(span)?;
    let mut row = CostRow::new(ts, model);
    row.provider = match text(&attrs, "gen_ai.provider.name")? {
        Some(p) => Some(p),
        None => text(&attrs, "gen_ai.system")?,
    };
    let trace = span.get("traceId").and_then(Value::as_str).unwrap_or("");
    let span_id = span.get("spanId").and_then(Value::as_str).unwrap_or("");
    if !trace.is_empty() && !span_id.is_empty() {
        row.request_id = Some(format!("{trace}:{span_id}"));
    }
    let (input, output) = (count(&attrs, &INPUT)?, count(&attrs, &OUTPUT)?);
    if input.is_none() && output.is_none() && attrs.get("gen_ai.usage.cost").is_none() {
        // Zero tokens would price the call at $0: its cost is unknown, so it is set aside.
        return Err(
            "no `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` or \
             `gen_ai.usage.cost`: a model call without its usage cannot be priced"
                .into(),
        );
    }
    row.input_tokens = input.unwrap_or(0);
    row.output_tokens = output.unwrap_or(0);
    row.cached_input_tokens = count(&attrs, &CACHE_READ)?.unwrap_or(0);
    row.cache_write_tokens = count(&attrs, &CACHE_WRITE)?.unwrap_or(0);
    row.cost_usd = match attrs.get("gen_ai.usage.cost") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(usd("gen_ai.usage.cost", n.as_f64().unwrap_or(f64::NAN))?),
        Some(other) => {
            return Err(format!(
                "attribute `gen_ai.usage.cost`: expected a number of dollars, got {}",
                type_name(other)
            ));
        }
    };
    if let Some(id) = text(&attrs, "gen_ai.response.id")? {
        row.tags.insert("response_id".into(), id);
    }
    if let Some(op) = operation {
        row.tags.insert("operation".into(), op);
    }
    if let (Some(req), Some(ans)) = (requested, answered)
        && req != ans
    {
        row.tags.insert("request_model".into(), req);
    }
    mapping.apply(
        &mut row,
        &Subject {
            record: Some(span),
            tags: Vec::new(),
            span: Some(&attrs),
            resource: Some(resource),
        },
    )?;
    Ok(Some(row))
}

/// Where OpenTelemetry keeps callers when nothing else is configured: `tenant.id` and
/// `user.id` (the older `enduser.id` too), on the span first, then on the resource.
fn default_mapping() -> Mapping {
    use crate::row::Dimension;
    let both = |names: &[&str]| -> Vec<Locator> {
        let spans = names.iter().map(|n| Locator::Span(n.to_string()));
        let resources = names.iter().map(|n| Locator::Resource(n.to_string()));
        spans.chain(resources).collect()
    };
    let mut m = Mapping::default();
    m.set(Dimension::Tenant, both(&["tenant.id"]));
    m.set(Dimension::User, both(&["user.id", "enduser.id"]));
    m
}

fn text(attrs: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "attribute `{key}`: expected a stringValue, got {}",
            type_name(other)
        )),
    }
}

/// The first of `keys` present, as a non-negative whole number (`intValue`, or a whole
/// `doubleValue`).
fn count(attrs: &Map<String, Value>, keys: &[&str]) -> Result<Option<u64>, String> {
    let Some((key, v)) = keys.iter().find_map(|k| attrs.get(*k).map(|v| (k, v))) else {
        return Ok(None);
    };
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => whole(n)
            .map(Some)
            .ok_or_else(|| format!("attribute `{key}`: {n} is not a non-negative whole number")),
        other => Err(format!(
            "attribute `{key}`: expected an intValue, got {}",
            type_name(other)
        )),
    }
}

fn whole(n: &Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e18)
            .map(|f| f as u64)
    })
}

/// `startTimeUnixNano`, a string of digits in OTLP/JSON (a number is read too), in ms.
fn start_ms(span: &Map<String, Value>) -> Result<i64, String> {
    let key = "startTimeUnixNano";
    let nanos: Option<u128> = match span.get(key) {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_u64().map(u128::from),
        None | Some(Value::Null) => return Err(format!("field `{key}`: is required")),
        Some(other) => {
            return Err(format!(
                "field `{key}`: expected nanoseconds, got {}",
                type_name(other)
            ));
        }
    };
    nanos
        .filter(|n| *n > 0)
        .and_then(|n| i64::try_from(n / 1_000_000).ok())
        .filter(|ms| jiff::Timestamp::from_millisecond(*ms).is_ok())
        .ok_or_else(|| format!("field `{key}`: is not a time in Unix nanoseconds"))
}

#[cfg(test)]
mod tests {
    use super::super::{Format, parse, parse_mapped};
    use super::*;

    const TRACES: &str = include_str!("../../../tests/fixtures/formats/otel/genai_traces.json");

    #[test]
    fn model_call_spans_become_rows_and_the_rest_are_skipped() {
        let b = parse(Format::Otel, TRACES, "traces.json", "cli");
        assert_eq!(b.skipped, 2, "the agent span and the HTTP span");
        let mut first = CostRow::new(1_772_445_600_000, "gpt-4o-2024-08-06");
        first.request_id = Some("5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174".into());
        first.provider = Some("openai".into());
        (
            first.input_tokens,
            first.cached_input_tokens,
            first.output_tokens,
        ) = (2006, 1920, 300);
        first.tenant = Some("acme".into());
        first.user = Some("u-1".into());
        for (k, v) in [
            ("operation", "chat"),
            ("request_model", "gpt-4o"),
            ("response_id", "chatcmpl-9J3uIL87gldCFtiIbyaOvTeYBRA3l"),
        ] {
            first.tags.insert(k.into(), v.into());
        }
        assert_eq!(b.rows[0].0, first);
        let got: Vec<(u64, &str)> = b
            .rows
            .iter()
            .map(|(r, p)| (p.line, r.model.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (1, "gpt-4o-2024-08-06"),
                (4, "acme-finetune-v7"),
                (7, "claude-sonnet-4-20250514")
            ]
        );
        // The older spellings, and the tenant from the second resource.
        let old = &b.rows[2].0;
        assert_eq!(old.provider.as_deref(), Some("anthropic"));
        assert_eq!(
            (
                old.input_tokens,
                old.cached_input_tokens,
                old.cache_write_tokens,
                old.output_tokens
            ),
            (1200, 1000, 150, 40)
        );
        assert_eq!(
            (old.tenant.as_deref(), old.user.as_deref()),
            (Some("globex"), Some("svc-digest"))
        );
        assert_eq!(old.ts_ms, 1_772_445_610_500);
        assert!(
            b.rows.iter().all(|(r, _)| r.cost_usd.is_none()),
            "priced by the table"
        );
        let aside: Vec<(u64, &str)> = b
            .malformed
            .iter()
            .map(|a| (a.line, a.reason.as_str()))
            .collect();
        assert_eq!(aside.len(), 2, "{aside:?}");
        assert_eq!(aside[0].0, 5);
        assert!(aside[0].1.starts_with(
            "resourceSpans[0].scopeSpans[0].spans[4]: attribute `gen_ai.request.model`: is required"
        ), "{}", aside[0].1);
        assert_eq!(
            aside[1],
            (
                6,
                "resourceSpans[0].scopeSpans[0].spans[5]: attribute `gen_ai.usage.input_tokens`: expected an intValue, got a string"
            )
        );
    }

    #[test]
    fn configured_attributes_name_feature_workflow_and_tenant() {
        let mut m = Mapping::default();
        m.add_spec("feature=span:app.feature").unwrap();
        m.add_spec("workflow=span:app.workflow").unwrap();
        m.add_spec("tenant=resource:service.name").unwrap();
        let b = parse_mapped(Format::Otel, &m, TRACES, "t", "cli");
        let r = &b.rows[0].0;
        assert_eq!(
            (
                r.tenant.as_deref(),
                r.feature.as_deref(),
                r.workflow.as_deref(),
                r.user.as_deref()
            ),
            (
                Some("support-api"),
                Some("support-bot"),
                Some("ticket-triage"),
                Some("u-1")
            )
        );
        assert_eq!(b.rows[2].0.feature, None);
    }

    #[test]
    fn json_lines_of_exports_keep_their_line() {
        let one: Value = serde_json::from_str(TRACES).unwrap();
        let text = format!("{}\n{}\n", one, one);
        let b = parse(Format::Otel, &text, "t", "cli");
        assert_eq!(b.rows.len(), 6);
        assert_eq!(b.skipped, 4);
        assert_eq!(b.rows[3].1.line, 2);
        assert_eq!(b.malformed[3].line, 2);
    }

    #[test]
    fn any_values_become_plain_json() {
        let list: Value = serde_json::from_str(
            r#"[{"key":"a","value":{"stringValue":"x"}},{"key":"b","value":{"intValue":"12"}},
                {"key":"c","value":{"doubleValue":0.5}},{"key":"d","value":{"boolValue":true}},
                {"key":"e","value":{"arrayValue":{"values":[{"stringValue":"p"},{"intValue":3}]}}},
                {"key":"f","value":{}}]"#,
        )
        .unwrap();
        let m = attributes(&list);
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"a":"x","b":12,"c":0.5,"d":true,"e":["p",3],"f":null})
        );
    }
}

#[cfg(test)]
mod unknown_usage {
    use super::super::{Format, parse};

    #[test]
    fn a_model_call_without_usage_is_set_aside_and_an_empty_export_is_nothing() {
        let span = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"t1","spanId":"s1","name":"chat gpt-4o","startTimeUnixNano":"1772445600000000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}}]}]}]}]}"#;
        let b = parse(Format::Otel, span, "t.json", "cli");
        assert!(b.rows.is_empty());
        assert_eq!(b.malformed.len(), 1);
        assert!(
            b.malformed[0]
                .reason
                .contains("without its usage cannot be priced"),
            "{}",
            b.malformed[0].reason
        );
        let empty = parse(Format::Otel, "{}", "e.json", "cli");
        assert!(empty.rows.is_empty() && empty.malformed.is_empty());
    }
}
