//! Sources against real files and a real application SQLite table: tailing across rotation,
//! truncation and half-written lines; `.gz` one-shot loads; incremental table reads.

mod common;

use common::*;
use spendpager::config::SourceConfig;
use spendpager::price::PriceTable;
use spendpager::source;
use spendpager::source::formats::Format;
use spendpager::source::mapping::Mapping;
use std::io::Write;

fn row(id: &str, minute: u32) -> String {
    format!(
        "{{\"ts\":\"2026-05-01T10:{minute:02}:00Z\",\"request_id\":\"{id}\",\"model\":\"gpt-4o\",\"cost_usd\":0.5,\"tenant\":\"acme\"}}\n"
    )
}

fn stored(s: &Scratch) -> i64 {
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    conn.query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_tailed_file_survives_rotation_truncation_and_half_written_lines() {
    let s = Scratch::new();
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let logs = s.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let pattern = format!("{}/*.jsonl*", logs.display());
    let mut src = source::build(&SourceConfig::Jsonl {
        name: "app".into(),
        pattern,
        format: Format::Native,
        mapping: Mapping::default(),
    });
    let live = logs.join("app.jsonl");

    std::fs::write(&live, format!("{}{}", row("a1", 1), row("a2", 2))).unwrap();
    assert_eq!(src.poll(&mut store, &prices).unwrap().stored, 2);
    assert_eq!(
        src.poll(&mut store, &prices).unwrap().stored,
        0,
        "nothing new"
    );

    // A half-written line waits for its newline.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    let third = row("a3", 3);
    f.write_all(&third.as_bytes()[..20]).unwrap();
    f.flush().unwrap();
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.set_aside.len()), (0, 0));
    f.write_all(&third.as_bytes()[20..]).unwrap();
    drop(f);
    assert_eq!(src.poll(&mut store, &prices).unwrap().stored, 1);

    // Rotation: the file is renamed (and still matches the glob), a new one starts.
    std::fs::rename(&live, logs.join("app.jsonl.1")).unwrap();
    std::fs::write(&live, row("b1", 4)).unwrap();
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!(
        (r.stored, r.duplicates),
        (1, 0),
        "the rotated file is not read again"
    );

    // Truncation in place (copytruncate): read again from the start.
    std::fs::write(&live, row("c1", 5)).unwrap();
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!(r.stored, 1);
    assert_eq!(stored(&s), 5);

    // Rotation to a name the glob does not match, with a line written just before it: the
    // line is read through the file's open handle, not lost.
    let mut narrow = source::build(&SourceConfig::Jsonl {
        name: "narrow".into(),
        pattern: format!("{}/*.jsonl", logs.display()),
        format: Format::Native,
        mapping: Mapping::default(),
    });
    assert_eq!(
        narrow.poll(&mut store, &prices).unwrap().stored,
        1,
        "the live file, read once"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap()
        .write_all(row("late", 6).as_bytes())
        .unwrap();
    std::fs::rename(&live, logs.join("app.jsonl-20260501")).unwrap();
    std::fs::write(&live, row("d1", 7)).unwrap();
    let r = narrow.poll(&mut store, &prices).unwrap();
    assert_eq!(
        r.stored, 2,
        "the late line of the rotated file and the new file"
    );
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let late: i64 = conn
        .query_row(
            "SELECT count(*) FROM rows WHERE request_id = 'late'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(late, 1);

    // A restart is a new source object: the cursor comes from the store.
    let mut again = source::build(&SourceConfig::Jsonl {
        name: "app".into(),
        pattern: format!("{}/*.jsonl*", logs.display()),
        format: Format::Native,
        mapping: Mapping::default(),
    });
    // For source `app` the late line and the new file are new; nothing it read is read again.
    assert_eq!(again.poll(&mut store, &prices).unwrap().stored, 2);
    assert_eq!(again.poll(&mut store, &prices).unwrap().stored, 0);
}

#[test]
fn a_gzip_file_loads_once_and_a_bad_line_is_set_aside_with_its_line() {
    let s = Scratch::new();
    let mut store = s.store();
    let path = s.path("rows.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(format!("{}not json\n{}", row("g1", 1), row("g2", 2)).as_bytes())
        .unwrap();
    gz.finish().unwrap();
    let r = source::jsonl::ingest_once(
        &mut store,
        &PriceTable::bundled(),
        "cli",
        path.to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(r.stored, 2);
    assert_eq!(r.set_aside.len(), 1);
    assert_eq!(r.set_aside[0].line, 2);
    assert!(
        r.set_aside[0].reason.contains("not valid JSON"),
        "{}",
        r.set_aside[0].reason
    );
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    let (loc, raw): (String, String) = conn
        .query_row("SELECT location, raw FROM set_aside", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(loc.ends_with("rows.jsonl.gz:2"), "{loc}");
    assert_eq!(raw, "not json");
}

#[test]
fn an_application_table_is_read_read_only_and_incrementally() {
    let s = Scratch::new();
    let app_db = s.path("app.db");
    let app = rusqlite::Connection::open(&app_db).unwrap();
    app.execute_batch(
        "CREATE TABLE llm_calls (id INTEGER PRIMARY KEY, created_at INTEGER, model_name TEXT,
            prompt_tokens INTEGER, completion_tokens INTEGER, cost REAL, customer TEXT, feature TEXT);
         INSERT INTO llm_calls VALUES (1, 1777629600, 'gpt-4o', 1000, 100, NULL, 'acme', 'chat');
         INSERT INTO llm_calls VALUES (2, 1777629660, 'gpt-4o', 1000, 100, 0.25, 'acme', 'chat');
         INSERT INTO llm_calls VALUES (3, 1777629720, 'gpt-4o', -5, 100, NULL, 'acme', 'chat');",
    )
    .unwrap();
    let config = s.config(&format!(
        "store: {}
sources:
  - name: app
    kind: sqlite_table
    path: {}
    table: llm_calls
    cursor: id
    ts_format: unix_s
    columns: {{ ts: created_at, model: model_name, input_tokens: prompt_tokens,
               output_tokens: completion_tokens, cost_usd: cost, tenant: customer, request_id: id }}
channels: {{ out: {{ kind: console }} }}
",
        s.path("store.db").display(),
        app_db.display()
    ));
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut src = source::build(&config.sources[0]);
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!(r.stored, 2);
    assert_eq!(r.set_aside.len(), 1);
    assert_eq!(r.set_aside[0].line, 3);
    assert!(
        r.set_aside[0].reason.contains("input_tokens"),
        "{}",
        r.set_aside[0].reason
    );
    // 1000 in at 2.50/M plus 100 out at 10/M; the given 0.25 wins for row 2.
    assert_eq!(rollup_spend(&store, Some("acme")), 3_500_000 + 250_000_000);

    app.execute(
        "INSERT INTO llm_calls VALUES (4, 1777629780, 'gpt-4o', 0, 0, 1.0, 'beta', 'chat')",
        [],
    )
    .unwrap();
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates), (1, 0), "only the new row is read");
    assert_eq!(rollup_spend(&store, Some("beta")), 1_000_000_000);
    // The application's file was never written: still exactly its own four rows.
    let n: i64 = app
        .query_row("SELECT count(*) FROM llm_calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 4);
}
