//! The HTTP rule every HTTP channel shares: 2xx is delivered; 408, 429 and 5xx are retried,
//! honouring Retry-After; any other 4xx is a permanent refusal, reported with its status and
//! an excerpt of the body. Transport errors are retried, with URLs stripped from the message.

use super::{HttpRequest, Outcome};
use crate::secret::strip_urls;
use std::time::Duration;

/// How much of a refusing receiver's body goes into the error.
const BODY_EXCERPT: usize = 200;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("spendpager/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        // A receiver that redirects is not followed: the alert goes only where it was sent.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with default settings builds")
}

pub async fn post(client: &reqwest::Client, req: &HttpRequest) -> Outcome {
    let mut builder = client
        .post(req.url.expose())
        .timeout(req.timeout)
        .body(req.body.clone());
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let response = match builder.send().await {
        Ok(r) => r,
        // A request that cannot even be built (a malformed URL) will never succeed.
        Err(e) if e.is_builder() => {
            return Outcome::Failed {
                error: strip_urls(&format!("request cannot be made: {}", error_chain(&e))),
            };
        }
        Err(e) => {
            return Outcome::Retry {
                after: None,
                error: strip_urls(&format!("request failed: {}", error_chain(&e))),
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(BODY_EXCERPT).collect();
    let error = format!("HTTP {}: {}", status.as_u16(), excerpt.trim());
    classify(status.as_u16(), retry_after, error)
}

/// The outcome of an HTTP status, apart from the network.
pub fn classify(status: u16, retry_after: Option<Duration>, error: String) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after,
            error,
        },
        _ => Outcome::Failed { error },
    }
}

/// Retry-After as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    let secs = (when.as_second() - now.as_second()).max(0);
    Some(Duration::from_secs(secs as u64))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(classify(204, None, String::new()), Outcome::Delivered);
        assert!(
            matches!(classify(429, Some(Duration::from_secs(2)), "x".into()),
            Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(2))
        );
        assert!(matches!(
            classify(503, None, "x".into()),
            Outcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(400, None, "x".into()),
            Outcome::Failed { .. }
        ));
        assert!(matches!(
            classify(404, None, "x".into()),
            Outcome::Failed { .. }
        ));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
