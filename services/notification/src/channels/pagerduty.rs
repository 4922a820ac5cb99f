//! PagerDuty Events API v2: a `trigger` event per alert and a `resolve`
//! with the same `dedup_key` when the condition ends. PagerDuty answers 202
//! `{"status":"success","dedup_key":...}`; 400 (`invalid event`) is refused
//! for good, 429 (throttled) and 5xx are tried again.

use async_trait::async_trait;
use certctl_domain::error::Violations;
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, Receipt, SendError, check_url};
use crate::http::HttpClient;
use crate::model::{Action, Severity};

pub const DEFAULT_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PagerDutyConfig {
    /// Secret: the integration's routing key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub routing_key: String,
    /// Empty: `DEFAULT_EVENTS_URL`.
    pub events_url: String,
}

impl PagerDutyConfig {
    pub(super) fn validate(&self, v: &mut Violations, at: &dyn Fn(&str) -> String) {
        v.check(
            self.routing_key.len() == 32 && self.routing_key.chars().all(|c| c.is_ascii_alphanumeric()),
            &at("routing_key"),
            "required: the integration's 32-character routing key",
        );
        check_url(v, &at("events_url"), &self.events_url, false);
    }
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
        Severity::Critical => "critical",
    }
}

/// The event PagerDuty receives.
pub fn payload(routing_key: &str, message: &Message) -> serde_json::Value {
    match message.action {
        Action::Resolve => serde_json::json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": message.alert_key,
        }),
        Action::Trigger => serde_json::json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": message.alert_key,
            "payload": {
                "summary": message.title.chars().take(1024).collect::<String>(),
                "source": if message.certificate.is_empty() { "certctl".to_owned() } else { message.certificate.clone() },
                "severity": severity(message.severity),
                "timestamp": certctl_domain::rfc3339(message.event_time),
                "component": message.certificate_version,
                "group": message.team,
                "class": message.type_name(),
                "custom_details": {
                    "body": message.body,
                    "owner": message.owner,
                    "environment": message.environment,
                    "details": message.details,
                },
            },
            "client": "certctl",
        }),
    }
}

pub struct PagerDuty {
    config: PagerDutyConfig,
    http: HttpClient,
}

impl PagerDuty {
    pub fn new(config: PagerDutyConfig, http: HttpClient) -> Self {
        Self { config, http }
    }
}

#[async_trait]
impl Notifier for PagerDuty {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError> {
        let url = if self.config.events_url.is_empty() { DEFAULT_EVENTS_URL } else { &self.config.events_url };
        let body = serde_json::to_vec(&payload(&self.config.routing_key, message))
            .map_err(|e| SendError::permanent(e.to_string()))?;
        self.http.post_json(url, &[], body).await?.into_result()
    }
}
