//! Email over SMTP with lettre: STARTTLS, implicit TLS or (for a local
//! relay) plain SMTP, optional authentication, and a multipart/alternative
//! body with a plain-text and an HTML part.

use std::time::Duration;

use async_trait::async_trait;
use certctl_domain::error::Violations;
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::{Message, Notifier, Receipt, SendError};
use crate::model::Action;

const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    #[default]
    Starttls,
    ImplicitTls,
    None,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Self::Starttls => 587,
            Self::ImplicitTls => 465,
            Self::None => 25,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EmailConfig {
    pub smtp_host: String,
    /// 0: the security mode's usual port.
    pub smtp_port: u16,
    pub security: Security,
    pub username: String,
    /// Secret.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    pub from_address: String,
    pub to_addresses: Vec<String>,
    pub send_digests: bool,
}

impl EmailConfig {
    pub(super) fn validate(&self, v: &mut Violations, at: &dyn Fn(&str) -> String) {
        let host_ok = !self.smtp_host.is_empty()
            && self.smtp_host.len() <= 253
            && self.smtp_host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        v.check(host_ok, &at("smtp_host"), "must be a host name or IP address");
        v.check(self.from_address.parse::<Mailbox>().is_ok(), &at("from_address"), "must be an email address");
        v.check(
            !self.to_addresses.is_empty() || self.send_digests,
            &at("to_addresses"),
            "name at least one recipient (or enable send_digests for a digest-only channel)",
        );
        for (i, to) in self.to_addresses.iter().enumerate() {
            v.check(to.parse::<Mailbox>().is_ok(), &format!("{}[{i}]", at("to_addresses")), "must be an email address");
        }
        v.check(
            self.username.is_empty() || !self.password.is_empty(),
            &at("password"),
            "required when a username is given",
        );
        v.check(
            self.password.is_empty() || self.security != Security::None,
            &at("security"),
            "a password is never sent over plain SMTP: use STARTTLS or implicit TLS",
        );
    }

    fn port(&self) -> u16 {
        if self.smtp_port == 0 { self.security.default_port() } else { self.smtp_port }
    }
}

pub struct Email {
    config: EmailConfig,
}

impl Email {
    pub fn new(config: EmailConfig) -> Self {
        Self { config }
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let c = &self.config;
        let builder = match c.security {
            Security::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.smtp_host),
            Security::ImplicitTls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.smtp_host),
            Security::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.smtp_host)),
        }
        .map_err(|e| SendError::permanent(format!("cannot set up TLS for {}: {e}", c.smtp_host)))?;
        let mut builder = builder.port(self.config.port()).timeout(Some(SMTP_TIMEOUT));
        if !c.username.is_empty() {
            builder = builder.credentials(Credentials::new(c.username.clone(), c.password.clone()));
        }
        Ok(builder.build())
    }

    fn mail(&self, message: &Message) -> Result<Mail, SendError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| SendError::permanent(format!("{what}: {e}"));
        let from: Mailbox = self.config.from_address.parse().map_err(|e| bad("bad from address", &e))?;
        let recipients = if message.recipients.is_empty() { &self.config.to_addresses } else { &message.recipients };
        if recipients.is_empty() {
            return Err(SendError::permanent("the message has no recipient"));
        }
        let mut builder = Mail::builder().from(from).subject(subject(message));
        for to in recipients {
            builder = builder.to(to.parse::<Mailbox>().map_err(|e| bad("bad recipient", &e))?);
        }
        builder = builder.header(header::MessageId::from(format!(
            "<{}@certctl>",
            message.idempotency_key.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
        )));
        builder
            .multipart(MultiPart::alternative_plain_html(plain_text(message), html(message)))
            .map_err(|e| bad("cannot build the message", &e))
    }
}

fn subject(message: &Message) -> String {
    match message.action {
        Action::Trigger => format!("[certctl] {}", message.title),
        Action::Resolve => format!("[certctl] Resolved: {}", message.title),
    }
}

fn facts(message: &Message) -> Vec<(&'static str, &str)> {
    [
        ("Certificate", message.certificate.as_str()),
        ("Version", message.certificate_version.as_str()),
        ("Owner", message.owner.as_str()),
        ("Team", message.team.as_str()),
        ("Environment", message.environment.as_str()),
        ("Severity", message.severity.as_str()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .collect()
}

fn plain_text(message: &Message) -> String {
    let mut text = format!("{}\n\n{}\n\n", message.headline(), message.body);
    for (label, value) in facts(message) {
        text.push_str(&format!("{label}: {value}\n"));
    }
    text.push_str("\n-- \nSent by certctl\n");
    text
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn html(message: &Message) -> String {
    let paragraphs: String =
        message.body.split("\n\n").map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>"))).collect();
    let rows: String = facts(message)
        .into_iter()
        .map(|(label, value)| format!("<tr><th align=\"left\">{label}</th><td>{}</td></tr>", escape(value)))
        .collect();
    format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>{}</h2>{paragraphs}<table>{rows}</table>\
         <p style=\"color:#666\">Sent by certctl</p></body></html>",
        escape(&message.headline())
    )
}

#[async_trait]
impl Notifier for Email {
    async fn send(&self, message: &Message) -> Result<Receipt, SendError> {
        let mail = self.mail(message)?;
        let transport = self.transport()?;
        match transport.send(mail).await {
            Ok(response) => Ok(Receipt { status: 0, excerpt: reply(response.code(), response.message()) }),
            Err(e) => {
                let code = e.status().map(|c| c.to_string()).unwrap_or_default();
                // 5xx replies (bad recipient, refused authentication) stay refused; a 4xx
                // reply, a dropped connection or a timeout may pass later.
                let retryable = !e.is_permanent();
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(inner) = source {
                    text.push_str(": ");
                    text.push_str(&inner.to_string());
                    source = inner.source();
                }
                let text = if code.is_empty() { text } else { format!("{code} {text}") };
                Err(SendError {
                    retryable,
                    status: 0,
                    excerpt: crate::http::excerpt(&text),
                    message: format!(
                        "the SMTP server at {}:{} said: {text}",
                        self.config.smtp_host,
                        self.config.port()
                    ),
                    retry_after: None,
                })
            }
        }
    }
}

fn reply<'a>(code: lettre::transport::smtp::response::Code, lines: impl Iterator<Item = &'a str>) -> String {
    let lines: Vec<&str> = lines.collect();
    crate::http::excerpt(&format!("{code} {}", lines.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventType, Severity};

    #[test]
    fn bodies_carry_the_facts_and_escape_html() {
        let mut message = Message::test(1_700_000_000);
        message.event_type = EventType::Expiring;
        message.severity = Severity::Warning;
        message.title = "web <prod> expires in 14 days".into();
        message.certificate = "certificates/web".into();
        assert!(plain_text(&message).contains("Certificate: certificates/web"));
        let page = html(&message);
        assert!(page.contains("web &lt;prod&gt; expires"), "{page}");
        assert!(!page.contains("<prod>"));
    }
}
