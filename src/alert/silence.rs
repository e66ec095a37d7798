//! Silences and mute windows: what holds a page back.
//!
//! A silence is a set of matchers over an alert's labels (and `rule`, `severity`) with a time
//! span; it is stored in the store and made with `spendpager silence add`. A mute window is a
//! daily time range written in a rule. While either holds, the alert book still records the
//! alert, and `status` shows it with what holds it, but no firing notification is sent; when
//! the hold ends and the alert still fires, the page goes out. A resolution is still sent
//! when its firing was, so that a pager closes what it opened.

use crate::config::Rule;
use crate::row::Dimension;
use serde::{Deserialize, Serialize};

/// `key=value` or `key!=value`; an empty value stands for "no value".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub key: String,
    pub value: String,
    pub negate: bool,
}

impl Matcher {
    /// Reads `tenant=acme`, `rule!=nightly`, `tenant=` (spend with no tenant).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let (key, value, negate) = if let Some((k, v)) = text.split_once("!=") {
            (k, v, true)
        } else if let Some((k, v)) = text.split_once('=') {
            (k, v, false)
        } else {
            return Err(format!(
                "`{text}` is not a matcher: write key=value or key!=value"
            ));
        };
        let key = key.trim();
        if key != "rule" && key != "severity" && Dimension::parse(key).is_none() {
            return Err(format!(
                "`{key}` cannot be matched: use rule, severity, tenant, feature, model, provider, user or workflow"
            ));
        }
        Ok(Matcher {
            key: key.to_string(),
            value: value.trim().to_string(),
            negate,
        })
    }

    fn matches(&self, rule: &Rule, labels: &[(Dimension, Option<String>)]) -> bool {
        let actual: Option<String> = match self.key.as_str() {
            "rule" => Some(rule.name.clone()),
            "severity" => Some(format!("{:?}", rule.severity).to_lowercase()),
            key => labels
                .iter()
                .find(|(d, _)| d.name() == key)
                .map(|(_, v)| v.clone().unwrap_or_default()),
        };
        let equal = actual.as_deref() == Some(self.value.as_str());
        equal != self.negate
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.key,
            if self.negate { "!=" } else { "=" },
            self.value
        )
    }
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    pub id: i64,
    pub matchers: Vec<Matcher>,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub comment: String,
    /// When it was expired by hand, if it was.
    pub expired_ms: Option<i64>,
}

impl Silence {
    /// Whether it holds at `at_ms`: started, not ended, not expired by then.
    pub fn active_at(&self, at_ms: i64) -> bool {
        let end = self
            .expired_ms
            .map_or(self.ends_ms, |e| e.min(self.ends_ms));
        self.starts_ms <= at_ms && at_ms < end
    }

    pub fn matches(&self, rule: &Rule, labels: &[(Dimension, Option<String>)]) -> bool {
        self.matchers.iter().all(|m| m.matches(rule, labels))
    }

    pub fn matchers_text(&self) -> String {
        self.matchers
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What holds the pages of a series back at one instant, if anything: `silence 3` or
/// `mute 22:00-07:00`.
pub fn hold(
    rule: &Rule,
    labels: &[(Dimension, Option<String>)],
    at_ms: i64,
    silences: &[Silence],
) -> Option<String> {
    if let Some(s) = silences
        .iter()
        .find(|s| s.active_at(at_ms) && s.matches(rule, labels))
    {
        return Some(format!("silence {}", s.id));
    }
    let at = jiff::Timestamp::from_millisecond(at_ms).ok()?;
    rule.mute
        .iter()
        .find(|m| m.covers(at))
        .map(|m| format!("mute {m}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_read_and_refuse() {
        assert_eq!(
            Matcher::parse("tenant=acme").unwrap(),
            Matcher {
                key: "tenant".into(),
                value: "acme".into(),
                negate: false
            }
        );
        assert!(Matcher::parse("rule!=x").unwrap().negate);
        assert_eq!(Matcher::parse("tenant=").unwrap().value, "");
        assert!(Matcher::parse("colour=red").unwrap_err().contains("colour"));
        assert!(Matcher::parse("acme").is_err());
    }

    #[test]
    fn a_silence_holds_only_in_its_span_and_until_expired() {
        let s = Silence {
            id: 1,
            matchers: vec![],
            starts_ms: 100,
            ends_ms: 200,
            comment: String::new(),
            expired_ms: None,
        };
        assert!(!s.active_at(99) && s.active_at(100) && s.active_at(199) && !s.active_at(200));
        let expired = Silence {
            expired_ms: Some(150),
            ..s
        };
        assert!(expired.active_at(149) && !expired.active_at(150));
    }
}
