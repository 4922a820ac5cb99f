//! Slack incoming webhooks: a `text` fallback plus Block Kit blocks. Slack
//! answers 200 with the body `ok`; its errors are plain-text codes such as
//! `invalid_payload` (400), `no_service` (404), `channel_is_archived` (410)
//! and `rate_limited` (429, with `Retry-After`), of which only rate limits
//! and 5xx are worth another attempt.

use async_trait::async_trait;
use certctl_domain::error::Violations;
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, Receipt, SendError, check_url};
use crate::http::HttpClient;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SlackConfig {
    /// Secret: the webhook URL is the credential.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_url: String,
}

impl SlackConfig {
    pub(super) fn validate(&self, v: &mut Violations, at: &dyn Fn(&str) -> String) {
        check_url(v, &at("webhook_url"), &self.webhook_url, true);
    }
}

/// The JSON Slack receives.
pub fn payload(message: &Message) -> serde_json::Value {
    let mut fields = Vec::new();
    for (label, value) in [
        ("Certificate", &message.certificate),
        ("Owner", &message.owner),
        ("Team", &message.team),
        ("Environment", &message.environment),
    ] {
        if !value.is_empty() {
            fields.push(serde_json::json!({ "type": "mrkdwn", "text": format!("*{label}*\n{value}") }));
        }
    }
    let mut blocks = vec![
        serde_json::json!({ "type": "header", "text": { "type": "plain_text", "text": message.headline() } }),
        serde_json::json!({ "type": "section", "text": { "type": "mrkdwn", "text": message.body } }),
    ];
    if !fields.is_empty() {
        blocks.push(serde_json::json!({ "type": "section", "fields": fields }));
    }
    serde_json::json!({ "text": format!("{}: {}", message.headline(), message.body), "blocks": blocks })
}

pub struct Slack {
    config: SlackConfig,
    http: HttpClient,
}

impl Slack {
    pub fn new(config: SlackConfig, http: HttpClient) -> Self {
        Self { config, http }
    }
}

#[async_trait]
impl Notifier for Slack {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError> {
        let body = serde_json::to_vec(&payload(message)).map_err(|e| SendError::permanent(e.to_string()))?;
        self.http.post_json(&self.config.webhook_url, &[], body).await?.into_result()
    }
}
