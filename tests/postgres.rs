//! The `postgres` source against a real PostgreSQL (Debian's 15 here): LiteLLM's own table
//! layout, a role that may only SELECT, incremental reads by (startTime, request_id), rows
//! written late, restarts, bad passwords, and the daemon paging from the table.
//!
//! Each test runs its own cluster on 127.0.0.1 (tests/common/postgres.rs); without
//! PostgreSQL installed they fail and say what to install.

mod common;

use common::postgres::{DB, PgCluster, db_message, fresh_password};
use common::*;
use spendpager::config::{Config, SourceConfig};
use spendpager::price::PriceTable;
use spendpager::source;
use spendpager::store::Store;

const TABLE: &str = "\"LiteLLM_SpendLogs\"";
const READER: &str = "spendpager_ro";

/// A cluster with LiteLLM's table and a role that can only read it.
fn litellm_cluster(reader_password: &str) -> PgCluster {
    let pg = PgCluster::start();
    pg.exec(include_str!("fixtures/postgres/litellm_spend_logs.sql"));
    pg.reader(READER, reader_password, TABLE);
    pg
}

/// Writes the password file and a config with one `postgres` source named `litellm`.
fn pg_config(s: &Scratch, pg: &PgCluster, password: &str, user: &str, extra: &str) -> Config {
    s.write("pg-password", password);
    s.config(&format!(
        "store: ./store.db
sources:
  - name: litellm
    kind: postgres
    connection:
      host: 127.0.0.1
      port: {port}
      dbname: {DB}
      user: {user}
      password_file: ./pg-password
      tls: disable
{extra}
channels: {{ out: {{ kind: console }} }}
",
        port = pg.port
    ))
}

/// One spend log as LiteLLM writes it; `extra` sets more columns as `(col, value)` SQL.
fn insert(
    pg: &PgCluster,
    id: &str,
    start: &str,
    spend: f64,
    tokens: (i64, i64),
    extra: &[(&str, &str)],
) {
    let mut cols = vec![
        "request_id",
        "call_type",
        "api_key",
        "spend",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "\"startTime\"",
        "\"endTime\"",
        "model",
        "custom_llm_provider",
    ];
    let (p, c) = tokens;
    let mut values = vec![
        format!("'{id}'"),
        "'acompletion'".into(),
        "'88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b'".into(),
        format!("{spend}"),
        format!("{}", p + c),
        format!("{p}"),
        format!("{c}"),
        format!("timestamp '{start}'"),
        format!("timestamp '{start}' + interval '2 seconds'"),
        "'gpt-4o'".into(),
        "'openai'".into(),
    ];
    for (col, v) in extra {
        if let Some(i) = cols.iter().position(|c| c == col) {
            values[i] = v.to_string();
        } else {
            cols.push(col);
            values.push(v.to_string());
        }
    }
    pg.exec(&format!(
        "INSERT INTO {TABLE} ({}) VALUES ({})",
        cols.join(", "),
        values.join(", ")
    ));
}

/// The stored rows of the source, ordered by request id.
fn stored(store: &Store) -> Vec<StoredRow> {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT request_id, ts_ms, model, provider, input_tokens, cached_input_tokens,
                cache_write_tokens, output_tokens, cost_nanos, tenant, feature, user, workflow,
                tags FROM rows WHERE source = 'litellm' ORDER BY request_id",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok(StoredRow {
            id: r.get(0)?,
            ts_ms: r.get(1)?,
            model: r.get(2)?,
            provider: r.get(3)?,
            tokens: (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?),
            cost_nanos: r.get(8)?,
            callers: [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?],
            tags: r.get(13)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[derive(Debug, PartialEq)]
struct StoredRow {
    id: String,
    ts_ms: i64,
    model: String,
    provider: Option<String>,
    /// input, cached input, cache writes, output
    tokens: (i64, i64, i64, i64),
    cost_nanos: Option<i64>,
    /// tenant, feature, user, workflow
    callers: [Option<String>; 4],
    tags: Option<String>,
}

fn ids(store: &Store) -> Vec<String> {
    stored(store).into_iter().map(|r| r.id).collect()
}

fn postgres_config(config: &Config) -> &spendpager::config::postgres::PostgresSourceConfig {
    match &config.sources[0] {
        SourceConfig::Postgres(c) => c,
        other => panic!("not a postgres source: {other:?}"),
    }
}

/// Five rows in the shapes LiteLLM writes: a team alias with tags and cached reads, a bare
/// team id with cache writes, a tie on startTime, and two rows that cannot be stored.
fn five_rows(pg: &PgCluster) {
    insert(
        pg,
        "r1",
        "2026-05-01 10:00:00.123",
        0.0125,
        (1200, 300),
        &[
            ("\"user\"", "'svc-search'"),
            ("end_user", "'u-17'"),
            ("team_id", "'t-1'"),
            ("model_group", "'gpt-4o'"),
            ("request_tags", "'[\"feature:search\", \"beta\"]'"),
            (
                "metadata",
                r#"'{"user_api_key_team_alias": "acme", "user_api_key_alias": "prod-key",
            "spend_logs_metadata": {"workflow": "nightly"},
            "usage_object": {"prompt_tokens": 1200, "completion_tokens": 300,
                             "prompt_tokens_details": {"cached_tokens": 1000}}}'"#,
            ),
        ],
    );
    insert(
        pg,
        "r2",
        "2026-05-01 10:00:05",
        0.5,
        (2000, 100),
        &[
            ("model", "'claude-3-5-sonnet-20241022'"),
            ("custom_llm_provider", "'anthropic'"),
            ("\"user\"", "'svc'"),
            ("team_id", "'t-2'"),
            (
                "metadata",
                r#"'{"spend_logs_metadata": {"feature": "chat"},
            "usage_object": {"cache_read_input_tokens": 1500, "cache_creation_input_tokens": 300}}'"#,
            ),
        ],
    );
    // Same start as r1, and sorts before it.
    insert(pg, "r0", "2026-05-01 10:00:00.123", 0.001, (10, 20), &[]);
    insert(pg, "r3", "2026-05-01 10:00:06", -1.0, (10, 20), &[]);
    insert(
        pg,
        "r4",
        "2026-05-01 10:00:07",
        0.2,
        (100, 20),
        &[(
            "metadata",
            r#"'{"usage_object": {"cache_read_input_tokens": 5000}}'"#,
        )],
    );
}

#[test]
fn the_first_poll_reads_every_row_exactly_and_the_next_only_new_ones() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    five_rows(&pg);
    let s = Scratch::new();
    let config = pg_config(&s, &pg, &pw, READER, "");
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut src = source::build(&config.sources[0]);

    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates, r.conflicts), (3, 0, 0));
    let aside: Vec<(String, &str)> = r
        .set_aside
        .iter()
        .map(|a| (a.file.clone(), a.reason.as_str()))
        .collect();
    assert_eq!(
        aside,
        [
            (
                format!("{TABLE} request_id=r3"),
                "field `spend`: -1 is negative"
            ),
            (
                format!("{TABLE} request_id=r4"),
                "field `cached_input_tokens`: 5000 is more than input_tokens 100 \
                 (input_tokens counts the whole prompt, cached part included)"
            ),
        ]
    );
    let rows = stored(&store);
    let s_ = |v: &str| Some(v.to_string());
    assert_eq!(
        rows,
        [
            StoredRow {
                id: "r0".into(),
                ts_ms: 1_777_629_600_123,
                model: "gpt-4o".into(),
                provider: s_("openai"),
                tokens: (10, 0, 0, 20),
                cost_nanos: Some(1_000_000),
                callers: [None, None, None, None],
                tags: None,
            },
            StoredRow {
                id: "r1".into(),
                ts_ms: 1_777_629_600_123,
                model: "gpt-4o".into(),
                provider: s_("openai"),
                tokens: (1200, 1000, 0, 300),
                cost_nanos: Some(12_500_000),
                callers: [s_("acme"), s_("search"), s_("u-17"), s_("nightly")],
                tags: s_(
                    r#"{"key_alias":"prod-key","model_group":"gpt-4o","request_tags":"feature:search,beta"}"#
                ),
            },
            StoredRow {
                id: "r2".into(),
                ts_ms: 1_777_629_605_000,
                model: "claude-3-5-sonnet-20241022".into(),
                provider: s_("anthropic"),
                tokens: (2000, 1500, 300, 100),
                cost_nanos: Some(500_000_000),
                callers: [s_("t-2"), s_("chat"), s_("svc"), None],
                tags: None,
            },
        ]
    );

    // Nothing new: nothing read, not even as duplicates.
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates, r.set_aside.len()), (0, 0, 0));

    // The server ends the session between polls (a restart, an idle timeout): the next poll
    // opens a new one and carries on.
    let ended = pg.count(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{READER}'"
    ));
    assert_eq!(ended, 1, "the source keeps one session between polls");
    insert(
        &pg,
        "r5",
        "2026-05-01 10:01:00",
        0.75,
        (100, 10),
        &[("team_id", "'t-9'")],
    );
    insert(&pg, "r6", "2026-05-01 10:02:00", 0.25, (100, 10), &[]);
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates, r.set_aside.len()), (2, 0, 0));
    assert_eq!(ids(&store), ["r0", "r1", "r2", "r5", "r6"]);
    assert_eq!(rollup_spend(&store, Some("t-9")), 750_000_000);
}

#[test]
fn the_table_reads_exactly_as_ingest_format_litellm_reads_its_export() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    five_rows(&pg);
    let s = Scratch::new();
    let config = pg_config(&s, &pg, &pw, READER, "");
    let mut store = s.store();
    let prices = PriceTable::bundled();
    source::build(&config.sources[0])
        .poll(&mut store, &prices)
        .unwrap();

    // The same table exported whole (every column) as JSON lines, through `ingest --format`.
    let rows = pg
        .runtime()
        .block_on(async {
            let c = spendpager::source::postgres::connect(postgres_config(&config)).await?;
            Ok::<_, anyhow::Error>(
                c.query(
                    &format!("SELECT row_to_json(t)::text FROM {TABLE} t ORDER BY request_id"),
                    &[],
                )
                .await?,
            )
        })
        .unwrap();
    let export: String = rows
        .iter()
        .map(|r| format!("{}\n", r.get::<_, String>(0)))
        .collect();
    let export_file = s.write("export.jsonl", &export);
    let other = Scratch::new();
    let mut other_store = other.store();
    let report = spendpager::source::formats::ingest_once(
        &mut other_store,
        &prices,
        "litellm",
        spendpager::source::formats::Format::Litellm,
        &spendpager::source::mapping::Mapping::default(),
        path_str(&export_file),
    )
    .unwrap();
    assert_eq!((report.stored, report.set_aside.len()), (3, 2));
    assert_eq!(stored(&store), stored(&other_store));
    assert_eq!(stored(&store).len(), 3);
}

#[test]
fn a_late_row_inside_the_overlap_is_read_once_and_one_behind_it_is_missed() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    let s = Scratch::new();
    let config = pg_config(&s, &pg, &pw, READER, "    schema: public\n    overlap: 10m");
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut src = source::build(&config.sources[0]);
    insert(&pg, "a", "2026-05-01 10:00:00", 1.0, (1, 1), &[]);
    insert(&pg, "b", "2026-05-01 10:05:00", 1.0, (1, 1), &[]);
    assert_eq!(src.poll(&mut store, &prices).unwrap().stored, 2);

    // LiteLLM flushes its queue: rows that started before the newest one read.
    insert(&pg, "late-inside", "2026-05-01 09:58:00", 2.0, (1, 1), &[]);
    insert(&pg, "late-outside", "2026-05-01 09:50:00", 4.0, (1, 1), &[]);
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates), (1, 0));
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!(
        (r.stored, r.duplicates),
        (0, 0),
        "read once, not on every poll"
    );
    assert_eq!(ids(&store), ["a", "b", "late-inside"]);
    assert_eq!(row_cost(&store, "late-inside"), Some(2_000_000_000));

    // A fresh process does not know what the last one read: the window comes back as
    // duplicates, and nothing is stored twice.
    drop(src);
    let mut again = source::build(&config.sources[0]);
    let r = again.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates), (0, 3));
    assert_eq!(ids(&store), ["a", "b", "late-inside"]);
}

#[test]
fn a_restarted_poller_resumes_from_the_saved_cursor_across_batches_and_ties() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    // 12,001 rows on three start times, so batches of 5,000 end inside a run of equal times.
    pg.exec(&format!(
        "INSERT INTO {TABLE} (request_id, call_type, spend, prompt_tokens, completion_tokens,
            \"startTime\", \"endTime\", model, team_id)
         SELECT 'bulk-' || lpad(g::text, 6, '0'), 'acompletion', 0.001, 10, 5,
            timestamp '2026-05-01 10:00:00' + (g / 5000) * interval '1 second',
            timestamp '2026-05-01 10:00:09', 'gpt-4o', 't-' || (g % 3)
         FROM generate_series(1, 12001) AS g"
    ));
    let s = Scratch::new();
    let config = pg_config(&s, &pg, &pw, READER, "    overlap: 0s");
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut first = source::build(&config.sources[0]);
    let r = first.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates), (12_001, 0));
    let total: i64 = ["t-0", "t-1", "t-2"]
        .iter()
        .map(|t| rollup_spend(&store, Some(t)))
        .sum();
    assert_eq!(total, 12_001_000_000);
    // The cursor is the last key read: 2 s after 10:00:00, and the last id.
    assert_eq!(
        store.cursor("litellm", "keyset").unwrap().as_deref(),
        Some("[1777629602000000,\"bulk-012001\"]")
    );
    drop(first);

    insert(
        &pg,
        "after-restart-1",
        "2026-05-01 10:00:03",
        0.5,
        (1, 1),
        &[],
    );
    insert(
        &pg,
        "after-restart-2",
        "2026-05-01 10:00:04",
        0.5,
        (1, 1),
        &[],
    );
    let mut second = source::build(&config.sources[0]);
    let r = second.poll(&mut store, &prices).unwrap();
    assert_eq!(
        (r.stored, r.duplicates),
        (2, 0),
        "only the rows after the cursor"
    );
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM rows WHERE source = 'litellm'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, pg.count(&format!("SELECT count(*) FROM {TABLE}")));
    assert_eq!(n, 12_003);
}

#[test]
fn the_reader_role_cannot_write_and_the_session_is_read_only_whatever_the_grants() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    let insert_sql = format!(
        "INSERT INTO {TABLE} (request_id, call_type, \"startTime\", \"endTime\")
         VALUES ('w', 'acompletion', now(), now())"
    );
    let e = pg.exec_as(READER, &pw, &insert_sql).unwrap_err();
    assert!(
        e.contains("permission denied for table LiteLLM_SpendLogs"),
        "{e}"
    );

    // A role granted too much: the source's own session still refuses to write.
    let careless = fresh_password();
    pg.exec(&format!(
        "CREATE ROLE careless LOGIN PASSWORD '{careless}';
         GRANT SELECT, INSERT ON {TABLE} TO careless;"
    ));
    let s = Scratch::new();
    let config = pg_config(&s, &pg, &careless, "careless", "");
    let (mode, write) = pg.runtime().block_on(async {
        let c = spendpager::source::postgres::connect(postgres_config(&config))
            .await
            .unwrap();
        let mode: String = c
            .query_one("SHOW default_transaction_read_only", &[])
            .await
            .unwrap()
            .get(0);
        (mode, c.batch_execute(&insert_sql).await)
    });
    assert_eq!(mode, "on");
    let e = write.unwrap_err();
    assert_eq!(
        db_message(&e),
        "cannot execute INSERT in a read-only transaction"
    );
    assert_eq!(pg.count(&format!("SELECT count(*) FROM {TABLE}")), 0);
}

#[test]
fn a_wrong_password_is_a_clear_error_without_the_password_and_a_fixed_grant_is_retried() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    insert(&pg, "r1", "2026-05-01 10:00:00", 0.5, (1, 1), &[]);
    let s = Scratch::new();
    let wrong = format!("{pw}-wrong");
    let config = pg_config(&s, &pg, &wrong, READER, "");
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut src = source::build(&config.sources[0]);
    let e = format!("{:#}", src.poll(&mut store, &prices).unwrap_err());
    assert_eq!(
        e,
        format!(
            "source litellm: postgres 127.0.0.1:{} database {DB} as {READER}: db error: \
             FATAL: password authentication failed for user \"{READER}\"",
            pg.port
        )
    );
    assert!(!e.contains(&pw));

    // A role that may log in but not yet read: refused, then read once granted, by the
    // same source object on its next poll.
    let other = fresh_password();
    pg.exec(&format!("CREATE ROLE newcomer LOGIN PASSWORD '{other}'"));
    let s2 = Scratch::new();
    let config = pg_config(&s2, &pg, &other, "newcomer", "");
    let mut store = s2.store();
    let mut src = source::build(&config.sources[0]);
    let e = format!("{:#}", src.poll(&mut store, &prices).unwrap_err());
    assert!(
        e.contains("permission denied for table LiteLLM_SpendLogs"),
        "{e}"
    );
    assert!(e.starts_with("source litellm: postgres 127.0.0.1:"), "{e}");
    pg.exec(&format!("GRANT SELECT ON {TABLE} TO newcomer"));
    assert_eq!(src.poll(&mut store, &prices).unwrap().stored, 1);
}

#[test]
fn a_postgres_source_names_the_field_at_fault() {
    let s = Scratch::new();
    s.write(
        "config.yaml",
        "sources:
  - name: a
    kind: postgres
  - name: b
    kind: postgres
    path: ./x.db
    connection: { host: 127.0.0.1, dbname: litellm, user: ro, password_env: SPENDPAGER_TEST_UNSET_PW }
  - name: c
    kind: jsonl
    path: ./x.jsonl
    overlap: 5m
channels: { out: { kind: console } }
",
    );
    let errors = Config::load(&s.path("config.yaml")).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let want = [
        "sources[a].connection: is required for kind postgres",
        "sources[b].path: is not a key of kind postgres",
        "sources[b].connection.password_env: environment variable SPENDPAGER_TEST_UNSET_PW is not set",
        "sources[c].overlap: is only for kind postgres",
    ];
    for w in want {
        assert!(text.iter().any(|t| t.contains(w)), "`{w}` in {text:#?}");
    }
    assert!(text.iter().all(|t| t.contains("config.yaml:")), "{text:#?}");
}

#[test]
fn the_daemon_tails_the_table_pages_the_tenant_and_keeps_polling_through_a_refused_login() {
    let pw = fresh_password();
    let pg = PgCluster::start();
    pg.exec(include_str!("fixtures/postgres/litellm_spend_logs.sql"));
    let receiver = Receiver::start(vec![], None);
    let s = Scratch::new();
    let url = s.write("hook-url", &receiver.url);
    s.write(
        "config.yaml",
        &format!(
            "store: ./store.db
schedule: \"* * * * * *\"
delay: 0s
poll_interval: 1s
sources:
  - name: litellm
    kind: postgres
    connection: {{ host: 127.0.0.1, port: {port}, dbname: {DB}, user: {READER},
                  password_env: SPENDPAGER_TEST_PG_PASSWORD, tls: disable }}
channels:
  hook: {{ kind: webhook, url_file: {url} }}
rules:
  - name: tenant-cap
    kind: threshold
    group_by: [tenant]
    window: 5m
    limit_usd: 10
    channels: [hook]
",
            port = pg.port,
            url = url.display()
        ),
    );
    // The daemon starts before its role exists: its polls are refused, and it carries on.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spendpager"))
        .args(["run", "--config"])
        .arg(s.path("config.yaml"))
        .env("RUST_LOG", "info")
        .env("SPENDPAGER_TEST_PG_PASSWORD", &pw)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    pg.reader(READER, &pw, TABLE);

    // Three calls of team acme, two minutes ago (windows are made of closed minutes).
    for i in 0..3 {
        pg.exec(&format!(
            "INSERT INTO {TABLE} (request_id, call_type, spend, prompt_tokens, completion_tokens,
                \"startTime\", \"endTime\", model, team_id, metadata)
             VALUES ('d{i}', 'acompletion', 4.0, 1000, 100,
                now() AT TIME ZONE 'UTC' - interval '2 minutes',
                now() AT TIME ZONE 'UTC' - interval '2 minutes', 'gpt-4o', 'team-uuid-1',
                '{{\"user_api_key_team_alias\": \"acme\"}}')"
        ));
    }
    let got = receiver.wait_for(1, std::time::Duration::from_secs(30));
    assert_eq!(got.len(), 1, "the daemon paged once");
    let alert = got[0].json();
    assert_eq!(alert["labels"]["tenant"], "acme");
    assert_eq!(alert["observed_usd"], 12.0);

    // `sources` shows the table's rows and their lag while the daemon runs.
    let out = s.run(&["sources", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let src = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "litellm")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(src["rows"], 3);
    let lag = src["lag_s"].as_i64().unwrap();
    assert!((100..600).contains(&lag), "lag {lag}s");

    // A reload replaces the source (the old one is dropped on the daemon's async side); the
    // new one carries on from the saved cursor.
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    signal("-HUP");
    pg.exec(&format!(
        "INSERT INTO {TABLE} (request_id, call_type, spend, \"startTime\", \"endTime\", model)
         VALUES ('d3', 'acompletion', 1.0, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC',
            'gpt-4o')"
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = s.run(&["sources", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let rows = v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "litellm")
            .map(|x| x["rows"].clone());
        if rows == Some(serde_json::json!(4)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "after reload: {v}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "still running after reload"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("source poll failed"), "{err}");
    assert!(
        err.contains(&format!(
            "password authentication failed for user \"{READER}\""
        )),
        "{err}"
    );
    assert!(!err.contains(&pw), "the password never reaches the log");
    assert!(err.contains("configuration reloaded"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        receiver.received().len(),
        1,
        "one page: the alert stayed firing"
    );
}

/// A throwaway certificate authority and a server certificate for 127.0.0.1 made by it.
fn test_certificates(dir: &std::path::Path) {
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.crt -days 2 -subj '/CN=spendpager test CA' 2>&1",
    );
    sh(
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj '/CN=127.0.0.1' 2>&1 &&
        printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > server.ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out server.crt -days 2 -extfile server.ext 2>&1",
    );
}

#[test]
fn tls_require_checks_the_servers_certificate_against_the_ca_file() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    insert(&pg, "r1", "2026-05-01 10:00:00", 0.5, (1, 1), &[]);
    let s = Scratch::new();
    test_certificates(s.dir.path());
    let yaml = |tls: &str| {
        format!(
            "store: ./store.db
sources:
  - name: litellm
    kind: postgres
    connection: {{ host: 127.0.0.1, port: {}, dbname: {DB}, user: {READER},
                  password_file: ./pg-password, {tls} }}
channels: {{ out: {{ kind: console }} }}
",
            pg.port
        )
    };
    s.write("pg-password", &pw);
    let prices = PriceTable::bundled();
    let mut store = s.store();
    let poll = |tls: &str, store: &mut Store| {
        let config = s.config(&yaml(tls));
        source::build(&config.sources[0]).poll(store, &prices)
    };

    // The server does not offer TLS yet: `require` refuses to go on in the clear.
    let e = format!(
        "{:#}",
        poll("tls: require, ca_file: ./ca.crt", &mut store).unwrap_err()
    );
    assert!(e.contains("server does not support TLS"), "{e}");

    pg.write_private("server.crt", &std::fs::read(s.path("server.crt")).unwrap());
    pg.write_private("server.key", &std::fs::read(s.path("server.key")).unwrap());
    for sql in [
        "ALTER SYSTEM SET ssl_cert_file = 'server.crt'",
        "ALTER SYSTEM SET ssl_key_file = 'server.key'",
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
    ] {
        pg.exec(sql);
    }
    // The postmaster has reloaded once a backend sees the new setting.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pg.count("SELECT (current_setting('ssl') = 'on')::int::bigint") != 1 {
        assert!(std::time::Instant::now() < deadline, "ssl did not turn on");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // Not signed by an authority the system trusts.
    let e = format!("{:#}", poll("tls: require", &mut store).unwrap_err());
    assert!(
        e.ends_with("error performing TLS handshake: invalid peer certificate: UnknownIssuer"),
        "{e}"
    );

    let r = poll("tls: require, ca_file: ./ca.crt", &mut store).unwrap();
    assert_eq!(r.stored, 1);
    let config = s.config(&yaml("tls: require, ca_file: ./ca.crt"));
    let encrypted: bool = pg.runtime().block_on(async {
        let c = spendpager::source::postgres::connect(postgres_config(&config))
            .await
            .unwrap();
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
    });
    assert!(encrypted, "the session is encrypted");
}

#[test]
fn an_older_table_with_fewer_columns_and_a_zoned_start_in_its_own_schema_reads_too() {
    let pw = fresh_password();
    let pg = PgCluster::start();
    // The shape of LiteLLM's first spend-log table, with `timestamptz` as a hand-made copy
    // might have it, in a schema of its own.
    pg.exec(&format!(
        "CREATE SCHEMA proxy;
         CREATE TABLE proxy.{TABLE} (
            request_id TEXT PRIMARY KEY, call_type TEXT NOT NULL,
            spend DOUBLE PRECISION NOT NULL DEFAULT 0.0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
            \"startTime\" TIMESTAMPTZ NOT NULL, model TEXT NOT NULL DEFAULT '',
            \"user\" TEXT NOT NULL DEFAULT '', metadata JSONB NOT NULL DEFAULT '{{}}',
            request_tags JSONB NOT NULL DEFAULT '[]');
         CREATE ROLE {READER} LOGIN PASSWORD '{pw}';
         GRANT USAGE ON SCHEMA proxy TO {READER};
         GRANT SELECT ON proxy.{TABLE} TO {READER};
         SET TimeZone = 'Asia/Tokyo';
         INSERT INTO proxy.{TABLE} VALUES
            ('o1', 'acompletion', 0.3, 10, 5, '2026-05-01 12:00:00.5+02', 'gpt-4o', 'alice',
             '{{}}', '[\"feature:chat\"]'),
            ('o2', 'acompletion', 0.7, 10, 5, '2026-05-01 10:00:00.5+00', 'gpt-4o', '',
             '{{\"user_api_key_team_id\": \"t-7\"}}', '[]');"
    ));
    let s = Scratch::new();
    let config = pg_config(&s, &pg, &pw, READER, "    schema: proxy");
    let mut store = s.store();
    let prices = PriceTable::bundled();
    let mut src = source::build(&config.sources[0]);
    assert_eq!(src.poll(&mut store, &prices).unwrap().stored, 2);
    let rows = stored(&store);
    assert_eq!(
        rows.iter()
            .map(|r| (r.id.as_str(), r.ts_ms, r.cost_nanos, r.callers.clone()))
            .collect::<Vec<_>>(),
        [
            (
                "o1",
                1_777_629_600_500,
                Some(300_000_000),
                [None, Some("chat".into()), Some("alice".into()), None]
            ),
            (
                "o2",
                1_777_629_600_500,
                Some(700_000_000),
                [Some("t-7".into()), None, None, None]
            ),
        ]
    );
    // The same instant as the cursor but an id sorting before it: behind the keyset, and
    // found by the overlap.
    pg.exec(&format!(
        "INSERT INTO proxy.{TABLE} (request_id, call_type, spend, \"startTime\", model)
         VALUES ('o0', 'acompletion', 0.1, '2026-05-01 10:00:00.5Z', 'gpt-4o')"
    ));
    let r = src.poll(&mut store, &prices).unwrap();
    assert_eq!((r.stored, r.duplicates), (1, 0));
    assert_eq!(ids(&store), ["o0", "o1", "o2"]);
}

#[test]
fn a_postgres_source_maps_its_callers_from_the_places_the_config_names() {
    let pw = fresh_password();
    let pg = litellm_cluster(&pw);
    five_rows(&pg);
    let s = Scratch::new();
    // Tenant from the team id (not the team alias), feature from a request tag, workflow from
    // a metadata path that only r1 has; user keeps its default.
    let config = pg_config(
        &s,
        &pg,
        &pw,
        READER,
        "    attribution:\n      tenant: team_id\n      feature: tag:feature\n      workflow: metadata.spend_logs_metadata.workflow",
    );
    let mut store = s.store();
    let mut src = source::build(&config.sources[0]);
    let r = src.poll(&mut store, &PriceTable::bundled()).unwrap();
    assert_eq!(r.stored, 3);
    let callers: Vec<(String, [Option<String>; 4])> = stored(&store)
        .into_iter()
        .map(|r| (r.id, r.callers))
        .collect();
    let s_ = |v: &str| Some(v.to_string());
    assert_eq!(
        callers,
        [
            ("r0".to_string(), [None, None, None, None]),
            (
                "r1".to_string(),
                [s_("t-1"), s_("search"), s_("u-17"), s_("nightly")]
            ),
            ("r2".to_string(), [s_("t-2"), None, s_("svc"), None]),
        ]
    );
    // A sqlite table maps its columns instead, and says so.
    let bad = s.write(
        "bad.yaml",
        "sources:\n  - name: app\n    kind: sqlite_table\n    path: ./app.db\n    table: calls\n    attribution: { tenant: team_id }\n",
    );
    let err = Config::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("sources[app].attribution: is only for kinds jsonl and postgres"),
        "{err}"
    );
}
