//! LiteLLM SpendLogs rows, as the proxy exports them (JSON lines, or a JSON array) or as its
//! spend-logs API returns them; its standard logging payload reads the same way.
//!
//! Times: `startTime` is often written `2025-01-24 09:20:46.847371`, with no zone. Such a time
//! is taken as UTC (a proxy whose clock is set to another zone will be off by its offset); a
//! time with an offset keeps it.
//!
//! Tokens: LiteLLM follows OpenAI, so `prompt_tokens` is the whole prompt with the cached part
//! inside it; it becomes `input_tokens` unchanged, and the cached reads found in the usage
//! object become `cached_input_tokens`.

use super::{Record, object_records, opt_count, opt_str, text_instant, type_name, usd};
use crate::row::CostRow;
use crate::source::mapping::{Mapping, Subject};
use serde_json::{Map, Value};

pub(crate) fn records(text: &str, mapping: &Mapping) -> Vec<Record> {
    object_records(text, "a spend-log object", |obj| {
        row(obj).and_then(|r| mapped(r, obj, mapping))
    })
}

/// One spend-log object to a row.
pub fn row(obj: &Map<String, Value>) -> Result<CostRow, String> {
    let ts = text_instant(obj, "startTime")?;
    let model = opt_str(obj, "model")?.ok_or("field `model`: is required")?;
    let mut row = CostRow::new(ts, model);
    row.request_id = match opt_str(obj, "request_id")? {
        Some(id) => Some(id),
        None => opt_str(obj, "id")?,
    };
    row.provider = opt_str(obj, "custom_llm_provider")?;
    let spend_key = if obj.contains_key("spend") {
        "spend"
    } else {
        "response_cost"
    };
    row.cost_usd = match obj.get(spend_key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(usd(spend_key, n.as_f64().unwrap_or(f64::NAN))?),
        Some(other) => {
            return Err(format!(
                "field `{spend_key}`: expected a number of dollars, got {}",
                type_name(other)
            ));
        }
    };
    row.input_tokens = opt_count(obj, "prompt_tokens")?.unwrap_or(0);
    row.output_tokens = opt_count(obj, "completion_tokens")?.unwrap_or(0);
    let cache_hit = match obj.get("cache_hit") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    super::fields::zero_is_no_price(&mut row, cache_hit);

    let metadata = embedded(obj, "metadata")?;
    let metadata = metadata.as_ref().and_then(Value::as_object);
    // The usage object: in the SpendLogs metadata, or the response of a logging payload.
    let usage = metadata
        .and_then(|m| m.get("usage_object"))
        .or_else(|| obj.get("response").and_then(|r| r.get("usage")))
        .and_then(Value::as_object);
    if let Some(usage) = usage {
        let details_cached = usage
            .get("prompt_tokens_details")
            .and_then(Value::as_object)
            .map(|d| opt_count(d, "cached_tokens"))
            .transpose()?
            .flatten();
        let read = opt_count(usage, "cache_read_input_tokens")?;
        row.cached_input_tokens = details_cached.or(read).unwrap_or(0);
        row.cache_write_tokens = opt_count(usage, "cache_creation_input_tokens")?.unwrap_or(0);
    }

    let spend_meta = metadata
        .and_then(|m| m.get("spend_logs_metadata"))
        .and_then(Value::as_object);
    let meta_str = |key: &str| -> Result<Option<String>, String> {
        match metadata {
            Some(m) => opt_str(m, key).map_err(|e| format!("metadata: {e}")),
            None => Ok(None),
        }
    };
    let spend_str = |key: &str| -> Result<Option<String>, String> {
        match spend_meta {
            Some(m) => opt_str(m, key).map_err(|e| format!("spend_logs_metadata: {e}")),
            None => Ok(None),
        }
    };

    row.tenant = match meta_str("user_api_key_team_alias")? {
        Some(alias) => Some(alias),
        None => match opt_str(obj, "team_id")? {
            Some(id) => Some(id),
            None => meta_str("user_api_key_team_id")?,
        },
    };
    row.user = match opt_str(obj, "end_user")? {
        Some(u) => Some(u),
        None => opt_str(obj, "user")?,
    };

    let tags = request_tags(obj)?;
    row.feature = match tags.iter().find_map(|t| t.strip_prefix("feature:")) {
        Some(f) if !f.is_empty() => Some(f.to_string()),
        _ => spend_str("feature")?,
    };
    row.workflow = spend_str("workflow")?;

    if let Some(group) = opt_str(obj, "model_group")? {
        row.tags.insert("model_group".into(), group);
    }
    if let Some(alias) = meta_str("user_api_key_alias")? {
        row.tags.insert("key_alias".into(), alias);
    }
    if !tags.is_empty() {
        row.tags.insert("request_tags".into(), tags.join(","));
    }
    Ok(row)
}

/// Lays a source's mapping over the defaults; a request tag `NAME:value` is tag `NAME`.
pub(crate) fn mapped(
    mut row: CostRow,
    obj: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<CostRow, String> {
    if mapping.is_empty() {
        return Ok(row);
    }
    let tags = request_tags(obj)?
        .iter()
        .filter_map(|t| t.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let subject = Subject {
        record: Some(obj),
        tags,
        ..Subject::default()
    };
    mapping.apply(&mut row, &subject)?;
    Ok(row)
}

/// A field LiteLLM may write either as JSON or as a string holding JSON.
fn embedded(obj: &Map<String, Value>, key: &str) -> Result<Option<Value>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() || s.trim() == "None" => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| format!("field `{key}`: a string that is not valid JSON: {e}")),
        Some(v) => Ok(Some(v.clone())),
    }
}

fn request_tags(obj: &Map<String, Value>) -> Result<Vec<String>, String> {
    match embedded(obj, "request_tags")? {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "field `request_tags`: each tag must be a string, got {}",
                    type_name(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "field `request_tags`: expected a list of strings, got {}",
            type_name(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Usd;

    const SPEND_LOG: &str =
        include_str!("../../../tests/fixtures/formats/litellm/spend_logs_payload.json");
    const LOGGING: &str =
        include_str!("../../../tests/fixtures/formats/litellm/standard_logging_payload.json");

    fn one(text: &str) -> CostRow {
        let mut r = records(text, &Mapping::default());
        assert_eq!(r.len(), 1);
        r.remove(0).row.unwrap()
    }

    #[test]
    fn a_zero_spend_with_tokens_is_no_price_unless_the_cache_served_it() {
        let unpriced = r#"{"request_id":"z1","startTime":"2025-01-24T10:00:00Z","model":"in-house-llm","spend":0,"prompt_tokens":100,"completion_tokens":10}"#;
        let obj: Map<String, Value> = serde_json::from_str(unpriced).unwrap();
        assert_eq!(row(&obj).unwrap().cost_usd, None);
        let cached = unpriced.replace("\"spend\":0", "\"spend\":0,\"cache_hit\":\"True\"");
        let obj: Map<String, Value> = serde_json::from_str(&cached).unwrap();
        assert_eq!(row(&obj).unwrap().cost_usd, Some(Usd::ZERO));
        let empty =
            r#"{"request_id":"z2","startTime":"2025-01-24T10:00:00Z","model":"gpt-4o","spend":0}"#;
        let obj: Map<String, Value> = serde_json::from_str(empty).unwrap();
        assert_eq!(row(&obj).unwrap().cost_usd, Some(Usd::ZERO));
    }

    #[test]
    fn the_real_spend_log_sample_becomes_one_exact_row() {
        let row = one(SPEND_LOG);
        let mut want = CostRow::new(1_737_710_446_847, "gpt-4o");
        want.request_id = Some("chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027".into());
        want.provider = Some("openai".into());
        want.input_tokens = 10;
        want.output_tokens = 20;
        // 10 x 2.5e-6 + 20 x 1e-5
        want.cost_usd = Some(Usd::from_nanos(225_000));
        assert_eq!(row, want);
    }

    #[test]
    fn the_real_logging_payload_reads_the_same() {
        let row = one(LOGGING);
        assert_eq!(
            row.request_id.as_deref(),
            Some("chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f")
        );
        assert_eq!((row.input_tokens, row.output_tokens), (10, 20));
        assert_eq!(row.cost_usd, Some(Usd::from_nanos(225_000)));
        assert_eq!(row.ts_ms, 1_737_710_446_847);
    }

    #[test]
    fn attribution_comes_from_the_team_alias_end_user_and_tags() {
        let line = r#"{"request_id":"r1","startTime":"2025-01-24T10:00:00+01:00","model":"claude-3-5-sonnet","model_group":"sonnet","custom_llm_provider":"anthropic","spend":0.5,"prompt_tokens":1200,"completion_tokens":40,"user":"svc","end_user":"u-77","team_id":"t-1","request_tags":"[\"feature:search\",\"beta\"]","metadata":"{\"user_api_key_team_alias\":\"acme\",\"user_api_key_alias\":\"prod-key\",\"spend_logs_metadata\":{\"workflow\":\"nightly\",\"feature\":\"ignored\"},\"usage_object\":{\"prompt_tokens\":1200,\"cache_read_input_tokens\":1000,\"cache_creation_input_tokens\":150}}"}"#;
        let row = one(line);
        assert_eq!(row.ts_ms, 1_737_709_200_000);
        assert_eq!(row.tenant.as_deref(), Some("acme"));
        assert_eq!(row.user.as_deref(), Some("u-77"));
        assert_eq!(row.feature.as_deref(), Some("search"));
        assert_eq!(row.workflow.as_deref(), Some("nightly"));
        assert_eq!(
            (
                row.input_tokens,
                row.cached_input_tokens,
                row.cache_write_tokens
            ),
            (1200, 1000, 150)
        );
        assert_eq!(
            row.tags.get("model_group").map(String::as_str),
            Some("sonnet")
        );
        assert_eq!(
            row.tags.get("key_alias").map(String::as_str),
            Some("prod-key")
        );
        assert_eq!(
            row.tags.get("request_tags").map(String::as_str),
            Some("feature:search,beta")
        );
    }

    #[test]
    fn without_an_alias_the_team_id_and_user_are_used() {
        let line = r#"{"startTime":"2025-01-24 09:20:46","model":"gpt-4o","user":"svc","team_id":"t-1","metadata":{"spend_logs_metadata":{"feature":"chat"}}}"#;
        let row = one(line);
        assert_eq!(row.tenant.as_deref(), Some("t-1"));
        assert_eq!(row.user.as_deref(), Some("svc"));
        assert_eq!(row.feature.as_deref(), Some("chat"));
        assert_eq!(row.cost_usd, None);
    }
}
