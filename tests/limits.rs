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
