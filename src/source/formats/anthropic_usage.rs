//! Anthropic Admin API messages usage report: a page whose `data[]` buckets carry
//! `starting_at`/`ending_at` (RFC 3339) and `results[]` grouped by model, workspace, key.
//!
//! Anthropic counts the prompt in parts: `uncached_input_tokens`, `cache_read_input_tokens`
//! and the cache writes (`cache_creation.ephemeral_5m_input_tokens` plus
//! `ephemeral_1h_input_tokens`, or a flat `cache_creation_input_tokens`). Ours counts the whole
//! prompt, so `input_tokens` is their sum, `cached_input_tokens` the reads and
//! `cache_write_tokens` the writes. The report has no request count, so a row stands for one.

use super::{aggregate_id, opt_count, opt_str, text_instant, type_name};
use crate::row::{CostRow, MAX_COUNT};
use serde_json::{Map, Value};

pub(crate) fn row(bucket: &Map<String, Value>, r: &Map<String, Value>) -> Result<CostRow, String> {
    let start = text_instant(bucket, "starting_at")?;
    let model = opt_str(r, "model")?.ok_or(
        "field `model`: is null; the report was not grouped by model (ask for group_by[]=model), \
         and a row without a model cannot be priced",
    )?;
    let uncached = opt_count(r, "uncached_input_tokens")?.unwrap_or(0);
    let reads = opt_count(r, "cache_read_input_tokens")?.unwrap_or(0);
    let writes = match r.get("cache_creation") {
        Some(Value::Object(c)) => {
            let five = opt_count(c, "ephemeral_5m_input_tokens")
                .map_err(|e| format!("cache_creation: {e}"))?;
            let hour = opt_count(c, "ephemeral_1h_input_tokens")
                .map_err(|e| format!("cache_creation: {e}"))?;
            five.unwrap_or(0).saturating_add(hour.unwrap_or(0))
        }
        None | Some(Value::Null) => opt_count(r, "cache_creation_input_tokens")?.unwrap_or(0),
        Some(other) => {
            return Err(format!(
                "field `cache_creation`: expected an object, got {}",
                type_name(other)
            ));
        }
    };
    let input = uncached.saturating_add(reads).saturating_add(writes);
    if input > MAX_COUNT {
        return Err(format!(
            "input tokens {input} are more than one row can hold"
        ));
    }
    let mut row = CostRow::new(start, model);
    row.provider = Some("anthropic".into());
    row.input_tokens = input;
    row.cached_input_tokens = reads;
    row.cache_write_tokens = writes;
    row.output_tokens = opt_count(r, "output_tokens")?.unwrap_or(0);
    row.tenant = opt_str(r, "workspace_id")?;
    let api_key = opt_str(r, "api_key_id")?;
    let tier = opt_str(r, "service_tier")?;
    let window = opt_str(r, "context_window")?;
    row.request_id = Some(aggregate_id(
        "anthropic-usage",
        start,
        &[
            row.tenant.as_deref(),
            api_key.as_deref(),
            Some(row.model.as_str()),
            tier.as_deref(),
            window.as_deref(),
        ],
    ));
    for (k, v) in [
        ("api_key_id", api_key),
        ("service_tier", tier),
        ("context_window", window),
    ] {
        if let Some(v) = v {
            row.tags.insert(k.into(), v);
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::super::{Format, parse};
    use super::*;

    const REPORT: &str =
        include_str!("../../../tests/fixtures/formats/anthropic/usage_report.json");

    #[test]
    fn the_parts_of_the_prompt_add_up_to_our_input_tokens() {
        let b = parse(Format::AnthropicUsage, REPORT, "report.json", "cli");
        assert!(b.malformed.is_empty(), "{:?}", b.malformed);
        assert_eq!(b.rows.len(), 3);
        let (first, pos) = &b.rows[0];
        let mut want = CostRow::new(1_754_006_400_000, "claude-sonnet-4-20250514");
        want.provider = Some("anthropic".into());
        want.request_id = Some(
            "anthropic-usage:1754006400000:wrkspc_support:apikey_live_1:claude-sonnet-4-20250514:standard:0-200k"
                .into(),
        );
        // 1500 uncached + 6000 read + (800 + 200) written
        want.input_tokens = 8500;
        want.cached_input_tokens = 6000;
        want.cache_write_tokens = 1000;
        want.output_tokens = 900;
        want.tenant = Some("wrkspc_support".into());
        for (k, v) in [
            ("api_key_id", "apikey_live_1"),
            ("service_tier", "standard"),
            ("context_window", "0-200k"),
        ] {
            want.tags.insert(k.into(), v.into());
        }
        assert_eq!(first, &want);
        assert_eq!(pos.line, 1);
        // The flat cache_creation_input_tokens form: 400 uncached + 50 written.
        let second = &b.rows[1].0;
        assert_eq!(
            (
                second.input_tokens,
                second.cached_input_tokens,
                second.cache_write_tokens
            ),
            (450, 0, 50)
        );
        assert_eq!(second.tenant, None);
        // The second bucket's row is at the next day.
        assert_eq!(b.rows[2].0.ts_ms, 1_754_092_800_000);
    }
}
