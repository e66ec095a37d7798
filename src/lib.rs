//! spendpager pages someone when LLM spend spikes, and names who caused it.
//!
//! Data moves one way, and each stage is a module:
//!
//! ```text
//!  source ──► store ──► evaluate ──► alert ──► notify (outbox) ──► channels
//!  (poll,     (SQLite:   (baselines,   (one state   (durable queue,   (console, webhook,
//!   parse,     rows,      decisions,    per rule     retries)          Slack, email,
//!   price)     rollups,   explanation)  and series)                    PagerDuty, ntfy,
//!              cursors)                                                Alertmanager)
//! ```
//!
//! - [`row`]: the cost row and its validation; [`money`]: exact dollar amounts;
//!   [`price`]: the price table and model-name resolution.
//! - [`source`]: JSON-lines files and application SQLite tables, all ending in cost rows.
//! - [`store`]: schema and migrations, the ingest transaction, rollups, queries, the alert
//!   book's and the outbox's tables.
//! - [`evaluate`]: pure functions from spend to decisions and explanations.
//! - [`alert`]: the alert book (fire once, repeat, resolve once) and the alert JSON.
//! - [`notify`]: channels, the shared HTTP rule, and delivery from the outbox.
//! - [`cycle`]: one evaluation cycle, shared by the daemon, `evaluate` and the backtest.
//! - [`daemon`], [`backtest`] (with NAB and labelled scoring), [`demo`]: the ways of running
//!   cycles; [`cli`] the commands; [`status`] what `spendpager status` shows.
//! - [`config`]: the typed configuration, validated once; [`schedule`]: cron in a zone;
//!   [`secret`]: values that never print.
//! - [`observe`]: the daemon's own metrics, `/metrics` and `/healthz`, and its heartbeat;
//!   [`retention`]: the compaction schedule over the store; [`bench`]: `spendpager bench`.

pub mod alert;
pub mod backtest;
pub mod bench;
pub mod cli;
pub mod config;
pub mod cycle;
pub mod daemon;
pub mod demo;
pub mod evaluate;
pub mod money;
pub mod notify;
pub mod observe;
pub mod price;
pub mod retention;
pub mod row;
pub mod schedule;
pub mod secret;
pub mod source;
pub mod status;
pub mod store;
