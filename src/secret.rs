//! Secrets (webhook URLs, tokens, passwords) and where they come from.
//!
//! A secret is read from an environment variable, a file, or a systemd credential, and is
//! held in a type whose Debug and Display print a placeholder, so a log line or an error
//! message can never carry it.

use std::fmt;
use std::path::Path;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that uses it (an HTTP request, an SMTP login).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from the environment variable `name`.
    pub fn from_env(name: &str) -> Result<Secret, String> {
        match std::env::var(name) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_string())),
            Ok(_) => Err(format!("environment variable {name} is empty")),
            Err(_) => Err(format!("environment variable {name} is not set")),
        }
    }

    /// Reads a secret from a file, trimming the trailing newline editors add.
    pub fn from_file(path: &Path) -> Result<Secret, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
        let value = text.trim();
        if value.is_empty() {
            return Err(format!("secret file {} is empty", path.display()));
        }
        if value.contains('\n') {
            return Err(format!("secret file {} must hold one line", path.display()));
        }
        Ok(Secret(value.to_string()))
    }

    /// Reads a systemd credential (`LoadCredential=NAME:...`) from `$CREDENTIALS_DIRECTORY`.
    pub fn from_credential(name: &str) -> Result<Secret, String> {
        let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
            format!("credential {name} requested but CREDENTIALS_DIRECTORY is not set")
        })?;
        Secret::from_file(&Path::new(&dir).join(name))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Removes anything that looks like a URL from a message, for errors from HTTP clients that
/// quote the URL they were given (a Slack webhook URL is itself the secret).
pub fn strip_urls(message: &str) -> String {
    message
        .split_whitespace()
        .map(|word| {
            let w = word.trim_matches(|c| c == '(' || c == ')' || c == '"' || c == '\'');
            if w.starts_with("http://") || w.starts_with("https://") {
                "<url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("https://hooks.slack.com/services/T0/B0/XYZ");
        assert_eq!(format!("{s}"), "<redacted>");
        assert!(!format!("{s:?}").contains("hooks"));
    }

    #[test]
    fn urls_are_stripped_from_messages() {
        let m = strip_urls("error sending request for url (https://hooks.example/abc): timed out");
        assert_eq!(m, "error sending request for url <url> timed out");
    }
}
