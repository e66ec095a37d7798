//! The schema, as a list of migrations. The store's `user_version` says how many have been
//! applied; opening a store applies the rest in one transaction.

/// Each entry moves the schema one version forward. Never edit a shipped entry: add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: rows, rollups, cursors, set-aside rows, alert book, outbox.
    r#"
    CREATE TABLE rows (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        -- `id:<request id>` or, for rows without one, `pos:<digest of content and position>`
        row_key TEXT NOT NULL,
        digest BLOB NOT NULL,
        ts_ms INTEGER NOT NULL,
        provider TEXT,
        model TEXT NOT NULL,
        request_id TEXT,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        -- nano-dollars; NULL when neither the source nor the price table gave a cost
        cost_nanos INTEGER,
        -- 0 given by the source, 1 from the price table, 2 unknown
        cost_basis INTEGER NOT NULL,
        tenant TEXT,
        feature TEXT,
        user TEXT,
        workflow TEXT,
        tags TEXT,
        UNIQUE (source, row_key)
    );
    CREATE INDEX rows_by_time ON rows (ts_ms);

    -- One row per distinct combination of dimension values; '' stands for absent.
    CREATE TABLE combos (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        feature TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        user TEXT NOT NULL,
        workflow TEXT NOT NULL,
        first_minute INTEGER NOT NULL,
        last_minute INTEGER NOT NULL,
        UNIQUE (tenant, feature, model, provider, user, workflow)
    );

    -- Minute rollups, kept in the ingest transaction; evaluation reads only these.
    CREATE TABLE rollup_minute (
        minute INTEGER NOT NULL,
        combo INTEGER NOT NULL REFERENCES combos (id),
        rows INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_nanos INTEGER NOT NULL,
        unpriced_rows INTEGER NOT NULL,
        PRIMARY KEY (minute, combo)
    ) WITHOUT ROWID;

    -- Each source's read position, saved in the transaction that stores what it read.
    CREATE TABLE cursors (
        source TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (source, key)
    );

    -- Rows that were not stored, with why: malformed rows and conflicting duplicates.
    CREATE TABLE set_aside (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        source TEXT NOT NULL,
        location TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL
    );

    -- The alert book: one state per rule and series.
    CREATE TABLE alerts (
        dedup_key TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        series TEXT NOT NULL,
        state TEXT NOT NULL,
        since_ms INTEGER NOT NULL,
        pending_since_ms INTEGER,
        -- the last cycle whose condition held, for keep_firing_for
        last_true_ms INTEGER,
        last_sent_ms INTEGER,
        last_status TEXT,
        updated_ms INTEGER NOT NULL,
        last_alert TEXT
    );

    -- Notifications waiting for their channel, written with the state change that made them.
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        last_error TEXT
    );

    -- Notifications a channel refused for good, kept for `status` and for a human.
    CREATE TABLE failed_deliveries (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        status TEXT NOT NULL,
        payload TEXT NOT NULL,
        failed_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT NOT NULL
    );

    CREATE TABLE evaluations (
        at_ms INTEGER PRIMARY KEY,
        finished_ms INTEGER NOT NULL,
        notifications INTEGER NOT NULL
    );
    "#,
    // 2: silences, and what holds an alert's pages back.
    r#"
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        -- JSON list of {key, value, negate}
        matchers TEXT NOT NULL,
        starts_ms INTEGER NOT NULL,
        ends_ms INTEGER NOT NULL,
        comment TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expired_ms INTEGER
    );
    ALTER TABLE alerts ADD COLUMN held_by TEXT;
    "#,
    // 3: a row set aside again when its file is read again is recorded once.
    r#"
    DELETE FROM set_aside WHERE id NOT IN
        (SELECT min(id) FROM set_aside GROUP BY source, location, kind, reason);
    CREATE UNIQUE INDEX set_aside_once ON set_aside (source, location, kind, reason);
    "#,
    // 4: hourly rollups for minutes past retention, and how far retention has gone.
    r#"
    -- Minute rollups older than the minute retention, folded into their hours.
    CREATE TABLE rollup_hour (
        -- the hour's first minute, in minutes since the epoch
        hour INTEGER NOT NULL,
        combo INTEGER NOT NULL REFERENCES combos (id),
        rows INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        cached_input_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_nanos INTEGER NOT NULL,
        unpriced_rows INTEGER NOT NULL,
        PRIMARY KEY (hour, combo)
    ) WITHOUT ROWID;

    -- `minute`: minutes before `before` (minutes since the epoch) live in rollup_hour;
    -- `raw`: rows before `before` (milliseconds) were deleted; `hour`: hours before `before`
    -- (minutes) were deleted.
    CREATE TABLE retention_marks (
        kind TEXT PRIMARY KEY,
        before INTEGER NOT NULL
    );
    "#,
    // 5: each raw row names its rollup combination, so an alert's evidence (sample request
    // ids, the chart) is read from its series' rows in its window alone, through an index,
    // instead of from every row in the window. No foreign key: a check per stored row would
    // cost more than it guards (ingest sets it from the id it just resolved).
    r#"
    ALTER TABLE rows ADD COLUMN combo INTEGER;
    UPDATE rows SET combo = (
        SELECT c.id FROM combos c
        WHERE c.tenant = coalesce(rows.tenant, '') AND c.feature = coalesce(rows.feature, '')
            AND c.model = rows.model AND c.provider = coalesce(rows.provider, '')
            AND c.user = coalesce(rows.user, '') AND c.workflow = coalesce(rows.workflow, ''));
    CREATE INDEX rows_by_combo ON rows (combo, ts_ms);
    "#,
];
