//! The store's fast paths give what the slow ones give: cached windows patched from the
//! ingest change log equal a fresh read, evidence found through the combination index equals
//! evidence found by labels, and a combination made for a row that was not stored is gone.

mod common;

use common::*;
use spendpager::row::Dimension;
use spendpager::store::{self, History, StoreHistory, WindowAgg};

fn minute(s: &str) -> i64 {
    ts(s).as_second() / 60
}

fn line(t: &str, id: &str, tenant: &str, cost: f64) -> String {
    format!(
        r#"{{"ts":"{t}","request_id":"{id}","model":"gpt-4o","cost_usd":{cost},"tenant":"{tenant}","feature":"chat"}}"#
    ) + "\n"
}

/// (combination id, cost in nano-dollars, rows) of a window, in id order.
fn costs(w: &WindowAgg) -> Vec<(i64, i64, u64)> {
    w.entries
        .iter()
        .map(|(id, m)| (*id, m.cost.nanos(), m.rows))
        .collect()
}

#[test]
fn cached_windows_patched_from_ingest_equal_a_fresh_read() {
    let s = Scratch::new();
    let mut store = s.store();
    let first = line("2026-03-02T10:05:00Z", "a1", "a", 1.0)
        + &line("2026-03-02T10:25:00Z", "b1", "b", 2.0)
        + &line("2026-03-02T11:40:00Z", "a2", "a", 4.0);
    s.ingest(&mut store, "first.jsonl", &first);

    let short = (
        minute("2026-03-02T10:00:00Z"),
        minute("2026-03-02T10:30:00Z"),
    );
    // Longer than two hours: summed from cached hours, each of which is patched too.
    let long = (
        minute("2026-03-02T09:30:00Z"),
        minute("2026-03-02T12:30:00Z"),
    );
    let mut history = StoreHistory::new();
    let before = {
        let mut view = history.view(&store).unwrap();
        let short_w = view.window(short.0, short.1).unwrap();
        view.window(long.0, long.1).unwrap();
        costs(&short_w)
    };
    assert_eq!(before.len(), 2);

    // An existing combination, a new tenant, and a row outside the short window.
    let more = line("2026-03-02T10:15:00Z", "a3", "a", 0.5)
        + &line("2026-03-02T10:20:00Z", "c1", "c", 8.0)
        + &line("2026-03-02T12:10:00Z", "b2", "b", 16.0);
    s.ingest(&mut store, "more.jsonl", &more);

    let (patched_short, patched_long) = {
        let mut view = history.view(&store).unwrap();
        (
            costs(&view.window(short.0, short.1).unwrap()),
            costs(&view.window(long.0, long.1).unwrap()),
        )
    };
    let mut fresh = StoreHistory::new();
    let mut view = fresh.view(&store).unwrap();
    assert_eq!(
        patched_short,
        costs(&view.window(short.0, short.1).unwrap())
    );
    assert_eq!(patched_long, costs(&view.window(long.0, long.1).unwrap()));
    // Tenant a's window now holds both its rows, and tenant c is in it.
    assert_eq!(patched_short.len(), 3);
    assert!(patched_short.contains(&(before[0].0, 1_500_000_000, 2)));
    let long_total: i64 = patched_long.iter().map(|(_, c, _)| c).sum();
    assert_eq!(long_total, 31_500_000_000);
}

#[test]
fn evidence_by_combination_matches_evidence_by_labels() {
    let s = Scratch::new();
    let mut store = s.store();
    let mut lines = String::new();
    for (i, (t, tenant, cost)) in [
        ("2026-03-02T10:01:00Z", "a", 0.3),
        ("2026-03-02T10:02:00Z", "b", 9.0),
        ("2026-03-02T10:12:00Z", "a", 0.7),
        ("2026-03-02T10:12:00Z", "a", 0.7),
        ("2026-03-02T10:44:00Z", "a", 0.1),
        ("2026-03-02T11:30:00Z", "a", 5.0),
    ]
    .into_iter()
    .enumerate()
    {
        lines += &line(t, &format!("r{i}"), tenant, cost);
    }
    s.ingest(&mut store, "rows.jsonl", &lines);

    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let combos: Vec<i64> = conn
        .prepare("SELECT id FROM combos WHERE tenant = 'a'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let unstamped: i64 = conn
        .query_row("SELECT count(*) FROM rows WHERE combo IS NULL", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unstamped, 0);

    let (start, end) = (
        ts("2026-03-02T10:00:00Z").as_millisecond(),
        ts("2026-03-02T11:00:00Z").as_millisecond(),
    );
    let labels = [(Dimension::Tenant, Some("a".to_string()))];
    let by_labels = store::sample_request_ids(&conn, start, end, &labels, &[], 3).unwrap();
    let by_combos = store::sample_request_ids_of(&conn, start, end, &combos, 3).unwrap();
    assert_eq!(by_labels, ["r2", "r3", "r0"]);
    assert_eq!(by_combos, by_labels);

    let chart = store::bucketed_spend(&conn, start, end, 15, &labels, &[]).unwrap();
    assert_eq!(chart, [1.7, 0.0, 0.1, 0.0]);
    assert_eq!(
        store::bucketed_spend_of(&conn, start, end, 15, &combos).unwrap(),
        chart
    );
}

#[test]
fn a_combination_made_for_a_conflicting_row_is_not_kept() {
    let s = Scratch::new();
    let mut store = s.store();
    s.ingest(
        &mut store,
        "a.jsonl",
        &line("2026-03-02T10:00:00Z", "r1", "a", 1.0),
    );
    // The same request id with another tenant and an earlier time: set aside.
    let report = s.ingest(
        &mut store,
        "b.jsonl",
        &line("2026-03-02T08:00:00Z", "r1", "zz", 1.0),
    );
    assert_eq!((report.stored, report.conflicts), (0, 1));
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let first_of_zz = |conn: &rusqlite::Connection| -> Vec<i64> {
        conn.prepare("SELECT first_minute FROM combos WHERE tenant = 'zz'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(first_of_zz(&conn).is_empty());

    // Its first real row gives it its first minute, not the refused row's.
    s.ingest(
        &mut store,
        "c.jsonl",
        &line("2026-03-02T11:00:00Z", "r2", "zz", 1.0),
    );
    assert_eq!(first_of_zz(&conn), [minute("2026-03-02T11:00:00Z")]);
}

#[test]
fn a_store_from_before_row_combinations_is_stamped_on_open() {
    let s = Scratch::new();
    let mut store = s.store();
    let lines = line("2026-03-02T10:00:00Z", "r1", "a", 1.0)
        + &line("2026-03-02T10:01:00Z", "r2", "", 1.0)
        + &line("2026-03-02T10:02:00Z", "r3", "b", 1.0);
    s.ingest(&mut store, "rows.jsonl", &lines);
    drop(store);
    // Back to schema 4: no combination column on rows.
    let conn = rusqlite::Connection::open(s.path("store.db")).unwrap();
    conn.execute_batch(
        "DROP INDEX rows_by_combo; ALTER TABLE rows DROP COLUMN combo; PRAGMA user_version = 4;",
    )
    .unwrap();
    drop(conn);

    let store = s.store();
    assert_eq!(store.schema_version().unwrap(), 5);
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let stamped: Vec<(String, String)> = conn
        .prepare(
            "SELECT r.request_id, c.tenant FROM rows r JOIN combos c ON c.id = r.combo
             ORDER BY r.request_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [("r1", "a"), ("r2", ""), ("r3", "b")].map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(stamped, want);
}
