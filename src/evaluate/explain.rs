//! Explaining a firing series: which callers carry the increase, and whether it came from
//! more requests, longer prompts or answers, or dearer tokens.
//!
//! Attribution is row by row through the rollups: a value's spend is the spend of the rows
//! that carried it. Rows with no value form their own bucket (`value: None`) and are never
//! credited to a neighbour (case 04).

use super::baseline::median;
use super::{Decision, share};
use crate::config::Rule;
use crate::money::Usd;
use crate::row::Dimension;
use crate::store::{ComboId, History, Metrics};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A value of one dimension and its part in the change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Contributor {
    pub dimension: Dimension,
    /// `None`: rows with no value for this dimension.
    pub value: Option<String>,
    pub observed_usd: Usd,
    pub baseline_usd: Usd,
    /// Its increase over its own baseline, as a share of the series' increase; where the
    /// series did not increase, its share of the window's spend.
    pub share_of_increase: f64,
}

/// The change split into volume, size and price, each as now / baseline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Drivers {
    pub requests: Option<f64>,
    pub input_tokens_per_request: Option<f64>,
    pub output_tokens_per_request: Option<f64>,
    pub cost_per_token: Option<f64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanation {
    pub contributors: Vec<Contributor>,
    pub drivers: Drivers,
}

/// Contributors below this share of the change are left out.
const MIN_SHARE: f64 = 0.05;
/// At most this many values per dimension.
const MAX_PER_DIMENSION: usize = 3;

pub fn explain(
    rule: &Rule,
    decision: &Decision,
    now: &[(ComboId, Metrics)],
    past: &[&[(ComboId, Metrics)]],
    history: &dyn History,
) -> Explanation {
    let observed = decision.observed.cost;
    let baseline = decision.baseline.unwrap_or(Usd::ZERO);
    let increase = observed - baseline;
    let mut contributors = Vec::new();
    for dim in Dimension::EXPLAINING {
        if rule.group_by.contains(&dim) {
            continue;
        }
        let by_value = |combos: &[(ComboId, Metrics)]| {
            let mut m: HashMap<Option<Arc<str>>, Usd> = HashMap::new();
            for (id, metrics) in combos {
                *m.entry(history.combo(*id).dims[dim.index()].clone())
                    .or_default() += metrics.cost;
            }
            m
        };
        let now_v = by_value(now);
        let past_v: Vec<HashMap<Option<Arc<str>>, Usd>> =
            past.iter().map(|p| by_value(p)).collect();
        let values: BTreeSet<Option<Arc<str>>> = now_v
            .keys()
            .chain(past_v.iter().flat_map(|p| p.keys()))
            .cloned()
            .collect();
        // A dimension no row carries says nothing about who; the unowned share says it.
        if values.iter().all(Option::is_none) {
            continue;
        }
        let mut found: Vec<Contributor> = values
            .into_iter()
            .map(|v| {
                let obs = now_v.get(&v).copied().unwrap_or_default();
                let hist: Vec<f64> = past_v
                    .iter()
                    .map(|p| p.get(&v).copied().unwrap_or_default().as_f64())
                    .collect();
                let base = Usd::from_f64(median(&hist)).unwrap_or_default();
                let s = if increase > Usd::ZERO {
                    share(obs - base, increase)
                } else {
                    share(obs, observed)
                };
                Contributor {
                    dimension: dim,
                    value: v.as_deref().map(str::to_string),
                    observed_usd: obs,
                    baseline_usd: base,
                    share_of_increase: s,
                }
            })
            .filter(|c| c.share_of_increase >= MIN_SHARE)
            .collect();
        found.sort_by(|a, b| {
            b.share_of_increase
                .total_cmp(&a.share_of_increase)
                .then_with(|| a.value.cmp(&b.value))
        });
        found.truncate(MAX_PER_DIMENSION);
        contributors.extend(found);
    }
    contributors.sort_by(|a, b| b.share_of_increase.total_cmp(&a.share_of_increase));

    let mut base_sum = Metrics::default();
    let mut requests_per_window = Vec::with_capacity(past.len());
    for p in past {
        let mut window = 0u64;
        for (_, m) in p.iter() {
            base_sum.add(m);
            window += m.requests;
        }
        requests_per_window.push(window as f64);
    }
    Explanation {
        contributors,
        drivers: drivers(&decision.observed, &base_sum, median(&requests_per_window)),
    }
}

fn ratio(now: f64, then: f64) -> Option<f64> {
    let r = now / then;
    (then > 0.0 && r.is_finite()).then_some(r)
}

/// Each driver as now / baseline. Requests are compared with the median comparable window,
/// as spend is; sizes and prices with the pooled comparable windows, so that a window with few
/// requests does not swing them.
fn drivers(now: &Metrics, past_sum: &Metrics, usual_requests: f64) -> Drivers {
    if past_sum.requests == 0 {
        return Drivers::default();
    }
    let per_req = |tokens: u64, requests: u64| tokens as f64 / requests.max(1) as f64;
    let per_token = |m: &Metrics| {
        let tokens = m.input_tokens + m.output_tokens;
        (tokens > 0).then(|| m.cost.as_f64() / tokens as f64)
    };
    Drivers {
        requests: ratio(now.requests as f64, usual_requests),
        input_tokens_per_request: ratio(
            per_req(now.input_tokens, now.requests),
            per_req(past_sum.input_tokens, past_sum.requests),
        ),
        output_tokens_per_request: ratio(
            per_req(now.output_tokens, now.requests),
            per_req(past_sum.output_tokens, past_sum.requests),
        ),
        cost_per_token: match (per_token(now), per_token(past_sum)) {
            (Some(a), Some(b)) => ratio(a, b),
            _ => None,
        },
    }
}
