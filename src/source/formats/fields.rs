//! Reading the fields of a source record: strings, counts, dollar amounts and instants, each
//! refusing what it cannot read with the field's name, so the record is set aside with a reason
//! that says which field and why.

use crate::money::Usd;
use crate::row::MAX_ROW_USD;
use jiff::Timestamp;
use serde_json::{Map, Value};

/// A gateway's cost of 0 for a call that used tokens and was not served from its cache is a
/// price the gateway did not know (LiteLLM's column defaults to 0, Portkey writes 0), not a
/// free call: the row is left to be priced from our table, or to stay unpriced.
pub(crate) fn zero_is_no_price(row: &mut crate::row::CostRow, served_from_cache: bool) {
    if row.cost_usd == Some(Usd::ZERO)
        && row.input_tokens + row.output_tokens > 0
        && !served_from_cache
    {
        row.cost_usd = None;
    }
}

/// How a JSON value is named in an error: shared with the native row reader.
pub(crate) use crate::row::type_name;

/// An optional string field; null and empty are absent. Numbers are refused, not guessed at.
pub(crate) fn opt_str(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "field `{key}`: expected a string, got {}",
            type_name(other)
        )),
    }
}

/// An optional non-negative whole number.
pub(crate) fn opt_count(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None if n.as_i64().is_some() => Err(format!("field `{key}`: {n} is negative")),
            None => Err(format!("field `{key}`: {n} is not a whole number")),
        },
        Some(other) => Err(format!(
            "field `{key}`: expected a whole number, got {}",
            type_name(other)
        )),
    }
}

/// A dollar amount as the source wrote it, checked as native `cost_usd` is.
pub(crate) fn usd(key: &str, v: f64) -> Result<Usd, String> {
    if v > MAX_ROW_USD {
        return Err(format!(
            "field `{key}`: {v} is more than one row can cost ({MAX_ROW_USD} USD)"
        ));
    }
    let usd =
        Usd::from_f64(v).ok_or_else(|| format!("field `{key}`: {v} is not a usable amount"))?;
    if usd < Usd::ZERO {
        return Err(format!("field `{key}`: {v} is negative"));
    }
    Ok(usd)
}

/// Unix seconds, as the OpenAI usage buckets give their bounds.
pub(crate) fn unix_seconds(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    match map.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|t| t.as_millisecond())
            .ok_or_else(|| format!("field `{key}`: {n} is not a time in Unix seconds")),
        None | Some(Value::Null) => Err(format!("field `{key}`: is required")),
        Some(other) => Err(format!(
            "field `{key}`: expected Unix seconds, got {}",
            type_name(other)
        )),
    }
}

/// An instant written as text: RFC 3339 with an offset, or a civil date and time without a
/// zone (`2025-01-24 09:20:46.847371`), which is taken as UTC.
pub(crate) fn text_instant(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    let text = match map.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(format!("field `{key}`: is required"));
        }
        Some(other) => {
            return Err(format!(
                "field `{key}`: expected a date and time, got {}",
                type_name(other)
            ));
        }
    };
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t.as_millisecond());
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_millisecond())
        .ok_or_else(|| format!("field `{key}`: `{text}` is not a date and time"))
}

/// A stable request id for an aggregate row: its kind, bucket start and grouping values, so
/// the same bucket read again is a duplicate, not new spend.
pub(crate) fn aggregate_id(kind: &str, start_ms: i64, parts: &[Option<&str>]) -> String {
    let mut id = format!("{kind}:{start_ms}");
    for p in parts {
        id.push(':');
        id.push_str(p.unwrap_or("-"));
    }
    id
}
