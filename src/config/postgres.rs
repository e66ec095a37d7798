//! The `postgres` source kind: LiteLLM's spend-log table in PostgreSQL. Its connection is a
//! nested `connection:` map so that the keys of the other kinds stay flat and few; the
//! password is a secret read like a channel's (`password_env`, `password_file` or
//! `password_credential`) and never written in the YAML.

use super::channel::SecretKeys;
use super::raw::RawSource;
use super::units::Dur;
use super::{Problems, SourceConfig};
use crate::secret::Secret;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// LiteLLM's table, as its Prisma schema names it (mixed case, so always quoted).
pub const DEFAULT_TABLE: &str = "LiteLLM_SpendLogs";

/// How far behind the cursor each poll looks again for rows written late.
pub const DEFAULT_OVERLAP: Dur = Dur::minutes(15);

/// `connection:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnection {
    pub host: String,
    pub port: Option<u16>,
    pub dbname: String,
    pub user: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_credential: Option<String>,
    pub tls: Option<PgTls>,
    /// PEM file of the certificate authorities to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Option<Dur>,
}

/// Whether the connection is encrypted.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PgTls {
    /// TLS with the server's certificate checked; refused if the server does not offer it.
    Require,
    /// No encryption: rows cross the wire in the clear (SCRAM keeps the password itself safe).
    Disable,
}

/// A validated `postgres` source.
#[derive(Clone, Debug)]
pub struct PostgresSourceConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<Secret>,
    pub tls: PgTls,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Dur,
    pub schema: Option<String>,
    pub table: String,
    /// Rows up to this far before the cursor are looked at again on every poll.
    pub overlap: Dur,
    /// Where tenant, feature, user and workflow come from, over the `litellm` defaults.
    pub mapping: crate::source::mapping::Mapping,
}

/// Keys the other kinds take and a `postgres` source refuses.
fn foreign_keys(raw: &RawSource) -> [(bool, &'static str); 4] {
    [
        (!raw.path.is_empty(), "path"),
        (raw.cursor.is_some(), "cursor"),
        (!raw.columns.is_empty(), "columns"),
        (raw.ts_format.is_some(), "ts_format"),
    ]
}

pub(super) fn validate(
    s: &Spanned<RawSource>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<SourceConfig> {
    let raw = &s.value;
    let field = |f: &str| format!("sources[{}].{f}", raw.name);
    for (set, key) in foreign_keys(raw) {
        if set {
            p.at(s, field(key), "is not a key of kind postgres");
        }
    }
    let Some(c) = &raw.connection else {
        p.at(
            s,
            field("connection"),
            "is required for kind postgres (host, dbname, user and a password key)",
        );
        return None;
    };
    let keys = SecretKeys {
        stem: "password",
        env: c.password_env.as_ref(),
        file: c.password_file.as_ref(),
        credential: c.password_credential.as_ref(),
    };
    let password = match keys.read(resolve) {
        Ok(pw) => pw,
        Err((key, m)) => {
            p.at(s, field(&format!("connection.{key}")), m);
            return None;
        }
    };
    for (value, key) in [(&c.host, "host"), (&c.dbname, "dbname"), (&c.user, "user")] {
        if value.trim().is_empty() {
            p.at(s, field(&format!("connection.{key}")), "must not be empty");
        }
    }
    let table = raw.table.clone().unwrap_or_else(|| DEFAULT_TABLE.into());
    let overlap = raw.overlap.unwrap_or(DEFAULT_OVERLAP);
    if overlap.seconds() < 0 {
        p.at(s, field("overlap"), "must not be negative");
    }
    let tls = c.tls.unwrap_or(PgTls::Require);
    if c.ca_file.is_some() && tls == PgTls::Disable {
        p.at(
            s,
            field("connection.ca_file"),
            "is only used with tls: require",
        );
    }
    let mapping = match &raw.attribution {
        Some(a) => super::attribution::validate(
            a,
            crate::source::formats::Format::Litellm,
            &format!("sources[{}]", raw.name),
            p,
        ),
        None => Default::default(),
    };
    Some(SourceConfig::Postgres(Box::new(PostgresSourceConfig {
        name: raw.name.clone(),
        host: c.host.clone(),
        port: c.port.unwrap_or(5432),
        dbname: c.dbname.clone(),
        user: c.user.clone(),
        password,
        tls,
        ca_file: c.ca_file.as_ref().map(|f| resolve(f)),
        connect_timeout: c.connect_timeout.unwrap_or(Dur(10)),
        schema: raw.schema.clone(),
        table,
        overlap,
        mapping,
    })))
}
