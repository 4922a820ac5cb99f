//! Each HTTP channel against a loopback fake that answers as the vendor
//! documents, errors included; email against a real SMTP server.

mod support;

use certctl_notification::channels::{ChannelConfig, Message, email, opsgenie, pagerduty, slack, teams, webhook};
use certctl_notification::http::HttpClient;
use certctl_notification::model::{Action, EventType, Severity};
use std::time::Duration;
use support::{FakeEndpoint, SmtpSink};

fn http() -> HttpClient {
    HttpClient::new(Duration::from_secs(5))
}

fn alert() -> Message {
    let mut m = Message::test(1_700_000_000);
    m.event_type = EventType::Expiring;
    m.severity = Severity::Warning;
    m.title = "web expires in 14 days".into();
    m.body = "certificates/web/versions/2 is valid until 2023-11-28.".into();
    m.certificate = "certificates/web".into();
    m.certificate_version = "certificates/web/versions/2".into();
    m.owner = "owners/alice".into();
    m.team = "teams/platform".into();
    m.environment = "production".into();
    m.alert_key = "certctl:expiry:certificates/web/versions/2".into();
    m.idempotency_key = "notifications/n1/d1".into();
    m
}

#[tokio::test]
async fn webhook_signs_timestamp_and_body_and_retries_server_errors() {
    let fake = FakeEndpoint::start(200, "thanks").await;
    let secret = "a-shared-secret-of-some-length";
    let hook = certctl_notification::channels::connect(
        ChannelConfig::Webhook(webhook::WebhookConfig {
            url: fake.url("/hooks/certctl"),
            signing_secret: secret.into(),
        }),
        &http(),
    );
    let receipt = hook.send(&alert()).await.expect("delivered");
    assert_eq!((receipt.status, receipt.excerpt.as_str()), (200, "thanks"));
    let got = &fake.requests()[0];
    assert_eq!(got.path, "/hooks/certctl");
    assert_eq!(got.body["type"], "certificate.expiring");
    assert_eq!(got.body["certificate"], "certificates/web");
    assert_eq!(got.headers["idempotency-key"], "notifications/n1/d1");
    let timestamp: i64 = got.headers["x-certctl-timestamp"].to_str().unwrap().parse().unwrap();
    // The receiver's check: HMAC-SHA256 over "{timestamp}.{body}".
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&got.raw);
    let signature = got.headers["x-certctl-signature"].to_str().unwrap();
    let mac = hex::decode(signature.strip_prefix("v1=").unwrap()).unwrap();
    ring::hmac::verify(&key, &signed, &mac).expect("the signature verifies");

    fake.answer(500, "upstream exploded", &[]);
    let err = hook.send(&alert()).await.unwrap_err();
    assert!(err.retryable && err.status == 500, "{err:?}");
    assert_eq!(err.excerpt, "upstream exploded");
    fake.answer(404, "no such hook", &[]);
    assert!(!hook.send(&alert()).await.unwrap_err().retryable, "a 404 is not retried");
}

#[tokio::test]
async fn slack_posts_blocks_and_tells_payload_errors_from_rate_limits() {
    let fake = FakeEndpoint::start(200, "ok").await;
    let slack = certctl_notification::channels::connect(
        ChannelConfig::Slack(slack::SlackConfig { webhook_url: fake.url("/services/T000/B000/XXXX") }),
        &http(),
    );
    assert_eq!(slack.send(&alert()).await.unwrap().excerpt, "ok");
    let got = &fake.requests()[0];
    assert!(got.body["text"].as_str().unwrap().contains("[WARNING] web expires in 14 days"));
    assert_eq!(got.body["blocks"][0]["type"], "header");
    fake.answer(400, "invalid_payload", &[]);
    let err = slack.send(&alert()).await.unwrap_err();
    assert!(!err.retryable, "invalid_payload is permanent");
    assert_eq!((err.status, err.excerpt.as_str()), (400, "invalid_payload"));
    fake.answer(429, "rate_limited", &[("retry-after", "30")]);
    let err = slack.send(&alert()).await.unwrap_err();
    assert!(err.retryable && err.retry_after == Some(30), "{err:?}");
    fake.answer(410, "channel_is_archived", &[]);
    assert!(!slack.send(&alert()).await.unwrap_err().retryable);
}

#[tokio::test]
async fn teams_posts_an_adaptive_card() {
    let fake = FakeEndpoint::start(200, "1").await;
    let teams = certctl_notification::channels::connect(
        ChannelConfig::Teams(teams::TeamsConfig { webhook_url: fake.url("/webhookb2/abc") }),
        &http(),
    );
    assert_eq!(teams.send(&alert()).await.unwrap().excerpt, "1");
    let got = &fake.requests()[0];
    assert_eq!(got.body["type"], "message");
    let card = &got.body["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    fake.answer(400, "Bad payload received by generic incoming webhook.", &[]);
    assert!(!teams.send(&alert()).await.unwrap_err().retryable);
}

#[tokio::test]
async fn pagerduty_triggers_and_resolves_one_dedup_key() {
    let fake = FakeEndpoint::start(202, r#"{"status":"success","message":"Event processed","dedup_key":"k"}"#).await;
    let key = "R0UT1NGKEY0123456789ABCDEFGHIJKL";
    let pd = certctl_notification::channels::connect(
        ChannelConfig::Pagerduty(pagerduty::PagerDutyConfig {
            routing_key: key.into(),
            events_url: fake.url("/v2/enqueue"),
        }),
        &http(),
    );
    let mut message = alert();
    assert_eq!(pd.send(&message).await.unwrap().status, 202);
    message.action = Action::Resolve;
    pd.send(&message).await.unwrap();
    let got = fake.requests();
    assert_eq!(got[0].body["event_action"], "trigger");
    assert_eq!(got[0].body["routing_key"], key);
    assert_eq!(got[0].body["payload"]["severity"], "warning");
    assert_eq!(got[0].body["payload"]["source"], "certificates/web");
    assert_eq!(got[1].body["event_action"], "resolve");
    assert_eq!(got[0].body["dedup_key"], got[1].body["dedup_key"]);
    assert_eq!(got[1].body["dedup_key"], "certctl:expiry:certificates/web/versions/2");

    fake.answer(
        400,
        r#"{"status":"invalid event","message":"Event object is invalid","errors":["'routing_key' is invalid"]}"#,
        &[],
    );
    let err = pd.send(&alert()).await.unwrap_err();
    assert!(!err.retryable && err.excerpt.contains("invalid event"), "{err:?}");
    fake.answer(429, "", &[]);
    assert!(pd.send(&alert()).await.unwrap_err().retryable, "throttled events are retried");
}

#[tokio::test]
async fn opsgenie_creates_and_closes_by_alias() {
    let fake = FakeEndpoint::start(202, r#"{"result":"Request will be processed","took":0.1,"requestId":"r1"}"#).await;
    let og = certctl_notification::channels::connect(
        ChannelConfig::Opsgenie(opsgenie::OpsgenieConfig { api_key: "genie-key".into(), api_url: fake.url("") }),
        &http(),
    );
    let mut message = alert();
    og.send(&message).await.unwrap();
    message.action = Action::Resolve;
    og.send(&message).await.unwrap();
    let got = fake.requests();
    assert_eq!(got[0].path, "/v2/alerts");
    assert_eq!(got[0].headers["authorization"], "GenieKey genie-key");
    assert_eq!(got[0].body["alias"], "certctl:expiry:certificates/web/versions/2");
    assert_eq!(got[0].body["priority"], "P3");
    assert_eq!(
        got[1].path,
        "/v2/alerts/certctl%3Aexpiry%3Acertificates%2Fweb%2Fversions%2F2/close?identifierType=alias"
    );
    fake.answer(422, r#"{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty."},"took":0.0,"requestId":"r2"}"#, &[]);
    let err = og.send(&alert()).await.unwrap_err();
    assert!(!err.retryable && err.status == 422, "{err:?}");
}

#[tokio::test]
async fn a_channel_that_hangs_or_is_down_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let hook = certctl_notification::channels::connect(
        ChannelConfig::Webhook(webhook::WebhookConfig {
            url: format!("http://{addr}/hook"),
            signing_secret: "0123456789abcdef".into(),
        }),
        &HttpClient::new(Duration::from_millis(300)),
    );
    let err = hook.send(&alert()).await.unwrap_err();
    assert!(err.retryable && err.message.contains("did not answer"), "{err:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = certctl_notification::channels::connect(
        ChannelConfig::Slack(slack::SlackConfig { webhook_url: format!("http://{closed}/x") }),
        &http(),
    );
    let err = down.send(&alert()).await.unwrap_err();
    assert!(err.retryable && err.message.contains("cannot reach"), "{err:?}");
}

fn smtp(port: u16, to: &[&str]) -> ChannelConfig {
    ChannelConfig::Email(email::EmailConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        security: email::Security::None,
        from_address: "certctl <certctl@example.com>".into(),
        to_addresses: to.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    })
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server_with_text_and_html() {
    let sink = SmtpSink::start().await;
    let mail = certctl_notification::channels::connect(smtp(sink.port, &["ops@example.com"]), &http());
    let receipt = mail.send(&alert()).await.expect("the SMTP server accepts the message");
    assert!(receipt.excerpt.starts_with("250"), "{receipt:?}");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains("Subject: [certctl] web expires in 14 days"), "{m}");
    assert!(m.contains("To: ops@example.com"), "{m}");
    assert!(m.contains("multipart/alternative"), "{m}");
    assert!(m.contains("Content-Type: text/plain"), "{m}");
    assert!(m.contains("Content-Type: text/html"), "{m}");
    assert!(m.contains("Certificate: certificates/web"), "{m}");
    sink.stop().await;
    let err = mail.send(&alert()).await.unwrap_err();
    assert!(err.retryable, "a server that is down is tried again: {err:?}");
}
