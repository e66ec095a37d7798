//! Validation of one `channels:` entry: which keys its kind takes, where its secrets come
//! from, and the typed [`ChannelKind`] it becomes.

use super::raw::{ChannelKindName, RawChannel, SmtpTls};
use super::units::Dur;
use super::{ChannelConfig, ChannelKind, EmailConfig, Problems};
use crate::secret::Secret;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// Where PagerDuty's Events API v2 takes events, unless `url` says otherwise.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The keys every kind takes.
const COMMON: &[&str] = &["kind", "timeout", "send_resolved", "group", "min_interval"];

fn allowed(kind: ChannelKindName) -> &'static [&'static str] {
    match kind {
        ChannelKindName::Console => &[],
        ChannelKindName::Slack => &["url_env", "url_file", "url_credential"],
        ChannelKindName::Webhook => &[
            "url_env",
            "url_file",
            "url_credential",
            "secret_env",
            "secret_file",
            "secret_credential",
        ],
        ChannelKindName::Pagerduty => &[
            "url",
            "routing_key_env",
            "routing_key_file",
            "routing_key_credential",
        ],
        ChannelKindName::Ntfy => &[
            "url_env",
            "url_file",
            "url_credential",
            "token_env",
            "token_file",
        ],
        ChannelKindName::Alertmanager => &["url", "url_env", "url_file", "url_credential"],
        ChannelKindName::Email => &[
            "host",
            "port",
            "tls",
            "username_env",
            "username_file",
            "password_env",
            "password_file",
            "password_credential",
            "from",
            "to",
        ],
    }
}

/// The optional keys that are set, by name.
fn set_keys(raw: &RawChannel) -> Vec<&'static str> {
    let flags = [
        ("url_env", raw.url_env.is_some()),
        ("url_file", raw.url_file.is_some()),
        ("url_credential", raw.url_credential.is_some()),
        ("url", raw.url.is_some()),
        ("secret_env", raw.secret_env.is_some()),
        ("secret_file", raw.secret_file.is_some()),
        ("secret_credential", raw.secret_credential.is_some()),
        ("routing_key_env", raw.routing_key_env.is_some()),
        ("routing_key_file", raw.routing_key_file.is_some()),
        (
            "routing_key_credential",
            raw.routing_key_credential.is_some(),
        ),
        ("token_env", raw.token_env.is_some()),
        ("token_file", raw.token_file.is_some()),
        ("host", raw.host.is_some()),
        ("port", raw.port.is_some()),
        ("tls", raw.tls.is_some()),
        ("username_env", raw.username_env.is_some()),
        ("username_file", raw.username_file.is_some()),
        ("password_env", raw.password_env.is_some()),
        ("password_file", raw.password_file.is_some()),
        ("password_credential", raw.password_credential.is_some()),
        ("from", raw.from.is_some()),
        ("to", raw.to.is_some()),
    ];
    flags
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| k)
        .collect()
}

/// One secret given as `<stem>_env`, `<stem>_file` or `<stem>_credential` (at most one).
#[derive(Clone, Copy)]
pub(super) struct SecretKeys<'a> {
    pub stem: &'static str,
    pub env: Option<&'a String>,
    pub file: Option<&'a PathBuf>,
    pub credential: Option<&'a String>,
}

/// Set by commands that never deliver (`ingest`, `status`, `silence`, `backtest`, `db`): a
/// channel secret that cannot be read then does not stop them, since nothing will be sent. It
/// stands in as an address that can never resolve.
pub static SECRETS_OPTIONAL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// What stands in for an unread secret when secrets are optional.
pub const UNREAD_SECRET: &str = "http://secret-not-read.invalid/";

impl SecretKeys<'_> {
    /// The secret, `Ok(None)` when none of the keys is given, or the problem and the key at
    /// fault.
    pub(super) fn read(
        &self,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<Option<Secret>, (String, String)> {
        let optional = SECRETS_OPTIONAL.load(std::sync::atomic::Ordering::Relaxed);
        let unread = |r: Result<Option<Secret>, (String, String)>| match r {
            Err(_) if optional => Ok(Some(Secret::new(UNREAD_SECRET))),
            other => other,
        };
        let key = |suffix: &str| format!("{}_{suffix}", self.stem);
        match (self.env, self.file, self.credential) {
            (None, None, None) => Ok(None),
            (Some(env), None, None) => {
                unread(Secret::from_env(env).map(Some).map_err(|m| (key("env"), m)))
            }
            (None, Some(file), None) => unread(
                Secret::from_file(&resolve(file))
                    .map(Some)
                    .map_err(|m| (key("file"), m)),
            ),
            (None, None, Some(cred)) => unread(
                Secret::from_credential(cred)
                    .map(Some)
                    .map_err(|m| (key("credential"), m)),
            ),
            _ => Err((
                key("env"),
                format!(
                    "give only one of {}, {} and {}",
                    key("env"),
                    key("file"),
                    key("credential")
                ),
            )),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An http(s) URL that parses, with a host and a valid port. Checked here, so that a
/// broken URL fails `rules check` instead of being retried at 3am.
fn http_url(value: &str) -> bool {
    (value.starts_with("http://") || value.starts_with("https://"))
        && !value.contains(char::is_whitespace)
        && reqwest::Url::parse(value).is_ok_and(|u| u.host_str().is_some_and(|h| !h.is_empty()))
}

/// Validates one channel entry; problems are recorded and `None` returned.
pub(super) fn validate(
    name: &str,
    c: &Spanned<RawChannel>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<ChannelConfig> {
    let raw = &c.value;
    let field = |f: &str| format!("channels.{name}.{f}");
    let kind_name = format!("{:?}", raw.kind).to_lowercase();

    let mut ok = true;
    let allowed = allowed(raw.kind);
    for key in set_keys(raw) {
        if !allowed.contains(&key) && !COMMON.contains(&key) {
            p.at(
                c,
                field(key),
                format!("`{key}` does not apply to a {kind_name} channel"),
            );
            ok = false;
        }
    }
    if raw.kind == ChannelKindName::Pagerduty && raw.group == Some(true) {
        p.at(
            c,
            field("group"),
            "a PagerDuty incident is one series: this channel cannot group",
        );
        ok = false;
    }
    if !ok {
        return None;
    }

    // Reads a secret, recording its problem; `Err(())` means one was recorded.
    let secret = |keys: SecretKeys<'_>, p: &mut Problems<'_>| match keys.read(resolve) {
        Ok(s) => Ok(s),
        Err((key, m)) => {
            p.at(c, field(&key), m);
            Err(())
        }
    };
    let url_keys = SecretKeys {
        stem: "url",
        env: raw.url_env.as_ref(),
        file: raw.url_file.as_ref(),
        credential: raw.url_credential.as_ref(),
    };
    // A URL that must be given, checked for its scheme.
    let required_url = |p: &mut Problems<'_>| -> Option<Secret> {
        let url = match (secret(url_keys, p), &raw.url) {
            (Err(()), _) => return None,
            (Ok(Some(_)), Some(_)) => {
                p.at(
                    c,
                    field("url"),
                    "give `url` or `url_env`/`url_file`/`url_credential`, not both",
                );
                return None;
            }
            (Ok(Some(s)), None) => s,
            (Ok(None), Some(u)) => Secret::new(u.trim()),
            (Ok(None), None) => {
                p.at(
                    c,
                    field("url_env"),
                    "a URL is required: url_env, url_file or url_credential",
                );
                return None;
            }
        };
        if !http_url(url.expose()) {
            p.at(
                c,
                field("url"),
                "the URL must be a whole http:// or https:// URL with a host, on one line",
            );
            return None;
        }
        Some(url)
    };

    let kind = match raw.kind {
        ChannelKindName::Console => ChannelKind::Console,
        ChannelKindName::Slack => ChannelKind::Slack {
            url: required_url(p)?,
        },
        ChannelKindName::Ntfy => {
            let url = required_url(p)?;
            let token = secret(
                SecretKeys {
                    stem: "token",
                    env: raw.token_env.as_ref(),
                    file: raw.token_file.as_ref(),
                    credential: None,
                },
                p,
            )
            .ok()?;
            ChannelKind::Ntfy { url, token }
        }
        ChannelKindName::Alertmanager => ChannelKind::Alertmanager {
            url: required_url(p)?,
        },
        ChannelKindName::Webhook => {
            let url = required_url(p)?;
            let secret = secret(
                SecretKeys {
                    stem: "secret",
                    env: raw.secret_env.as_ref(),
                    file: raw.secret_file.as_ref(),
                    credential: raw.secret_credential.as_ref(),
                },
                p,
            )
            .ok()?;
            ChannelKind::Webhook { url, secret }
        }
        ChannelKindName::Pagerduty => {
            let url = raw.url.clone().unwrap_or_else(|| PAGERDUTY_URL.to_string());
            if !http_url(&url) {
                p.at(
                    c,
                    field("url"),
                    "the URL must be a whole http:// or https:// URL with a host, on one line",
                );
                return None;
            }
            let routing_key = secret(
                SecretKeys {
                    stem: "routing_key",
                    env: raw.routing_key_env.as_ref(),
                    file: raw.routing_key_file.as_ref(),
                    credential: raw.routing_key_credential.as_ref(),
                },
                p,
            )
            .ok()?;
            let Some(routing_key) = routing_key else {
                p.at(
                    c,
                    field("routing_key_env"),
                    "a routing key is required: routing_key_env, routing_key_file or routing_key_credential",
                );
                return None;
            };
            ChannelKind::PagerDuty { routing_key, url }
        }
        ChannelKindName::Email => ChannelKind::Email(Box::new(email(name, c, resolve, p)?)),
    };
    Some(ChannelConfig {
        name: name.to_string(),
        kind,
        timeout: raw.timeout.unwrap_or(Dur(10)),
        send_resolved: raw.send_resolved.unwrap_or(true),
        group: raw.group.unwrap_or(matches!(
            raw.kind,
            ChannelKindName::Slack | ChannelKindName::Email
        )),
        min_interval: raw.min_interval.filter(|d| d.seconds() > 0),
    })
}

fn email(
    name: &str,
    c: &Spanned<RawChannel>,
    resolve: &dyn Fn(&Path) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<EmailConfig> {
    let raw = &c.value;
    let field = |f: &str| format!("channels.{name}.{f}");
    let mut ok = true;

    let host = raw.host.as_deref().map(str::trim).unwrap_or_default();
    if host.is_empty() {
        p.at(c, field("host"), "the SMTP server's host is required");
        ok = false;
    }
    let tls = raw.tls.unwrap_or(SmtpTls::Starttls);
    if tls == SmtpTls::None && !host.is_empty() && !is_loopback(host) {
        p.at(
            c,
            field("tls"),
            format!("`tls: none` sends mail and passwords in the clear; it is only allowed to a relay on this machine (localhost, 127.0.0.1, ::1), not to `{host}`"),
        );
        ok = false;
    }
    let port = raw.port.unwrap_or(match tls {
        SmtpTls::Starttls => 587,
        SmtpTls::Implicit => 465,
        SmtpTls::None => 25,
    });

    let read = |keys: SecretKeys<'_>, p: &mut Problems<'_>| match keys.read(resolve) {
        Ok(s) => Some(s),
        Err((key, m)) => {
            p.at(c, field(&key), m);
            None
        }
    };
    let username = read(
        SecretKeys {
            stem: "username",
            env: raw.username_env.as_ref(),
            file: raw.username_file.as_ref(),
            credential: None,
        },
        p,
    );
    let password = read(
        SecretKeys {
            stem: "password",
            env: raw.password_env.as_ref(),
            file: raw.password_file.as_ref(),
            credential: raw.password_credential.as_ref(),
        },
        p,
    );
    let (username, password) = match (username, password) {
        (Some(u), Some(pw)) => (u, pw),
        _ => return None,
    };
    if username.is_some() != password.is_some() {
        p.at(
            c,
            field(if username.is_some() {
                "password_env"
            } else {
                "username_env"
            }),
            "give both a username and a password, or neither",
        );
        ok = false;
    }

    let from = match raw
        .from
        .as_deref()
        .map(str::parse::<lettre::message::Mailbox>)
    {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            p.at(c, field("from"), format!("not an email address: {e}"));
            None
        }
        None => {
            p.at(c, field("from"), "a sender address is required");
            None
        }
    };
    let mut to = Vec::new();
    for addr in raw.to.clone().map(|t| t.into_vec()).unwrap_or_default() {
        match addr.parse::<lettre::message::Mailbox>() {
            Ok(m) => to.push(m),
            Err(e) => {
                p.at(
                    c,
                    field("to"),
                    format!("`{addr}` is not an email address: {e}"),
                );
                ok = false;
            }
        }
    }
    if to.is_empty() && ok {
        p.at(c, field("to"), "at least one recipient is required");
        ok = false;
    }
    let from = from?;
    if !ok {
        return None;
    }
    Some(EmailConfig {
        host: host.to_string(),
        port,
        tls,
        username,
        password,
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for h in ["localhost", "127.0.0.1", "127.5.0.1", "::1", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["smtp.example.com", "10.0.0.1", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
