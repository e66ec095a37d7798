//! The backtest: the schedule replayed over stored history with the daemon's own evaluation
//! and alert-book code, on a scratch book in memory. It reads the store and never writes it,
//! so the real alert state is untouched.

use crate::alert::{Alert, AlertBook, Status};
use crate::config::Config;
use crate::cycle;
use crate::store::{Store, StoreHistory};
use jiff::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Per rule: what the replay would have sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RuleTally {
    pub notifications: u64,
    pub firing: u64,
    pub resolved: u64,
    /// Distinct series that paged.
    pub series: BTreeSet<String>,
}

#[derive(Clone, Debug, Default)]
pub struct BacktestReport {
    /// Every notification, in order: firing and resolved.
    pub notifications: Vec<Alert>,
    pub cycles: u64,
    pub per_rule: BTreeMap<String, RuleTally>,
}

pub mod labels;
pub mod nab;

/// Replays every fire time of the schedule in `(from, to]`.
pub fn run(
    config: &Config,
    store: &Store,
    from: Timestamp,
    to: Timestamp,
    only_rule: Option<&str>,
) -> anyhow::Result<BacktestReport> {
    run_at(
        config,
        store,
        config.schedule.fire_times(from, to),
        only_rule,
    )
}

/// Replays the given instants, in order, as if the schedule had fired at each.
pub fn run_at(
    config: &Config,
    store: &Store,
    instants: impl Iterator<Item = Timestamp>,
    only_rule: Option<&str>,
) -> anyhow::Result<BacktestReport> {
    if let Some(name) = only_rule
        && config.rule(name).is_none()
    {
        anyhow::bail!("no rule named `{name}`");
    }
    let mut history = StoreHistory::new();
    let mut book = AlertBook::new();
    let mut report = BacktestReport::default();
    for rule in &config.rules {
        if only_rule.is_none_or(|n| n == rule.name) {
            report
                .per_rule
                .insert(rule.name.clone(), RuleTally::default());
        }
    }
    for at in instants {
        let outcomes = {
            let mut view = history.view(store)?;
            cycle::evaluate_rules(config, &mut view, at, only_rule)
        };
        let notes = cycle::step_book(config, store.conn(), &mut book, at, &outcomes);
        report.cycles += 1;
        for n in notes {
            let tally = report.per_rule.entry(n.alert.rule.clone()).or_default();
            tally.notifications += 1;
            match n.alert.status {
                Status::Firing => {
                    tally.firing += 1;
                    tally
                        .series
                        .insert(crate::alert::model::series_words(&n.alert));
                }
                Status::Resolved => tally.resolved += 1,
            }
            report.notifications.push(n.alert);
        }
    }
    Ok(report)
}
