//! The inventory through its gRPC edge, served in-process on loopback: imports,
//! versions from real chains, and states derived from the clock and policy.

mod support;

use certctl_inventory::store::Outbox;
use certctl_proto::inventory as pb;
use certctl_proto::types::KeyAlgorithm;
use pb::CertificateState::{Active, Expired, Expiring, Pending};
use support::{DAY, Pki, Served, T0, expect_invalid, mask, ts};

fn item(pem_chain: &str, certificate_id: &str, source: &str) -> pb::ImportItem {
    pb::ImportItem {
        pem_chain: pem_chain.into(),
        certificate_id: certificate_id.into(),
        source: source.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn import_takes_each_item_on_its_own() {
    let srv = Served::start().await;
    srv.create_owner("alice").await;
    let pki = Pki::new("Test Root");
    let api = pki.leaf("api.example.com", T0 - DAY, 90 * DAY);
    let db = pki.leaf("db.example.com", T0 - DAY, 90 * DAY);
    let web = pki.leaf("web.example.com", T0 - 80 * DAY, 90 * DAY);
    let web_renewed = pki.leaf("web.example.com", T0 - DAY, 90 * DAY);
    let before = srv.outbox_len().await;

    let items = vec![
        pb::ImportItem {
            owner: "owners/alice".into(),
            environment: "prod".into(),
            ..item(&pki.chain(&api), "", "/etc/ssl/api.pem")
        },
        item("garbage", "", "/etc/ssl/junk.pem"),
        item(&db.private_key_pem, "", ""),
        item(&pki.chain(&db), "db", "/etc/ssl/db.pem"),
        pb::ImportItem { owner: "owners/ghost".into(), ..item(&web.certificate_pem, "", "/etc/ssl/web-ghost.pem") },
        item(&web.certificate_pem, "web", "/etc/ssl/web.pem"),
        item(&pki.chain(&web_renewed), "web", "/etc/ssl/web-renewed.pem"),
        item(&web_renewed.certificate_pem, "web", "/etc/ssl/web-again.pem"),
        item(&pki.chain(&api), "Not_An_Id", "/etc/ssl/bad-id.pem"),
    ];
    let mut client = srv.client.clone();
    let response = client.import_certificates(pb::ImportCertificatesRequest { items }).await.unwrap().into_inner();
    let outcome: Vec<(&str, &str, bool)> =
        response.results.iter().map(|r| (r.source.as_str(), r.version.as_str(), r.error.is_empty())).collect();
    assert_eq!(
        outcome,
        [
            ("/etc/ssl/api.pem", "certificates/api.example.com/versions/1", true),
            ("/etc/ssl/junk.pem", "", false),
            ("items[2]", "", false),
            ("/etc/ssl/db.pem", "certificates/db/versions/1", true),
            ("/etc/ssl/web-ghost.pem", "", false),
            ("/etc/ssl/web.pem", "certificates/web/versions/1", true),
            ("/etc/ssl/web-renewed.pem", "certificates/web/versions/2", true),
            ("/etc/ssl/web-again.pem", "", false),
            ("/etc/ssl/bad-id.pem", "", false),
        ]
    );
    assert_eq!((response.imported, response.failed), (4, 5));
    let errors: Vec<&str> = response.results.iter().map(|r| r.error.as_str()).collect();
    assert!(errors[1].contains("PEM"), "{}", errors[1]);
    assert!(errors[2].contains("private key"), "{}", errors[2]);
    assert!(errors[4].contains("owners/ghost"), "{}", errors[4]);
    assert!(errors[7].contains("already exists"), "{}", errors[7]);
    assert!(errors[8].contains("certificate_id"), "{}", errors[8]);

    // Only the good items left anything behind: three certificates, four versions.
    let listed = srv.list(pb::ListCertificatesRequest { order_by: "name".into(), ..Default::default() }).await.unwrap();
    let names: Vec<_> = listed.certificates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["certificates/api.example.com", "certificates/db", "certificates/web"]);
    assert_eq!(srv.outbox_len().await, before + 3 + 4);

    let api = &listed.certificates[0];
    assert_eq!(api.common_name, "api.example.com");
    assert_eq!(api.subject_alt_names, ["api.example.com"]);
    assert_eq!(api.owner, "owners/alice");
    assert_eq!(api.environment, "prod");
    assert_eq!(api.metadata.get("imported_from").map(String::as_str), Some("/etc/ssl/api.pem"));
    assert_eq!(api.state, pb::CertificateState::Active as i32);
    let web = &listed.certificates[2];
    assert_eq!(web.current_version, "certificates/web/versions/2");
    assert_eq!(web.not_after, ts(T0 - DAY + 90 * DAY));

    expect_invalid(client.import_certificates(pb::ImportCertificatesRequest { items: Vec::new() }).await, "items");
    let too_many = vec![item("x", "", ""); 1001];
    expect_invalid(client.import_certificates(pb::ImportCertificatesRequest { items: too_many }).await, "items");
}

#[tokio::test]
async fn versions_come_from_real_chains() {
    let srv = Served::start().await;
    let created = srv
        .create(
            "web",
            pb::Certificate {
                common_name: "web.example.com".into(),
                subject_alt_names: vec!["web.example.com".into(), "10.0.0.1".into()],
                ..Default::default()
            },
        )
        .await;
    assert_eq!(created.state, pb::CertificateState::Pending as i32);
    assert_eq!(created.create_time, ts(T0));
    let pki = Pki::new("Test Root");
    let sans = ["web.example.com".to_owned(), "10.0.0.1".to_owned()];
    let leaf = pki.ca.issue_leaf("web.example.com", &sans, certctl_pki::KeyType::EcdsaP256, T0 - DAY, 90 * DAY);
    let chain = pki.chain(&leaf.unwrap());
    let parsed = certctl_pki::parse_pem_chain(&chain).unwrap();

    srv.set_now(T0 + 60);
    let v1 = srv.add_version("certificates/web", &chain).await.unwrap();
    assert_eq!(v1.name, "certificates/web/versions/1");
    assert_eq!(v1.pem_chain, parsed.pem);
    assert_eq!(v1.serial_number, parsed.leaf.serial_number);
    assert_eq!(v1.sha256_fingerprint, parsed.leaf.sha256_fingerprint);
    assert_eq!(v1.sha256_fingerprint.len(), 64);
    assert!(v1.subject.contains("web.example.com"), "{}", v1.subject);
    assert!(v1.issuer.contains("Test Root"), "{}", v1.issuer);
    assert_eq!(v1.subject_alt_names, sans);
    assert_eq!(v1.key_algorithm, KeyAlgorithm::EcdsaP256 as i32);
    assert_eq!(v1.key_size, 256);
    assert_eq!((v1.not_before, v1.not_after), (ts(T0 - DAY), ts(T0 + 89 * DAY)));
    assert_eq!(v1.create_time, ts(T0 + 60));

    let mut client = srv.client.clone();
    let get = pb::GetCertificateVersionRequest { name: v1.name.clone() };
    assert_eq!(client.get_certificate_version(get).await.unwrap().into_inner().certificate_version, Some(v1.clone()));
    let web = srv.get("certificates/web").await.unwrap();
    assert_eq!(web.current_version, v1.name);
    assert_eq!(web.serial_number, v1.serial_number);
    assert_eq!(web.sha256_fingerprint, v1.sha256_fingerprint);
    assert_eq!((web.not_before, web.not_after), (v1.not_before, v1.not_after));
    assert_eq!(web.state, pb::CertificateState::Active as i32);
    assert_eq!(web.update_time, ts(T0 + 60));
    assert_eq!(web.create_time, ts(T0));

    // A renewal becomes current; the versions list newest first, page by page.
    let renewed = pki.leaf("web.example.com", T0, 90 * DAY);
    let v2 = srv.add_version("certificates/web", &pki.chain(&renewed)).await.unwrap();
    assert_eq!(v2.name, "certificates/web/versions/2");
    assert_eq!(srv.get("certificates/web").await.unwrap().current_version, v2.name);
    let mut seen = Vec::new();
    let mut page_token = String::new();
    for _ in 0..5 {
        let request =
            pb::ListCertificateVersionsRequest { parent: "certificates/web".into(), page_size: 1, page_token };
        let page = client.list_certificate_versions(request).await.unwrap().into_inner();
        seen.extend(page.certificate_versions.into_iter().map(|v| v.name));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, [v2.name.as_str(), v1.name.as_str()]);
}

fn with_state(state: pb::CertificateState) -> pb::ListCertificatesRequest {
    pb::ListCertificatesRequest { state: state as i32, order_by: "name".into(), ..Default::default() }
}

async fn names_in(srv: &Served, state: pb::CertificateState) -> Vec<String> {
    let listed = srv.list(with_state(state)).await.unwrap();
    listed.certificates.into_iter().map(|c| c.name).collect()
}

async fn state_of(srv: &Served, name: &str) -> pb::CertificateState {
    pb::CertificateState::try_from(srv.get(name).await.unwrap().state).expect("a known state")
}

async fn summary(srv: &Served) -> pb::SummarizeCertificatesResponse {
    srv.client.clone().summarize_certificates(pb::SummarizeCertificatesRequest {}).await.unwrap().into_inner()
}

#[tokio::test]
async fn states_follow_the_clock() {
    let srv = Served::start().await;
    let pki = Pki::new("Test Root");
    // (id, not_before, lifetime): expired 10 days ago, 10 days left, 89 days left.
    let issued = [("old", T0 - 100 * DAY), ("soon", T0 - 80 * DAY), ("fresh", T0 - DAY)];
    srv.create_certificate("pending", "pending.example.com").await;
    for (id, not_before) in issued {
        let cn = format!("{id}.example.com");
        srv.create_certificate(id, &cn).await;
        srv.add_version(&format!("certificates/{id}"), &pki.chain(&pki.leaf(&cn, not_before, 90 * DAY))).await.unwrap();
    }
    assert_eq!(state_of(&srv, "certificates/pending").await, Pending);
    assert_eq!(state_of(&srv, "certificates/old").await, Expired);
    assert_eq!(state_of(&srv, "certificates/soon").await, Expiring);
    assert_eq!(state_of(&srv, "certificates/fresh").await, Active);
    assert_eq!(names_in(&srv, Pending).await, ["certificates/pending"]);
    assert_eq!(names_in(&srv, Expired).await, ["certificates/old"]);
    assert_eq!(names_in(&srv, Expiring).await, ["certificates/soon"]);
    assert_eq!(names_in(&srv, Active).await, ["certificates/fresh"]);
    let s = summary(&srv).await;
    assert_eq!((s.total, s.pending, s.active, s.expiring, s.expired, s.revoked), (4, 1, 1, 1, 1, 0));
    assert_eq!((s.expiring_within_7_days, s.expiring_within_30_days), (0, 1));

    // Sixty days on: "fresh" has 29 days left, "soon" is past its end.
    srv.set_now(T0 + 60 * DAY);
    assert_eq!(state_of(&srv, "certificates/fresh").await, Expiring);
    assert_eq!(state_of(&srv, "certificates/soon").await, Expired);
    assert_eq!(names_in(&srv, Expired).await, ["certificates/old", "certificates/soon"]);
    assert_eq!(names_in(&srv, Expiring).await, ["certificates/fresh"]);
    assert!(names_in(&srv, Active).await.is_empty());
    let s = summary(&srv).await;
    assert_eq!((s.total, s.pending, s.active, s.expiring, s.expired), (4, 1, 0, 1, 2));
    assert_eq!((s.expiring_within_7_days, s.expiring_within_30_days), (0, 1));

    // expire_before picks by the current version's not_after, pending never.
    let before = pb::ListCertificatesRequest { expire_before: ts(T0 + 30 * DAY), ..Default::default() };
    let names: Vec<_> = srv.list(before).await.unwrap().certificates.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["certificates/old", "certificates/soon"]);
}

#[tokio::test]
async fn the_policy_threshold_decides_expiring() {
    let srv = Served::start().await;
    let mut client = srv.client.clone();
    let policy = pb::RenewalPolicy { alert_threshold_days: vec![7, 0], ..Default::default() };
    let request = pb::CreateRenewalPolicyRequest { renewal_policy: Some(policy), renewal_policy_id: "short".into() };
    client.create_renewal_policy(request).await.unwrap();
    let pki = Pki::new("Test Root");
    for (id, policy) in [("on-policy", "renewalPolicies/short"), ("on-default", "")] {
        let cn = format!("{id}.example.com");
        let c = pb::Certificate { common_name: cn.clone(), renewal_policy: policy.into(), ..Default::default() };
        srv.create(id, c).await;
        // Ten days left: inside the default 30-day threshold, outside 7 days.
        let leaf = pki.leaf(&cn, T0 - 80 * DAY, 90 * DAY);
        srv.add_version(&format!("certificates/{id}"), &pki.chain(&leaf)).await.unwrap();
    }
    assert_eq!(names_in(&srv, pb::CertificateState::Active).await, ["certificates/on-policy"]);
    assert_eq!(names_in(&srv, pb::CertificateState::Expiring).await, ["certificates/on-default"]);

    // Raising the policy's first threshold to 14 days moves its certificates.
    let patch = pb::RenewalPolicy {
        name: "renewalPolicies/short".into(),
        alert_threshold_days: vec![14],
        ..Default::default()
    };
    let request =
        pb::UpdateRenewalPolicyRequest { renewal_policy: Some(patch), update_mask: mask(&["alert_threshold_days"]) };
    let updated = client.update_renewal_policy(request).await.unwrap().into_inner().renewal_policy.unwrap();
    assert_eq!(updated.alert_threshold_days, [14]);
    assert!(names_in(&srv, pb::CertificateState::Active).await.is_empty());
    let on_policy = srv.get("certificates/on-policy").await.unwrap();
    assert_eq!(on_policy.state, pb::CertificateState::Expiring as i32);
    assert_eq!(
        names_in(&srv, pb::CertificateState::Expiring).await,
        ["certificates/on-default", "certificates/on-policy"]
    );
}

#[tokio::test]
async fn a_retried_create_returns_the_first_result() {
    let srv = Served::start().await;
    let mut client = srv.client.clone();
    let create = |id: &str, cn: &str| {
        let certificate = pb::Certificate { common_name: cn.into(), ..Default::default() };
        let body = pb::CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: id.into(),
            request_id: "3f1c9b7e-retry".into(),
        };
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert(certctl_inventory::grpc::ACTOR_HEADER, "users/ops".parse().unwrap());
        request.metadata_mut().insert(certctl_inventory::grpc::REQUEST_ID_HEADER, "trace-7".parse().unwrap());
        request
    };
    let first = client.create_certificate(create("web", "web.example.com")).await.unwrap().into_inner();
    srv.set_now(T0 + 5);
    let retry = client.create_certificate(create("web2", "web2.example.com")).await.unwrap().into_inner();
    assert_eq!(retry, first);
    assert_eq!(retry.certificate.unwrap().create_time, ts(T0));
    support::assert_code(srv.get("certificates/web2").await, tonic::Code::NotFound);

    let outbox = srv.store.outbox_batch(10).await.unwrap();
    assert_eq!(outbox.len(), 1, "the retry is not a second mutation");
    let event = &outbox[0].event;
    assert_eq!((event.action.as_str(), event.resource.as_str()), ("inventory.CreateCertificate", "certificates/web"));
    assert_eq!((event.actor.as_str(), event.request_id.as_str()), ("users/ops", "trace-7"));
}

#[tokio::test]
async fn a_target_config_is_masked_by_its_proto_field() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let nginx = |verify_port| {
        pb::target::Config::Nginx(pb::WebServerTargetConfig {
            certificate_path: "/etc/nginx/tls/web.crt".into(),
            key_path: "/etc/nginx/tls/web.key".into(),
            verify_port,
            ..Default::default()
        })
    };
    let target = pb::Target { display_name: "Front".into(), config: Some(nginx(0)), ..Default::default() };
    c.create_target(pb::CreateTargetRequest { target: Some(target), target_id: "front".into() }).await.unwrap();
    let update = |config, paths: &[&str]| pb::UpdateTargetRequest {
        target: Some(pb::Target {
            name: "targets/front".into(),
            display_name: "Ignored".into(),
            config,
            ..Default::default()
        }),
        update_mask: mask(paths),
    };
    let mut update_target = async |request| c.update_target(request).await.unwrap().into_inner().target.unwrap();

    // The oneof's members are the proto fields a mask names (AIP-161), as the GUI sends them.
    let updated = update_target(update(Some(nginx(443)), &["nginx"])).await;
    assert_eq!(updated.config, Some(nginx(443)));
    assert_eq!(updated.display_name, "Front", "only the masked field changes");
    let file = pb::target::Config::File(pb::FileTargetConfig { directory: "/srv/certs".into(), ..Default::default() });
    let switched = update_target(update(Some(file.clone()), &["file", "nginx"])).await;
    assert_eq!(switched.config, Some(file));
    // The oneof's own name works too.
    let back = update_target(update(Some(nginx(8443)), &["config"])).await;
    assert_eq!(back.config, Some(nginx(8443)));
    assert_eq!(back.display_name, "Front");
}

/// The details of the newest audit event waiting in the outbox.
async fn last_event(srv: &Served) -> certctl_domain::audit::NewAuditEvent {
    srv.store.outbox_batch(100_000).await.unwrap().pop().expect("an audit event").event
}

#[tokio::test]
async fn key_custody_is_set_on_create_and_through_the_mask() {
    let srv = Served::start().await;
    let mut client = srv.client.clone();
    let created = srv
        .create(
            "web",
            pb::Certificate {
                common_name: "web.example.com".into(),
                server_keyed: true,
                key_algorithm: KeyAlgorithm::Rsa3072 as i32,
                ..Default::default()
            },
        )
        .await;
    assert!(created.server_keyed);
    assert_eq!(created.key_algorithm, KeyAlgorithm::Rsa3072 as i32);
    assert_eq!(srv.get("certificates/web").await.unwrap(), created);
    let listed = srv.list(pb::ListCertificatesRequest::default()).await.unwrap().certificates;
    assert_eq!(listed, std::slice::from_ref(&created));
    let event = last_event(&srv).await;
    assert_eq!(event.details["server_keyed"], true);
    assert_eq!(event.details["key_algorithm"], "RSA_3072");

    // Defaults: the key stays with the agent, the profile picks its type.
    let plain = srv.create_certificate("api", "api.example.com").await;
    assert!(!plain.server_keyed);
    assert_eq!(plain.key_algorithm, KeyAlgorithm::Unspecified as i32);
    assert_eq!(last_event(&srv).await.details["key_algorithm"], serde_json::Value::Null);

    let mut update = async |patch: pb::Certificate, paths: &[&str]| {
        let patch = pb::Certificate { name: "certificates/web".into(), ..patch };
        let request = pb::UpdateCertificateRequest { certificate: Some(patch), update_mask: mask(paths) };
        client.update_certificate(request).await.unwrap().into_inner().certificate.unwrap()
    };
    // Only the named field changes; a false or unspecified value in a named path is set.
    let patch = pb::Certificate { key_algorithm: KeyAlgorithm::Ed25519 as i32, ..Default::default() };
    let updated = update(patch, &["key_algorithm"]).await;
    assert_eq!((updated.server_keyed, updated.key_algorithm), (true, KeyAlgorithm::Ed25519 as i32));
    let updated = update(pb::Certificate::default(), &["server_keyed"]).await;
    assert_eq!((updated.server_keyed, updated.key_algorithm), (false, KeyAlgorithm::Ed25519 as i32));
    let event = last_event(&srv).await;
    assert_eq!(event.details["update_mask"], serde_json::json!(["server_keyed"]));
    assert_eq!(event.details["server_keyed"], false);
    assert_eq!(event.details["key_algorithm"], "ED25519");
    // Without a mask, a set field is an update and an unset one is not.
    let patch = pb::Certificate { server_keyed: true, display_name: "Web".into(), ..Default::default() };
    let updated = update(patch, &[]).await;
    assert_eq!((updated.server_keyed, updated.key_algorithm), (true, KeyAlgorithm::Ed25519 as i32));
    let updated = update(pb::Certificate::default(), &["key_algorithm"]).await;
    assert_eq!(updated.key_algorithm, KeyAlgorithm::Unspecified as i32);
    assert_eq!(updated.display_name, "Web");
    assert_eq!(srv.get("certificates/web").await.unwrap(), updated);
}

fn revocation(name: &str, reason: &str, revoke_time: i64) -> pb::RecordRevocationRequest {
    pb::RecordRevocationRequest { name: name.into(), reason: reason.into(), revoke_time: ts(revoke_time) }
}

#[tokio::test]
async fn revocations_are_recorded_once_per_version() {
    let srv = Served::start().await;
    let mut client = srv.client.clone();
    let pki = Pki::new("Test Root");
    srv.create_certificate("web", "web.example.com").await;
    for not_before in [T0 - 2 * DAY, T0 - DAY] {
        srv.add_version("certificates/web", &pki.chain(&pki.leaf("web.example.com", not_before, 90 * DAY)))
            .await
            .unwrap();
    }
    let version = async |name: &str| {
        let request = pb::GetCertificateVersionRequest { name: name.into() };
        srv.client.clone().get_certificate_version(request).await.unwrap().into_inner().certificate_version.unwrap()
    };
    let v1 = "certificates/web/versions/1";
    let v2 = "certificates/web/versions/2";

    // An old version: the certificate stays active, the version shows it.
    srv.set_now(T0 + 100);
    let response = client.record_revocation(revocation(v1, "superseded", T0 + 50)).await.unwrap().into_inner();
    let web = response.certificate.unwrap();
    assert_eq!(web.state, Active as i32);
    assert_eq!(web.update_time, ts(T0), "the certificate itself did not change");
    let old = version(v1).await;
    assert_eq!((old.revoke_time, old.revocation_reason.as_str()), (ts(T0 + 50), "superseded"));
    let current = version(v2).await;
    assert_eq!((current.revoke_time, current.revocation_reason.as_str()), (None, ""));

    // The current version: the certificate is revoked, and counted so.
    let mut request = tonic::Request::new(revocation(v2, "keyCompromise", T0 + 60));
    request.metadata_mut().insert(certctl_inventory::grpc::ACTOR_HEADER, "services/issuance".parse().unwrap());
    let revoked = client.record_revocation(request).await.unwrap().into_inner().certificate.unwrap();
    assert_eq!(revoked.state, pb::CertificateState::Revoked as i32);
    assert_eq!(revoked.update_time, ts(T0 + 100));
    assert_eq!(srv.get("certificates/web").await.unwrap(), revoked);
    assert_eq!(version(v2).await.revocation_reason, "keyCompromise");
    assert_eq!(names_in(&srv, pb::CertificateState::Revoked).await, ["certificates/web"]);
    assert!(names_in(&srv, Active).await.is_empty());
    let s = summary(&srv).await;
    assert_eq!((s.total, s.active, s.revoked), (1, 0, 1));
    let event = last_event(&srv).await;
    assert_eq!((event.action.as_str(), event.resource.as_str()), ("inventory.RecordRevocation", v2));
    assert_eq!(event.actor, "services/issuance");
    assert_eq!(event.details, serde_json::json!({"reason": "keyCompromise", "revoke_time": T0 + 60}));

    // The same again is a no-op; a different one is refused; neither is audited.
    let events = srv.outbox_len().await;
    srv.set_now(T0 + 200);
    let again = client.record_revocation(revocation(v2, "keyCompromise", T0 + 60)).await.unwrap().into_inner();
    assert_eq!(again.certificate, Some(revoked.clone()));
    let status = client.record_revocation(revocation(v2, "superseded", T0 + 60)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("keyCompromise"), "{}", status.message());
    assert_eq!(version(v2).await.revocation_reason, "keyCompromise");
    assert_eq!(srv.outbox_len().await, events);

    // Unknown versions, malformed names and bad revocations change nothing either.
    for name in ["certificates/web/versions/3", "certificates/nope/versions/1"] {
        support::assert_code(
            client.record_revocation(revocation(name, "keyCompromise", T0)).await,
            tonic::Code::NotFound,
        );
    }
    expect_invalid(client.record_revocation(revocation("certificates/web", "keyCompromise", T0)).await, "name");
    expect_invalid(client.record_revocation(revocation(v1, "compromised", T0)).await, "reason");
    let untimed = pb::RecordRevocationRequest { revoke_time: None, ..revocation(v1, "", T0) };
    expect_invalid(client.record_revocation(untimed).await, "revoke_time");
    assert_eq!(srv.outbox_len().await, events);

    // A new version makes the certificate active again.
    let renewed = pki.leaf("web.example.com", T0, 90 * DAY);
    srv.add_version("certificates/web", &pki.chain(&renewed)).await.unwrap();
    assert_eq!(state_of(&srv, "certificates/web").await, Active);
    let s = summary(&srv).await;
    assert_eq!((s.total, s.active, s.revoked), (1, 1, 0));
    assert_eq!(version(v2).await.revoke_time, ts(T0 + 60), "the revoked version stays revoked");
}
