//! The done-when test and durable delivery: a certificate crossing each
//! threshold produces exactly one email (received by a real SMTP server)
//! and one webhook per threshold, across restarts of the service, and the
//! alert resolves in PagerDuty when the certificate is renewed. A delivery
//! whose endpoint fails is retried after a restart in the middle, and one
//! that keeps failing is shown failed. On SQLite, and on PostgreSQL when
//! `CERTCTL_TEST_DATABASE_URL` is set.

mod support;

use certctl_common::caller::Caller;
use certctl_notification::channels::{ChannelConfig, email, pagerduty, webhook};
use certctl_notification::model::{DeliveryState, Event, EventType, RoutingRule, Severity};
use certctl_notification::store::DeliveryFilter;
use certctl_notification::upstream::Upstreams;
use certctl_notification::{Clock, Notifications, Store, scan};
use certctl_pki::KeyType;
use certctl_pki::generate::CertificateAuthority;
use certctl_proto::inventory::{self as inv, inventory_service_client::InventoryServiceClient};
use support::{FakeEndpoint, Place, Platform, SmtpSink, core, deliver_all, places};

const DAY: i64 = 86_400;

fn admin() -> Caller {
    Caller { actor: "users/test".into(), request_id: String::new() }
}

async fn add_version(
    inventory: &mut InventoryServiceClient<tonic::transport::Channel>,
    ca: &CertificateAuthority,
    not_before: i64,
    lifetime: i64,
) -> i64 {
    let leaf = ca
        .issue_leaf("web.example.com", &["web.example.com".into()], KeyType::EcdsaP256, not_before, lifetime)
        .unwrap();
    inventory
        .create_certificate_version(inv::CreateCertificateVersionRequest {
            parent: "certificates/web".into(),
            pem_chain: format!("{}{}", leaf.certificate_pem, ca.certificate_pem),
        })
        .await
        .unwrap();
    not_before + lifetime
}

async fn channels(n: &Notifications<dyn Store>, sink: &SmtpSink, hook: &FakeEndpoint, pd: &FakeEndpoint) {
    let mail = ChannelConfig::Email(email::EmailConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port: sink.port,
        security: email::Security::None,
        from_address: "certctl@example.com".into(),
        to_addresses: vec!["oncall@example.com".into()],
        ..Default::default()
    });
    let webhook = ChannelConfig::Webhook(webhook::WebhookConfig {
        url: hook.url("/certctl"),
        signing_secret: "webhook-signing-secret".into(),
    });
    let pager = ChannelConfig::Pagerduty(pagerduty::PagerDutyConfig {
        routing_key: "R0UT1NGKEY0123456789ABCDEFGHIJKL".into(),
        events_url: pd.url("/v2/enqueue"),
    });
    for (id, config) in [("mail", mail), ("hook", webhook), ("pager", pager)] {
        n.create_channel(&admin(), id, id.to_uppercase(), config, false, "").await.unwrap();
    }
    let rule = RoutingRule {
        channels: vec!["mail".into(), "hook".into(), "pager".into()],
        environments: vec!["production".into()],
        ..RoutingRule::default()
    };
    n.create_rule(&admin(), "production", rule, "").await.unwrap();
}

fn webhook_thresholds(hook: &FakeEndpoint) -> Vec<i64> {
    hook.requests().iter().map(|r| r.body["details"]["threshold_days"].as_i64().unwrap()).collect()
}

async fn a_threshold_alerts_once_across_restarts(place: Place) {
    let platform = Platform::start().await;
    let upstreams = Upstreams::new(platform.inventory.clone(), platform.audit.clone());
    let mut inventory = InventoryServiceClient::new(platform.inventory.clone());
    inventory
        .create_certificate(inv::CreateCertificateRequest {
            certificate: Some(inv::Certificate {
                display_name: "web".into(),
                common_name: "web.example.com".into(),
                subject_alt_names: vec!["web.example.com".into()],
                environment: "production".into(),
                ..Default::default()
            }),
            certificate_id: "web".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let ca = CertificateAuthority::new("Test CA", KeyType::EcdsaP256).unwrap();
    let now = certctl_domain::now();
    let not_after = add_version(&mut inventory, &ca, now - DAY, 90 * DAY).await;

    let sink = SmtpSink::start().await;
    let hook = FakeEndpoint::start(200, "ok").await;
    let pd = FakeEndpoint::start(202, r#"{"status":"success","message":"Event processed"}"#).await;
    let clock = Clock::manual(not_after - 31 * DAY);
    let (store, _db) = place.open().await;
    let mut n = core(store, clock.clone());
    channels(&n, &sink, &hook, &pd).await;

    let report = scan::scan_expiry(&n, &upstreams).await.unwrap();
    assert_eq!((report.examined, report.alerted), (1, 0), "31 days before expiry nothing is due");

    for (threshold, emails) in [(30, 1), (14, 2)] {
        clock.set(not_after - threshold * DAY);
        assert_eq!(scan::scan_expiry(&n, &upstreams).await.unwrap().alerted, 1, "{threshold} days");
        assert_eq!(scan::scan_expiry(&n, &upstreams).await.unwrap().alerted, 0, "a re-scan records nothing");
        deliver_all(&n).await;
        // A restart: a new process on the same database scans again.
        drop(n);
        let (store, _db) = place.open().await;
        n = core(store, clock.clone());
        assert_eq!(scan::scan_expiry(&n, &upstreams).await.unwrap().alerted, 0, "nothing again after a restart");
        deliver_all(&n).await;
        assert_eq!(sink.messages().len(), emails, "one email per threshold");
    }
    let messages = sink.messages();
    assert!(messages[0].contains("Subject: [certctl] web expires in 30 days"), "{}", messages[0]);
    assert!(messages[1].contains("Subject: [certctl] web expires in 14 days"), "{}", messages[1]);
    assert_eq!(webhook_thresholds(&hook), [30, 14], "one webhook per threshold");
    let keys: Vec<String> =
        hook.requests().iter().map(|r| r.headers["idempotency-key"].to_str().unwrap().to_owned()).collect();
    assert_ne!(keys[0], keys[1]);
    assert_eq!(pd.requests().len(), 2);
    assert!(pd.requests().iter().all(|r| r.body["event_action"] == "trigger"));

    // Renewed: the open alert resolves, in PagerDuty only.
    add_version(&mut inventory, &ca, now, 180 * DAY).await;
    let report = scan::scan_expiry(&n, &upstreams).await.unwrap();
    assert_eq!((report.alerted, report.resolved), (0, 2), "both threshold alerts of version 1 resolve");
    deliver_all(&n).await;
    let pd_requests = pd.requests();
    let resolves: Vec<_> = pd_requests.iter().filter(|r| r.body["event_action"] == "resolve").collect();
    assert_eq!(resolves.len(), 2);
    assert_eq!(resolves[0].body["dedup_key"], "certctl:expiry:certificates/web/versions/1");
    assert_eq!(sink.messages().len(), 2, "resolving sends no email");
    assert_eq!(hook.requests().len(), 2, "nor a webhook");
    assert_eq!(
        scan::scan_expiry(&n, &upstreams).await.unwrap(),
        scan::ScanReport { examined: 1, alerted: 0, resolved: 0 }
    );
    sink.stop().await;
}

#[tokio::test]
async fn a_threshold_alerts_once_per_version_across_restarts() {
    for place in places().await {
        eprintln!("on {}", place.backend());
        a_threshold_alerts_once_across_restarts(place).await;
    }
}

fn event(key: &str) -> Event {
    Event {
        event_type: Some(EventType::RenewalFailed),
        severity: Some(Severity::Error),
        certificate: "certificates/api".into(),
        owner: "owners/alice".into(),
        team: "teams/platform".into(),
        environment: "production".into(),
        title: "The renewal of certificates/api failed".into(),
        body: "jobs/1 failed for good.".into(),
        dedup_key: key.into(),
        ..Event::default()
    }
}

async fn a_restart_mid_retry_loses_nothing(place: Place) {
    let hook = FakeEndpoint::start(500, "try later").await;
    let (store, _db) = place.open().await;
    let n = core(store, Clock::system());
    let config = ChannelConfig::Webhook(webhook::WebhookConfig {
        url: hook.url("/h"),
        signing_secret: "0123456789abcdef".into(),
    });
    n.create_channel(&admin(), "hook", "Hook".into(), config, false, "").await.unwrap();
    n.create_rule(&admin(), "all", RoutingRule { channels: vec!["hook".into()], ..RoutingRule::default() }, "")
        .await
        .unwrap();
    let notification = n.publish(event("audit:7")).await.unwrap().expect("recorded");
    assert!(n.publish(event("audit:7")).await.unwrap().is_none(), "recorded once");
    certctl_notification::delivery::run_once(&n).await.unwrap();
    let filter = DeliveryFilter { notification_id: Some(notification.id.clone()), ..Default::default() };
    let pending = n.store().list_deliveries(&filter, None, 10).await.unwrap();
    assert_eq!((pending[0].state, pending[0].attempts), (DeliveryState::Pending, 1));
    assert!(pending[0].last_error.contains("HTTP 500 try later"), "{}", pending[0].last_error);
    assert_eq!(pending[0].response_status, 500);

    drop(n);
    hook.set_default(200, "ok");
    let (store, _db2) = place.open().await;
    let n = core(store, Clock::system());
    support::eventually("the retry after the restart", || async {
        certctl_notification::delivery::run_once(&n).await.unwrap();
        let d = n.store().list_deliveries(&filter, None, 10).await.unwrap();
        (d[0].state == DeliveryState::Delivered).then_some(())
    })
    .await;
    let requests = hook.requests();
    assert_eq!(requests.len(), 2, "one failed attempt, one delivered");
    assert_eq!(requests[0].headers["idempotency-key"], requests[1].headers["idempotency-key"]);

    // Inbox: one item each for the owner and the team, grouped by certificate.
    let inbox = certctl_notification::store::InboxFilter { recipient: "owners/alice".into(), ..Default::default() };
    let items = n.store().list_inbox(&inbox, None, 10).await.unwrap();
    assert_eq!(items.len(), 1);
    assert!(!items[0].read);
    n.store().set_read("owners/alice", &items[0].id, true).await.unwrap();
    n.publish(event("audit:8")).await.unwrap();
    let groups = n.store().inbox_groups("owners/alice", 0, 10).await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].certificate.as_str(), groups[0].total, groups[0].unread), ("certificates/api", 2, 1));

    // An endpoint that keeps failing: failed after the last attempt, visible, and retryable by hand.
    hook.set_default(503, "down for maintenance");
    let broken = n.publish(event("audit:9")).await.unwrap().unwrap();
    let filter = DeliveryFilter { notification_id: Some(broken.id.clone()), ..Default::default() };
    let failed = support::eventually("the last attempt", || async {
        certctl_notification::delivery::run_once(&n).await.unwrap();
        let d = n.store().list_deliveries(&filter, None, 10).await.unwrap().remove(0);
        (d.state == DeliveryState::Failed).then_some(d)
    })
    .await;
    assert_eq!(failed.attempts, 4);
    assert!(failed.last_error.contains("down for maintenance"), "{}", failed.last_error);
    hook.set_default(200, "ok");
    let again = n.retry_delivery(&admin(), &failed.name()).await.unwrap();
    assert_eq!((again.state, again.attempts), (DeliveryState::Pending, 0));
    support::deliver_all(&n).await;
    let d = n.store().list_deliveries(&filter, None, 10).await.unwrap().remove(0);
    assert_eq!(d.state, DeliveryState::Delivered);
}

#[tokio::test]
async fn a_restart_mid_retry_loses_nothing_and_failures_stay_visible() {
    for place in places().await {
        eprintln!("on {}", place.backend());
        a_restart_mid_retry_loses_nothing(place).await;
    }
}
