//! Files that are whole documents (usage reports: one JSON page, or an array of pages), read
//! again whenever they change.
//!
//! Such a file is rewritten, not appended to, so there is no offset to keep: the source keeps
//! a digest of each file's content by path, and reads a file whose digest differs from the
//! saved one (a new file, or one rewritten since). Re-reading is safe because the rows are
//! idempotent per source and request id: rows seen before come back as duplicates, and a bucket
//! that grew since is set aside as a conflict rather than counted twice. The digest commits with
//! the last batch of the file's rows, so a crash half-way reads the file again.

use super::{BATCH_ROWS, Source};
use crate::price::PriceTable;
use crate::store::{IngestBatch, IngestReport, Store};
use anyhow::Context;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Parses a whole document (its text and label) into a batch.
pub type DocumentReader = Box<dyn Fn(&str, &str) -> IngestBatch + Send>;

pub struct DocumentSource {
    name: String,
    pattern: String,
    read: DocumentReader,
}

impl DocumentSource {
    pub fn new(name: &str, pattern: &str, read: DocumentReader) -> DocumentSource {
        DocumentSource {
            name: name.to_string(),
            pattern: pattern.to_string(),
            read,
        }
    }

    fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = glob::glob(&self.pattern)
            .with_context(|| format!("source {}: bad glob {}", self.name, self.pattern))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads one file if its content changed since it was last read.
    fn read_file(
        &self,
        store: &mut Store,
        prices: &PriceTable,
        path: &std::path::Path,
    ) -> anyhow::Result<IngestReport> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let label = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        let key = format!("document:{label}");
        let digest = hex(&Sha256::digest(&bytes));
        if store.cursor(&self.name, &key)?.as_deref() == Some(digest.as_str()) {
            return Ok(IngestReport::default());
        }
        tracing::info!(source = %self.name, file = %label, "document is new or changed; reading it");
        let text = super::formats::utf8_text(&bytes, &label)?;
        let mut batch = (self.read)(text, &label);
        let rows = std::mem::take(&mut batch.rows);
        let mut chunks: Vec<_> = rows.chunks(BATCH_ROWS).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        let mut report = IngestReport::default();
        for (i, chunk) in chunks.into_iter().enumerate() {
            batch.rows = chunk;
            if i == last {
                batch.cursors.push((key.clone(), digest.clone()));
            }
            report.merge(store.ingest(&batch, prices)?);
            batch.malformed.clear();
            batch.skipped = 0;
        }
        Ok(report)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Source for DocumentSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, store: &mut Store, prices: &PriceTable) -> anyhow::Result<IngestReport> {
        let mut report = IngestReport::default();
        for path in self.files()? {
            match self.read_file(store, prices, &path) {
                Ok(r) => report.merge(r),
                // One unreadable file does not stop the others.
                Err(e) => {
                    tracing::warn!(source = %self.name, file = %path.display(), error = %format!("{e:#}"), "cannot read file")
                }
            }
        }
        Ok(report)
    }
}
