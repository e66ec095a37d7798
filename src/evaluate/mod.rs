//! The evaluator: for one rule at one instant, which series breach it, and why.
//!
//! It is pure: spend comes in through [`History`], decisions go out, and the instant is a
//! parameter, so the backtest replays exactly what the daemon would have decided. It never
//! reads the clock and never writes.

pub mod baseline;
pub mod explain;
pub mod forecast;
pub mod windows;

use crate::config::{Rule, RuleKind};
use crate::money::Usd;
use crate::row::Dimension;
use crate::store::{ComboId, History, Metrics, Result, WindowAgg};
use baseline::Baseline;
use explain::Explanation;
use jiff::Timestamp;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use windows::{Plan, Span};

/// A series: the rule's group_by values, in group_by order; `None` is "no value".
pub type SeriesKey = Vec<Option<Arc<str>>>;

/// What the evaluator decided for one series.
#[derive(Clone, Debug)]
pub struct Decision {
    pub labels: Vec<(Dimension, Option<String>)>,
    pub firing: bool,
    pub window: Span,
    pub observed: Metrics,
    /// What the window would usually hold; `None` where the rule has no baseline to speak of.
    pub baseline: Option<Usd>,
    /// observed / baseline; `None` when the baseline is zero (never infinity).
    pub ratio: Option<f64>,
    /// Robust standard deviations above the baseline (spike rules).
    pub score: Option<f64>,
    /// Attribution rules: the share of the series' spend with no owner.
    pub unowned_share: Option<f64>,
    /// Budget forecasts: the period's projected total, and when it reaches the limit.
    pub forecast: Option<forecast::Forecast>,
    /// Reconcile rules: each source and the spend it reported.
    pub reconcile: Option<Vec<(String, Usd)>>,
    /// The baseline's robust standard deviation, in dollars.
    pub scale: Option<f64>,
    /// Judged by the young-series rule: too little history for a baseline.
    pub young: bool,
    pub limit: Option<Usd>,
    pub period: Option<String>,
    /// Filled for firing series only.
    pub explanation: Option<Explanation>,
    /// Firing series only: the rollup combinations of the spend judged in the window, which
    /// is where the store finds the series' raw rows (its evidence). Empty otherwise.
    pub combos: Vec<ComboId>,
}

/// Everything one rule decided at one instant.
#[derive(Clone, Debug)]
pub struct RuleOutcome {
    pub decisions: Vec<Decision>,
    pub window: Span,
    /// Share of the spend the rule watches in the window that has no tenant.
    pub unattributed_share: f64,
    pub total_observed: Metrics,
}

/// The series of one rule, numbered: each combination is mapped to its series once per
/// evaluation, so the windows are grouped by a number and no key is built per window.
#[derive(Default)]
struct SeriesIndex {
    of_combo: FxHashMap<ComboId, Option<u32>>,
    keys: Vec<SeriesKey>,
    by_key: FxHashMap<SeriesKey, u32>,
}

impl SeriesIndex {
    /// The series `id` belongs to; `None` when the rule's `match` leaves it out.
    fn of(&mut self, rule: &Rule, id: ComboId, history: &dyn History) -> Option<u32> {
        if let Some(s) = self.of_combo.get(&id) {
            return *s;
        }
        let combo = history.combo(id);
        let series = rule.matches(|d| combo.get(d)).then(|| {
            let key: SeriesKey = rule
                .group_by
                .iter()
                .map(|d| combo.dims[d.index()].clone())
                .collect();
            let next = self.keys.len() as u32;
            *self.by_key.entry(key.clone()).or_insert_with(|| {
                self.keys.push(key);
                next
            })
        });
        self.of_combo.insert(id, series);
        series
    }
}

/// A firing series waiting for its explanation: where its decision is, its series, which past
/// windows its baseline used, and the combinations it judged in the current window.
type Firing = (usize, u32, Vec<usize>, Vec<(ComboId, Metrics)>);

/// One series' rows in the judged window.
#[derive(Default, Clone)]
struct SeriesWindow {
    total: Metrics,
    combos: Vec<(ComboId, Metrics)>,
}

/// One series' spend in a past window, and the earliest first minute of the combinations
/// that carried it (for the series' age). Its combinations are read again only for the
/// series that fire, so a past window costs no list per series.
#[derive(Clone, Copy)]
struct PastTotal {
    total: Metrics,
    first_minute: i64,
}

fn group(
    rule: &Rule,
    agg: &WindowAgg,
    history: &dyn History,
    index: &mut SeriesIndex,
) -> FxHashMap<u32, SeriesWindow> {
    let mut out: FxHashMap<u32, SeriesWindow> = FxHashMap::default();
    for (id, m) in &agg.entries {
        let Some(series) = index.of(rule, *id, history) else {
            continue;
        };
        let s = out.entry(series).or_default();
        s.total.add(m);
        s.combos.push((*id, *m));
    }
    out
}

fn totals(
    rule: &Rule,
    agg: &WindowAgg,
    history: &dyn History,
    index: &mut SeriesIndex,
) -> FxHashMap<u32, PastTotal> {
    let mut out: FxHashMap<u32, PastTotal> = FxHashMap::default();
    for (id, m) in &agg.entries {
        let Some(series) = index.of(rule, *id, history) else {
            continue;
        };
        let first = history.combo(*id).first_minute;
        let t = out.entry(series).or_insert(PastTotal {
            total: Metrics::default(),
            first_minute: first,
        });
        t.total.add(m);
        t.first_minute = t.first_minute.min(first);
    }
    out
}

/// The combinations each of `wanted` series had in `agg`.
fn combos_of(
    agg: &WindowAgg,
    index: &SeriesIndex,
    wanted: &FxHashSet<u32>,
) -> FxHashMap<u32, Vec<(ComboId, Metrics)>> {
    let mut out: FxHashMap<u32, Vec<(ComboId, Metrics)>> = FxHashMap::default();
    for (id, m) in &agg.entries {
        if let Some(Some(s)) = index.of_combo.get(id)
            && wanted.contains(s)
        {
            out.entry(*s).or_default().push((*id, *m));
        }
    }
    out
}

/// Evaluates one rule at `at`, judging windows that closed `delay` earlier.
pub fn evaluate_rule(
    rule: &Rule,
    at: Timestamp,
    delay: crate::config::units::Dur,
    history: &mut dyn History,
) -> Result<RuleOutcome> {
    let plan = windows::plan(rule, at, delay);
    if let RuleKind::Reconcile {
        sources,
        max_diff_share,
        min_diff,
        ..
    } = &rule.kind
    {
        return reconcile(rule, &plan, history, sources, *max_diff_share, *min_diff);
    }
    let current_agg = history.window(plan.current.start, plan.current.end)?;
    let past_aggs: Vec<Arc<WindowAgg>> = plan
        .comparable
        .iter()
        .map(|s| history.window(s.start, s.end))
        .collect::<Result<_>>()?;
    // A budget forecast needs each series' spend hour by hour over the last two weeks; the
    // hours are cached, so each is read once.
    let hour_end = plan.current.end.div_euclid(60) * 60;
    let profile_aggs: Vec<Arc<WindowAgg>> = match &rule.kind {
        RuleKind::Budget { forecast: true, .. } => (0..forecast::PROFILE_HOURS)
            .rev()
            .map(|k| history.window(hour_end - (k + 1) * 60, hour_end - k * 60))
            .collect::<Result<_>>()?,
        _ => Vec::new(),
    };
    let history: &dyn History = history;
    let mut index = SeriesIndex::default();
    let profiles: Vec<FxHashMap<u32, PastTotal>> = profile_aggs
        .iter()
        .map(|a| totals(rule, a, history, &mut index))
        .collect();
    let current = group(rule, &current_agg, history, &mut index);
    let past: Vec<FxHashMap<u32, PastTotal>> = past_aggs
        .iter()
        .map(|a| totals(rule, a, history, &mut index))
        .collect();

    let mut total_observed = Metrics::default();
    let mut unowned = Usd::ZERO;
    for (id, m) in &current_agg.entries {
        let combo = history.combo(*id);
        if rule.matches(|d| combo.get(d)) {
            total_observed.add(m);
            if combo.get(Dimension::Tenant).is_none() {
                unowned += m.cost;
            }
        }
    }
    let unattributed_share = share(unowned, total_observed.cost);
    // An attribution rule judges, and explains, only the spend with no owner.
    let unowned_dim = match &rule.kind {
        RuleKind::Attribution { dimension, .. } => Some(*dimension),
        _ => None,
    };
    let owned_by_nobody = |combos: &[(ComboId, Metrics)]| -> Vec<(ComboId, Metrics)> {
        combos
            .iter()
            .filter(|(id, _)| unowned_dim.is_none_or(|d| history.combo(*id).get(d).is_none()))
            .copied()
            .collect()
    };

    let mut decisions = Vec::with_capacity(current.len());
    let mut firing: Vec<Firing> = Vec::new();
    for (sid, now) in &current {
        let key = &index.keys[*sid as usize];
        let first_minute = now
            .combos
            .iter()
            .map(|(id, _)| history.combo(*id).first_minute)
            .chain(
                past.iter()
                    .filter_map(|p| p.get(sid))
                    .map(|t| t.first_minute),
            )
            .min()
            .unwrap_or(plan.current.start);
        // Only windows after the series first appeared: before that it did not exist, and
        // counting those windows as zero would drag its baseline down.
        let used: Vec<usize> = plan
            .comparable
            .iter()
            .enumerate()
            .filter(|(_, span)| span.end > first_minute)
            .map(|(i, _)| i)
            .collect();
        let past_for: Vec<Option<&Metrics>> = used
            .iter()
            .map(|i| past[*i].get(sid).map(|t| &t.total))
            .collect();
        let same_kind: Vec<bool> = used.iter().map(|i| plan.same_kind[*i]).collect();
        let mut d = decide(rule, &plan, now, &past_for, &same_kind, first_minute);
        d.labels = rule
            .group_by
            .iter()
            .zip(key)
            .map(|(dim, v)| (*dim, v.as_deref().map(str::to_string)))
            .collect();
        if let RuleKind::Attribution {
            max_share, min_usd, ..
        } = &rule.kind
        {
            let mut unowned = Metrics::default();
            for (_, m) in owned_by_nobody(&now.combos) {
                unowned.add(&m);
            }
            let part = share(unowned.cost, now.total.cost);
            d.unowned_share = Some(part);
            d.observed = unowned;
            d.baseline = None;
            d.ratio = None;
            d.limit = Some(*min_usd);
            d.firing = part > *max_share && unowned.cost >= *min_usd;
        }
        if let (
            RuleKind::Budget {
                forecast: true,
                limit,
                ..
            },
            Some(end),
        ) = (&rule.kind, plan.period_end)
        {
            let hourly: Vec<f64> = profiles
                .iter()
                .map(|p| p.get(sid).map_or(0.0, |t| t.total.cost.as_f64()))
                .collect();
            let f = forecast::project(
                now.total.cost.as_f64(),
                limit.as_f64(),
                &hourly,
                hour_end,
                plan.current.end,
                end,
                &rule.timezone,
            );
            if f.total_usd >= limit.as_f64() {
                d.firing = true;
            }
            d.forecast = Some(f);
        }
        if let RuleKind::Runaway { .. } = &rule.kind {
            // Spend with no caller at all is not one caller running away.
            d.firing = d.firing && d.labels.iter().any(|(_, v)| v.is_some());
        }
        if d.firing {
            let now_combos = owned_by_nobody(&now.combos);
            d.combos = now_combos.iter().map(|(id, _)| *id).collect();
            firing.push((decisions.len(), *sid, used, now_combos));
        }
        decisions.push(d);
    }
    // The firing series' past combinations, read in one pass over each past window.
    let wanted: FxHashSet<u32> = firing.iter().map(|(_, s, _, _)| *s).collect();
    let past_combos: Vec<FxHashMap<u32, Vec<(ComboId, Metrics)>>> = if wanted.is_empty() {
        Vec::new()
    } else {
        past_aggs
            .iter()
            .map(|a| combos_of(a, &index, &wanted))
            .collect()
    };
    for (at, sid, used, now_combos) in firing {
        let per_window: Vec<Vec<(ComboId, Metrics)>> = used
            .iter()
            .map(|i| {
                past_combos[*i]
                    .get(&sid)
                    .map(|c| owned_by_nobody(c))
                    .unwrap_or_default()
            })
            .collect();
        let past_series: Vec<&[(ComboId, Metrics)]> =
            per_window.iter().map(Vec::as_slice).collect();
        let explanation =
            explain::explain(rule, &decisions[at], &now_combos, &past_series, history);
        decisions[at].explanation = Some(explanation);
    }
    decisions.sort_by(|a, b| {
        b.observed
            .cost
            .cmp(&a.observed.cost)
            .then_with(|| a.labels.cmp(&b.labels))
    });
    Ok(RuleOutcome {
        decisions,
        window: plan.current,
        unattributed_share,
        total_observed,
    })
}

/// Two sources' spend for the last complete period, per group: a series fires where they
/// differ by more than the share of the larger and by at least the amount. A group only one
/// source reported differs by all of it.
fn reconcile(
    rule: &Rule,
    plan: &Plan,
    history: &mut dyn History,
    sources: &[String; 2],
    max_diff_share: f64,
    min_diff: Usd,
) -> Result<RuleOutcome> {
    let span = plan.current;
    let totals = history.source_totals(span.start_ms(), span.end_ms(), sources, &rule.group_by)?;
    let mut by_group: std::collections::BTreeMap<Vec<Option<String>>, [Usd; 2]> =
        Default::default();
    for (labels, source, usd) in totals {
        let i = usize::from(source == sources[1]);
        by_group.entry(labels).or_default()[i] += usd;
    }
    let mut decisions = Vec::new();
    let mut total_observed = Metrics::default();
    for (values, [a, b]) in by_group {
        let diff = if a > b { a - b } else { b - a };
        let larger = a.max(b);
        total_observed.cost += a;
        decisions.push(Decision {
            labels: rule.group_by.iter().copied().zip(values).collect(),
            firing: share(diff, larger) > max_diff_share && diff >= min_diff,
            window: span,
            observed: Metrics {
                cost: a,
                ..Default::default()
            },
            baseline: Some(b),
            ratio: ratio(a, b),
            score: None,
            unowned_share: None,
            forecast: None,
            reconcile: Some(vec![(sources[0].clone(), a), (sources[1].clone(), b)]),
            scale: None,
            young: false,
            limit: Some(min_diff),
            period: plan.period.clone(),
            explanation: None,
            combos: Vec::new(),
        });
    }
    Ok(RuleOutcome {
        decisions,
        window: span,
        unattributed_share: 0.0,
        total_observed,
    })
}

/// `part / whole`, and 0 when there is no whole.
pub fn share(part: Usd, whole: Usd) -> f64 {
    if whole.nanos() <= 0 {
        0.0
    } else {
        part.nanos() as f64 / whole.nanos() as f64
    }
}

fn ratio(observed: Usd, baseline: Usd) -> Option<f64> {
    (baseline.nanos() > 0).then(|| observed.nanos() as f64 / baseline.nanos() as f64)
}

fn decide(
    rule: &Rule,
    plan: &Plan,
    now: &SeriesWindow,
    past: &[Option<&Metrics>],
    same_kind: &[bool],
    first_minute: i64,
) -> Decision {
    let observed = now.total;
    let history: Vec<f64> = past
        .iter()
        .map(|p| p.map_or(0.0, |m| m.cost.as_f64()))
        .collect();
    let base = Baseline::from_history_by_kind(&history, same_kind);
    let baseline_usd = Usd::from_f64(base.location).unwrap_or(Usd::ZERO);
    let mut d = Decision {
        labels: Vec::new(),
        firing: false,
        window: plan.current,
        observed,
        baseline: Some(baseline_usd),
        ratio: ratio(observed.cost, baseline_usd),
        score: None,
        unowned_share: None,
        forecast: None,
        reconcile: None,
        scale: Some(base.scale),
        young: false,
        limit: None,
        period: plan.period.clone(),
        explanation: None,
        combos: Vec::new(),
    };
    match &rule.kind {
        RuleKind::Spike(s) => {
            let age_minutes = plan.current.end - first_minute;
            d.young = age_minutes < s.min_history.seconds() / 60 || base.samples == 0;
            if d.young {
                d.firing = observed.cost >= s.young_min;
            } else {
                let score = base.score(observed.cost.as_f64());
                d.score = Some(score);
                let delta = observed.cost - baseline_usd;
                d.firing = score >= s.sensitivity
                    && delta >= s.min_delta
                    && d.ratio.is_none_or(|r| r >= s.min_ratio);
            }
        }
        RuleKind::Threshold { limit, .. }
        | RuleKind::Budget { limit, .. }
        | RuleKind::Runaway { limit, .. } => {
            d.limit = Some(*limit);
            d.firing = observed.cost >= *limit;
        }
        // Judged in evaluate_rule, where the owners of each row are known.
        RuleKind::Attribution { .. } => {}
        // Judged by `reconcile`, which never gets here.
        RuleKind::Reconcile { .. } => {}
    }
    d
}

#[cfg(test)]
mod tests;
