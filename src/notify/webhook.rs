//! The webhook channel: the alert JSON, POSTed as it is. With a signing secret, each request
//! also carries `X-Spendpager-Timestamp` (unix seconds) and `X-Spendpager-Signature:
//! v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`, so a receiver can check that the body came
//! from us and is recent.

use super::words::hex;
use super::{Channel, HttpRequest, Rendered};
use crate::alert::Alert;
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub struct WebhookChannel {
    pub name: String,
    pub url: Secret,
    pub secret: Option<Secret>,
    pub timeout: Duration,
    pub send_resolved: bool,
}

/// `v1=<hex>`: the signature of `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex(&mac.finalize().into_bytes()))
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }

    /// One alert is its JSON object; a group (only when configured) is an array of them.
    /// The signature is made at each attempt, so a retry carries a fresh timestamp.
    fn render(&self, alerts: &[Alert]) -> Rendered {
        let body = match alerts {
            [one] => serde_json::to_vec(one),
            many => serde_json::to_vec(many),
        }
        .expect("alerts serialise");
        let first = &alerts[0];
        let mut headers = vec![
            ("content-type".into(), "application/json".into()),
            ("x-spendpager-dedup-key".into(), first.dedup_key.clone()),
            ("x-spendpager-status".into(), first.status.as_str().into()),
        ];
        if let Some(secret) = &self.secret {
            let ts = jiff::Timestamp::now().as_second();
            headers.push(("x-spendpager-timestamp".into(), ts.to_string()));
            headers.push((
                "x-spendpager-signature".into(),
                signature(secret.expose().as_bytes(), ts, &body),
            ));
        }
        Rendered::Http(HttpRequest {
            url: self.url.clone(),
            body,
            headers,
            timeout: self.timeout,
        })
    }

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The expected value was computed with Python's hmac module over
        // b"1700000000.what do ya want for nothing?" with the key b"Jefe".
        let sig = signature(b"Jefe", 1700000000, b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "v1=1cdd0650c8be1cb0974b1788d458b1e781206cfef59b85faafc582d2e182c57e"
        );
        assert_ne!(
            sig,
            signature(b"Jefe", 1700000001, b"what do ya want for nothing?")
        );
        assert_ne!(
            sig,
            signature(b"jefe", 1700000000, b"what do ya want for nothing?")
        );
    }
}
