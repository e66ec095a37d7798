//! The alert as every channel receives it, and its one-paragraph summary in words.

use crate::config::{Rule, RuleKind, Severity};
use crate::evaluate::explain::Drivers;
use crate::evaluate::windows::Span;
use crate::evaluate::{Decision, RuleOutcome};
use crate::money::Usd;
use crate::row::Dimension;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertContributor {
    pub dimension: String,
    pub value: Option<String>,
    pub observed_usd: f64,
    pub baseline_usd: f64,
    pub share_of_increase: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertDrivers {
    pub requests: Option<f64>,
    pub input_tokens_per_request: Option<f64>,
    pub output_tokens_per_request: Option<f64>,
    pub cost_per_token: Option<f64>,
}

/// One notification's content: the webhook body and the command-line output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule kind: spike, threshold or budget.
    pub kind: String,
    pub rule: String,
    pub severity: Severity,
    pub status: Status,
    /// The evaluation instant.
    pub at: String,
    /// The group_by values; `null` is spend with no value.
    pub labels: BTreeMap<String, Option<String>>,
    pub window_start: String,
    pub window_end: String,
    pub observed_usd: f64,
    pub baseline_usd: Option<f64>,
    pub ratio: Option<f64>,
    pub contributors: Vec<AlertContributor>,
    /// Share of the spend the rule watched in the window that had no tenant.
    pub unattributed_share: f64,
    /// Rows in the window with no cost and no price; their spend is not in `observed_usd`.
    pub unpriced_rows: u64,
    pub sample_request_ids: Vec<String>,
    pub dedup_key: String,
    pub summary: String,
    pub requests: u64,
    pub limit_usd: Option<f64>,
    pub period: Option<String>,
    pub drivers: AlertDrivers,
    pub young: bool,
    /// Budget forecasts: the period's projected total and when it reaches the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast_crosses_at: Option<String>,
    /// Reconcile rules: each source and the spend it reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceSpend>>,
    /// Attribution rules: the share of the series' spend that has no owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unowned_share: Option<f64>,
    pub started_at: Option<String>,
    pub rule_origin: String,
    /// The window's spend bucket by bucket, and the baseline band spread over the buckets,
    /// for channels that draw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
}

/// One source's spend, in a reconcile alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSpend {
    pub source: String,
    pub usd: f64,
}

/// Spend in the window, bucket by bucket, against the baseline band.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    pub bucket_minutes: i64,
    /// Spend per bucket, oldest first, in dollars.
    pub points_usd: Vec<f64>,
    /// The baseline band per bucket: the baseline minus and plus one robust deviation,
    /// divided evenly over the buckets.
    pub band_low_usd: f64,
    pub band_high_usd: f64,
}

/// A label set in words: `tenant s3, feature m-small`.
pub fn series_words(alert: &Alert) -> String {
    if alert.labels.is_empty() {
        return "all spend".into();
    }
    alert
        .labels
        .iter()
        .map(|(k, v)| format!("{k} {}", v.as_deref().unwrap_or("(none)")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dedup key of a rule and series: the same rule and series always give the same key.
pub fn dedup_key(rule: &str, labels: &[(Dimension, Option<String>)]) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    for (d, v) in labels {
        h.update([0]);
        h.update(d.name().as_bytes());
        h.update([1]);
        match v {
            Some(v) => {
                h.update([2]);
                h.update(v.as_bytes());
            }
            None => h.update([3]),
        }
    }
    let d = h.finalize();
    d[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The series key stored in the book: `tenant=acme,feature=chat`, `tenant=∅` for no value.
pub fn series_text(labels: &[(Dimension, Option<String>)]) -> String {
    if labels.is_empty() {
        return "all".into();
    }
    labels
        .iter()
        .map(|(d, v)| format!("{d}={}", v.as_deref().unwrap_or("∅")))
        .collect::<Vec<_>>()
        .join(",")
}

fn ts_text(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn describe_series(labels: &[(Dimension, Option<String>)]) -> String {
    if labels.is_empty() {
        return "All spend".into();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(d, v)| match v {
            Some(v) => format!("{d} {v}"),
            None => format!("spend with no {d}"),
        })
        .collect();
    let mut s = parts.join(", ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

fn describe_value(c: &AlertContributor) -> String {
    match &c.value {
        Some(v) => format!("{} {v}", c.dimension),
        None => format!("rows with no {}", c.dimension),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn times(x: Option<f64>) -> Option<String> {
    x.map(|r| format!("{r:.1}x"))
}

/// Turns the last alert of a series into its resolution when the series had no spend at all
/// in the window: the figures are zero and the times are this cycle's.
pub fn mark_without_spend(alert: &mut Alert, rule: &Rule, at_ms: i64, window: Span) {
    alert.at = ts_text(at_ms);
    alert.window_start = ts_text(window.start_ms());
    alert.window_end = ts_text(window.end_ms());
    alert.observed_usd = 0.0;
    alert.ratio = alert.baseline_usd.filter(|b| *b > 0.0).map(|_| 0.0);
    alert.requests = 0;
    alert.unpriced_rows = 0;
    alert.contributors.clear();
    alert.sample_request_ids.clear();
    alert.drivers = AlertDrivers::default();
    let labels = labels_of(alert);
    let end = window.end_ts().to_zoned(rule.timezone.clone());
    alert.summary = format!(
        "Resolved: {} had no spend in the window to {}.",
        describe_series(&labels),
        end.strftime("%Y-%m-%d %H:%M %Z")
    );
}

/// The labels of an alert as dimension and value pairs.
pub fn labels_of(alert: &Alert) -> Vec<(Dimension, Option<String>)> {
    alert
        .labels
        .iter()
        .filter_map(|(k, v)| Dimension::parse(k).map(|d| (d, v.clone())))
        .collect()
}

/// Builds the alert for a decision of `rule`.
pub fn build(
    rule: &Rule,
    outcome: &RuleOutcome,
    decision: &Decision,
    status: Status,
    at: Timestamp,
    sample_request_ids: Vec<String>,
    points_usd: Option<Vec<f64>>,
) -> Alert {
    let labels: BTreeMap<String, Option<String>> = decision
        .labels
        .iter()
        .map(|(d, v)| (d.name().to_string(), v.clone()))
        .collect();
    let explanation = decision.explanation.clone().unwrap_or_default();
    let contributors: Vec<AlertContributor> = explanation
        .contributors
        .iter()
        .map(|c| AlertContributor {
            dimension: c.dimension.name().to_string(),
            value: c.value.clone(),
            observed_usd: c.observed_usd.as_f64(),
            baseline_usd: c.baseline_usd.as_f64(),
            share_of_increase: round4(c.share_of_increase),
        })
        .collect();
    let Drivers {
        requests,
        input_tokens_per_request,
        output_tokens_per_request,
        cost_per_token,
    } = explanation.drivers;
    let round = |x: Option<f64>| x.map(round4);
    let mut alert = Alert {
        kind: rule.kind_name().to_string(),
        rule: rule.name.clone(),
        severity: rule.severity,
        status,
        at: at.to_string(),
        labels,
        window_start: ts_text(decision.window.start_ms()),
        window_end: ts_text(decision.window.end_ms()),
        observed_usd: decision.observed.cost.as_f64(),
        baseline_usd: decision.baseline.map(Usd::as_f64),
        ratio: round(decision.ratio),
        contributors,
        unattributed_share: round4(outcome.unattributed_share),
        unpriced_rows: decision.observed.unpriced_rows,
        sample_request_ids,
        dedup_key: dedup_key(&rule.name, &decision.labels),
        summary: String::new(),
        requests: decision.observed.requests,
        limit_usd: decision.limit.map(Usd::as_f64),
        period: decision.period.clone(),
        drivers: AlertDrivers {
            requests: round(requests),
            input_tokens_per_request: round(input_tokens_per_request),
            output_tokens_per_request: round(output_tokens_per_request),
            cost_per_token: round(cost_per_token),
        },
        young: decision.young,
        unowned_share: decision.unowned_share.map(round4),
        sources: decision.reconcile.as_ref().map(|list| {
            list.iter()
                .map(|(s, u)| SourceSpend {
                    source: s.clone(),
                    usd: u.as_f64(),
                })
                .collect()
        }),
        forecast_usd: decision
            .forecast
            .map(|f| (f.total_usd * 100.0).round() / 100.0),
        forecast_crosses_at: decision
            .forecast
            .and_then(|f| f.crosses_at_minute)
            .and_then(|m| Timestamp::from_second(m * 60).ok())
            .map(|t| t.to_string()),
        started_at: None,
        rule_origin: rule.origin.clone(),
        chart: None,
    };
    if let (Some(points), Some(base)) = (points_usd, decision.baseline) {
        let n = points.len().max(1) as f64;
        let spread = decision.scale.unwrap_or(0.0);
        alert.chart = Some(Chart {
            bucket_minutes: chart_bucket_minutes(decision.window.minutes()),
            points_usd: points,
            band_low_usd: ((base.as_f64() - spread) / n).max(0.0),
            band_high_usd: (base.as_f64() + spread) / n,
        });
    }
    alert.summary = summary(rule, decision, &alert);
    alert
}

/// Buckets of the chart: about a dozen to two dozen per window.
pub fn chart_bucket_minutes(window_minutes: i64) -> i64 {
    [1, 5, 10, 15, 30, 60, 120, 360, 1440]
        .into_iter()
        .find(|b| window_minutes / b <= 24)
        .unwrap_or(1440)
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn window_words(rule: &Rule, decision: &Decision) -> String {
    let end = decision.window.end_ts().to_zoned(rule.timezone.clone());
    let minutes = decision.window.minutes();
    let span = match minutes {
        60 => "the hour".to_string(),
        m if m % 60 == 0 => format!("the {} hours", m / 60),
        m => format!("the {m} minutes"),
    };
    format!("in {span} to {}", end.strftime("%Y-%m-%d %H:%M %Z"))
}

/// The alert in words: who, how much, against what, and why.
fn summary(rule: &Rule, decision: &Decision, alert: &Alert) -> String {
    let who = describe_series(&decision.labels);
    let observed = decision.observed.cost.human();
    let mut s = match (&rule.kind, alert.status) {
        (_, Status::Resolved) => {
            let mut s = format!("Resolved: {who} is back to ${observed}");
            match (&rule.kind, decision.period.as_deref()) {
                (RuleKind::Budget { .. }, Some(p)) => s.push_str(&format!(" for {p}")),
                _ => s.push_str(&format!(" {}", window_words(rule, decision))),
            }
            s.push('.');
            return s;
        }
        (RuleKind::Spike(_), _) => {
            let base = decision.baseline.unwrap_or_default().human();
            let vs = match decision.ratio {
                Some(r) => format!("{r:.1}x the usual ${base}"),
                None => "where it usually spends nothing".to_string(),
            };
            if decision.young {
                format!(
                    "{who} spent ${observed} {}, a new series with little history ({vs})",
                    window_words(rule, decision)
                )
            } else {
                format!(
                    "{who} spent ${observed} {}, {vs}",
                    window_words(rule, decision)
                )
            }
        }
        (RuleKind::Threshold { limit, .. }, _) => {
            let limit = limit.human();
            format!(
                "{who} spent ${observed} {}, reaching the limit of ${limit}",
                window_words(rule, decision)
            )
        }
        (
            RuleKind::Attribution {
                dimension,
                max_share,
                ..
            },
            _,
        ) => {
            let whose = if decision.labels.is_empty() {
                "all spend".to_string()
            } else {
                format!(
                    "the spend of {}",
                    describe_series(&decision.labels).to_lowercase()
                )
            };
            format!(
                "{} of {whose} {} had no {dimension}: ${observed} that nobody can be billed for, \
                 above the allowed {}",
                pct(decision.unowned_share.unwrap_or(0.0)),
                window_words(rule, decision),
                pct(*max_share)
            )
        }
        (RuleKind::Reconcile { .. }, _) => {
            let reported: Vec<String> = decision
                .reconcile
                .iter()
                .flatten()
                .map(|(s, usd)| format!("{s} reports ${}", usd.human()))
                .collect();
            let (a, b) = (
                decision.observed.cost,
                decision.baseline.unwrap_or_default(),
            );
            let diff = if a > b { a - b } else { b - a };
            format!(
                "{who}: {} for {}, a difference of ${} ({} of the larger)",
                reported.join(" and "),
                decision.period.as_deref().unwrap_or("the period"),
                diff.human(),
                pct(crate::evaluate::share(diff, a.max(b)))
            )
        }
        (RuleKind::Runaway { limit, .. }, _) => {
            let limit = limit.human();
            format!(
                "{who} spent ${observed} {}, running past ${limit}",
                window_words(rule, decision)
            )
        }
        (RuleKind::Budget { period, limit, .. }, _) if decision.observed.cost < *limit => {
            let limit = limit.human();
            let p = format!("{period:?}").to_lowercase();
            let f = decision
                .forecast
                .unwrap_or(crate::evaluate::forecast::Forecast {
                    total_usd: 0.0,
                    crosses_at_minute: None,
                });
            let when = f
                .crosses_at_minute
                .and_then(|m| Timestamp::from_second(m * 60).ok())
                .map(|t| {
                    t.to_zoned(rule.timezone.clone())
                        .strftime("%Y-%m-%d %H:%M %Z")
                        .to_string()
                })
                .unwrap_or_else(|| "before the period ends".into());
            format!(
                "{who} has spent ${observed} of its {p} budget of ${limit} in {} and is on course for ${}, \
                 reaching the budget around {when}",
                decision.period.as_deref().unwrap_or("the period"),
                Usd::from_f64(f.total_usd).unwrap_or_default().human()
            )
        }
        (RuleKind::Budget { period, limit, .. }, _) => {
            let limit = limit.human();
            let p = format!("{period:?}").to_lowercase();
            format!(
                "{who} spent ${observed} in {} {}, reaching the {p} budget of ${limit}",
                decision.period.as_deref().unwrap_or("the period"),
                rule.timezone.iana_name().unwrap_or("local time"),
            )
        }
    };
    s.push('.');
    if !alert.contributors.is_empty() {
        let mut named: Vec<String> = Vec::new();
        for c in alert.contributors.iter().take(3) {
            named.push(format!(
                "{} ({} of the increase)",
                describe_value(c),
                pct(c.share_of_increase)
            ));
        }
        s.push_str(&format!(" Carried by {}.", named.join(", ")));
    }
    let d = &alert.drivers;
    let drivers: Vec<String> = [
        ("requests", times(d.requests)),
        (
            "input tokens per request",
            times(d.input_tokens_per_request),
        ),
        (
            "output tokens per request",
            times(d.output_tokens_per_request),
        ),
        ("price per token", times(d.cost_per_token)),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| format!("{name} {v}")))
    .collect();
    if !drivers.is_empty() {
        s.push_str(&format!(
            " Against the usual window: {}.",
            drivers.join(", ")
        ));
    }
    if alert.unattributed_share > 0.0 {
        s.push_str(&format!(
            " {} of the spend in the window had no tenant.",
            pct(alert.unattributed_share)
        ));
    }
    if alert.unpriced_rows > 0 {
        s.push_str(&format!(
            " {} had no price and {} not counted in these figures.",
            if alert.unpriced_rows == 1 {
                "1 row".to_string()
            } else {
                format!("{} rows", alert.unpriced_rows)
            },
            if alert.unpriced_rows == 1 {
                "is"
            } else {
                "are"
            }
        ));
    }
    if !alert.sample_request_ids.is_empty() {
        s.push_str(&format!(
            " Requests: {}.",
            alert.sample_request_ids.join(", ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keys_are_stable_and_distinguish_no_value() {
        let a = dedup_key("r", &[(Dimension::Tenant, Some("acme".into()))]);
        let b = dedup_key("r", &[(Dimension::Tenant, Some("acme".into()))]);
        let none = dedup_key("r", &[(Dimension::Tenant, None)]);
        let empty_name = dedup_key("r", &[(Dimension::Tenant, Some(String::new()))]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 24);
        assert_ne!(a, none);
        assert_ne!(none, empty_name);
        assert_ne!(
            a,
            dedup_key("other", &[(Dimension::Tenant, Some("acme".into()))])
        );
    }
}
