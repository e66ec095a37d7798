//! Configuration: the bundled rules and README-shaped files load; broken files are refused
//! with the file, line, column and field of every error; `rules check` says so.

mod common;

use common::*;
use spendpager::config::Config;
use std::path::Path;

#[test]
fn the_bundled_rules_load_with_a_console_config() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("rules")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/spend.yaml"),
        s.path("rules/spend.yaml"),
    )
    .unwrap();
    let c = s.config("channels:\n  oncall: { kind: console }\n  team-slack: { kind: console }\nrules_dir: ./rules\n");
    assert_eq!(c.rules.len(), 4);
    assert_eq!(
        c.store,
        s.path("spendpager.db"),
        "relative paths resolve against the config's folder"
    );
    assert_eq!(c.schedule.expr(), "*/5 * * * *");
    let out = s.run(&["rules", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: 4 rules"), "{}", stdout(&out));
}

#[test]
fn a_broken_rule_file_names_its_line_and_field() {
    let s = Scratch::new();
    s.write(
        "rules/bad.yaml",
        "rules:\n  - name: spike\n    kind: spike\n    group_by: [tenant, featur]\n    window: 1h\n    channels: [out, nowhere]\n  - name: cap\n    kind: threshold\n    window: 90s\n    limit_usd: -2\n    channels: [out]\n",
    );
    s.write(
        "config.yaml",
        "channels: { out: { kind: console } }\nrules_dir: ./rules\nschedule: \"*/5 * * *\"\n",
    );
    let errors = Config::load(&s.path("config.yaml")).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let file = s.path("rules/bad.yaml");
    let bad = file.display();
    assert!(
        text.iter()
            .any(|e| e.contains("config.yaml:3:11: schedule: cannot read schedule `*/5 * * *`")),
        "{text:#?}"
    );
    assert!(text.contains(&format!("{bad}:4:24: rules[spike].group_by: `featur` is not a dimension (tenant, feature, model, provider, user, workflow)")), "{text:#?}");
    assert!(
        text.contains(&format!(
            "{bad}:6:21: rules[spike].channels: no channel named `nowhere`"
        )),
        "{text:#?}"
    );
    assert!(
        text.contains(&format!(
            "{bad}:10:16: rules[cap].limit_usd: -2 is negative"
        )),
        "{text:#?}"
    );
    assert!(
        text.contains(&format!(
            "{bad}:9:13: rules[cap].window: 90s must be a whole number of minutes"
        )),
        "{text:#?}"
    );
    assert_eq!(text.len(), 5, "{text:#?}");
    let out = s.run(&["rules", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("{bad}:4:24")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_keys_and_wrong_kinds_are_refused_where_they_stand() {
    let s = Scratch::new();
    s.write("config.yaml", "channels: { out: { kind: console } }\nrules:\n  - name: a\n    kind: threshold\n    window: 1h\n    limit_usd: 5\n    colour: red\n    channels: [out]\n");
    let e = Config::load(&s.path("config.yaml")).unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (Some(7), Some(5)));
    assert!(
        e[0].message.contains("unknown field `colour`"),
        "{}",
        e[0].message
    );
    assert_eq!(e[0].field, "rules[0].colour");

    s.write("config.yaml", "channels: { out: { kind: console } }\nrules:\n  - name: a\n    kind: budget\n    window: 1h\n    limit_usd: 5\n    channels: [out]\n");
    let e = Config::load(&s.path("config.yaml")).unwrap_err().0;
    let text: Vec<String> = e.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains(":5:13: rules[a].window: is not used by kind budget")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("rules[a].period: is required for kind budget")),
        "{text:#?}"
    );
}

#[test]
fn a_missing_secret_is_an_error_that_does_not_print_anything_secret() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "channels:\n  hook: { kind: webhook, url_env: SPENDPAGER_TEST_UNSET_VARIABLE }\n",
    );
    let e = Config::load(&s.path("config.yaml")).unwrap_err().0;
    assert_eq!(e[0].line, Some(2));
    assert!(
        e[0].message
            .contains("SPENDPAGER_TEST_UNSET_VARIABLE is not set")
    );
    let secret = s.write(
        "hook-url",
        "https://hooks.example.invalid/T000/B000/very-secret\n",
    );
    s.write(
        "config.yaml",
        &format!(
            "channels:\n  hook: {{ kind: webhook, url_file: {} }}\n",
            secret.display()
        ),
    );
    let c = Config::load(&s.path("config.yaml")).unwrap();
    let debug = format!("{:?}", c.channels["hook"]);
    assert!(!debug.contains("very-secret"), "{debug}");
}

#[test]
fn commands_that_never_deliver_do_not_need_the_channels_secrets() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "store: ./store.db\nchannels:\n  hook: { kind: webhook, url_env: SPENDPAGER_TEST_NEVER_SET }\nrules:\n  - { name: cap, kind: threshold, window: 1h, limit_usd: 1, channels: [hook] }\n",
    );
    s.write("rows.jsonl", "{\"ts\":\"2026-05-01T10:00:00Z\",\"request_id\":\"r1\",\"model\":\"gpt-4o\",\"cost_usd\":2}\n");
    let ingest = s.run(&["ingest", s.path("rows.jsonl").to_str().unwrap()]);
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    assert!(s.run(&["status"]).status.success());
    // Anything that may send still refuses to start without it, and says which.
    let evaluate = s.run(&["evaluate", "--at", "2026-05-01T11:00:00Z"]);
    assert!(!evaluate.status.success());
    assert!(
        stderr(&evaluate).contains("SPENDPAGER_TEST_NEVER_SET is not set"),
        "{}",
        stderr(&evaluate)
    );
    let check = s.run(&["rules", "check"]);
    assert_eq!(check.status.code(), Some(1));
}

#[test]
fn a_misplaced_or_bad_value_is_reported_at_its_own_line() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "store: ./store.db\nchannels: { out: { kind: console } }\nrules:\n  - name: spiky\n    kind: spike\n    window: 1h\n    limit_usd: 5\n    threshold:\n      sensitivity: 4\n      min_ratio: 0.5\n    channels: [out]\n  - name: share\n    kind: attribution\n    dimension: tenant\n    window: 1h\n    max_share: 1.5\n    min_usd: 1\n    channels: [out]\n",
    );
    let out = s.run(&["rules", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for expected in [
        "config.yaml:7:16: rules[spiky].limit_usd: is not used by kind spike",
        "config.yaml:10:18: rules[spiky].threshold.min_ratio: must be at least 1.0",
        "config.yaml:16:16: rules[share].max_share: must be a share from 0 up to (not including) 1",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}
