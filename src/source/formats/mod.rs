//! Exports from gateways and provider usage APIs, read into native cost rows.
//!
//! Each format has its own file that turns one source record into a [`CostRow`], normalising
//! the source's token conventions to ours (`input_tokens` is the whole prompt, cached reads
//! and cache writes included). The rows then go through the same store path as native rows,
//! so duplicates, conflicts, set-aside rows and the ingest report behave the same.
//!
//! Positions: for LiteLLM JSON lines the line is the line number and for a JSON array the
//! element's ordinal; for usage pages it is the result's ordinal across the file's buckets,
//! counting from 1. A set-aside reason also names the record's place in the document
//! (`[3]`, `data[0].results[2]`).

pub mod anthropic_usage;
pub mod litellm;
pub mod openai_costs;
pub mod openai_usage;
pub mod otel;
pub mod portkey;

mod fields;
pub(crate) use fields::{
    aggregate_id, opt_count, opt_str, text_instant, type_name, unix_seconds, usd,
};

use super::mapping::{Mapping, Subject};
use super::{BATCH_ROWS, jsonl};
use crate::price::PriceTable;
use crate::row::CostRow;
use crate::store::{IngestBatch, IngestReport, Position, Store};
use anyhow::Context;
use serde_json::{Map, Value};
use std::io::Read;

/// The formats `ingest --format` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Native JSON lines (see the README's row format).
    Native,
    /// LiteLLM SpendLogs rows (JSON lines, a JSON array, or one object).
    Litellm,
    /// OpenAI organisation usage, completions endpoint (pages of buckets).
    OpenaiUsage,
    /// OpenAI organisation costs (pages of buckets).
    OpenaiCosts,
    /// Anthropic Admin API messages usage report (pages of buckets).
    AnthropicUsage,
    /// Portkey log export (JSON lines; cost in cents).
    Portkey,
    /// OpenTelemetry OTLP/JSON traces with the GenAI conventions.
    Otel,
}

impl Format {
    /// Reads a format's name as the configuration and `--format` write it (`openai-usage`).
    pub fn from_name(name: &str) -> Option<Format> {
        <Format as clap::ValueEnum>::from_str(name, false).ok()
    }

    /// The name the configuration and `--format` use.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// Whether a file of this format grows a record (or an export request) per line, and so
    /// is tailed like a JSON-lines file; the usage reports are whole documents, read again
    /// when they change.
    pub fn tails_lines(self) -> bool {
        matches!(
            self,
            Format::Native | Format::Litellm | Format::Portkey | Format::Otel
        )
    }

    /// Whether a mapping may look in places of `kind` (`field`, `tag`, `span`, `resource`).
    pub fn offers(self, kind: &str) -> bool {
        match kind {
            "field" => true,
            "tag" => matches!(self, Format::Native | Format::Litellm | Format::Portkey),
            _ => self == Format::Otel,
        }
    }
}

/// Parses a whole text in `format` into a batch for `source`: good rows with their positions,
/// bad records set aside with their position and reason.
pub fn parse(format: Format, text: &str, label: &str, source: &str) -> IngestBatch {
    parse_mapped(format, &Mapping::default(), text, label, source)
}

/// [`parse`] with a source's attribution mapping laid over the format's defaults.
pub fn parse_mapped(
    format: Format,
    mapping: &Mapping,
    text: &str,
    label: &str,
    source: &str,
) -> IngestBatch {
    let mut batch = IngestBatch::new(source);
    parse_into(&mut batch, format, mapping, text, label, None);
    batch
}

/// Parses `text` into `batch`. With `line`, the text is that one line of a tailed file, and
/// every record it holds takes that line as its position.
pub fn parse_into(
    batch: &mut IngestBatch,
    format: Format,
    mapping: &Mapping,
    text: &str,
    label: &str,
    line: Option<u64>,
) {
    let m = mapping;
    let records = match format {
        Format::Native if m.is_empty() => {
            return jsonl::parse_lines(batch, label, text, line.unwrap_or(1));
        }
        Format::Native => native_records(text, m),
        Format::Litellm => litellm::records(text, m),
        Format::Portkey => portkey::records(text, m),
        Format::Otel => {
            let (records, skipped) = otel::records(text, m);
            batch.skipped += skipped;
            records
        }
        Format::OpenaiUsage => bucket_records(text, openai_usage::row, m),
        Format::OpenaiCosts => bucket_records(text, openai_costs::row, m),
        Format::AnthropicUsage => bucket_records(text, anthropic_usage::row, m),
    };
    let records = match line {
        Some(n) => records
            .into_iter()
            .map(|r| Record { line: n, ..r })
            .collect(),
        None => records,
    };
    collect(batch, label, records);
}

/// Native rows read with a mapping: a row's `tags` are its tags.
fn native_records(text: &str, mapping: &Mapping) -> Vec<Record> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let l = l.trim();
            let row = CostRow::from_json_line(l)
                .map_err(|e| e.to_string())
                .and_then(|mut row| {
                    let obj: Map<String, Value> = serde_json::from_str(l).unwrap_or_default();
                    let tags = row.tags.clone().into_iter().collect();
                    mapping.apply(
                        &mut row,
                        &Subject {
                            record: Some(&obj),
                            tags,
                            ..Subject::default()
                        },
                    )?;
                    Ok(row)
                });
            Record {
                line: i as u64 + 1,
                place: String::new(),
                row,
                raw: l.to_string(),
            }
        })
        .collect()
}

/// Reads a whole file (or `-` for standard input, `.gz` included) in `format` and stores it.
pub fn ingest_once(
    store: &mut Store,
    prices: &PriceTable,
    source: &str,
    format: Format,
    mapping: &Mapping,
    path: &str,
) -> anyhow::Result<IngestReport> {
    if format == Format::Native && mapping.is_empty() {
        return jsonl::ingest_once(store, prices, source, path);
    }
    let (label, mut reader) = jsonl::open_input(path)?;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {label}"))?;
    let text = utf8_text(&bytes, &label)?;
    let mut batch = parse_mapped(format, mapping, text, &label, source);
    let mut report = IngestReport::default();
    // The same transaction size as native files.
    let rows = std::mem::take(&mut batch.rows);
    let mut chunks = rows.chunks(BATCH_ROWS).peekable();
    if chunks.peek().is_none() {
        report.merge(store.ingest(&batch, prices)?);
    }
    for chunk in chunks {
        batch.rows = chunk.to_vec();
        report.merge(store.ingest(&batch, prices)?);
        batch.malformed.clear();
        batch.skipped = 0;
    }
    Ok(report)
}

/// A whole export as text. Bytes that are not UTF-8 refuse the file, naming where: replacing
/// them would rename a tenant, and nothing is stored until the file is fixed.
pub(crate) fn utf8_text<'a>(bytes: &'a [u8], label: &str) -> anyhow::Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        anyhow::anyhow!(
            "{label}:{line}: not valid UTF-8 (byte {} of the file); nothing was stored",
            at + 1
        )
    })
}

/// One record of a document: its ordinal (or line), where it sits, and its row or the reason
/// it has none, with the raw text kept for the set-aside table.
pub(crate) struct Record {
    pub line: u64,
    pub place: String,
    pub row: Result<CostRow, String>,
    pub raw: String,
}

fn collect(batch: &mut IngestBatch, label: &str, records: Vec<Record>) {
    for r in records {
        let pos = Position {
            file: label.to_string(),
            line: r.line,
        };
        match r
            .row
            .and_then(|row| row.validate().map(|_| row).map_err(|e| e.to_string()))
        {
            Ok(row) => batch.rows.push((row, pos)),
            Err(reason) => {
                let reason = if r.place.is_empty() {
                    reason
                } else {
                    format!("{}: {reason}", r.place)
                };
                batch.set_aside(pos, reason, &r.raw);
            }
        }
    }
}

/// The JSON values of a text: one document (an array gives its elements), or, when the text
/// is not one document, JSON lines. Each comes with its ordinal or line number and place.
pub(crate) fn documents(text: &str) -> Vec<(u64, String, Result<Value, String>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as u64 + 1, format!("[{i}]"), Ok(v)))
            .collect(),
        Ok(v) => vec![(1, String::new(), Ok(v))],
        Err(whole) => {
            let lines: Vec<(u64, &str)> = text
                .lines()
                .enumerate()
                .map(|(i, l)| (i as u64 + 1, l.trim()))
                .filter(|(_, l)| !l.is_empty())
                .collect();
            if lines.is_empty() {
                return Vec::new();
            }
            // One document spread over lines that is broken: one reason, not one per line.
            if !lines[0].1.starts_with('{') || !lines[0].1.ends_with('}') {
                return vec![(1, String::new(), Err(format!("not valid JSON: {whole}")))];
            }
            lines
                .into_iter()
                .map(|(n, l)| {
                    let v = serde_json::from_str::<Value>(l)
                        .map_err(|e| format!("not valid JSON: {e}"));
                    (n, String::new(), v)
                })
                .collect()
        }
    }
}

/// The records of a text whose documents are one object each (LiteLLM rows, Portkey logs):
/// `row` reads an object; anything else is set aside as not `what`.
pub(crate) fn object_records(
    text: &str,
    what: &str,
    row: impl Fn(&Map<String, Value>) -> Result<CostRow, String>,
) -> Vec<Record> {
    documents(text)
        .into_iter()
        .map(|(line, place, value)| {
            let raw = value.as_ref().map(|v| v.to_string()).unwrap_or_default();
            let row = value.and_then(|v| match v {
                Value::Object(obj) => row(&obj),
                other => Err(format!("expected {what}, got {}", type_name(&other))),
            });
            Record {
                line,
                place,
                row,
                raw,
            }
        })
        .collect()
}

/// Reads one usage result, given its bucket, into a row.
type ResultReader = fn(&Map<String, Value>, &Map<String, Value>) -> Result<CostRow, String>;

/// Records of a usage-API page (or an array or JSON lines of pages): `data[]` buckets, each
/// with `results[]`; `row` reads one result given its bucket.
fn bucket_records(text: &str, row: ResultReader, mapping: &Mapping) -> Vec<Record> {
    let mut out = Vec::new();
    let mut ordinal = 0u64;
    for (_, page_place, page) in documents(text) {
        let page = match page {
            Ok(Value::Object(p)) => p,
            Ok(other) => {
                ordinal += 1;
                out.push(Record {
                    line: ordinal,
                    place: page_place,
                    row: Err(format!("expected a page object, got {}", type_name(&other))),
                    raw: other.to_string(),
                });
                continue;
            }
            Err(e) => {
                ordinal += 1;
                out.push(Record {
                    line: ordinal,
                    place: page_place,
                    row: Err(e),
                    raw: String::new(),
                });
                continue;
            }
        };
        let Some(Value::Array(buckets)) = page.get("data") else {
            ordinal += 1;
            out.push(Record {
                line: ordinal,
                place: page_place,
                row: Err("field `data`: expected an array of buckets".into()),
                raw: Value::Object(page.clone()).to_string(),
            });
            continue;
        };
        for (b, bucket) in buckets.iter().enumerate() {
            let place = join_place(&page_place, &format!("data[{b}]"));
            let Value::Object(bucket) = bucket else {
                ordinal += 1;
                out.push(Record {
                    line: ordinal,
                    place,
                    row: Err(format!(
                        "expected a bucket object, got {}",
                        type_name(bucket)
                    )),
                    raw: bucket.to_string(),
                });
                continue;
            };
            let results = match bucket.get("results") {
                Some(Value::Array(r)) => r.as_slice(),
                None | Some(Value::Null) => &[],
                Some(other) => {
                    ordinal += 1;
                    out.push(Record {
                        line: ordinal,
                        place,
                        row: Err(format!(
                            "field `results`: expected an array, got {}",
                            type_name(other)
                        )),
                        raw: Value::Object(bucket.clone()).to_string(),
                    });
                    continue;
                }
            };
            for (r, result) in results.iter().enumerate() {
                ordinal += 1;
                let row = match result {
                    Value::Object(result) => row(bucket, result).and_then(|mut row| {
                        let subject = Subject {
                            record: Some(result),
                            ..Subject::default()
                        };
                        mapping.apply(&mut row, &subject)?;
                        Ok(row)
                    }),
                    other => Err(format!(
                        "expected a result object, got {}",
                        type_name(other)
                    )),
                };
                out.push(Record {
                    line: ordinal,
                    place: format!("{place}.results[{r}]"),
                    row,
                    raw: result.to_string(),
                });
            }
        }
    }
    out
}

fn join_place(outer: &str, inner: &str) -> String {
    if outer.is_empty() {
        inner.to_string()
    } else {
        format!("{outer} {inner}")
    }
}

#[cfg(test)]
mod tests;
