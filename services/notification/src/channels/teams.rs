//! Microsoft Teams incoming webhooks (and Workflows webhooks): an Adaptive
//! Card in a `message` envelope. Legacy connectors answer 200 with `1`,
//! Workflows 202; errors come back as 4xx with a text body, and 429 or 5xx
//! when throttled or down.

use async_trait::async_trait;
use certctl_domain::error::Violations;
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, Receipt, SendError, check_url};
use crate::http::HttpClient;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TeamsConfig {
    /// Secret: the webhook URL is the credential.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub webhook_url: String,
}

impl TeamsConfig {
    pub(super) fn validate(&self, v: &mut Violations, at: &dyn Fn(&str) -> String) {
        check_url(v, &at("webhook_url"), &self.webhook_url, true);
    }
}

/// The JSON Teams receives.
pub fn payload(message: &Message) -> serde_json::Value {
    let facts: Vec<serde_json::Value> = [
        ("Certificate", &message.certificate),
        ("Owner", &message.owner),
        ("Team", &message.team),
        ("Environment", &message.environment),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(title, value)| serde_json::json!({ "title": title, "value": value }))
    .collect();
    let card = serde_json::json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "text": message.headline(), "weight": "Bolder", "size": "Medium", "wrap": true },
            { "type": "TextBlock", "text": message.body, "wrap": true },
            { "type": "FactSet", "facts": facts },
        ],
    });
    serde_json::json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "content": card }],
    })
}

pub struct Teams {
    config: TeamsConfig,
    http: HttpClient,
}

impl Teams {
    pub fn new(config: TeamsConfig, http: HttpClient) -> Self {
        Self { config, http }
    }
}

#[async_trait]
impl Notifier for Teams {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError> {
        let body = serde_json::to_vec(&payload(message)).map_err(|e| SendError::permanent(e.to_string()))?;
        self.http.post_json(&self.config.webhook_url, &[], body).await?.into_result()
    }
}
