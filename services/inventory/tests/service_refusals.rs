//! Bad input through the gRPC edge: each refusal carries the canonical code
//! and names the offending field, and a refused request changes nothing.

mod support;

use certctl_proto::inventory as pb;
use support::{DAY, Pki, Served, T0, assert_code, assert_invalid, expect_invalid, mask};
use tonic::Code;

#[tokio::test]
async fn pem_that_is_not_a_certificate_chain_is_refused() {
    let srv = Served::start().await;
    srv.create_certificate("web", "web.example.com").await;
    let pki = Pki::new("Test Root");
    let other = Pki::new("Other Root");
    let leaf = pki.leaf("web.example.com", T0 - DAY, 90 * DAY);
    let cert = &leaf.certificate_pem;
    let key = &leaf.private_key_pem;
    let before = srv.outbox_len().await;

    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("plain text", "hello, this is not PEM".into()),
        ("broken base64", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into()),
        ("base64 that is not DER", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into()),
        ("truncated", cert[..cert.len() / 2].to_owned()),
        ("a private key", key.clone()),
        ("a key after the leaf", format!("{cert}{key}")),
        ("a request", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into()),
        ("leaf after its issuer", format!("{}{cert}", pki.ca.certificate_pem)),
        ("an unrelated issuer", other.chain(&leaf)),
    ];
    for (label, pem_chain) in cases {
        let status = srv.add_version("certificates/web", &pem_chain).await.expect_err(label);
        assert_invalid(&status, "pem_chain");
        if label.contains("key") {
            assert!(status.message().contains("private key"), "{label}: {}", status.message());
            let key_body = key.lines().nth(1).expect("a base64 line");
            assert!(!status.message().contains(key_body), "{label}: the refusal must not echo key material");
        }
    }

    let web = srv.get("certificates/web").await.unwrap();
    assert_eq!(web.state, pb::CertificateState::Pending as i32);
    assert!(web.current_version.is_empty());
    let versions = pb::ListCertificateVersionsRequest { parent: "certificates/web".into(), ..Default::default() };
    let listed = srv.client.clone().list_certificate_versions(versions).await.unwrap().into_inner();
    assert!(listed.certificate_versions.is_empty());
    assert_eq!(srv.outbox_len().await, before, "no refused version left an audit event");
}

#[tokio::test]
async fn text_between_pem_blocks_is_dropped() {
    let srv = Served::start().await;
    srv.create_certificate("web", "web.example.com").await;
    let pki = Pki::new("Test Root");
    let leaf = pki.leaf("web.example.com", T0 - DAY, 90 * DAY);
    // What `openssl s_client -showcerts` prints around each certificate.
    let noisy = format!(
        "subject=CN = web.example.com\n{}\nissuer=CN = Test Root\n 1 s:CN = Test Root\n{}trailing words\n",
        leaf.certificate_pem, pki.ca.certificate_pem
    );
    let version = srv.add_version("certificates/web", &noisy).await.unwrap();
    let clean = certctl_pki::parse_pem_chain(&pki.chain(&leaf)).unwrap();
    assert_eq!(version.pem_chain, clean.pem);
    assert!(!version.pem_chain.contains("subject=") && !version.pem_chain.contains("trailing"));
}

#[tokio::test]
async fn unknown_resources_are_not_found() {
    let srv = Served::start().await;
    srv.create_certificate("web", "web.example.com").await;
    let pki = Pki::new("Test Root");
    let chain = pki.chain(&pki.leaf("web.example.com", T0, 90 * DAY));
    srv.add_version("certificates/web", &chain).await.unwrap();
    let before = srv.outbox_len().await;
    let mut c = srv.client.clone();
    let nope = || "certificates/nope".to_owned();

    assert_code(srv.get("certificates/nope").await, Code::NotFound);
    let patch = pb::Certificate { name: nope(), display_name: "X".into(), ..Default::default() };
    let update = pb::UpdateCertificateRequest { certificate: Some(patch), update_mask: mask(&["display_name"]) };
    assert_code(c.update_certificate(update).await, Code::NotFound);
    assert_code(c.delete_certificate(pb::DeleteCertificateRequest { name: nope() }).await, Code::NotFound);
    assert_code(srv.add_version("certificates/nope", &chain).await, Code::NotFound);
    let versions = pb::ListCertificateVersionsRequest { parent: nope(), ..Default::default() };
    assert_code(c.list_certificate_versions(versions).await, Code::NotFound);
    for name in ["certificates/nope/versions/1", "certificates/web/versions/2"] {
        let get = pb::GetCertificateVersionRequest { name: name.into() };
        assert_code(c.get_certificate_version(get).await, Code::NotFound);
    }

    let owner = pb::Owner { name: "owners/nope".into(), display_name: "X".into(), ..Default::default() };
    assert_code(c.get_owner(pb::GetOwnerRequest { name: "owners/nope".into() }).await, Code::NotFound);
    let update = pb::UpdateOwnerRequest { owner: Some(owner), update_mask: None };
    assert_code(c.update_owner(update).await, Code::NotFound);
    assert_code(c.delete_owner(pb::DeleteOwnerRequest { name: "owners/nope".into() }).await, Code::NotFound);
    assert_code(c.get_team(pb::GetTeamRequest { name: "teams/nope".into() }).await, Code::NotFound);
    assert_code(c.delete_team(pb::DeleteTeamRequest { name: "teams/nope".into() }).await, Code::NotFound);
    assert_code(c.get_target(pb::GetTargetRequest { name: "targets/nope".into() }).await, Code::NotFound);
    assert_code(c.delete_target(pb::DeleteTargetRequest { name: "targets/nope".into() }).await, Code::NotFound);
    assert_code(c.get_agent(pb::GetAgentRequest { name: "agents/nope".into() }).await, Code::NotFound);
    assert_code(c.delete_agent(pb::DeleteAgentRequest { name: "agents/nope".into() }).await, Code::NotFound);
    let policy = pb::GetRenewalPolicyRequest { name: "renewalPolicies/nope".into() };
    assert_code(c.get_renewal_policy(policy).await, Code::NotFound);
    let policy = pb::DeleteRenewalPolicyRequest { name: "renewalPolicies/nope".into() };
    assert_code(c.delete_renewal_policy(policy).await, Code::NotFound);

    // A name of the wrong shape is the caller's mistake, not a missing resource.
    expect_invalid(c.get_certificate(pb::GetCertificateRequest { name: "owners/web".into() }).await, "name");
    expect_invalid(c.get_certificate(pb::GetCertificateRequest { name: "web".into() }).await, "name");
    let version = pb::GetCertificateVersionRequest { name: "certificates/web/versions/0".into() };
    expect_invalid(c.get_certificate_version(version).await, "name");
    assert_eq!(srv.outbox_len().await, before);
}

#[tokio::test]
async fn duplicates_are_already_exists_and_change_nothing() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let team = || pb::CreateTeamRequest {
        team: Some(pb::Team { display_name: "Edge".into(), ..Default::default() }),
        team_id: "edge".into(),
    };
    c.create_team(team()).await.unwrap();
    srv.create_owner("alice").await;
    let agent = || pb::CreateAgentRequest { agent: Some(Default::default()), agent_id: "host-1".into() };
    c.create_agent(agent()).await.unwrap();
    let policy = || pb::CreateRenewalPolicyRequest {
        renewal_policy: Some(Default::default()),
        renewal_policy_id: "default".into(),
    };
    c.create_renewal_policy(policy()).await.unwrap();
    let original = srv.create_certificate("web", "web.example.com").await;
    let pki = Pki::new("Test Root");
    let chain = pki.chain(&pki.leaf("web.example.com", T0, 90 * DAY));
    srv.add_version("certificates/web", &chain).await.unwrap();
    let before = srv.outbox_len().await;

    assert_code(c.create_team(team()).await, Code::AlreadyExists);
    let owner = pb::CreateOwnerRequest {
        owner: Some(pb::Owner { email: "x@example.com".into(), ..Default::default() }),
        owner_id: "alice".into(),
    };
    assert_code(c.create_owner(owner).await, Code::AlreadyExists);
    assert_code(c.create_agent(agent()).await, Code::AlreadyExists);
    assert_code(c.create_renewal_policy(policy()).await, Code::AlreadyExists);
    let again = pb::CreateCertificateRequest {
        certificate: Some(pb::Certificate { common_name: "other.example.com".into(), ..Default::default() }),
        certificate_id: "web".into(),
        request_id: "a-new-request".into(),
    };
    assert_code(c.create_certificate(again).await, Code::AlreadyExists);
    // The same leaf again is not a new version.
    assert_code(srv.add_version("certificates/web", &chain).await, Code::AlreadyExists);

    let web = srv.get("certificates/web").await.unwrap();
    assert_eq!(web.common_name, original.common_name);
    assert_eq!(web.current_version, "certificates/web/versions/1");
    let owner = c.get_owner(pb::GetOwnerRequest { name: "owners/alice".into() }).await.unwrap().into_inner();
    assert!(owner.owner.unwrap().email.is_empty());
    assert_eq!(srv.outbox_len().await, before);
}

#[tokio::test]
async fn update_masks_name_only_updatable_fields() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    srv.create_owner("alice").await;
    srv.create_owner("bob").await;
    let original = srv
        .create(
            "web",
            pb::Certificate {
                common_name: "web.example.com".into(),
                owner: "owners/alice".into(),
                ..Default::default()
            },
        )
        .await;
    let before = srv.outbox_len().await;
    let patch = || pb::Certificate {
        name: "certificates/web".into(),
        display_name: "Renamed".into(),
        owner: "owners/bob".into(),
        ..Default::default()
    };
    for paths in [&["nope"][..], &["display_name", "nope"], &["create_time"], &["state"], &["name"]] {
        let request = pb::UpdateCertificateRequest { certificate: Some(patch()), update_mask: mask(paths) };
        expect_invalid(c.update_certificate(request).await, "update_mask");
    }
    let owner = pb::Owner { name: "owners/alice".into(), display_name: "A".into(), ..Default::default() };
    let request = pb::UpdateOwnerRequest { owner: Some(owner), update_mask: mask(&["nickname"]) };
    expect_invalid(c.update_owner(request).await, "update_mask");
    assert_eq!(srv.get("certificates/web").await.unwrap(), original, "refused updates change nothing");
    assert_eq!(srv.outbox_len().await, before);

    // A good mask updates exactly what it names.
    let request = pb::UpdateCertificateRequest { certificate: Some(patch()), update_mask: mask(&["display_name"]) };
    let updated = c.update_certificate(request).await.unwrap().into_inner().certificate.unwrap();
    assert_eq!(updated.display_name, "Renamed");
    assert_eq!(updated.owner, "owners/alice");
    assert_eq!(srv.outbox_len().await, before + 1);
}

#[tokio::test]
async fn invalid_fields_are_named() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let create = |id: &str, certificate: pb::Certificate| pb::CreateCertificateRequest {
        certificate: Some(certificate),
        certificate_id: id.into(),
        ..Default::default()
    };
    let good = || pb::Certificate { common_name: "web.example.com".into(), ..Default::default() };
    let cases = [
        (create("Web_1", good()), "certificate_id"),
        (create("web", pb::Certificate { common_name: "not a host".into(), ..good() }), "certificate.common_name"),
        (create("web", pb::Certificate { owner: "owners/ghost".into(), ..good() }), "certificate.owner"),
        (create("web", pb::Certificate { owner: "teams/edge".into(), ..good() }), "certificate.owner"),
        (create("web", pb::Certificate { targets: vec!["targets/ghost".into()], ..good() }), "certificate.targets[0]"),
        (
            pb::CreateCertificateRequest { certificate: None, certificate_id: "web".into(), ..Default::default() },
            "certificate",
        ),
    ];
    for (request, field) in cases {
        expect_invalid(c.create_certificate(request).await, field);
    }
    expect_invalid(
        c.create_certificate(pb::CreateCertificateRequest { request_id: "r".repeat(129), ..create("web", good()) })
            .await,
        "request_id",
    );
    assert_invalid(
        &srv.list(pb::ListCertificatesRequest { state: 99, ..Default::default() }).await.unwrap_err(),
        "state",
    );
    assert_invalid(
        &srv.list(pb::ListCertificatesRequest { order_by: "owner".into(), ..Default::default() }).await.unwrap_err(),
        "order_by",
    );
    assert_invalid(
        &srv.list(pb::ListCertificatesRequest { owner: "alice".into(), ..Default::default() }).await.unwrap_err(),
        "owner",
    );
    assert_code(srv.get("certificates/web").await, Code::NotFound);
    assert_eq!(srv.outbox_len().await, 0);
}

#[tokio::test]
async fn resources_in_use_are_not_deleted() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let team = pb::Team { display_name: "Edge".into(), ..Default::default() };
    c.create_team(pb::CreateTeamRequest { team: Some(team), team_id: "edge".into() }).await.unwrap();
    srv.create_owner("alice").await;
    let policy =
        pb::CreateRenewalPolicyRequest { renewal_policy: Some(Default::default()), renewal_policy_id: "p".into() };
    c.create_renewal_policy(policy).await.unwrap();
    let certificate = pb::Certificate {
        common_name: "web.example.com".into(),
        owner: "owners/alice".into(),
        team: "teams/edge".into(),
        renewal_policy: "renewalPolicies/p".into(),
        ..Default::default()
    };
    srv.create("web", certificate).await;
    let before = srv.outbox_len().await;

    let owner = pb::DeleteOwnerRequest { name: "owners/alice".into() };
    assert_code(c.delete_owner(owner).await, Code::FailedPrecondition);
    assert_code(c.delete_team(pb::DeleteTeamRequest { name: "teams/edge".into() }).await, Code::FailedPrecondition);
    let policy = pb::DeleteRenewalPolicyRequest { name: "renewalPolicies/p".into() };
    assert_code(c.delete_renewal_policy(policy).await, Code::FailedPrecondition);
    // Pointing the certificate at an owner that does not exist is refused too.
    let patch = pb::Certificate { name: "certificates/web".into(), owner: "owners/ghost".into(), ..Default::default() };
    let update = pb::UpdateCertificateRequest { certificate: Some(patch), update_mask: mask(&["owner"]) };
    expect_invalid(c.update_certificate(update).await, "certificate.owner");

    assert!(c.get_owner(pb::GetOwnerRequest { name: "owners/alice".into() }).await.is_ok());
    assert!(c.get_team(pb::GetTeamRequest { name: "teams/edge".into() }).await.is_ok());
    assert_eq!(srv.get("certificates/web").await.unwrap().owner, "owners/alice");
    assert_eq!(srv.outbox_len().await, before);

    // Once nothing refers to them, they go.
    c.delete_certificate(pb::DeleteCertificateRequest { name: "certificates/web".into() }).await.unwrap();
    c.delete_owner(pb::DeleteOwnerRequest { name: "owners/alice".into() }).await.unwrap();
    c.delete_team(pb::DeleteTeamRequest { name: "teams/edge".into() }).await.unwrap();
    assert_eq!(srv.outbox_len().await, before + 3);
}

#[tokio::test]
async fn a_target_mask_naming_config_needs_a_config() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let nginx = pb::WebServerTargetConfig {
        certificate_path: "/etc/nginx/tls/web.crt".into(),
        key_path: "/etc/nginx/tls/web.key".into(),
        ..Default::default()
    };
    let target = pb::Target {
        display_name: "Front".into(),
        config: Some(pb::target::Config::Nginx(nginx)),
        ..Default::default()
    };
    let created = c
        .create_target(pb::CreateTargetRequest { target: Some(target), target_id: "front".into() })
        .await
        .unwrap()
        .into_inner()
        .target
        .unwrap();
    let before = srv.outbox_len().await;

    // The mask names only config, but the patch carries none: nothing else may change.
    let patch = pb::Target { name: "targets/front".into(), display_name: "Renamed".into(), ..Default::default() };
    let request = pb::UpdateTargetRequest { target: Some(patch.clone()), update_mask: mask(&["config"]) };
    expect_invalid(c.update_target(request).await, "target.config");
    let request = pb::UpdateTargetRequest { target: Some(patch.clone()), update_mask: mask(&["nginx"]) };
    expect_invalid(c.update_target(request).await, "target.config");
    let request = pb::UpdateTargetRequest { target: Some(patch), update_mask: mask(&["nope"]) };
    expect_invalid(c.update_target(request).await, "update_mask");
    let now = c.get_target(pb::GetTargetRequest { name: "targets/front".into() }).await.unwrap().into_inner();
    assert_eq!(now.target, Some(created));
    assert_eq!(srv.outbox_len().await, before);
}

#[tokio::test]
async fn references_inside_documents_also_block_deletes() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    c.create_team(pb::CreateTeamRequest { team: Some(Default::default()), team_id: "edge".into() }).await.unwrap();
    let owner = pb::Owner { team: "teams/edge".into(), ..Default::default() };
    c.create_owner(pb::CreateOwnerRequest { owner: Some(owner), owner_id: "olga".into() }).await.unwrap();
    c.create_agent(pb::CreateAgentRequest { agent: Some(Default::default()), agent_id: "web-01".into() })
        .await
        .unwrap();
    let target = pb::Target {
        agent: "agents/web-01".into(),
        config: Some(pb::target::Config::File(pb::FileTargetConfig {
            directory: "/etc/tls".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    c.create_target(pb::CreateTargetRequest { target: Some(target), target_id: "front".into() }).await.unwrap();
    let certificate = pb::Certificate {
        common_name: "web.example.com".into(),
        targets: vec!["targets/front".into()],
        ..Default::default()
    };
    srv.create("web", certificate).await;
    let before = srv.outbox_len().await;

    assert_code(c.delete_team(pb::DeleteTeamRequest { name: "teams/edge".into() }).await, Code::FailedPrecondition);
    assert_code(
        c.delete_agent(pb::DeleteAgentRequest { name: "agents/web-01".into() }).await,
        Code::FailedPrecondition,
    );
    assert_code(
        c.delete_target(pb::DeleteTargetRequest { name: "targets/front".into() }).await,
        Code::FailedPrecondition,
    );
    assert_eq!(srv.outbox_len().await, before, "refused deletes write nothing");

    // A target whose name merely starts the same way does not count as a reference.
    let other = pb::Target {
        config: Some(pb::target::Config::File(pb::FileTargetConfig { directory: "/srv".into(), ..Default::default() })),
        ..Default::default()
    };
    c.create_target(pb::CreateTargetRequest { target: Some(other), target_id: "front-2".into() }).await.unwrap();
    c.delete_target(pb::DeleteTargetRequest { name: "targets/front-2".into() }).await.unwrap();

    c.delete_certificate(pb::DeleteCertificateRequest { name: "certificates/web".into() }).await.unwrap();
    c.delete_target(pb::DeleteTargetRequest { name: "targets/front".into() }).await.unwrap();
    c.delete_agent(pb::DeleteAgentRequest { name: "agents/web-01".into() }).await.unwrap();
    c.delete_owner(pb::DeleteOwnerRequest { name: "owners/olga".into() }).await.unwrap();
    c.delete_team(pb::DeleteTeamRequest { name: "teams/edge".into() }).await.unwrap();
}

#[tokio::test]
async fn a_search_with_control_characters_is_refused() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    for search in ["\0\0\0", "a\nb", "\u{7f}x"] {
        let request = pb::ListCertificatesRequest { search: search.into(), ..Default::default() };
        expect_invalid(c.list_certificates(request).await, "search");
    }
    let request = pb::ListCertificatesRequest { environment: "prod\0".into(), ..Default::default() };
    expect_invalid(c.list_certificates(request).await, "environment");
    let fine = pb::ListCertificatesRequest { search: "\"*^".into(), ..Default::default() };
    assert!(c.list_certificates(fine).await.is_ok(), "quotes and FTS operators are plain text");
}

#[tokio::test]
async fn key_algorithm_other_is_refused_and_changes_nothing() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let original = srv.create_certificate("web", "web.example.com").await;
    let before = srv.outbox_len().await;
    let other = certctl_proto::types::KeyAlgorithm::Other as i32;

    for key_algorithm in [other, 99] {
        let certificate = pb::Certificate {
            common_name: "api.example.com".into(),
            server_keyed: true,
            key_algorithm,
            ..Default::default()
        };
        let request = pb::CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: "api".into(),
            ..Default::default()
        };
        expect_invalid(c.create_certificate(request).await, "certificate.key_algorithm");

        let patch = pb::Certificate {
            name: "certificates/web".into(),
            server_keyed: true,
            key_algorithm,
            ..Default::default()
        };
        for paths in [&["key_algorithm"][..], &["server_keyed", "key_algorithm"], &[]] {
            let request = pb::UpdateCertificateRequest { certificate: Some(patch.clone()), update_mask: mask(paths) };
            expect_invalid(c.update_certificate(request).await, "certificate.key_algorithm");
        }
    }
    assert_code(srv.get("certificates/api").await, Code::NotFound);
    assert_eq!(srv.get("certificates/web").await.unwrap(), original);
    assert_eq!(srv.outbox_len().await, before);
}
