//! OpenAI organisation usage, completions endpoint: a page whose `data[]` buckets carry
//! `start_time`/`end_time` (Unix seconds) and `results[]`, one per grouping.
//!
//! One row per result, at its bucket's start. OpenAI's `input_tokens` already includes the
//! cached reads (`input_cached_tokens`) and cache writes (`input_cache_write_tokens`), as ours
//! does, so the counts are kept as they are. There is no cost: the price table prices the row.
//! The request id is built from the bucket start and the grouping fields, so reading the same
//! page again adds nothing.

use super::{aggregate_id, opt_count, opt_str, type_name, unix_seconds};
use crate::row::CostRow;
use serde_json::{Map, Value};

pub(crate) fn row(bucket: &Map<String, Value>, r: &Map<String, Value>) -> Result<CostRow, String> {
    let start = unix_seconds(bucket, "start_time")?;
    let model = opt_str(r, "model")?.ok_or(
        "field `model`: is null; the usage was not grouped by model (ask for group_by=model), \
         and a row without a model cannot be priced",
    )?;
    let mut row = CostRow::new(start, model);
    row.provider = Some("openai".into());
    row.input_tokens = opt_count(r, "input_tokens")?.unwrap_or(0);
    row.cached_input_tokens = opt_count(r, "input_cached_tokens")?.unwrap_or(0);
    row.cache_write_tokens = opt_count(r, "input_cache_write_tokens")?.unwrap_or(0);
    row.output_tokens = opt_count(r, "output_tokens")?.unwrap_or(0);
    row.requests = opt_count(r, "num_model_requests")?.unwrap_or(1).max(1);
    row.tenant = opt_str(r, "project_id")?;
    row.user = opt_str(r, "user_id")?;
    let api_key = opt_str(r, "api_key_id")?;
    let batch = match r.get("batch") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(other) => {
            return Err(format!(
                "field `batch`: expected a boolean, got {}",
                type_name(other)
            ));
        }
    };
    let tier = opt_str(r, "service_tier")?;
    row.request_id = Some(aggregate_id(
        "openai-usage",
        start,
        &[
            row.tenant.as_deref(),
            row.user.as_deref(),
            api_key.as_deref(),
            Some(row.model.as_str()),
            batch.as_deref(),
            tier.as_deref(),
        ],
    ));
    for (k, v) in [
        ("api_key_id", api_key),
        ("batch", batch),
        ("service_tier", tier),
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
    use crate::row::CostRow;

    const SAMPLE: &str = include_str!(
        "../../../tests/fixtures/formats/openai-usage-api/usage_completions.example_response.json"
    );

    #[test]
    fn the_real_sample_without_a_model_is_set_aside_with_the_reason() {
        let b = parse(Format::OpenaiUsage, SAMPLE, "usage.json", "cli");
        assert!(b.rows.is_empty());
        assert_eq!(b.malformed.len(), 1);
        assert_eq!(b.malformed[0].line, 1);
        assert!(
            b.malformed[0]
                .reason
                .starts_with("data[0].results[0]: field `model`: is null"),
            "{}",
            b.malformed[0].reason
        );
    }

    #[test]
    fn the_real_sample_grouped_by_model_gives_its_exact_counts() {
        let grouped = SAMPLE
            .replace("\"model\": null", "\"model\": \"gpt-4o-mini\"")
            .replace("\"project_id\": null", "\"project_id\": \"proj_1\"");
        let b = parse(Format::OpenaiUsage, &grouped, "usage.json", "cli");
        assert!(b.malformed.is_empty());
        let (row, pos) = &b.rows[0];
        let mut want = CostRow::new(1_730_419_200_000, "gpt-4o-mini");
        want.provider = Some("openai".into());
        want.request_id = Some("openai-usage:1730419200000:proj_1:-:-:gpt-4o-mini:-:-".into());
        want.requests = 5;
        want.input_tokens = 1000;
        want.cached_input_tokens = 400;
        want.cache_write_tokens = 100;
        want.output_tokens = 500;
        want.tenant = Some("proj_1".into());
        assert_eq!(row, &want);
        assert_eq!(pos.line, 1);
    }
}
