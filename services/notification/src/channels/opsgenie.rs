//! OpsGenie alerts: `POST /v2/alerts` creates an alert whose `alias` is the
//! alert key, and `POST /v2/alerts/{alias}/close?identifierType=alias`
//! closes it. OpsGenie answers 202 `{"result":"Request will be
//! processed",...}`; 422 (invalid request) and 401/403 are refused for good,
//! 429 and 5xx tried again.

use async_trait::async_trait;
use certctl_domain::error::Violations;
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, Receipt, SendError, check_url};
use crate::http::HttpClient;
use crate::model::{Action, Severity};

pub const DEFAULT_API_URL: &str = "https://api.opsgenie.com";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OpsgenieConfig {
    /// Secret: an API integration key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_key: String,
    /// Empty: `DEFAULT_API_URL`.
    pub api_url: String,
}

impl OpsgenieConfig {
    pub(super) fn validate(&self, v: &mut Violations, at: &dyn Fn(&str) -> String) {
        v.check(!self.api_key.trim().is_empty(), &at("api_key"), "required: an API integration key");
        check_url(v, &at("api_url"), &self.api_url, false);
    }
}

fn priority(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "P1",
        Severity::Error => "P2",
        Severity::Warning => "P3",
        Severity::Info => "P5",
    }
}

/// Percent-encodes an alias for the URL path.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The path and body OpsGenie receives.
pub fn request(message: &Message) -> (String, serde_json::Value) {
    // OpsGenie caps aliases at 512 characters.
    let alias: String = message.alert_key.chars().take(512).collect();
    let tags: Vec<String> =
        [message.type_name(), message.environment.clone()].into_iter().filter(|t| !t.is_empty()).collect();
    match message.action {
        Action::Trigger => (
            "/v2/alerts".to_owned(),
            serde_json::json!({
                "message": message.title.chars().take(130).collect::<String>(),
                "alias": alias,
                "description": message.body,
                "priority": priority(message.severity),
                "source": "certctl",
                "entity": message.certificate,
                "tags": tags,
                "details": {
                    "certificate_version": message.certificate_version,
                    "owner": message.owner,
                    "team": message.team,
                },
            }),
        ),
        Action::Resolve => (
            format!("/v2/alerts/{}/close?identifierType=alias", path_segment(&alias)),
            serde_json::json!({ "source": "certctl", "note": "The certificate was renewed." }),
        ),
    }
}

pub struct Opsgenie {
    config: OpsgenieConfig,
    http: HttpClient,
}

impl Opsgenie {
    pub fn new(config: OpsgenieConfig, http: HttpClient) -> Self {
        Self { config, http }
    }
}

#[async_trait]
impl Notifier for Opsgenie {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError> {
        let base = if self.config.api_url.is_empty() { DEFAULT_API_URL } else { &self.config.api_url };
        let (path, body) = request(message);
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let body = serde_json::to_vec(&body).map_err(|e| SendError::permanent(e.to_string()))?;
        let headers = [("authorization", format!("GenieKey {}", self.config.api_key))];
        self.http.post_json(&url, &headers, body).await?.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_escaped_in_the_close_path() {
        let mut message = Message::test(0);
        message.action = Action::Resolve;
        message.alert_key = "certctl:expiry:certificates/web/versions/2".into();
        let (path, _) = request(&message);
        assert_eq!(path, "/v2/alerts/certctl%3Aexpiry%3Acertificates%2Fweb%2Fversions%2F2/close?identifierType=alias");
    }
}
