//! The typed reader for native lines: fields are read straight from the text into their
//! types, with no JSON value tree in between. It accepts a line only where the value-based
//! reader ([`CostRow::from_json_object`]) would accept it and build the same row; for
//! anything else it returns `None`, and the caller reads the line again the slow way, whose
//! errors name the field and the reason.

use super::{CostRow, MAX_ROW_USD};
use crate::money::Usd;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The native fields; unknown keys are skipped. A duplicate key is an error here, so such a
/// line goes to the value reader, where the last one wins.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    requests: Option<u64>,
    input_tokens: Option<u64>,
    cached_input_tokens: Option<u64>,
    cache_write_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cost_usd: Option<f64>,
    #[serde(borrow)]
    tenant: Option<Cow<'a, str>>,
    #[serde(borrow)]
    feature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    workflow: Option<Cow<'a, str>>,
    tags: Option<BTreeMap<String, String>>,
}

/// Empty counts as absent, as the row format says.
fn text(v: Option<Cow<'_, str>>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

/// The row of a well-formed line; `None` for anything the value reader must judge.
pub(super) fn parse(line: &str) -> Option<CostRow> {
    let l: Line<'_> = serde_json::from_str(line).ok()?;
    let ts: jiff::Timestamp = l.ts?.parse().ok()?;
    let model = text(l.model)?;
    let cost_usd = match l.cost_usd {
        None => None,
        Some(v) if v > MAX_ROW_USD => return None,
        Some(v) => Some(Usd::from_f64(v).filter(|u| *u >= Usd::ZERO)?),
    };
    let row = CostRow {
        ts_ms: ts.as_millisecond(),
        provider: text(l.provider),
        model,
        request_id: text(l.request_id),
        requests: l.requests.unwrap_or(1),
        input_tokens: l.input_tokens.unwrap_or(0),
        cached_input_tokens: l.cached_input_tokens.unwrap_or(0),
        cache_write_tokens: l.cache_write_tokens.unwrap_or(0),
        output_tokens: l.output_tokens.unwrap_or(0),
        cost_usd,
        tenant: text(l.tenant),
        feature: text(l.feature),
        user: text(l.user),
        workflow: text(l.workflow),
        tags: l.tags.unwrap_or_default(),
    };
    (row.requests > 0 && row.validate().is_ok()).then_some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value reader, without the typed one in front of it.
    fn slow(line: &str) -> Result<CostRow, super::super::RowError> {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(map)) => CostRow::from_json_object(&map),
            _ => panic!("test lines are JSON objects: {line}"),
        }
    }

    #[test]
    fn the_typed_reader_builds_what_the_value_reader_builds() {
        let lines = [
            r#"{"ts":"2026-03-02T10:00:00+01:00","model":"gpt-4o","tenant":"","tags":{"env":"prod"}}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":0.0012,"request_id":"r\u00e9\n1","input_tokens":9,"cached_input_tokens":4,"cache_write_tokens":5,"output_tokens":3,"requests":2,"provider":"openai","feature":"chat","user":"u","workflow":"w","extra":{"a":[1,2]}}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":3,"tenant":null,"tags":null}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":-0.0}"#,
        ];
        for line in lines {
            assert_eq!(parse(line), Some(slow(line).unwrap()), "{line}");
        }
    }

    #[test]
    fn lines_the_value_reader_must_judge_are_left_to_it() {
        let lines = [
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","model":"n"}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","input_tokens":1.0}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":-1}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":""}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","requests":0}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","tags":{"a":1}}"#,
            r#"{"ts":"2026-03-02T10:00:00Z","model":"m","cost_usd":20000000}"#,
            r#"{"model":"m"}"#,
            r#"[1]"#,
        ];
        for line in lines {
            assert_eq!(parse(line), None, "{line}");
        }
        // The duplicate key is read the value reader's way: the last one wins.
        let row = CostRow::from_json_line(lines[0]).unwrap();
        assert_eq!(row.model, "n");
    }
}
