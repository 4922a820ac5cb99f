//! A generic webhook: the event as JSON, POSTed to the configured URL, with
//! an HMAC-SHA256 signature over the timestamp and the body and an
//! idempotency key per delivery, so a receiver can check who sent it and
//! drop the repeats that retries may cause.
//!
//! Headers: `X-Certctl-Timestamp` (Unix seconds), `X-Certctl-Signature`
//! (`v1=` and the lower-case hex HMAC-SHA256 of `{timestamp}.{body}` under
//! the signing secret), `Idempotency-Key` and `X-Certctl-Event` (the type).

use async_trait::async_trait;
use certctl_domain::error::Violations;
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, Receipt, SendError, check_url};
use crate::http::HttpClient;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    /// Secret: the HMAC key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signing_secret: String,
}

impl WebhookConfig {
    pub(super) fn validate(&self, v: &mut Violations, at: &dyn Fn(&str) -> String) {
        check_url(v, &at("url"), &self.url, true);
        v.check(
            self.signing_secret.len() >= 16,
            &at("signing_secret"),
            "required: at least 16 characters, shared with the receiver to check signatures",
        );
    }
}

/// `v1=` + hex HMAC-SHA256 of `{timestamp}.{body}`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1={}", hex::encode(ring::hmac::sign(&key, &signed).as_ref()))
}

/// The JSON a webhook receives.
pub fn payload(message: &Message) -> serde_json::Value {
    serde_json::json!({
        "id": message.idempotency_key,
        "type": message.type_name(),
        "action": message.action.as_str(),
        "severity": message.severity.as_str(),
        "title": message.title,
        "body": message.body,
        "certificate": message.certificate,
        "certificate_version": message.certificate_version,
        "owner": message.owner,
        "team": message.team,
        "environment": message.environment,
        "alert_key": message.alert_key,
        "time": certctl_domain::rfc3339(message.event_time),
        "details": message.details,
    })
}

pub struct Webhook {
    config: WebhookConfig,
    http: HttpClient,
}

impl Webhook {
    pub fn new(config: WebhookConfig, http: HttpClient) -> Self {
        Self { config, http }
    }
}

#[async_trait]
impl Notifier for Webhook {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError> {
        let body = serde_json::to_vec(&payload(message)).map_err(|e| SendError::permanent(e.to_string()))?;
        let timestamp = certctl_domain::now();
        let headers = [
            ("x-certctl-timestamp", timestamp.to_string()),
            ("x-certctl-signature", signature(&self.config.signing_secret, timestamp, &body)),
            ("idempotency-key", message.idempotency_key.clone()),
            ("x-certctl-event", message.type_name()),
        ];
        self.http.post_json(&self.config.url, &headers, body).await?.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_and_body() {
        // RFC 4231 test case 2 ("what do ya want for nothing?" under "Jefe"),
        // split as a timestamp-less body: "{ts}." is prepended, so sign a
        // body whose prefix makes up the same input.
        let sig = signature("Jefe", 0, b"what do ya want for nothing?");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let expected = ring::hmac::sign(&key, b"0.what do ya want for nothing?");
        assert_eq!(sig, format!("v1={}", hex::encode(expected.as_ref())));
        assert_ne!(sig, signature("Jefe", 1, b"what do ya want for nothing?"), "the timestamp is signed");
    }
}
