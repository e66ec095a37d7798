//! The alert book: one state per rule and series, and the transitions that decide what is
//! sent. An alert fires once (after `for`, if set), is repeated only after `repeat`, and
//! resolves once when its condition ends, also when its series stops having spend at all.
//!
//! The book is plain data: the cycle loads it from the store, steps it, and writes back what
//! changed with the notifications in one transaction; the backtest steps a copy in memory.

use super::model::{Alert, Status, dedup_key, series_text};
use crate::config::Rule;
use crate::evaluate::Decision;
use crate::evaluate::windows::Span;
use crate::row::Dimension;
use crate::store::StoredAlert;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Inactive,
    Pending,
    Firing,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Inactive => "inactive",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
        }
    }

    fn parse(s: &str) -> Phase {
        match s {
            "pending" => Phase::Pending,
            "firing" => Phase::Firing,
            _ => Phase::Inactive,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub dedup_key: String,
    pub rule: String,
    pub series: String,
    pub phase: Phase,
    /// When the current phase began.
    pub since_ms: i64,
    pub pending_since_ms: Option<i64>,
    /// The last cycle whose condition held.
    pub last_true_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub last_status: Option<Status>,
    pub updated_ms: i64,
    pub last_alert: Option<Alert>,
    /// What holds its pages back now (`silence 3`, `mute 22:00-07:00`), if anything.
    pub held_by: Option<String>,
}

impl Entry {
    fn new(key: &str, rule: &Rule, labels: &[(Dimension, Option<String>)], at_ms: i64) -> Entry {
        Entry {
            dedup_key: key.to_string(),
            rule: rule.name.clone(),
            series: series_text(labels),
            phase: Phase::Inactive,
            since_ms: at_ms,
            pending_since_ms: None,
            last_true_ms: None,
            last_sent_ms: None,
            last_status: None,
            updated_ms: at_ms,
            last_alert: None,
            held_by: None,
        }
    }
}

impl Entry {
    fn to_stored(&self) -> StoredAlert {
        StoredAlert {
            dedup_key: self.dedup_key.clone(),
            rule: self.rule.clone(),
            series: self.series.clone(),
            // Stored as one of inactive, pending, firing and resolved: an inactive entry whose
            // last word was a resolution is "resolved".
            state: match (self.phase, self.last_status) {
                (Phase::Inactive, Some(Status::Resolved)) => "resolved".to_string(),
                (phase, _) => phase.as_str().to_string(),
            },
            since_ms: self.since_ms,
            pending_since_ms: self.pending_since_ms,
            last_true_ms: self.last_true_ms,
            last_sent_ms: self.last_sent_ms,
            last_status: self.last_status.map(|s| s.as_str().to_string()),
            updated_ms: self.updated_ms,
            held_by: self.held_by.clone(),
            last_alert: self
                .last_alert
                .as_ref()
                .map(|a| serde_json::to_string(a).expect("alerts serialise")),
        }
    }

    fn from_stored(s: StoredAlert) -> Entry {
        Entry {
            phase: Phase::parse(&s.state),
            last_status: match s.last_status.as_deref() {
                Some("firing") => Some(Status::Firing),
                Some("resolved") => Some(Status::Resolved),
                _ => None,
            },
            last_alert: s
                .last_alert
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            dedup_key: s.dedup_key,
            rule: s.rule,
            series: s.series,
            since_ms: s.since_ms,
            pending_since_ms: s.pending_since_ms,
            last_true_ms: s.last_true_ms,
            last_sent_ms: s.last_sent_ms,
            updated_ms: s.updated_ms,
            held_by: s.held_by,
        }
    }
}

/// What holds a series' pages back now, given its labels: `Some("silence 3")` or nothing.
pub type Hold<'a> = dyn Fn(&[(Dimension, Option<String>)]) -> Option<String> + 'a;

/// A notification the book decided to send, and to which channels.
#[derive(Clone, Debug)]
pub struct Notification {
    pub alert: Alert,
    pub channels: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct AlertBook {
    entries: HashMap<String, Entry>,
    changed: HashSet<String>,
}

impl AlertBook {
    pub fn new() -> AlertBook {
        AlertBook::default()
    }

    pub fn from_stored(stored: Vec<StoredAlert>) -> AlertBook {
        AlertBook {
            entries: stored
                .into_iter()
                .map(|s| (s.dedup_key.clone(), Entry::from_stored(s)))
                .collect(),
            changed: HashSet::new(),
        }
    }

    pub fn get(&self, dedup_key: &str) -> Option<&Entry> {
        self.entries.get(dedup_key)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entries changed since the last call, for writing back; clears the change list.
    pub fn take_changed(&mut self) -> Vec<StoredAlert> {
        let mut keys: Vec<String> = self.changed.drain().collect();
        keys.sort();
        keys.iter()
            .filter_map(|k| self.entries.get(k))
            .map(Entry::to_stored)
            .collect()
    }

    /// Applies one rule's decisions at `at_ms`. `build` makes the alert for a decision when
    /// one is needed; it is not called for quiet series. `hold` says what holds a series'
    /// pages back now (a silence, a mute window), if anything.
    pub fn step(
        &mut self,
        rule: &Rule,
        at_ms: i64,
        window: Span,
        decisions: &[Decision],
        build: &mut dyn FnMut(&Decision, Status) -> Alert,
        hold: &Hold<'_>,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut seen = HashSet::with_capacity(decisions.len());
        let pending_for_ms = rule.pending_for.seconds() * 1000;
        let repeat_ms = rule.repeat.seconds() * 1000;
        let keep_ms = rule.keep_firing_for.seconds() * 1000;
        for d in decisions {
            let key = dedup_key(&rule.name, &d.labels);
            seen.insert(key.clone());
            let existing = self.entries.get(&key).map(|e| e.phase);
            if !d.firing && existing.is_none_or(|p| p == Phase::Inactive) {
                continue;
            }
            let entry = self
                .entries
                .entry(key.clone())
                .or_insert_with(|| Entry::new(&key, rule, &d.labels, at_ms));
            if d.firing {
                entry.last_true_ms = Some(at_ms);
            }
            // A firing alert whose condition ended recently stays firing: a series hovering
            // at the line fires once and resolves once.
            let held_on = entry.phase == Phase::Firing
                && !d.firing
                && at_ms - entry.last_true_ms.unwrap_or(i64::MIN / 2) < keep_ms;
            let mut send = None;
            match (entry.phase, d.firing || held_on) {
                (Phase::Inactive, true) if pending_for_ms > 0 => {
                    entry.phase = Phase::Pending;
                    entry.since_ms = at_ms;
                    entry.pending_since_ms = Some(at_ms);
                }
                (Phase::Inactive, true) => send = Some(Status::Firing),
                (Phase::Pending, true) => {
                    if at_ms - entry.pending_since_ms.unwrap_or(at_ms) >= pending_for_ms {
                        send = Some(Status::Firing);
                    }
                }
                (Phase::Firing, true) if d.firing => {
                    let due = at_ms - entry.last_sent_ms.unwrap_or(i64::MIN / 2) >= repeat_ms;
                    if due || entry.last_status != Some(Status::Firing) || grew(rule, entry, d) {
                        send = Some(Status::Firing);
                    }
                }
                (Phase::Firing, true) => {}
                (Phase::Pending, false) => {
                    entry.phase = Phase::Inactive;
                    entry.since_ms = at_ms;
                    entry.pending_since_ms = None;
                }
                (Phase::Firing, false) => send = Some(Status::Resolved),
                (Phase::Inactive, false) => {}
            }
            entry.updated_ms = at_ms;
            self.changed.insert(key.clone());
            if let Some(status) = send {
                let mut alert = build(d, status);
                if let Some(n) = transition(entry, &mut alert, status, at_ms, rule, hold(&d.labels))
                {
                    out.push(n);
                }
            }
        }
        // Firing series with no spend at all in the window: their condition has ended.
        let gone: Vec<String> = self
            .entries
            .values()
            .filter(|e| {
                e.rule == rule.name && e.phase != Phase::Inactive && !seen.contains(&e.dedup_key)
            })
            .map(|e| e.dedup_key.clone())
            .collect();
        for key in gone {
            let entry = self.entries.get_mut(&key).expect("listed above");
            if entry.phase == Phase::Firing
                && at_ms - entry.last_true_ms.unwrap_or(i64::MIN / 2) < keep_ms
            {
                continue;
            }
            self.changed.insert(key);
            if entry.phase == Phase::Pending {
                entry.phase = Phase::Inactive;
                entry.since_ms = at_ms;
                entry.pending_since_ms = None;
                continue;
            }
            let Some(mut alert) = entry.last_alert.clone() else {
                entry.phase = Phase::Inactive;
                continue;
            };
            super::model::mark_without_spend(&mut alert, rule, at_ms, window);
            let labels = super::model::labels_of(&alert);
            if let Some(n) = transition(
                entry,
                &mut alert,
                Status::Resolved,
                at_ms,
                rule,
                hold(&labels),
            ) {
                out.push(n);
            }
        }
        out
    }

    /// Entries of rules that no longer exist: resolved quietly so they do not linger.
    pub fn retain_rules(&mut self, names: &HashSet<&str>) {
        for e in self.entries.values_mut() {
            if !names.contains(e.rule.as_str()) && e.phase != Phase::Inactive {
                e.phase = Phase::Inactive;
                self.changed.insert(e.dedup_key.clone());
            }
        }
    }
}

/// Whether a firing series grew enough since its last page to page again before `repeat`.
fn grew(rule: &Rule, entry: &Entry, d: &Decision) -> bool {
    let (Some(g), Some(last)) = (rule.renotify, entry.last_alert.as_ref()) else {
        return false;
    };
    if entry.last_status != Some(Status::Firing) {
        return false;
    }
    let now = d.observed.cost.as_f64();
    now >= last.observed_usd * (1.0 + g.share) && now - last.observed_usd >= g.min.as_f64()
}

/// Moves an entry to the state a notification announces, and returns the notification unless
/// it is held back. A held firing is recorded (with what holds it) but not counted as sent,
/// so it goes out when the hold ends; a resolution goes out only if its firing did.
fn transition(
    entry: &mut Entry,
    alert: &mut Alert,
    status: Status,
    at_ms: i64,
    rule: &Rule,
    held_by: Option<String>,
) -> Option<Notification> {
    let was_firing = entry.phase == Phase::Firing;
    let at_text = || {
        jiff::Timestamp::from_millisecond(at_ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let started_at = if was_firing {
        entry.last_alert.as_ref().and_then(|a| a.started_at.clone())
    } else {
        None
    };
    alert.status = status;
    alert.started_at = Some(started_at.unwrap_or_else(at_text));
    let announced = entry.last_status == Some(Status::Firing);
    match status {
        Status::Firing => {
            if !was_firing {
                entry.phase = Phase::Firing;
                entry.since_ms = at_ms;
            }
            entry.pending_since_ms = None;
        }
        Status::Resolved => {
            entry.phase = Phase::Inactive;
            entry.since_ms = at_ms;
        }
    }
    entry.last_alert = Some(alert.clone());
    let send = match status {
        Status::Firing => held_by.is_none(),
        Status::Resolved => announced,
    };
    entry.held_by = if status == Status::Firing {
        held_by
    } else {
        None
    };
    if !send {
        if status == Status::Resolved {
            entry.last_status = Some(Status::Resolved);
        }
        return None;
    }
    entry.last_sent_ms = Some(at_ms);
    entry.last_status = Some(status);
    Some(Notification {
        alert: alert.clone(),
        channels: rule.channels.clone(),
    })
}
