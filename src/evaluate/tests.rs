//! The evaluator on its own: spend from plain vectors, no store, no clock.

use super::*;
use crate::config::Config;
use crate::store::{Combo, History, Metrics, WindowAgg};
use std::collections::HashMap;
use std::path::Path;

/// Spend per minute and combination, summed on demand.
struct MemoryHistory {
    combos: Vec<Combo>,
    minutes: Vec<(i64, ComboId, Metrics)>,
}

impl History for MemoryHistory {
    fn window(&mut self, start: i64, end: i64) -> crate::store::Result<Arc<WindowAgg>> {
        let mut sums: HashMap<ComboId, Metrics> = HashMap::new();
        for (m, id, metrics) in &self.minutes {
            if *m >= start && *m < end {
                sums.entry(*id).or_default().add(metrics);
            }
        }
        let mut entries: Vec<(ComboId, Metrics)> = sums.into_iter().collect();
        entries.sort_by_key(|(id, _)| *id);
        Ok(Arc::new(WindowAgg { entries }))
    }

    fn combo(&self, id: ComboId) -> &Combo {
        &self.combos[id as usize]
    }
}

fn combo(tenant: &str, feature: &str) -> Combo {
    let mut dims: [Option<Arc<str>>; 6] = Default::default();
    dims[Dimension::Tenant.index()] = Some(Arc::from(tenant));
    dims[Dimension::Feature.index()] = Some(Arc::from(feature));
    dims[Dimension::Model.index()] = Some(Arc::from("gpt-4o"));
    Combo {
        dims,
        first_minute: 0,
    }
}

fn usd(x: f64) -> Metrics {
    Metrics {
        rows: 1,
        requests: 10,
        cost: Usd::from_f64(x).unwrap(),
        input_tokens: 1000,
        output_tokens: 100,
        ..Default::default()
    }
}

fn rule(yaml: &str) -> Config {
    Config::from_yaml(
        Path::new("t.yaml"),
        &format!("channels: {{ out: {{ kind: console }} }}\ndelay: 0s\nrules:\n{yaml}"),
        Path::new("."),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_spike_names_the_feature_that_carries_the_increase() {
    // Tenant acme: features x and y spend 5.00 each at 14:00 every day for a week; on the
    // eighth day x spends 45.00. Tenant beta spends 3.00 every day, on the eighth day too.
    let mut minutes = Vec::new();
    for day in 0..8i64 {
        let m = day * 1440 + 14 * 60 + 10;
        let x = if day == 7 { 45.0 } else { 5.0 };
        minutes.push((m, 0, usd(x)));
        minutes.push((m, 1, usd(5.0)));
        minutes.push((m, 2, usd(3.0)));
    }
    let mut h = MemoryHistory {
        combos: vec![combo("acme", "x"), combo("acme", "y"), combo("beta", "x")],
        minutes,
    };
    let c = rule(
        "  - { name: s, kind: spike, group_by: [tenant], window: 1h, threshold: { sensitivity: 3, min_delta_usd: 1 }, young: { min_history: 1d }, channels: [out] }",
    );
    let at = Timestamp::from_second((7 * 1440 + 15 * 60) * 60).unwrap();
    let out = evaluate_rule(&c.rules[0], at, c.delay, &mut h).unwrap();
    assert_eq!(out.decisions.len(), 2);
    let acme = &out.decisions[0];
    assert_eq!(
        acme.labels,
        vec![(Dimension::Tenant, Some("acme".to_string()))]
    );
    assert!(acme.firing);
    assert_eq!(acme.observed.cost, Usd::from_f64(50.0).unwrap());
    assert_eq!(acme.baseline, Some(Usd::from_f64(10.0).unwrap()));
    assert_eq!(acme.ratio, Some(5.0));
    let e = acme.explanation.as_ref().unwrap();
    // x carries all 40.00 of the increase; y did not move and is left out.
    assert_eq!(e.contributors[0].dimension, Dimension::Feature);
    assert_eq!(e.contributors[0].value.as_deref(), Some("x"));
    assert_eq!(e.contributors[0].share_of_increase, 1.0);
    assert!(
        e.contributors
            .iter()
            .all(|c| c.value.as_deref() != Some("y"))
    );
    // Same requests and tokens per request: price per token carries the change.
    assert_eq!(e.drivers.requests, Some(1.0));
    assert_eq!(e.drivers.output_tokens_per_request, Some(1.0));
    let beta = &out.decisions[1];
    assert!(!beta.firing);
    assert!(beta.explanation.is_none(), "quiet series are not explained");
}

#[test]
fn rows_without_a_tenant_are_their_own_series_and_share() {
    let mut no_tenant = combo("", "x");
    no_tenant.dims[Dimension::Tenant.index()] = None;
    let minutes = vec![(600, 0, usd(1.0)), (601, 1, usd(3.0))];
    let mut h = MemoryHistory {
        combos: vec![combo("acme", "x"), no_tenant],
        minutes,
    };
    let c = rule(
        "  - { name: t, kind: threshold, group_by: [tenant], window: 1h, limit_usd: 2, channels: [out] }",
    );
    let out = evaluate_rule(
        &c.rules[0],
        Timestamp::from_second(660 * 60).unwrap(),
        c.delay,
        &mut h,
    )
    .unwrap();
    assert_eq!(out.unattributed_share, 0.75);
    let firing: Vec<_> = out.decisions.iter().filter(|d| d.firing).collect();
    assert_eq!(firing.len(), 1);
    assert_eq!(firing[0].labels, vec![(Dimension::Tenant, None)]);
}
