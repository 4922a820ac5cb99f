//! The channel registry. A channel kind is one file here: its configuration,
//! its validation and its `Notifier`; `ChannelConfig` lists the kinds once
//! and `connect` maps each to its notifier. The rest of the service reaches
//! channels only through the `Notifier` trait.

pub mod email;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod webhook;

use std::collections::BTreeMap;

use async_trait::async_trait;
use certctl_domain::error::Violations;
use certctl_domain::{DomainError, UnixTime};
use serde::{Deserialize, Serialize};

use crate::http::HttpClient;
use crate::model::{Action, EventType, Severity};

/// A channel's settings. Secret fields are kept out of the stored config
/// and sealed apart (`take_secrets` / `put_secrets`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelConfig {
    Email(email::EmailConfig),
    Webhook(webhook::WebhookConfig),
    Slack(slack::SlackConfig),
    Teams(teams::TeamsConfig),
    Pagerduty(pagerduty::PagerDutyConfig),
    Opsgenie(opsgenie::OpsgenieConfig),
}

impl ChannelConfig {
    pub const KINDS: [&'static str; 6] = ["email", "webhook", "slack", "teams", "pagerduty", "opsgenie"];

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Email(_) => "email",
            Self::Webhook(_) => "webhook",
            Self::Slack(_) => "slack",
            Self::Teams(_) => "teams",
            Self::Pagerduty(_) => "pagerduty",
            Self::Opsgenie(_) => "opsgenie",
        }
    }

    /// Checks the settings; violations name `{field}.{kind}.{key}`.
    pub fn validate(&self, field: &str) -> Result<(), DomainError> {
        let mut v = Violations::new();
        let at = |key: &str| format!("{field}.{}.{key}", self.kind());
        match self {
            Self::Email(c) => c.validate(&mut v, &at),
            Self::Webhook(c) => c.validate(&mut v, &at),
            Self::Slack(c) => c.validate(&mut v, &at),
            Self::Teams(c) => c.validate(&mut v, &at),
            Self::Pagerduty(c) => c.validate(&mut v, &at),
            Self::Opsgenie(c) => c.validate(&mut v, &at),
        }
        v.into_result()
    }

    fn secret_fields(&mut self) -> Vec<(&'static str, &mut String)> {
        match self {
            Self::Email(c) => vec![("password", &mut c.password)],
            Self::Webhook(c) => vec![("signing_secret", &mut c.signing_secret)],
            Self::Slack(c) => vec![("webhook_url", &mut c.webhook_url)],
            Self::Teams(c) => vec![("webhook_url", &mut c.webhook_url)],
            Self::Pagerduty(c) => vec![("routing_key", &mut c.routing_key)],
            Self::Opsgenie(c) => vec![("api_key", &mut c.api_key)],
        }
    }

    /// Removes the secret values (left empty) and returns them by name.
    pub fn take_secrets(&mut self) -> BTreeMap<String, String> {
        self.secret_fields()
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.to_owned(), std::mem::take(value)))
            .collect()
    }

    /// Puts secret values back, for fields that are empty here.
    pub fn put_secrets(&mut self, secrets: &BTreeMap<String, String>) {
        for (name, value) in self.secret_fields() {
            if value.is_empty()
                && let Some(secret) = secrets.get(name)
            {
                value.clone_from(secret);
            }
        }
    }

    /// Whether the kind can close what a trigger opened.
    pub fn resolves(&self) -> bool {
        matches!(self, Self::Pagerduty(_) | Self::Opsgenie(_))
    }
}

/// The notifier for a channel's settings (secrets included).
pub fn connect(config: ChannelConfig, http: &HttpClient) -> Box<dyn Notifier> {
    match config {
        ChannelConfig::Email(c) => Box::new(email::Email::new(c)),
        ChannelConfig::Webhook(c) => Box::new(webhook::Webhook::new(c, http.clone())),
        ChannelConfig::Slack(c) => Box::new(slack::Slack::new(c, http.clone())),
        ChannelConfig::Teams(c) => Box::new(teams::Teams::new(c, http.clone())),
        ChannelConfig::Pagerduty(c) => Box::new(pagerduty::PagerDuty::new(c, http.clone())),
        ChannelConfig::Opsgenie(c) => Box::new(opsgenie::Opsgenie::new(c, http.clone())),
    }
}

/// What a channel is asked to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub action: Action,
    pub event_type: EventType,
    pub severity: Severity,
    pub title: String,
    pub body: String,
    pub certificate: String,
    pub certificate_version: String,
    pub owner: String,
    pub team: String,
    pub environment: String,
    /// Groups a trigger with its resolve (PagerDuty dedup key, OpsGenie
    /// alias); the notification's own dedup key when nothing resolves it.
    pub alert_key: String,
    /// Unique per delivery: receivers drop repeats of the same key.
    pub idempotency_key: String,
    pub event_time: UnixTime,
    /// Addresses that replace an email channel's own (digests).
    pub recipients: Vec<String>,
    pub details: serde_json::Value,
}

impl Message {
    /// The message `TestChannel` sends.
    pub fn test(now: UnixTime) -> Self {
        Self {
            action: Action::Trigger,
            event_type: EventType::Expiring,
            severity: Severity::Info,
            title: "certctl test notification".into(),
            body: "This is a test message from certctl. If you can read it, the channel works.".into(),
            certificate: String::new(),
            certificate_version: String::new(),
            owner: String::new(),
            team: String::new(),
            environment: String::new(),
            alert_key: format!("certctl-test-{now}"),
            idempotency_key: format!("test-{:016x}", rand::random::<u64>()),
            event_time: now,
            recipients: Vec::new(),
            details: serde_json::json!({ "test": true }),
        }
    }

    /// The event's type as receivers see it, e.g. `certificate.expiring`.
    pub fn type_name(&self) -> String {
        match self.event_type {
            EventType::AgentOffline => "agent.offline".into(),
            EventType::PolicyViolation => "policy.violation".into(),
            EventType::Digest => "digest".into(),
            other => format!("certificate.{}", other.as_str()),
        }
    }

    /// A short plain-text line for chat channels.
    pub fn headline(&self) -> String {
        match self.action {
            Action::Trigger => format!("[{}] {}", self.severity.as_str().to_uppercase(), self.title),
            Action::Resolve => format!("[RESOLVED] {}", self.title),
        }
    }
}

/// What the endpoint answered to a delivered message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    /// The HTTP status; 0 for SMTP.
    pub status: u16,
    /// The start of the answer (body or SMTP reply).
    pub excerpt: String,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Another attempt may succeed (the endpoint is down, slow or rate-limiting).
    pub retryable: bool,
    pub status: u16,
    pub excerpt: String,
    pub message: String,
    /// Seconds the endpoint asked us to wait (`Retry-After`).
    pub retry_after: Option<i64>,
}

impl SendError {
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { retryable: true, status: 0, excerpt: String::new(), message: message.into(), retry_after: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { retryable: false, ..Self::retryable(message) }
    }
}

/// A connected channel.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError>;
}

/// Checks that `url` is an absolute http(s) URL with a host.
pub(crate) fn check_url(v: &mut Violations, field: &str, url: &str, required: bool) {
    if url.is_empty() {
        if required {
            v.add(field, "required");
        }
        return;
    }
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.parse::<http::Uri>().is_ok_and(|u| u.host().is_some_and(|h| !h.is_empty()));
    v.check(ok, field, "must be an absolute http:// or https:// URL");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_leave_the_config_and_come_back() {
        let mut config = ChannelConfig::Webhook(webhook::WebhookConfig {
            url: "https://hooks.example.com/certctl".into(),
            signing_secret: "s3cret".into(),
        });
        let secrets = config.take_secrets();
        assert_eq!(secrets.get("signing_secret").map(String::as_str), Some("s3cret"));
        assert!(!serde_json::to_string(&config).unwrap().contains("s3cret"));
        config.put_secrets(&secrets);
        let ChannelConfig::Webhook(hook) = &config else { panic!("still a webhook") };
        assert_eq!(hook.signing_secret, "s3cret");
    }

    #[test]
    fn bad_configs_name_the_field() {
        let fields = |config: ChannelConfig| match config.validate("channel") {
            Err(DomainError::InvalidArgument(v)) => v.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("expected violations, got {other:?}"),
        };
        let hook = ChannelConfig::Webhook(webhook::WebhookConfig { url: "ftp://x".into(), signing_secret: "".into() });
        assert_eq!(fields(hook), ["channel.webhook.url", "channel.webhook.signing_secret"]);
        let pd = ChannelConfig::Pagerduty(pagerduty::PagerDutyConfig::default());
        assert_eq!(fields(pd), ["channel.pagerduty.routing_key"]);
        let slack = ChannelConfig::Slack(slack::SlackConfig { webhook_url: "not a url".into() });
        assert_eq!(fields(slack), ["channel.slack.webhook_url"]);
    }
}
