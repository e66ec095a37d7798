//! Sources: where cost rows come from. Each kind reads its own format, turns it into cost
//! rows, and hands the store a batch together with the cursor that says how far it read, so
//! the rows and the cursor commit together.

pub mod formats;
pub mod jsonl;
pub mod sqlite_table;

use crate::config::SourceConfig;
use crate::price::PriceTable;
use crate::store::{IngestReport, Store};

/// How many rows go into one ingest transaction. Each commit writes every index page the
/// batch touched, and row keys and combinations land all over their indexes, so a larger
/// batch shares each page write among more rows (measured: batches of 5,000 cost about 1.6
/// times as much per row as batches of 50,000).
pub const BATCH_ROWS: usize = 20_000;

/// A source the daemon polls.
pub trait Source: Send {
    fn name(&self) -> &str;
    /// Reads everything new since the saved cursor and stores it.
    fn poll(&mut self, store: &mut Store, prices: &PriceTable) -> anyhow::Result<IngestReport>;
}

pub fn build(config: &SourceConfig) -> Box<dyn Source> {
    match config {
        SourceConfig::Jsonl { name, pattern } => Box::new(jsonl::JsonlSource::new(name, pattern)),
        SourceConfig::SqliteTable { .. } => Box::new(sqlite_table::SqliteTableSource::new(config)),
    }
}
