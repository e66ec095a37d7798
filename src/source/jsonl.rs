//! JSON-lines files of native rows, read once (`ingest`, `.gz` included) or tailed (the
//! daemon).
//!
//! A tailed file is known by its device and inode, not its name, so a file renamed by log
//! rotation carries on from where it was; a file that shrank was truncated and is read again
//! from the start; an inode that now holds different first bytes is a new file. A last line
//! without its newline is left for the next poll: the writer may be half-way through it.

use super::{BATCH_ROWS, Source};
use crate::price::PriceTable;
use crate::row::CostRow;
use crate::store::{IngestBatch, IngestReport, Position, Store};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many bytes identify a file beside its inode.
const FINGERPRINT_BYTES: usize = 128;

/// Parses JSON lines into a batch: good rows with their positions, bad ones set aside.
/// `first_line` is the line number of the first line given.
pub fn parse_lines(batch: &mut IngestBatch, file: &str, text: &str, first_line: u64) {
    for (i, line) in text.lines().enumerate() {
        let pos = Position {
            file: file.to_string(),
            line: first_line + i as u64,
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        match CostRow::from_json_line(trimmed) {
            Ok(row) => batch.rows.push((row, pos)),
            Err(e) => batch.set_aside(pos, e.to_string(), trimmed),
        }
    }
}

/// Reads a whole file (or `-` for standard input) once, gzip included, and stores it.
pub fn ingest_once(
    store: &mut Store,
    prices: &PriceTable,
    source: &str,
    path: &str,
) -> anyhow::Result<IngestReport> {
    let (label, reader) = open_input(path)?;
    ingest_reader(store, prices, source, &label, reader)
}

/// Opens a file for a one-shot load (`-` is standard input, `.gz` is gunzipped), with the name
/// its rows' positions carry: the canonical path, so that a row without a request id keeps one
/// identity however the file is named.
pub fn open_input(path: &str) -> anyhow::Result<(String, Box<dyn Read>)> {
    if path == "-" {
        return Ok(("stdin".into(), Box::new(std::io::stdin().lock())));
    }
    let p = Path::new(path);
    let file = std::fs::File::open(p).with_context(|| format!("cannot open {path}"))?;
    let label = std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string();
    Ok(if path.ends_with(".gz") {
        (label, Box::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        (label, Box::new(file))
    })
}

/// Stores JSON lines from any reader, in batches.
pub fn ingest_reader(
    store: &mut Store,
    prices: &PriceTable,
    source: &str,
    label: &str,
    reader: impl Read,
) -> anyhow::Result<IngestReport> {
    let mut report = IngestReport::default();
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut line_no = 0u64;
    let mut bytes = Vec::new();
    loop {
        let mut batch = IngestBatch::new(source);
        let mut lines = 0;
        while lines < BATCH_ROWS {
            bytes.clear();
            let n = reader
                .read_until(b'\n', &mut bytes)
                .with_context(|| format!("reading {label}"))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            lines += 1;
            read_utf8_line(&mut batch, label, &bytes, line_no, &parse_lines);
        }
        if lines == 0 {
            break;
        }
        report.merge(store.ingest(&batch, prices)?);
    }
    Ok(report)
}

/// Hands one line to `read` when it is UTF-8; otherwise sets it aside with its line number.
/// Replacing the bad bytes instead would store a tenant named `caf\u{fffd}` that matches no
/// rule or silence written for the real name.
fn read_utf8_line(
    batch: &mut IngestBatch,
    label: &str,
    bytes: &[u8],
    line: u64,
    read: &dyn Fn(&mut IngestBatch, &str, &str, u64),
) {
    match std::str::from_utf8(bytes) {
        Ok(text) => read(batch, label, text, line),
        Err(e) => batch.set_aside(
            Position {
                file: label.to_string(),
                line,
            },
            format!(
                "not valid UTF-8 (byte {} of the line): set aside rather than read with its bytes replaced",
                e.valid_up_to() + 1
            ),
            &String::from_utf8_lossy(bytes),
        ),
    }
}

/// Reads one complete line of a tailed file (its label, text and line number) into a batch;
/// native rows unless the source reads another format.
pub type LineReader = Box<dyn Fn(&mut IngestBatch, &str, &str, u64) + Send>;

/// Where a tailed file was left.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct FileCursor {
    path: String,
    offset: u64,
    line: u64,
    fingerprint: Vec<u8>,
}

pub struct JsonlSource {
    name: String,
    pattern: String,
    /// Files read at the last poll, kept open by identity: a file renamed by rotation to a
    /// name the glob does not match is still read to its end through its open handle.
    open: HashMap<String, PathBuf>,
    handles: HashMap<String, std::fs::File>,
    read_line: LineReader,
}

impl JsonlSource {
    pub fn new(name: &str, pattern: &str) -> JsonlSource {
        JsonlSource {
            name: name.to_string(),
            pattern: pattern.to_string(),
            open: HashMap::new(),
            handles: HashMap::new(),
            read_line: Box::new(parse_lines),
        }
    }

    /// The same source reading each line with `read` (a gateway's JSON lines, OTLP exports).
    pub fn reading(mut self, read: LineReader) -> JsonlSource {
        self.read_line = read;
        self
    }

    fn files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut files: Vec<PathBuf> = glob::glob(&self.pattern)
            .with_context(|| format!("source {}: bad glob {}", self.name, self.pattern))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".gz"))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Reads what is new in the file at `path`, keeping it open for the next poll. Returns
    /// the file's identity.
    fn tail(
        &mut self,
        store: &mut Store,
        prices: &PriceTable,
        path: &Path,
    ) -> anyhow::Result<(String, IngestReport)> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = file.metadata()?;
        let key = format!("file:{}:{}", meta.dev(), meta.ino());
        // The same name `ingest` gives it, so rows without a request id keep one identity.
        let label = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string();
        let report = self.read_new(store, prices, file.try_clone()?, &key, &label)?;
        self.open.insert(key.clone(), PathBuf::from(&label));
        self.handles.insert(key.clone(), file);
        Ok((key, report))
    }

    /// Reads from the saved offset to the last complete line of an open file.
    fn read_new(
        &self,
        store: &mut Store,
        prices: &PriceTable,
        mut file: std::fs::File,
        key: &str,
        label: &str,
    ) -> anyhow::Result<IngestReport> {
        let mut report = IngestReport::default();
        let meta = file.metadata()?;
        file.seek(SeekFrom::Start(0))?;
        let mut head = vec![0u8; FINGERPRINT_BYTES.min(meta.len() as usize)];
        file.read_exact(&mut head)?;
        let label = label.to_string();
        let key = key.to_string();
        let mut cursor: FileCursor = store
            .cursor(&self.name, &key)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default();
        let same_file =
            cursor.fingerprint.len() <= head.len() && head.starts_with(&cursor.fingerprint);
        if !same_file || meta.len() < cursor.offset {
            tracing::info!(source = %self.name, file = %label, "file is new or was truncated; reading from the start");
            cursor = FileCursor::default();
        }
        cursor.path = label.clone();
        cursor.fingerprint = head;
        if meta.len() == cursor.offset {
            return Ok(report);
        }
        file.seek(SeekFrom::Start(cursor.offset))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        loop {
            let mut batch = IngestBatch::new(&self.name);
            let mut lines = 0;
            let mut bytes = Vec::new();
            while lines < BATCH_ROWS {
                bytes.clear();
                let n = reader.read_until(b'\n', &mut bytes)?;
                if n == 0 || bytes.last() != Some(&b'\n') {
                    break; // end of file, or a line still being written
                }
                cursor.offset += n as u64;
                cursor.line += 1;
                lines += 1;
                read_utf8_line(&mut batch, &label, &bytes, cursor.line, &*self.read_line);
            }
            if lines == 0 {
                break;
            }
            batch
                .cursors
                .push((key.clone(), serde_json::to_string(&cursor)?));
            report.merge(store.ingest(&batch, prices)?);
        }
        Ok(report)
    }
}

impl Source for JsonlSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, store: &mut Store, prices: &PriceTable) -> anyhow::Result<IngestReport> {
        let mut report = IngestReport::default();
        let mut seen = std::collections::HashSet::new();
        for path in self.files()? {
            match self.tail(store, prices, &path) {
                Ok((key, r)) => {
                    seen.insert(key);
                    report.merge(r);
                }
                // One unreadable file does not stop the others.
                Err(e) => {
                    tracing::warn!(source = %self.name, file = %path.display(), error = %format!("{e:#}"), "cannot read file")
                }
            }
        }
        // Files read last time that the glob no longer finds were rotated away or deleted:
        // their last lines are read through the handle kept open, then they are let go.
        let gone: Vec<String> = self
            .open
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let label = self.open.remove(&key).unwrap_or_default();
            let Some(file) = self.handles.remove(&key) else {
                continue;
            };
            match self.read_new(store, prices, file, &key, &label.display().to_string()) {
                Ok(r) => {
                    if r.stored > 0 {
                        tracing::info!(source = %self.name, file = %label.display(), stored = r.stored, "read the end of a rotated file");
                    }
                    report.merge(r);
                }
                Err(e) => {
                    tracing::warn!(source = %self.name, file = %label.display(), error = %format!("{e:#}"), "cannot finish a rotated file")
                }
            }
        }
        Ok(report)
    }
}
