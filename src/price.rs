//! The price table: what a token costs, per model, and how a model name in a row finds its
//! entry.
//!
//! The table is LiteLLM's price map (`model_prices_and_context_window.json`, MIT), bundled in
//! `data/prices/` and overridable by a user file in the same format. Prices are kept as whole
//! pico-dollars per token so that a row's cost is exact integer arithmetic. A model with no
//! entry stays unpriced: it is counted and reported, never priced at zero.

use crate::money::Usd;
use crate::row::CostRow;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The bundled table, as LiteLLM publishes it.
pub const BUNDLED_PRICES: &str =
    include_str!("../data/prices/model_prices_and_context_window.json");

const PICOS_PER_USD: f64 = 1e12;

/// Per-token prices of one model, in pico-dollars (1e-12 USD) per token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    pub input: i64,
    pub output: i64,
    /// Price of a prompt token read from the provider's cache; the input price when the table
    /// gives none, so a cache hit is never cheaper than we can justify.
    pub cache_read: i64,
    /// Price of a prompt token written to the cache; the input price when the table gives none.
    pub cache_write: i64,
}

impl Price {
    /// The cost of a row's tokens. The cached part of the prompt is priced once, at the cached
    /// rate; only the rest is priced at the input rate (case 01).
    pub fn cost(&self, row: &CostRow) -> Usd {
        let uncached = row
            .input_tokens
            .saturating_sub(row.cached_input_tokens)
            .saturating_sub(row.cache_write_tokens);
        let picos = uncached as i128 * self.input as i128
            + row.cached_input_tokens as i128 * self.cache_read as i128
            + row.cache_write_tokens as i128 * self.cache_write as i128
            + row.output_tokens as i128 * self.output as i128;
        // Round half up to the nano-dollar.
        let nanos = (picos + 500) / 1000;
        Usd::from_nanos(nanos.min(i64::MAX as i128) as i64)
    }
}

/// A model's prices: one flat price, or tiers by prompt size (LiteLLM's `tiered_pricing`,
/// where a longer prompt makes every token of the request dearer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    /// (prompt tokens per request from which the tier applies, its price), ascending; the
    /// first starts at 0.
    tiers: Vec<(u64, Price)>,
}

impl ModelPrice {
    pub fn flat(price: Price) -> ModelPrice {
        ModelPrice {
            tiers: vec![(0, price)],
        }
    }

    /// The price of the smallest prompts.
    pub fn base(&self) -> &Price {
        &self.tiers[0].1
    }

    /// The cost of a row, at the tier of its prompt size per request.
    pub fn cost(&self, row: &CostRow) -> Usd {
        let per_request = row.input_tokens / row.requests.max(1);
        let tier = self
            .tiers
            .iter()
            .rev()
            .find(|(from, _)| per_request >= *from)
            .unwrap_or(&self.tiers[0]);
        tier.1.cost(row)
    }
}

/// Where a row's cost came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CostBasis {
    /// The source reported it.
    Given,
    /// Computed from the tokens and the price table.
    Table,
    /// Neither: the row is stored without a cost and counted as unpriced.
    Unknown,
}

/// Model name to price, with the resolution rules for dated and suffixed names.
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    entries: HashMap<String, ModelPrice>,
}

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("cannot read price file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("price file {path} is not a JSON object of models: {message}")]
    Parse { path: String, message: String },
}

impl PriceTable {
    /// The bundled table.
    pub fn bundled() -> PriceTable {
        PriceTable::from_json("bundled price table", BUNDLED_PRICES)
            .expect("the bundled price table parses")
    }

    /// The bundled table with a user file laid over it: the user's entries win.
    pub fn with_overrides(path: &Path) -> Result<PriceTable, PriceError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut table = PriceTable::bundled();
        let user = PriceTable::from_json(&path.display().to_string(), &text)?;
        table.entries.extend(user.entries);
        Ok(table)
    }

    /// Reads a table in LiteLLM's format; entries without a token price are skipped.
    pub fn from_json(origin: &str, text: &str) -> Result<PriceTable, PriceError> {
        let parse_err = |message: String| PriceError::Parse {
            path: origin.to_string(),
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        let Value::Object(models) = value else {
            return Err(parse_err("the top level is not an object".into()));
        };
        let mut entries = HashMap::with_capacity(models.len());
        for (name, entry) in models {
            if name == "sample_spec" {
                continue;
            }
            let price_of = |e: &Value| -> Option<Price> {
                let per_token = |key: &str| -> Option<i64> {
                    let usd = e.get(key)?.as_f64()?;
                    (usd.is_finite() && usd >= 0.0).then(|| (usd * PICOS_PER_USD).round() as i64)
                };
                let (input, output) = (
                    per_token("input_cost_per_token"),
                    per_token("output_cost_per_token"),
                );
                if input.is_none() && output.is_none() {
                    return None;
                }
                let input = input.unwrap_or(0);
                Some(Price {
                    input,
                    output: output.unwrap_or(0),
                    cache_read: per_token("cache_read_input_token_cost").unwrap_or(input),
                    cache_write: per_token("cache_creation_input_token_cost").unwrap_or(input),
                })
            };
            let mut tiers: Vec<(u64, Price)> = entry
                .get("tiered_pricing")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|t| {
                            let from = t.get("range")?.get(0)?.as_f64()?;
                            Some((from.max(0.0) as u64, price_of(t)?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            tiers.sort_by_key(|(from, _)| *from);
            if let Some(first) = tiers.first_mut() {
                first.0 = 0;
            }
            let model_price = match (price_of(&entry), tiers.is_empty()) {
                (_, false) => ModelPrice { tiers },
                (Some(flat), true) => ModelPrice::flat(flat),
                (None, true) => continue,
            };
            entries.insert(name, model_price);
        }
        Ok(PriceTable { entries })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds or replaces one entry; for tests and for user tables built in code.
    pub fn insert(&mut self, model: impl Into<String>, price: Price) {
        self.entries.insert(model.into(), ModelPrice::flat(price));
    }

    /// Finds the entry for a row's provider and model.
    ///
    /// Tried in order: `provider/model`, then `model`, then the same with a provider prefix of
    /// the model removed; each first as written, then with one dated or version suffix removed
    /// (`-2024-07-18`, `-20240718`, `-0613`, `@20240620`, `-latest`, `:0`). Only a suffix is
    /// ever removed, so `gpt-4o-mini-2024-07-18` finds `gpt-4o-mini`, never `gpt-4o`.
    pub fn resolve(&self, provider: Option<&str>, model: &str) -> Option<&ModelPrice> {
        let mut names: Vec<String> = Vec::with_capacity(4);
        let bare = model.rsplit_once('/').map(|(_, m)| m);
        if let Some(p) = provider.filter(|p| !p.is_empty()) {
            names.push(format!("{p}/{model}"));
        }
        names.push(model.to_string());
        if let Some(b) = bare {
            if let Some(p) = provider.filter(|p| !p.is_empty()) {
                names.push(format!("{p}/{b}"));
            }
            names.push(b.to_string());
        }
        for name in &names {
            if let Some(p) = self.entries.get(name) {
                return Some(p);
            }
        }
        for name in &names {
            if let Some(base) = strip_version_suffix(name)
                && let Some(p) = self.entries.get(base)
            {
                return Some(p);
            }
        }
        None
    }
}

/// Removes one trailing date or version marker from a model name, if it has one.
fn strip_version_suffix(name: &str) -> Option<&str> {
    if let Some((base, tag)) = name.rsplit_once(':')
        && !base.is_empty()
        && !tag.contains('/')
    {
        return Some(base);
    }
    if let Some((base, date)) = name.rsplit_once('@')
        && date.chars().all(|c| c.is_ascii_digit() || c == '-')
    {
        return Some(base);
    }
    if let Some(base) = name.strip_suffix("-latest") {
        return Some(base);
    }
    // -YYYY-MM-DD
    let bytes = name.as_bytes();
    if bytes.len() > 11 {
        let tail = &name[name.len() - 11..];
        let b = tail.as_bytes();
        if b[0] == b'-'
            && b[5] == b'-'
            && b[8] == b'-'
            && [1, 2, 3, 4, 6, 7, 9, 10]
                .iter()
                .all(|&i| b[i].is_ascii_digit())
        {
            return Some(&name[..name.len() - 11]);
        }
    }
    // -YYYYMMDD or -MMDD
    if let Some((base, digits)) = name.rsplit_once('-')
        && (digits.len() == 8 || digits.len() == 4)
        && digits.chars().all(|c| c.is_ascii_digit())
        && !base.is_empty()
    {
        return Some(base);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        PriceTable::bundled()
    }

    #[test]
    fn bundled_table_has_the_cases_prices() {
        let t = table();
        let p = t.resolve(None, "gpt-4o").unwrap().base();
        assert_eq!(
            (p.input, p.cache_read, p.output),
            (2_500_000, 1_250_000, 10_000_000)
        );
        let p = t.resolve(None, "gpt-4o-mini").unwrap().base();
        assert_eq!(
            (p.input, p.cache_read, p.output),
            (150_000, 75_000, 600_000)
        );
    }

    #[test]
    fn dated_names_resolve_to_their_own_base() {
        let t = table();
        let mut row = CostRow::new(0, "gpt-4o-mini-2099-07-18");
        row.input_tokens = 1000;
        row.output_tokens = 1000;
        let p = t.resolve(None, &row.model).unwrap();
        assert_eq!(p.cost(&row), Usd::from_f64(0.00075).unwrap());
        assert_eq!(
            strip_version_suffix("claude-3-5-sonnet@20240620"),
            Some("claude-3-5-sonnet")
        );
        assert_eq!(strip_version_suffix("gpt-4-0613"), Some("gpt-4"));
        assert_eq!(strip_version_suffix("gpt-4o"), None);
    }

    #[test]
    fn tiered_entries_price_long_prompts_at_their_tier() {
        let t = table();
        let p = t.resolve(Some("dashscope"), "qwen-plus-latest").unwrap();
        let mut row = CostRow::new(0, "qwen-plus-latest");
        row.input_tokens = 1_000_000;
        // 1,000,000 prompt tokens in one request: the tier from 256k, 1.2e-6 a token.
        assert_eq!(p.cost(&row), Usd::from_f64(1.2).unwrap());
        // The same tokens over ten requests of 100k: the first tier, 0.4e-6.
        row.requests = 10;
        assert_eq!(p.cost(&row), Usd::from_f64(0.4).unwrap());
    }

    #[test]
    fn provider_prefix_finds_provider_entries() {
        let t = table();
        assert!(t.resolve(Some("dashscope"), "qwen-plus").is_some());
        assert!(t.resolve(None, "dashscope/qwen-max").is_some());
        assert_eq!(t.resolve(Some("acme"), "acme-finetune-v7"), None);
    }

    #[test]
    fn user_entries_override_the_bundled_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(
            &path,
            r#"{"gpt-4o":{"input_cost_per_token":1e-6,"output_cost_per_token":2e-6},
                "acme-finetune-v7":{"input_cost_per_token":3e-6,"output_cost_per_token":4e-6}}"#,
        )
        .unwrap();
        let t = PriceTable::with_overrides(&path).unwrap();
        assert_eq!(t.resolve(None, "gpt-4o").unwrap().base().input, 1_000_000);
        assert_eq!(
            t.resolve(None, "acme-finetune-v7").unwrap().base().output,
            4_000_000
        );
        assert!(t.resolve(None, "gpt-4o-mini").is_some());
    }
}
