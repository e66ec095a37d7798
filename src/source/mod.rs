//! Sources: where cost rows come from. Each kind reads its own format, turns it into cost
//! rows, and hands the store a batch together with the cursor that says how far it read, so
//! the rows and the cursor commit together.

pub mod document;
pub mod formats;
pub mod jsonl;
pub mod mapping;
pub mod postgres;
mod postgres_queries;
mod postgres_tls;
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
        SourceConfig::Jsonl {
            name,
            pattern,
            format,
            mapping,
        } => file_source(name, pattern, *format, mapping),
        SourceConfig::SqliteTable { .. } => Box::new(sqlite_table::SqliteTableSource::new(config)),
        SourceConfig::Postgres(c) => Box::new(postgres::PostgresSource::new(c)),
    }
}

/// A file source in any format: JSON-lines formats are tailed line by line, each line parsed
/// as that format; whole-document formats are read again whenever a file changes.
fn file_source(
    name: &str,
    pattern: &str,
    format: formats::Format,
    mapping: &mapping::Mapping,
) -> Box<dyn Source> {
    let mapping = mapping.clone();
    if format == formats::Format::Native && mapping.is_empty() {
        return Box::new(jsonl::JsonlSource::new(name, pattern));
    }
    if format.tails_lines() {
        let read: jsonl::LineReader = Box::new(move |batch, label, text, line| {
            formats::parse_into(batch, format, &mapping, text, label, Some(line))
        });
        return Box::new(jsonl::JsonlSource::new(name, pattern).reading(read));
    }
    let source = name.to_string();
    let read: document::DocumentReader =
        Box::new(move |text, label| formats::parse_mapped(format, &mapping, text, label, &source));
    Box::new(document::DocumentSource::new(name, pattern, read))
}
