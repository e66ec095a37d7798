//! Inputs at the edge of what makes sense: a window too long to evaluate, and tokens that
//! would price one request above the per-row cap. Each is refused with its reason; neither
//! reaches evaluation.

mod common;

use common::*;

#[test]
fn a_window_longer_than_a_month_is_refused_where_it_is_written() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "store: ./store.db\nchannels: { out: { kind: console } }\nrules:\n  - name: huge\n    kind: threshold\n    window: 9999w\n    limit_usd: 5\n    channels: [out]\n  - name: month\n    kind: runaway\n    group_by: [workflow]\n    window: 31d\n    max_usd: 5\n    channels: [out]\n",
    );
    let out = s.run(&["rules", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("config.yaml:6:13: rules[huge].window: 9999w is longer than 31d"),
        "{err}"
    );
    // A month is still a window; only the one rule is wrong.
    assert!(!err.contains("rules[month]"), "{err}");
}

#[test]
fn tokens_that_price_a_row_above_the_cap_set_it_aside_with_the_reason() {
    let s = Scratch::new();
    let mut store = s.store();
    let r = s.ingest(
        &mut store,
        "rows.jsonl",
        "{\"ts\":\"2026-03-02T10:00:00Z\",\"request_id\":\"n-9\",\"model\":\"gpt-4o\",\"input_tokens\":4000000000000,\"output_tokens\":10}\n{\"ts\":\"2026-03-02T10:00:00Z\",\"request_id\":\"ok\",\"model\":\"gpt-4o\",\"input_tokens\":1000,\"output_tokens\":10}\n",
    );
    assert_eq!(r.stored, 1);
    assert_eq!(r.set_aside.len(), 1);
    assert_eq!(r.set_aside[0].line, 1);
    assert!(
        r.set_aside[0]
            .reason
            .contains("its tokens price it at 10000000.0001 USD, more than one row can cost"),
        "{}",
        r.set_aside[0].reason
    );
    // The good row is priced and kept: 1000 x $2.50/M + 10 x $10/M.
    assert_eq!(row_cost(&store, "ok"), Some(2_600_000));
}

#[test]
fn a_line_that_is_not_utf8_is_set_aside_rather_than_renamed() {
    let s = Scratch::new();
    let mut store = s.store();
    let mut bytes = b"{\"ts\":\"2026-03-02T10:00:00Z\",\"request_id\":\"a\",\"model\":\"gpt-4o\",\"cost_usd\":1,\"tenant\":\"cafe\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"ts\":\"2026-03-02T10:00:00Z\",\"request_id\":\"b\",\"model\":\"gpt-4o\",\"cost_usd\":1,\"tenant\":\"caf\xe9\"}\n");
    let path = s.path("latin1.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    let r = spendpager::source::jsonl::ingest_once(
        &mut store,
        &spendpager::price::PriceTable::bundled(),
        "cli",
        path.to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(r.stored, 1);
    assert_eq!(r.set_aside.len(), 1);
    assert_eq!(r.set_aside[0].line, 2);
    assert_eq!(
        r.set_aside[0].reason,
        "not valid UTF-8 (byte 90 of the line): set aside rather than read with its bytes replaced"
    );
}

#[test]
fn a_gateway_export_that_is_not_utf8_is_refused_naming_its_line() {
    let s = Scratch::new();
    s.write("config.yaml", "store: ./store.db\n");
    let mut bytes = b"{\"request_id\":\"l1\",\"startTime\":\"2026-03-02T10:00:00Z\",\"model\":\"gpt-4o\",\"spend\":0.5}\n".to_vec();
    bytes.extend_from_slice(b"{\"request_id\":\"l2\",\"startTime\":\"2026-03-02T10:00:00Z\",\"model\":\"gpt-4o\",\"spend\":0.5,\"user\":\"caf\xe9\"}\n");
    let path = s.path("spend.jsonl");
    std::fs::write(&path, &bytes).unwrap();
    let out = s.run(&["ingest", "--format", "litellm", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("spend.jsonl:2: not valid UTF-8 (byte 179 of the file); nothing was stored"),
        "{err}"
    );
}
