//! One evaluation cycle: every rule evaluated at one instant, the alert book stepped, and the
//! notifications routed to their channels. The daemon, `evaluate` and the backtest all run
//! this same code; they differ only in where the book lives and whether it is written.

use crate::alert::{AlertBook, Notification, Status, model, silence};
use crate::config::Config;
use crate::evaluate::{self, RuleOutcome};
use crate::store::{self, History, NewMessage, Store, StoreHistory};
use jiff::Timestamp;
use rusqlite::Connection;

/// How many request ids an alert carries as evidence.
const SAMPLE_IDS: usize = 5;

/// Evaluates the rules (all, or those `only` names) at `at`. A rule that fails to evaluate is
/// logged and skipped; the others go on.
pub fn evaluate_rules(
    config: &Config,
    history: &mut dyn History,
    at: Timestamp,
    only: Option<&str>,
) -> Vec<(usize, RuleOutcome)> {
    let mut out = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        if only.is_some_and(|n| n != rule.name) {
            continue;
        }
        match evaluate::evaluate_rule(rule, at, config.delay, history) {
            Ok(o) => out.push((i, o)),
            Err(e) => {
                tracing::error!(rule = %rule.name, error = %e, "rule evaluation failed; skipped this cycle")
            }
        }
    }
    out
}

/// Steps the book with the outcomes and builds the alerts that are to be sent, reading
/// sample request ids through `conn`.
pub fn step_book(
    config: &Config,
    conn: &Connection,
    book: &mut AlertBook,
    at: Timestamp,
    outcomes: &[(usize, RuleOutcome)],
) -> Vec<Notification> {
    let mut notes = Vec::new();
    let at_ms = at.as_millisecond();
    let silences = active_silences(conn, at_ms);
    for (i, outcome) in outcomes {
        let rule = &config.rules[*i];
        let mut build = |d: &evaluate::Decision, status: Status| {
            let points = if status == Status::Firing {
                let bucket = model::chart_bucket_minutes(d.window.minutes());
                // A firing decision names its combinations; their index finds its rows.
                let (start, end) = (d.window.start_ms(), d.window.end_ms());
                if d.combos.is_empty() {
                    store::bucketed_spend(conn, start, end, bucket, &d.labels, &rule.filter)
                } else {
                    store::bucketed_spend_of(conn, start, end, bucket, &d.combos)
                }
                    .map_err(|e| tracing::warn!(rule = %rule.name, error = %e, "cannot read the chart's spend"))
                    .ok()
            } else {
                None
            };
            // For an attribution rule the evidence is the rows with no owner.
            let mut evidence = d.labels.clone();
            if let crate::config::RuleKind::Attribution { dimension, .. } = &rule.kind {
                evidence.push((*dimension, None));
            }
            let samples = if status == Status::Firing {
                let (start, end) = (d.window.start_ms(), d.window.end_ms());
                if d.combos.is_empty() {
                    store::sample_request_ids(conn, start, end, &evidence, &rule.filter, SAMPLE_IDS)
                } else {
                    store::sample_request_ids_of(conn, start, end, &d.combos, SAMPLE_IDS)
                }
                .unwrap_or_else(|e| {
                    tracing::warn!(rule = %rule.name, error = %e, "cannot read sample request ids");
                    Vec::new()
                })
            } else {
                Vec::new()
            };
            model::build(rule, outcome, d, status, at, samples, points)
        };
        let hold = |labels: &[(crate::row::Dimension, Option<String>)]| {
            silence::hold(rule, labels, at_ms, &silences)
        };
        notes.extend(book.step(
            rule,
            at_ms,
            outcome.window,
            &outcome.decisions,
            &mut build,
            &hold,
        ));
    }
    notes
}

/// The silences that may hold at `at_ms`; an unreadable one is logged and ignored.
fn active_silences(conn: &Connection, at_ms: i64) -> Vec<silence::Silence> {
    let stored = store::load_silences(conn, at_ms).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read silences; none apply this cycle");
        Vec::new()
    });
    stored
        .into_iter()
        .filter_map(|s| match serde_json::from_str(&s.matchers) {
            Ok(matchers) => Some(silence::Silence {
                id: s.id,
                matchers,
                starts_ms: s.starts_ms,
                ends_ms: s.ends_ms,
                comment: s.comment,
                expired_ms: s.expired_ms,
            }),
            Err(e) => {
                tracing::error!(silence = s.id, error = %e, "unreadable silence ignored");
                None
            }
        })
        .collect()
}

/// Channel, rule and status: what one grouped message shares.
type GroupKey = (String, String, Status);

/// The outbox messages for a cycle's notifications: one per notification and channel, except
/// that a channel configured to group gets one message per rule and status with all its
/// series. Resolved notifications skip channels that do not want them.
pub fn route(config: &Config, notes: &[Notification]) -> Vec<NewMessage> {
    let mut messages = Vec::new();
    let mut groups: Vec<(GroupKey, Vec<&crate::alert::Alert>)> = Vec::new();
    for n in notes {
        for c in &n.channels {
            let channel = config.channels.get(c);
            if n.alert.status == Status::Resolved && !channel.is_none_or(|ch| ch.send_resolved) {
                continue;
            }
            if channel.is_some_and(|ch| ch.group) {
                let key = (c.clone(), n.alert.rule.clone(), n.alert.status);
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, v)) => v.push(&n.alert),
                    None => groups.push((key, vec![&n.alert])),
                }
                continue;
            }
            let payload = serde_json::to_string(&[&n.alert]).expect("alerts serialise");
            messages.push((
                c.clone(),
                n.alert.dedup_key.clone(),
                n.alert.status.as_str().to_string(),
                payload,
            ));
        }
    }
    for ((channel, _, status), alerts) in groups {
        let payload = serde_json::to_string(&alerts).expect("alerts serialise");
        let key = if alerts.len() == 1 {
            alerts[0].dedup_key.clone()
        } else {
            format!("group:{}", alerts[0].rule)
        };
        messages.push((channel, key, status.as_str().to_string(), payload));
    }
    messages
}

/// Runs one cycle of the daemon at `at`: evaluate, then, in one transaction, load the book,
/// step it, write what changed and queue the notifications. With `dry_run` nothing is written.
pub fn run_cycle(
    config: &Config,
    store: &mut Store,
    history: &mut StoreHistory,
    at: Timestamp,
    dry_run: bool,
) -> anyhow::Result<Vec<Notification>> {
    let started = std::time::Instant::now();
    // The book keeps milliseconds; an instant finer than that would not compare equal to itself.
    let at = Timestamp::from_millisecond(at.as_millisecond())?;
    let outcomes = {
        let mut view = history.view(store)?;
        evaluate_rules(config, &mut view, at, None)
    };
    let notes = if dry_run {
        let mut book = AlertBook::from_stored(store.load_alerts()?);
        step_book(config, store.conn(), &mut book, at, &outcomes)
    } else {
        store.write(|tx| {
            let mut book = AlertBook::from_stored(store::load_alerts(tx)?);
            let notes = step_book(config, tx, &mut book, at, &outcomes);
            // Alerts of rules that were removed from the configuration end quietly.
            book.retain_rules(&config.rules.iter().map(|r| r.name.as_str()).collect());
            let messages = route(config, &notes);
            store::commit_cycle(tx, at.as_millisecond(), &book.take_changed(), &messages)?;
            Ok(notes)
        })?
    };
    let firing = outcomes
        .iter()
        .flat_map(|(_, o)| &o.decisions)
        .filter(|d| d.firing)
        .count();
    let series = outcomes.iter().map(|(_, o)| o.decisions.len()).sum();
    crate::observe::evaluation(started.elapsed(), true, series);
    tracing::info!(at = %at, rules = outcomes.len(), firing, notifications = notes.len(), dry_run, "evaluation cycle");
    Ok(notes)
}
