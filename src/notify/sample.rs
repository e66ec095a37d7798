//! The alert `spendpager notify test` sends: shaped like a real spike so that every part of a
//! channel's rendering is exercised (contributors, chart, request ids), and marked as a test
//! in its rule name, its labels and the first words of its summary.

use crate::alert::model::{AlertContributor, AlertDrivers, Chart};
use crate::alert::{Alert, Status};
use crate::config::Severity;
use jiff::{SignedDuration, Timestamp};
use std::collections::BTreeMap;

/// The rule name every test notification carries.
pub const TEST_RULE: &str = "spendpager-test";

/// A sample firing alert at `at`, addressed to `channel`.
pub fn test_alert(channel: &str, at: Timestamp) -> Alert {
    let start = at - SignedDuration::from_hours(1);
    let mut labels = BTreeMap::new();
    labels.insert("test".to_string(), Some("true".to_string()));
    labels.insert("tenant".to_string(), Some("example-tenant".to_string()));
    let mut points = vec![0.35, 0.4, 0.38, 0.42, 0.37, 0.41, 0.39, 0.36, 0.4];
    points.extend([2.1, 2.6, 2.8]);
    Alert {
        kind: "spike".into(),
        rule: TEST_RULE.into(),
        severity: Severity::Info,
        status: Status::Firing,
        at: at.to_string(),
        labels,
        window_start: start.to_string(),
        window_end: at.to_string(),
        observed_usd: 10.44,
        baseline_usd: Some(4.75),
        ratio: Some(2.2),
        contributors: vec![AlertContributor {
            dimension: "feature".into(),
            value: Some("example-feature".into()),
            observed_usd: 7.5,
            baseline_usd: 1.9,
            share_of_increase: 0.98,
        }],
        unattributed_share: 0.0,
        unpriced_rows: 0,
        sample_request_ids: vec!["test-request-1".into()],
        dedup_key: format!("spendpager-test-{channel}"),
        summary: format!(
            "TEST notification from spendpager to channel `{channel}`: no spend spiked and no action is needed. \
             A real alert reads like: Tenant example-tenant spent $10.44 in the hour, 2.2x the usual $4.75."
        ),
        requests: 120,
        limit_usd: None,
        period: None,
        drivers: AlertDrivers::default(),
        young: false,
        unowned_share: None,
        sources: None,
        forecast_usd: None,
        forecast_crosses_at: None,
        started_at: None,
        rule_origin: "spendpager notify test".into(),
        chart: Some(Chart {
            bucket_minutes: 5,
            points_usd: points,
            band_low_usd: 0.3,
            band_high_usd: 0.5,
        }),
    }
}
