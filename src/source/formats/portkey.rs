//! Portkey's log export: JSON lines (or a JSON array), one object per logged request, with
//! the columns the export was asked for: `id`, `trace_id`, `created_at`, `request`,
//! `response`, `ai_org`, `ai_model`, `req_units`, `res_units`, `cost`, `cost_currency`,
//! `cache_status`, `stream_mode`, `retry_success_count`, `metadata`, ...
//!
//! Money: `cost` is in **cents** of USD. It is read from the number as written, digit by
//! digit, so 0.42 cents is exactly 4,200,000 nano-dollars; a currency other than USD is set
//! aside, never converted.
//!
//! Tokens: Portkey answers in OpenAI's shape, so `req_units` is the whole prompt with the
//! cached part inside it (case 01). The cached reads and cache writes come from the response
//! body's usage (`prompt_tokens_details.cached_tokens`, else `cache_read_input_tokens`;
//! `cache_creation_input_tokens`).
//!
//! Attribution: the metadata is free-form apart from `_user`, Portkey's own key for the end
//! user. By default `tenant` is metadata `tenant` (else `team`), `feature`, `workflow` are the
//! metadata keys of those names; a source's `attribution` mapping names other keys.

use super::{Record, object_records, opt_count, opt_str, text_instant, type_name};
use crate::money::Usd;
use crate::row::{CostRow, MAX_ROW_USD};
use crate::source::mapping::{Mapping, Subject};
use serde_json::{Map, Value};

pub(crate) fn records(text: &str, mapping: &Mapping) -> Vec<Record> {
    object_records(text, "a log object", |obj| row(obj, mapping))
}

/// One exported log to a row.
pub fn row(obj: &Map<String, Value>, mapping: &Mapping) -> Result<CostRow, String> {
    let ts = text_instant(obj, "created_at")?;
    let model = opt_str(obj, "ai_model")?.ok_or("field `ai_model`: is required")?;
    let mut row = CostRow::new(ts, model);
    let response = body(obj, "response")?;
    row.request_id = match opt_str(obj, "id")? {
        Some(id) => Some(id),
        None => response
            .and_then(|b| b.get("id"))
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    row.provider = opt_str(obj, "ai_org")?;
    if let Some(currency) = opt_str(obj, "cost_currency")?
        && !currency.eq_ignore_ascii_case("usd")
    {
        return Err(format!(
            "field `cost_currency`: `{currency}` is not USD; amounts are not converted"
        ));
    }
    row.cost_usd = cents(obj, "cost")?;

    let usage = response
        .and_then(|b| b.get("usage"))
        .and_then(Value::as_object);
    row.input_tokens = match opt_count(obj, "req_units")? {
        Some(n) => n,
        None => usage
            .map(|u| opt_count(u, "prompt_tokens"))
            .transpose()
            .map_err(|e| format!("response.body.usage: {e}"))?
            .flatten()
            .unwrap_or(0),
    };
    row.output_tokens = match opt_count(obj, "res_units")? {
        Some(n) => n,
        None => usage
            .map(|u| opt_count(u, "completion_tokens"))
            .transpose()
            .map_err(|e| format!("response.body.usage: {e}"))?
            .flatten()
            .unwrap_or(0),
    };
    if let Some(u) = usage {
        let in_usage = |e: String| format!("response.body.usage: {e}");
        let details = u
            .get("prompt_tokens_details")
            .and_then(Value::as_object)
            .map(|d| opt_count(d, "cached_tokens"))
            .transpose()
            .map_err(in_usage)?
            .flatten();
        let reads = opt_count(u, "cache_read_input_tokens").map_err(in_usage)?;
        row.cached_input_tokens = details.or(reads).unwrap_or(0);
        row.cache_write_tokens = opt_count(u, "cache_creation_input_tokens")
            .map_err(in_usage)?
            .unwrap_or(0);
    }

    let cache_hit =
        opt_str(obj, "cache_status")?.is_some_and(|c| c.to_ascii_uppercase().contains("HIT"));
    super::fields::zero_is_no_price(&mut row, cache_hit);

    let metadata = match obj.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        // Some exports write the metadata as a string of JSON.
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Some(m),
            _ => return Err("field `metadata`: a string that is not a JSON object".into()),
        },
        Some(other) => {
            return Err(format!(
                "field `metadata`: expected an object, got {}",
                type_name(other)
            ));
        }
    };
    let meta = |key: &str| -> Result<Option<String>, String> {
        match &metadata {
            Some(m) => opt_str(m, key).map_err(|e| format!("metadata: {e}")),
            None => Ok(None),
        }
    };
    row.user = meta("_user")?;
    row.tenant = match meta("tenant")? {
        Some(t) => Some(t),
        None => meta("team")?,
    };
    row.feature = meta("feature")?;
    row.workflow = meta("workflow")?;

    // What the coverage split by kind reads: streamed, retried, served from Portkey's cache.
    // Exports write it as "TRUE"/"FALSE", a boolean or 0/1.
    let stream = match obj.get("stream_mode") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Some("false".into()),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Some("true".into()),
        Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
        Some(other) => {
            return Err(format!(
                "field `stream_mode`: expected true or false, got {}",
                type_name(other)
            ));
        }
    };
    if let Some(s) = stream {
        row.tags.insert("stream".into(), s);
    }
    if let Some(n) = opt_count(obj, "retry_success_count")?
        && n > 0
    {
        row.tags.insert("attempt".into(), (n + 1).to_string());
    }
    for key in ["cache_status", "trace_id"] {
        if let Some(v) = opt_str(obj, key)? {
            row.tags.insert(key.into(), v);
        }
    }

    if !mapping.is_empty() {
        let tags: Vec<(String, String)> = row.tags.clone().into_iter().collect();
        let mut record = obj.clone();
        if let Some(m) = metadata {
            record.insert("metadata".into(), Value::Object(m));
        }
        mapping.apply(
            &mut row,
            &Subject {
                record: Some(&record),
                tags,
                ..Subject::default()
            },
        )?;
    }
    Ok(row)
}

/// `request` or `response` is `{ "body": {...} }` in the export (the body may be a string of
/// JSON); an absent or unreadable body only means no usage details.
fn body<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(o.get("body").and_then(Value::as_object)),
        Some(Value::String(_)) => Ok(None),
        Some(other) => Err(format!(
            "field `{key}`: expected an object, got {}",
            type_name(other)
        )),
    }
}

/// An amount in cents of USD, read exactly from its decimal text. Absent or null is unknown,
/// never zero.
fn cents(obj: &Map<String, Value>, key: &str) -> Result<Option<Usd>, String> {
    let text = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => {
            return Err(format!(
                "field `{key}`: expected a number of cents, got {}",
                type_name(other)
            ));
        }
    };
    let nanos = cents_to_nanos(&text)
        .ok_or_else(|| format!("field `{key}`: `{text}` is not a number of cents"))?;
    if nanos < 0 {
        return Err(format!("field `{key}`: {text} is negative"));
    }
    if nanos as f64 / 1e9 > MAX_ROW_USD {
        return Err(format!(
            "field `{key}`: {text} cents is more than one row can cost ({MAX_ROW_USD} USD)"
        ));
    }
    Ok(Some(Usd::from_nanos(nanos)))
}

/// Decimal cents (`0.42`, `12`, `1.5e-3`) to nano-dollars: one cent is 10^7 nano-dollars.
/// Digits past the nano-dollar are rounded half away from zero.
fn cents_to_nanos(text: &str) -> Option<i64> {
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (neg, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // value = 0.[int frac] shifted: nanos = int.frac x 10^(7 + exp)
    let all: String = format!("{int}{frac}");
    let shift = 7 + exp - frac.len() as i32;
    let mut n: i128 = 0;
    for c in all.chars() {
        n = n.checked_mul(10)?.checked_add(c.to_digit(10)? as i128)?;
        if n > i64::MAX as i128 * 10 {
            return None;
        }
    }
    let n = if shift >= 0 {
        n.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        let div = 10i128.checked_pow((-shift) as u32).unwrap_or(i128::MAX);
        (n + div / 2) / div
    };
    let n = i64::try_from(n).ok()?;
    Some(if neg { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::super::{Format, parse};
    use super::*;

    const EXPORT: &str = include_str!("../../../tests/fixtures/formats/portkey/export.jsonl");

    #[test]
    fn the_export_becomes_exact_rows_with_costs_from_cents() {
        let b = parse(Format::Portkey, EXPORT, "export.jsonl", "cli");
        let mut first = CostRow::new(1_772_445_600_000, "gpt-4o");
        first.request_id = Some("pk-log-0001".into());
        first.provider = Some("openai".into());
        (
            first.input_tokens,
            first.cached_input_tokens,
            first.output_tokens,
        ) = (2006, 1920, 300);
        // 0.5615 cents
        first.cost_usd = Some(Usd::from_nanos(5_615_000));
        first.user = Some("user-123".into());
        first.tenant = Some("acme".into());
        first.feature = Some("support-bot".into());
        for (k, v) in [
            ("stream", "false"),
            ("cache_status", "MISS"),
            ("trace_id", "tr-support-77"),
        ] {
            first.tags.insert(k.into(), v.into());
        }
        assert_eq!(b.rows[0].0, first);

        let second = &b.rows[1].0;
        assert_eq!(second.ts_ms, 1_772_445_605_000);
        // 0.42 cents is $0.0042 exactly.
        assert_eq!(second.cost_usd, Some(Usd::from_nanos(4_200_000)));
        assert_eq!(
            (
                second.input_tokens,
                second.cached_input_tokens,
                second.cache_write_tokens
            ),
            (1200, 1000, 150)
        );
        assert_eq!(
            (
                second.user.as_deref(),
                second.tenant.as_deref(),
                second.workflow.as_deref()
            ),
            (Some("user-9"), Some("globex"), Some("nightly-digest"))
        );
        assert_eq!(second.tags.get("stream").map(String::as_str), Some("true"));
        assert_eq!(second.tags.get("attempt").map(String::as_str), Some("2"));

        // A boolean or numeric stream flag reads as the text one does.
        let flags = r#"{"id":"s1","created_at":"2025-01-24T10:00:00Z","ai_model":"gpt-4o","req_units":10,"res_units":1,"cost":0.01,"stream_mode":true}
{"id":"s2","created_at":"2025-01-24T10:00:00Z","ai_model":"gpt-4o","req_units":10,"res_units":1,"cost":0.01,"stream_mode":0}
{"id":"s3","created_at":"2025-01-24T10:00:00Z","ai_model":"gpt-4o","req_units":100000,"res_units":1000,"cost":0,"cache_status":"MISS"}"#;
        let fb = parse(Format::Portkey, flags, "flags.jsonl", "pk");
        assert!(fb.malformed.is_empty(), "{:?}", fb.malformed);
        assert_eq!(
            fb.rows[0].0.tags.get("stream").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            fb.rows[1].0.tags.get("stream").map(String::as_str),
            Some("false")
        );
        // A 0 on a cache miss with tokens is no price: left for the table.
        assert_eq!(fb.rows[2].0.cost_usd, None);
        // No cost is unknown, to be priced, never zero; a cache hit's 0 is a given zero.
        assert_eq!(b.rows[2].0.cost_usd, None);
        assert_eq!(b.rows[3].0.cost_usd, Some(Usd::ZERO));
        let lines: Vec<u64> = b.rows.iter().map(|(_, p)| p.line).collect();
        assert_eq!(lines, [1, 2, 3, 8]);
        let aside: Vec<(u64, &str)> = b
            .malformed
            .iter()
            .map(|a| (a.line, a.reason.as_str()))
            .collect();
        assert_eq!(
            aside,
            [
                (
                    4,
                    "field `cost_currency`: `EUR` is not USD; amounts are not converted"
                ),
                (
                    5,
                    "field `cached_input_tokens`: 600 is more than input_tokens 500 (input_tokens counts the whole prompt, cached part included)"
                ),
                (6, "field `ai_model`: is required"),
                (7, "field `cost`: `ten` is not a number of cents"),
            ]
        );
    }

    #[test]
    fn a_mapping_reads_other_metadata_keys() {
        let mut m = Mapping::default();
        m.add_spec("tenant=metadata.environment").unwrap();
        m.add_spec("feature=tag:cache_status").unwrap();
        let line = EXPORT.lines().next().unwrap();
        let b = super::super::parse_mapped(Format::Portkey, &m, line, "f", "cli");
        let row = &b.rows[0].0;
        assert_eq!(row.tenant.as_deref(), Some("prod"));
        assert_eq!(row.feature.as_deref(), Some("MISS"));
        assert_eq!(
            row.user.as_deref(),
            Some("user-123"),
            "unmapped fields keep their default"
        );
    }

    #[test]
    fn cents_are_read_exactly() {
        for (text, nanos) in [
            ("0.42", 4_200_000),
            ("12", 120_000_000),
            ("0.0000001", 1),
            ("0.00000005", 1),
            ("1.5e-3", 15_000),
            ("3E2", 3_000_000_000),
            ("-0.5", -5_000_000),
        ] {
            assert_eq!(cents_to_nanos(text), Some(nanos), "{text}");
        }
        for bad in ["", ".", "1.2.3", "abc", "0x10"] {
            assert_eq!(cents_to_nanos(bad), None, "{bad}");
        }
    }
}
