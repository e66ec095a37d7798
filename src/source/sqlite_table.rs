//! An application's own SQLite table of cost rows: the set-up where the application logs the
//! cost of each call itself. The file is opened read-only; rows are read in cursor order
//! (`rowid`, or a column that only grows) from where the last poll stopped.
//!
//! Each table row becomes a JSON object under the configured column mapping and goes through
//! the same parser as native rows, so every validation rule and message is the same.

use super::{BATCH_ROWS, Source};
use crate::config::{SourceConfig, TsFormat};
use crate::price::PriceTable;
use crate::row::CostRow;
use crate::store::{IngestBatch, IngestReport, Position, Store};
use anyhow::Context;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::row::FIELDS;

/// Fields that are text in a row, whatever type the table gives them.
const STRING_FIELDS: &[&str] = &[
    "model",
    "provider",
    "request_id",
    "tenant",
    "feature",
    "user",
    "workflow",
];

pub struct SqliteTableSource {
    name: String,
    path: PathBuf,
    table: String,
    cursor_column: String,
    columns: BTreeMap<String, String>,
    ts_format: TsFormat,
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl SqliteTableSource {
    pub fn new(config: &SourceConfig) -> SqliteTableSource {
        let SourceConfig::SqliteTable {
            name,
            path,
            table,
            cursor,
            columns,
            ts_format,
        } = config
        else {
            unreachable!("built only for sqlite_table sources");
        };
        SqliteTableSource {
            name: name.clone(),
            path: path.clone(),
            table: table.clone(),
            cursor_column: cursor.clone().unwrap_or_else(|| "rowid".into()),
            columns: columns.clone(),
            ts_format: *ts_format,
        }
    }

    fn column_for(&self, field: &str) -> String {
        self.columns
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_string())
    }

    fn open(&self) -> anyhow::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| {
            format!(
                "source {}: cannot open {} read-only",
                self.name,
                self.path.display()
            )
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// The table's columns, so that fields the mapping names but the table lacks are absent
    /// rather than an SQL error.
    fn table_columns(&self, conn: &Connection) -> anyhow::Result<Vec<String>> {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(&self.table)))?;
        let cols: Vec<String> = stmt
            .query_map([], |r| r.get(1))?
            .collect::<Result<_, _>>()?;
        if cols.is_empty() {
            anyhow::bail!(
                "source {}: no table `{}` in {}",
                self.name,
                self.table,
                self.path.display()
            );
        }
        Ok(cols)
    }

    fn to_json(&self, field: &str, v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) if field == "ts" => match self.ts_format {
                TsFormat::UnixSeconds => ts_value(jiff::Timestamp::from_second(i).ok()),
                TsFormat::UnixMillis => ts_value(jiff::Timestamp::from_millisecond(i).ok()),
                TsFormat::Rfc3339 => Value::from(i),
            },
            ValueRef::Real(f) if field == "ts" && self.ts_format != TsFormat::Rfc3339 => {
                let ms = if self.ts_format == TsFormat::UnixSeconds {
                    f * 1000.0
                } else {
                    f
                };
                ts_value(jiff::Timestamp::from_millisecond(ms.round() as i64).ok())
            }
            // Tables often key requests and tenants by number; the row format wants text.
            ValueRef::Integer(i) if STRING_FIELDS.contains(&field) => Value::String(i.to_string()),
            ValueRef::Integer(i) => Value::from(i),
            ValueRef::Real(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            ValueRef::Text(t) => {
                let s = String::from_utf8_lossy(t).into_owned();
                if field == "tags" {
                    serde_json::from_str(&s).unwrap_or(Value::String(s))
                } else {
                    Value::String(s)
                }
            }
            ValueRef::Blob(_) => Value::String("<blob>".into()),
        }
    }
}

fn ts_value(t: Option<jiff::Timestamp>) -> Value {
    t.map(|t| Value::String(t.to_string()))
        .unwrap_or(Value::Null)
}

fn cursor_param(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or(0).into(),
        Value::Number(n) => n.as_f64().unwrap_or(0.0).into(),
        Value::String(s) => s.clone().into(),
        _ => rusqlite::types::Value::Null,
    }
}

impl Source for SqliteTableSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn poll(&mut self, store: &mut Store, prices: &PriceTable) -> anyhow::Result<IngestReport> {
        let conn = self.open()?;
        let present = self.table_columns(&conn)?;
        let fields: Vec<(&str, String)> = FIELDS
            .iter()
            .map(|f| (*f, self.column_for(f)))
            .filter(|(_, c)| present.iter().any(|p| p == c))
            .collect();
        let select: Vec<String> = fields.iter().map(|(_, c)| quote(c)).collect();
        let cursor_expr = if self.cursor_column == "rowid" {
            "rowid".to_string()
        } else {
            quote(&self.cursor_column)
        };
        let sql = format!(
            "SELECT {cursor_expr}, {} FROM {} WHERE ?1 IS NULL OR {cursor_expr} > ?1 ORDER BY {cursor_expr} LIMIT {BATCH_ROWS}",
            select.join(", "),
            quote(&self.table)
        );
        let mut stmt = conn
            .prepare(&sql)
            .with_context(|| format!("source {}: {sql}", self.name))?;
        let mut report = IngestReport::default();
        let mut last: Value = store
            .cursor(&self.name, "cursor")?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or(Value::Null);
        let label = self.path.display().to_string();
        loop {
            let mut batch = IngestBatch::new(&self.name);
            let mut rows = stmt.query([cursor_param(&last)])?;
            let mut n = 0;
            while let Some(r) = rows.next()? {
                n += 1;
                let cursor_value = self.to_json("", r.get_ref(0)?);
                let mut map = Map::new();
                for (i, (field, _)) in fields.iter().enumerate() {
                    map.insert(field.to_string(), self.to_json(field, r.get_ref(i + 1)?));
                }
                let line = cursor_value.as_i64().map(|v| v as u64).unwrap_or(n as u64);
                let pos = Position {
                    file: label.clone(),
                    line,
                };
                match CostRow::from_json_object(&map) {
                    Ok(row) => batch.rows.push((row, pos)),
                    Err(e) => {
                        let raw = Value::Object(map).to_string();
                        batch.set_aside(pos, e.to_string(), &raw);
                    }
                }
                last = cursor_value;
            }
            if n == 0 {
                break;
            }
            batch.cursors.push(("cursor".into(), last.to_string()));
            report.merge(store.ingest(&batch, prices)?);
            if n < BATCH_ROWS {
                break;
            }
        }
        Ok(report)
    }
}
