//! `spendpager bench --quick` runs to its end and prints its summary line; timings are not
//! asserted (they depend on the machine and the build).

mod common;

use common::*;

#[test]
fn bench_quick_runs_and_ends_with_its_json_summary() {
    let s = Scratch::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .args(["bench", "--quick", "--dir"])
        .arg(s.path("bench"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("SQL agrees"), "{text}");
    assert!(!text.contains("); 0 firing"), "some series spike: {text}");
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    for key in [
        "ingest_rows_per_s",
        "ingest_vs_bare",
        "eval_ms_100k",
        "eval_vs_sql",
        "rss_mb",
        "rows_x10_cycle_ratio",
    ] {
        assert!(last[key].is_number(), "{key} in {last}");
    }
}
