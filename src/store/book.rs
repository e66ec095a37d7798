//! Persistence for the alert book and the outbox. The state change that makes a notification
//! and the notification itself are written in one transaction, so a crash can delay a page
//! but never lose or double one.

use super::{Result, Store};
use rusqlite::{Connection, OptionalExtension, params};

/// One alert-book entry as stored; the alert module owns its meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAlert {
    pub dedup_key: String,
    pub rule: String,
    pub series: String,
    pub state: String,
    pub since_ms: i64,
    pub pending_since_ms: Option<i64>,
    pub last_true_ms: Option<i64>,
    pub last_sent_ms: Option<i64>,
    pub last_status: Option<String>,
    pub updated_ms: i64,
    /// The last alert JSON sent or built for this entry.
    pub last_alert: Option<String>,
    /// What holds its pages back (`silence 3`), if anything.
    pub held_by: Option<String>,
}

/// A notification a channel refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedDelivery {
    pub channel: String,
    pub dedup_key: String,
    pub status: String,
    pub error: String,
    pub failed_ms: i64,
}

/// A notification waiting for its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: i64,
    pub channel: String,
    pub dedup_key: String,
    pub status: String,
    pub payload: String,
    pub created_ms: i64,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

fn stored_alert(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAlert> {
    Ok(StoredAlert {
        dedup_key: r.get(0)?,
        rule: r.get(1)?,
        series: r.get(2)?,
        state: r.get(3)?,
        since_ms: r.get(4)?,
        pending_since_ms: r.get(5)?,
        last_true_ms: r.get(6)?,
        last_sent_ms: r.get(7)?,
        last_status: r.get(8)?,
        updated_ms: r.get(9)?,
        last_alert: r.get(10)?,
        held_by: r.get(11)?,
    })
}

const ALERT_COLUMNS: &str = "dedup_key, rule, series, state, since_ms, pending_since_ms, \
    last_true_ms, last_sent_ms, last_status, updated_ms, last_alert, held_by";

fn outbox_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: r.get(0)?,
        channel: r.get(1)?,
        dedup_key: r.get(2)?,
        status: r.get(3)?,
        payload: r.get(4)?,
        created_ms: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_ms: r.get(7)?,
        last_error: r.get(8)?,
    })
}

const OUTBOX_COLUMNS: &str =
    "id, channel, dedup_key, status, payload, created_ms, attempts, next_attempt_ms, last_error";

impl Store {
    /// Every alert-book entry.
    pub fn load_alerts(&self) -> Result<Vec<StoredAlert>> {
        load_alerts(self.conn()).map_err(|e| self.err(e))
    }
}

/// Every alert-book entry, read on a connection or inside a transaction.
pub fn load_alerts(conn: &Connection) -> rusqlite::Result<Vec<StoredAlert>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts ORDER BY rule, series"
    ))?;
    stmt.query_map([], stored_alert)
        .and_then(|rows| rows.collect())
}

/// A notification for the outbox: channel, dedup key, status and the alert JSON.
pub type NewMessage = (String, String, String, String);

/// Writes one evaluation cycle inside the caller's transaction: the changed alert states, the
/// notifications they made (one outbox message per channel), and the cycle's record.
pub fn commit_cycle(
    tx: &Connection,
    at_ms: i64,
    changed: &[StoredAlert],
    messages: &[NewMessage],
) -> rusqlite::Result<()> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO alerts (dedup_key, rule, series, state, since_ms, pending_since_ms,
                    last_true_ms, last_sent_ms, last_status, updated_ms, last_alert, held_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (dedup_key) DO UPDATE SET state = excluded.state,
                    since_ms = excluded.since_ms, pending_since_ms = excluded.pending_since_ms,
                    last_true_ms = excluded.last_true_ms,
                    last_sent_ms = excluded.last_sent_ms, last_status = excluded.last_status,
                    updated_ms = excluded.updated_ms, last_alert = excluded.last_alert,
                    held_by = excluded.held_by",
        )?;
        for a in changed {
            upsert.execute(params![
                a.dedup_key,
                a.rule,
                a.series,
                a.state,
                a.since_ms,
                a.pending_since_ms,
                a.last_true_ms,
                a.last_sent_ms,
                a.last_status,
                a.updated_ms,
                a.last_alert,
                a.held_by
            ])?;
        }
        let mut enqueue = tx.prepare_cached(
            "INSERT INTO outbox (channel, dedup_key, status, payload, created_ms, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        for (channel, key, status, payload) in messages {
            enqueue.execute(params![channel, key, status, payload, now_ms])?;
        }
        tx.execute(
            "INSERT INTO evaluations (at_ms, finished_ms, notifications) VALUES (?1, ?2, ?3)
                 ON CONFLICT (at_ms) DO UPDATE SET finished_ms = excluded.finished_ms,
                    notifications = notifications + excluded.notifications",
            params![at_ms, now_ms, messages.len() as i64],
        )?;
        Ok(())
    }
}

impl Store {
    /// The instant of the last evaluation cycle that was committed.
    pub fn last_evaluation(&self) -> Result<Option<i64>> {
        self.conn()
            .query_row("SELECT max(at_ms) FROM evaluations", [], |r| r.get(0))
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.err(e))
    }

    /// Messages whose next attempt is due at `now_ms`, oldest first.
    pub fn due_messages(&self, now_ms: i64, limit: usize) -> Result<Vec<OutboxMessage>> {
        let mut stmt = self
            .conn()
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE next_attempt_ms <= ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![now_ms, limit as i64], outbox_message)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// All queued messages, for `status`.
    pub fn outbox(&self) -> Result<Vec<OutboxMessage>> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"))
            .map_err(|e| self.err(e))?;
        stmt.query_map([], outbox_message)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// The channel accepted the message: it leaves the outbox.
    pub fn delivered(&mut self, id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM outbox WHERE id = ?1", [id])
                .map(|_| ())
        })
    }

    /// The attempt failed but may succeed later.
    pub fn retry_later(&mut self, id: i64, next_attempt_ms: i64, error: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, next_attempt_ms, error],
            )
            .map(|_| ())
        })
    }

    /// The channel refused the message for good: it moves to the failed list, and, when a
    /// fallback channel is configured, a copy is queued for it in the same transaction.
    pub fn failed(&mut self, id: i64, error: &str, fallback: Option<&str>) -> Result<()> {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO failed_deliveries (channel, dedup_key, status, payload, failed_ms, attempts, error)
                 SELECT channel, dedup_key, status, payload, ?2, attempts + 1, ?3 FROM outbox WHERE id = ?1",
                params![id, now_ms, error],
            )?;
            if let Some(f) = fallback {
                tx.execute(
                    "INSERT INTO outbox (channel, dedup_key, status, payload, created_ms, next_attempt_ms)
                     SELECT ?2, dedup_key, status, payload, ?3, ?3 FROM outbox
                     WHERE id = ?1 AND channel != ?2",
                    params![id, f, now_ms],
                )?;
            }
            tx.execute("DELETE FROM outbox WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Deliveries refused for good: (channel, dedup key, status, error, when).
    pub fn failed_deliveries(&self) -> Result<Vec<FailedDelivery>> {
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT channel, dedup_key, status, error, failed_ms FROM failed_deliveries ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| {
            Ok(FailedDelivery {
                channel: r.get(0)?,
                dedup_key: r.get(1)?,
                status: r.get(2)?,
                error: r.get(3)?,
                failed_ms: r.get(4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }
}

/// A silence as stored: matchers as JSON text, times in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSilence {
    pub id: i64,
    pub matchers: String,
    pub starts_ms: i64,
    pub ends_ms: i64,
    pub comment: String,
    pub expired_ms: Option<i64>,
}

/// Every silence that has not ended by `after_ms`.
pub fn load_silences(conn: &Connection, after_ms: i64) -> rusqlite::Result<Vec<StoredSilence>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, matchers, starts_ms, ends_ms, comment, expired_ms FROM silences
         WHERE ends_ms > ?1 AND (expired_ms IS NULL OR expired_ms > ?1) ORDER BY id",
    )?;
    stmt.query_map([after_ms], |r| {
        Ok(StoredSilence {
            id: r.get(0)?,
            matchers: r.get(1)?,
            starts_ms: r.get(2)?,
            ends_ms: r.get(3)?,
            comment: r.get(4)?,
            expired_ms: r.get(5)?,
        })
    })
    .and_then(|rows| rows.collect())
}

impl Store {
    /// Adds a silence; returns its id.
    pub fn add_silence(
        &mut self,
        matchers: &str,
        starts_ms: i64,
        ends_ms: i64,
        comment: &str,
    ) -> Result<i64> {
        let now = jiff::Timestamp::now().as_millisecond();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO silences (matchers, starts_ms, ends_ms, comment, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![matchers, starts_ms, ends_ms, comment, now],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Silences, all or only those not ended by `after_ms`.
    pub fn silences(&self, after_ms: Option<i64>) -> Result<Vec<StoredSilence>> {
        load_silences(self.conn(), after_ms.unwrap_or(i64::MIN)).map_err(|e| self.err(e))
    }

    /// Ends a silence now. Returns false when there is no such silence or it had ended.
    pub fn expire_silence(&mut self, id: i64, now_ms: i64) -> Result<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE silences SET expired_ms = ?2 WHERE id = ?1 AND ends_ms > ?2
                    AND (expired_ms IS NULL OR expired_ms > ?2)",
                params![id, now_ms],
            )?;
            Ok(n > 0)
        })
    }
}
