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

use super::mapping::{Mapping, Subject};
use super::{BATCH_ROWS, jsonl};
use crate::money::Usd;
use crate::price::PriceTable;
use crate::row::{CostRow, MAX_ROW_USD};
use crate::store::{IngestBatch, IngestReport, Position, Store};
use anyhow::Context;
use jiff::Timestamp;
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
    let text = String::from_utf8_lossy(&bytes);
    let mut batch = parse_mapped(format, mapping, &text, &label, source);
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

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An optional string field; null and empty are absent. Numbers are refused, not guessed at.
pub(crate) fn opt_str(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "field `{key}`: expected a string, got {}",
            type_name(other)
        )),
    }
}

/// An optional non-negative whole number.
pub(crate) fn opt_count(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None if n.as_i64().is_some() => Err(format!("field `{key}`: {n} is negative")),
            None => Err(format!("field `{key}`: {n} is not a whole number")),
        },
        Some(other) => Err(format!(
            "field `{key}`: expected a whole number, got {}",
            type_name(other)
        )),
    }
}

/// A dollar amount as the source wrote it, checked as native `cost_usd` is.
pub(crate) fn usd(key: &str, v: f64) -> Result<Usd, String> {
    if v > MAX_ROW_USD {
        return Err(format!(
            "field `{key}`: {v} is more than one row can cost ({MAX_ROW_USD} USD)"
        ));
    }
    let usd =
        Usd::from_f64(v).ok_or_else(|| format!("field `{key}`: {v} is not a usable amount"))?;
    if usd < Usd::ZERO {
        return Err(format!("field `{key}`: {v} is negative"));
    }
    Ok(usd)
}

/// Unix seconds, as the OpenAI usage buckets give their bounds.
pub(crate) fn unix_seconds(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    match map.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|s| Timestamp::from_second(s).ok())
            .map(|t| t.as_millisecond())
            .ok_or_else(|| format!("field `{key}`: {n} is not a time in Unix seconds")),
        None | Some(Value::Null) => Err(format!("field `{key}`: is required")),
        Some(other) => Err(format!(
            "field `{key}`: expected Unix seconds, got {}",
            type_name(other)
        )),
    }
}

/// An instant written as text: RFC 3339 with an offset, or a civil date and time without a
/// zone (`2025-01-24 09:20:46.847371`), which is taken as UTC.
pub(crate) fn text_instant(map: &Map<String, Value>, key: &str) -> Result<i64, String> {
    let text = match map.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(format!("field `{key}`: is required"));
        }
        Some(other) => {
            return Err(format!(
                "field `{key}`: expected a date and time, got {}",
                type_name(other)
            ));
        }
    };
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t.as_millisecond());
    }
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_millisecond())
        .ok_or_else(|| format!("field `{key}`: `{text}` is not a date and time"))
}

/// A stable request id for an aggregate row: its kind, bucket start and grouping values, so
/// the same bucket read again is a duplicate, not new spend.
pub(crate) fn aggregate_id(kind: &str, start_ms: i64, parts: &[Option<&str>]) -> String {
    let mut id = format!("{kind}:{start_ms}");
    for p in parts {
        id.push(':');
        id.push_str(p.unwrap_or("-"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = format!(
            "{}/tests/fixtures/formats/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// (line, reason) of each set-aside record.
    fn aside(b: &IngestBatch) -> Vec<(u64, String)> {
        b.malformed
            .iter()
            .map(|a| (a.line, a.reason.clone()))
            .collect()
    }

    fn assert_reasons(b: &IngestBatch, want: &[(u64, &str)]) {
        let got = aside(b);
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((line, reason), (wline, wstart)) in got.iter().zip(want) {
            assert_eq!(line, wline, "{reason}");
            assert!(
                reason.starts_with(wstart),
                "line {line}: `{reason}` should start `{wstart}`"
            );
        }
    }

    #[test]
    fn litellm_edge_cases_are_set_aside_by_line_with_their_reason() {
        let b = parse(
            Format::Litellm,
            &fixture("litellm/edge_cases.jsonl"),
            "f",
            "cli",
        );
        let ids: Vec<(u64, &str)> = b
            .rows
            .iter()
            .map(|(r, p)| (p.line, r.request_id.as_deref().unwrap()))
            .collect();
        assert_eq!(ids, [(1, "e1"), (9, "e7")]);
        let e1 = &b.rows[0].0;
        assert_eq!(e1.ts_ms, 1_740_830_400_250);
        assert_eq!(
            (e1.input_tokens, e1.cached_input_tokens, e1.output_tokens),
            (100, 60, 50)
        );
        assert_eq!(e1.cost_usd, Some(Usd::from_nanos(1_500_000)));
        assert_eq!(e1.tenant.as_deref(), Some("team-9"));
        assert_reasons(
            &b,
            &[
                (
                    2,
                    "field `spend`: expected a number of dollars, got a string",
                ),
                (4, "field `startTime`: `yesterday` is not a date and time"),
                (
                    5,
                    "field `cached_input_tokens`: 150 is more than input_tokens 100",
                ),
                (6, "field `model`: is required"),
                (7, "field `request_tags`: a string that is not valid JSON"),
                (8, "not valid JSON"),
            ],
        );
        assert!(b.malformed[0].raw.contains("\"e2\""));
    }

    #[test]
    fn a_litellm_array_is_read_element_by_element() {
        let text = r#"[{"request_id":"a","startTime":"2025-03-01 12:00:00","model":"gpt-4o"}, 7]"#;
        let b = parse(Format::Litellm, text, "f", "cli");
        assert_eq!(b.rows.len(), 1);
        assert_reasons(&b, &[(2, "[1]: expected a spend-log object, got a number")]);
    }

    #[test]
    fn a_broken_document_is_one_reason_not_one_per_line() {
        let b = parse(Format::OpenaiUsage, "{\n  \"data\": [\n", "f", "cli");
        assert_reasons(&b, &[(1, "not valid JSON")]);
    }

    #[test]
    fn openai_usage_edge_cases() {
        let b = parse(
            Format::OpenaiUsage,
            &fixture("openai-usage-api/usage_edge_cases.json"),
            "f",
            "cli",
        );
        assert_eq!(b.rows.len(), 2);
        let (first, pos) = &b.rows[0];
        assert_eq!(pos.line, 1);
        assert_eq!(first.ts_ms, 1_740_787_200_000);
        assert_eq!(first.model, "gpt-4o-mini-2024-07-18");
        assert_eq!(
            (
                first.requests,
                first.input_tokens,
                first.cached_input_tokens
            ),
            (4, 2000, 1500)
        );
        assert_eq!(
            (first.tenant.as_deref(), first.user.as_deref()),
            (Some("proj_search"), Some("user_a"))
        );
        assert_eq!(
            first.tags.get("api_key_id").map(String::as_str),
            Some("key_1")
        );
        assert_eq!(first.tags.get("batch").map(String::as_str), Some("false"));
        assert_eq!(
            first.request_id.as_deref(),
            Some(
                "openai-usage:1740787200000:proj_search:user_a:key_1:gpt-4o-mini-2024-07-18:false:-"
            )
        );
        // No requests counted still stands for at least one.
        assert_eq!((b.rows[1].1.line, b.rows[1].0.requests), (5, 1));
        assert_reasons(
            &b,
            &[
                (
                    2,
                    "data[0].results[1]: field `cached_input_tokens`: 300 is more than input_tokens 100",
                ),
                (
                    3,
                    "data[0].results[2]: field `input_tokens`: 50.5 is not a whole number",
                ),
                (
                    4,
                    "data[0].results[3]: field `batch`: expected a boolean, got a string",
                ),
                (
                    6,
                    "data[1].results[0]: field `start_time`: expected Unix seconds, got a string",
                ),
            ],
        );
    }

    #[test]
    fn openai_costs_other_currencies_are_set_aside_never_converted() {
        let b = parse(
            Format::OpenaiCosts,
            &fixture("openai-usage-api/costs_edge_cases.json"),
            "f",
            "cli",
        );
        let got: Vec<(u64, Option<&str>, Option<Usd>)> = b
            .rows
            .iter()
            .map(|(r, p)| (p.line, r.feature.as_deref(), r.cost_usd))
            .collect();
        assert_eq!(
            got,
            [
                (
                    1,
                    Some("GPT-4o, input"),
                    Some(Usd::from_nanos(1_250_000_000))
                ),
                (
                    2,
                    Some("GPT-4o, output"),
                    Some(Usd::from_nanos(750_000_000))
                ),
            ]
        );
        assert_eq!(b.rows[0].0.tenant.as_deref(), Some("proj_search"));
        assert_eq!(b.rows[0].0.model, "openai-costs");
        assert_ne!(b.rows[0].0.request_id, b.rows[1].0.request_id);
        assert_reasons(
            &b,
            &[
                (
                    3,
                    "data[0].results[2]: field `amount.currency`: `eur` is not USD; amounts are not converted",
                ),
                (
                    4,
                    "data[0].results[3]: field `amount.currency`: is required",
                ),
                (
                    5,
                    "data[0].results[4]: field `amount.value`: -1 is negative",
                ),
                (
                    6,
                    "data[0].results[5]: field `amount`: expected an object, got a number",
                ),
            ],
        );
    }

    #[test]
    fn anthropic_usage_edge_cases() {
        let b = parse(
            Format::AnthropicUsage,
            &fixture("anthropic/edge_cases.json"),
            "f",
            "cli",
        );
        assert_eq!(b.rows.len(), 1);
        let (row, pos) = &b.rows[0];
        assert_eq!(pos.line, 4);
        assert_eq!((row.input_tokens, row.output_tokens), (0, 7));
        assert_eq!(row.tenant.as_deref(), Some("wrkspc_x"));
        assert_reasons(
            &b,
            &[
                (
                    1,
                    "data[0].results[0]: field `uncached_input_tokens`: expected a whole number, got a string",
                ),
                (2, "data[0].results[1]: field `model`: is null"),
                (
                    3,
                    "data[0].results[2]: cache_creation: field `ephemeral_5m_input_tokens`: -4 is negative",
                ),
                (5, "data[1].results[0]: field `starting_at`: is required"),
            ],
        );
    }

    #[test]
    fn native_rows_take_a_mapping_from_their_fields_and_tags() {
        let mut m = Mapping::default();
        m.add_spec("tenant=tag:team").unwrap();
        m.add_spec("workflow=job.name").unwrap();
        let text = "{\"ts\":\"2026-03-02T10:00:00Z\",\"model\":\"m\",\"tenant\":\"x\",\"tags\":{\"team\":\"acme\"},\"job\":{\"name\":\"etl\"}}\n{}\n";
        let b = parse_mapped(Format::Native, &m, text, "f", "cli");
        let row = &b.rows[0].0;
        assert_eq!(
            (row.tenant.as_deref(), row.workflow.as_deref()),
            (Some("acme"), Some("etl"))
        );
        assert_reasons(&b, &[(2, "field `ts`: is required")]);
    }

    #[test]
    fn native_is_the_jsonl_parser() {
        let b = parse(
            Format::Native,
            "{\"ts\":\"2026-03-02T10:00:00Z\",\"model\":\"m\"}\n{}\n",
            "f",
            "cli",
        );
        assert_eq!(b.rows.len(), 1);
        assert_reasons(&b, &[(2, "field `ts`: is required")]);
    }
}
