//! OpenAI organisation costs: a page whose `data[]` buckets carry `start_time` (Unix seconds)
//! and `results[]` with `amount {value, currency}`, `line_item` and `project_id`.
//!
//! The costs have no model, so rows take the model name `openai-costs`; `line_item` (such as
//! "GPT-4o, input") is the feature and a tag. An amount in a currency other than USD is set
//! aside with that reason: it is never converted.

use super::{aggregate_id, opt_str, type_name, unix_seconds, usd};
use crate::row::CostRow;
use serde_json::{Map, Value};

/// The model name of cost rows, which name no model.
pub const MODEL: &str = "openai-costs";

pub(crate) fn row(bucket: &Map<String, Value>, r: &Map<String, Value>) -> Result<CostRow, String> {
    let start = unix_seconds(bucket, "start_time")?;
    let amount = match r.get("amount") {
        Some(Value::Object(a)) => a,
        None | Some(Value::Null) => return Err("field `amount`: is required".into()),
        Some(other) => {
            return Err(format!(
                "field `amount`: expected an object, got {}",
                type_name(other)
            ));
        }
    };
    let currency = opt_str(amount, "currency")
        .map_err(|e| format!("amount: {e}"))?
        .ok_or("field `amount.currency`: is required; an amount without a currency is not read")?;
    if !currency.eq_ignore_ascii_case("usd") {
        return Err(format!(
            "field `amount.currency`: `{currency}` is not USD; amounts are not converted"
        ));
    }
    let value = match amount.get("value") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        // Decimal strings keep their precision in some exports.
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("field `amount.value`: `{s}` is not a number"))?,
        None | Some(Value::Null) => return Err("field `amount.value`: is required".into()),
        Some(other) => {
            return Err(format!(
                "field `amount.value`: expected a number, got {}",
                type_name(other)
            ));
        }
    };
    let mut row = CostRow::new(start, MODEL);
    row.provider = Some("openai".into());
    row.cost_usd = Some(usd("amount.value", value)?);
    row.feature = opt_str(r, "line_item")?;
    row.tenant = opt_str(r, "project_id")?;
    let api_key = opt_str(r, "api_key_id")?;
    row.request_id = Some(aggregate_id(
        "openai-costs",
        start,
        &[
            row.tenant.as_deref(),
            row.feature.as_deref(),
            api_key.as_deref(),
        ],
    ));
    if let Some(item) = &row.feature {
        row.tags.insert("line_item".into(), item.clone());
    }
    if let Some(k) = api_key {
        row.tags.insert("api_key_id".into(), k);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::super::{Format, parse};
    use super::*;
    use crate::money::Usd;

    const SAMPLE: &str = include_str!(
        "../../../tests/fixtures/formats/openai-usage-api/costs.example_response.json"
    );

    #[test]
    fn the_real_sample_is_one_row_of_six_cents() {
        let b = parse(Format::OpenaiCosts, SAMPLE, "costs.json", "cli");
        assert!(b.malformed.is_empty());
        let mut want = CostRow::new(1_730_419_200_000, MODEL);
        want.provider = Some("openai".into());
        want.request_id = Some("openai-costs:1730419200000:-:-:-".into());
        want.cost_usd = Some(Usd::from_nanos(60_000_000));
        assert_eq!(b.rows.len(), 1);
        assert_eq!(b.rows[0].0, want);
    }
}
