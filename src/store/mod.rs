//! The store: one SQLite file holding raw rows, minute rollups, source cursors, the alert
//! book and the outbox.
//!
//! SQLite runs in WAL mode with a busy timeout, and every transaction that writes takes the
//! write lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads first is refused
//! the write at once when another process committed meanwhile, and the busy timeout never
//! applies to it (case 10). A write still blocked past the timeout is retried.

mod book;
mod coverage;
mod ingest;
mod query;
mod retention;
mod rollup;
mod schema;
mod stats;

pub use book::{
    FailedDelivery, NewMessage, OutboxMessage, StoredAlert, StoredSilence, commit_cycle,
    load_alerts, load_silences,
};
pub use coverage::{FIELDS, FieldShare, KindCoverage, SourceCoverage};
pub use ingest::{IngestBatch, IngestReport, Position, SetAside};
pub use query::{
    Combo, ComboId, History, HistoryView, Metrics, StoreHistory, WindowAgg, bucketed_spend,
    bucketed_spend_of, sample_request_ids, sample_request_ids_of,
};
pub use retention::{CompactPolicy, CompactReport};
pub use stats::{StoreStats, TableStats};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "store {path} has schema version {found}, newer than this build knows ({known}); upgrade spendpager"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// How long one attempt waits for another writer before SQLite gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a write blocked past the timeout is tried again.
const WRITE_RETRIES: u32 = 5;

/// An open store. Not `Sync`: keep it on one thread (the daemon runs it in `spawn_blocking`).
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Combination ids this connection has resolved, so ingest looks each up once.
    combos: rollup::ComboCache,
    /// Rollup changes this connection committed, for [`StoreHistory`] to fold into the
    /// windows it holds instead of reading them again.
    changes: query::ChangeLog,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(|e| err(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            combos: Default::default(),
            changes: Default::default(),
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing store read-only, for inspection commands.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| err(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| err(path, e))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            combos: Default::default(),
            changes: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<()> {
        let c = &self.conn;
        c.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        c.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| self.err(e))?;
        c.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err(e))?;
        c.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| self.err(e))?;
        // 64 MB of page cache (the default is 2 MB): ingest writes to several indexes at
        // once, and a cache smaller than their hot pages spills to the WAL mid-transaction.
        c.pragma_update(None, "cache_size", -65_536)
            .map_err(|e| self.err(e))?;
        // Checkpoint every 40 MB of WAL rather than 4 MB: one ingest batch alone writes a few
        // MB, and pages rewritten by successive batches are then copied back once.
        c.pragma_update(None, "wal_autocheckpoint", 10_000)
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<()> {
        let known = schema::MIGRATIONS.len() as i64;
        let path = self.path.display().to_string();
        self.write(|tx| {
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > known {
                return Ok(Some(version));
            }
            for m in &schema::MIGRATIONS[version as usize..] {
                tx.execute_batch(m)?;
            }
            tx.pragma_update(None, "user_version", known)?;
            Ok(None)
        })?
        .map_or(Ok(()), |found| {
            Err(StoreError::TooNew { path, found, known })
        })
    }

    /// The schema version this store is at.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Runs `f` in an immediate transaction, retrying when another writer holds the lock past
    /// the busy timeout. `f` may run more than once, so it must not have effects outside it.
    pub fn write<T>(
        &mut self,
        mut f: impl FnMut(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let result = (|| {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                let value = f(&tx)?;
                tx.commit()?;
                Ok(value)
            })();
            match result {
                Err(e) if is_busy(&e) && attempt < WRITE_RETRIES => {
                    attempt += 1;
                    tracing::warn!(store = %self.path.display(), attempt, "store busy; retrying the write");
                    std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
                }
                other => return other.map_err(|e| self.err(e)),
            }
        }
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn err(&self, e: rusqlite::Error) -> StoreError {
        err(&self.path, e)
    }

    /// Copies the store to `dest` (a consistent snapshot, even while others write).
    pub fn snapshot_to(&self, dest: &Path) -> Result<()> {
        let _ = std::fs::remove_file(dest);
        self.conn
            .execute("VACUUM INTO ?1", [dest.to_string_lossy()])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn err(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.display().to_string(),
        source,
    }
}
