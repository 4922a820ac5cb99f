//! Discovery through the gRPC edge: agents report DER certificates, the
//! inventory keeps one record per fingerprint, and operators claim (import)
//! or dismiss them.

mod support;

use certctl_inventory::store::Outbox;
use certctl_proto::inventory as pb;
use pb::DiscoveryState::{Claimed, Dismissed, New};
use support::{DAY, Pki, Served, T0, assert_code, expect_invalid, ts};
use tonic::Code;

/// The DER inside one PEM block (a test needs no base64 crate for this).
fn der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    let (mut bits, mut n) = (0u32, 0);
    for c in body.bytes().filter(|c| *c != b'=') {
        bits = (bits << 6) | u32::from(value(c));
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

fn report(path: &str, certificate_der: Vec<u8>) -> pb::DiscoveryReport {
    pb::DiscoveryReport { path: path.into(), certificate_der }
}

async fn create_agent(srv: &Served, id: &str) {
    let request = pb::CreateAgentRequest { agent: Some(pb::Agent::default()), agent_id: id.into() };
    srv.client.clone().create_agent(request).await.expect("CreateAgent");
}

async fn report_from(
    srv: &Served,
    agent: &str,
    reports: Vec<pb::DiscoveryReport>,
) -> Result<pb::ReportDiscoveriesResponse, tonic::Status> {
    let request = pb::ReportDiscoveriesRequest { agent: agent.into(), reports };
    Ok(srv.client.clone().report_discoveries(request).await?.into_inner())
}

async fn discovered(srv: &Served, state: pb::DiscoveryState) -> Vec<pb::DiscoveredCertificate> {
    let request = pb::ListDiscoveredCertificatesRequest { state: state as i32, ..Default::default() };
    srv.client.clone().list_discovered_certificates(request).await.unwrap().into_inner().discovered_certificates
}

async fn get(srv: &Served, name: &str) -> pb::DiscoveredCertificate {
    let request = pb::GetDiscoveredCertificateRequest { name: name.into() };
    srv.client.clone().get_discovered_certificate(request).await.unwrap().into_inner().discovered_certificate.unwrap()
}

fn claim(name: &str) -> pb::ClaimDiscoveredCertificateRequest {
    pb::ClaimDiscoveredCertificateRequest { name: name.into(), ..Default::default() }
}

fn counts(r: &pb::ReportDiscoveriesResponse) -> (i32, i32) {
    (r.new_count, r.known_count)
}

#[tokio::test]
async fn discoveries_are_deduplicated_then_claimed_or_dismissed() {
    let srv = Served::start().await;
    create_agent(&srv, "a").await;
    create_agent(&srv, "b").await;
    let pki = Pki::new("Found Root");
    let web = pki.leaf("web.example.com", T0 - DAY, 90 * DAY);
    let old = pki.leaf("old.example.com", T0 - 400 * DAY, 90 * DAY);
    let before = srv.outbox_len().await;

    let first = report_from(
        &srv,
        "agents/a",
        vec![
            report("/etc/nginx/web.pem", der(&web.certificate_pem)),
            report("/etc/ssl/old.pem", der(&old.certificate_pem)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(counts(&first), (2, 0));
    srv.set_now(T0 + 60);
    let second = report_from(&srv, "agents/b", vec![report("/srv/web.crt", der(&web.certificate_pem))]).await.unwrap();
    assert_eq!(counts(&second), (0, 1));
    assert_eq!(srv.outbox_len().await, before + 2, "one event per certificate found");

    let found = discovered(&srv, New).await;
    assert_eq!(found.len(), 2);
    let web_found = found.iter().find(|d| d.subject.contains("web.example.com")).expect("web is listed").clone();
    assert_eq!(web_found.name, format!("discoveredCertificates/{}", &web_found.fingerprint[..32]));
    assert_eq!(web_found.fingerprint.len(), 64);
    assert_eq!(web_found.dns_names, ["web.example.com"]);
    assert!(web_found.issuer.contains("Found Root"), "{}", web_found.issuer);
    assert_eq!((web_found.not_before, web_found.not_after), (ts(T0 - DAY), ts(T0 + 89 * DAY)));
    assert_eq!((web_found.first_seen_time, web_found.last_seen_time), (ts(T0), ts(T0 + 60)));
    let places: Vec<(&str, &str)> = web_found.locations.iter().map(|l| (l.agent.as_str(), l.path.as_str())).collect();
    assert_eq!(places, [("agents/b", "/srv/web.crt"), ("agents/a", "/etc/nginx/web.pem")]);
    assert_eq!(get(&srv, &web_found.name).await, web_found);

    // Claim: an unmanaged certificate, imported as ImportCertificates would.
    srv.create_owner("alice").await;
    let before = srv.outbox_len().await;
    let request = pb::ClaimDiscoveredCertificateRequest { owner: "owners/alice".into(), ..claim(&web_found.name) };
    let claimed = srv.client.clone().claim_discovered_certificate(request.clone()).await.unwrap().into_inner();
    let claimed = claimed.discovered_certificate.unwrap();
    assert_eq!((claimed.state, claimed.certificate.as_str()), (Claimed as i32, "certificates/web.example.com"));
    let certificate = srv.get("certificates/web.example.com").await.unwrap();
    assert_eq!((certificate.owner.as_str(), certificate.issuer.as_str()), ("owners/alice", ""), "unmanaged: no issuer");
    assert_eq!(certificate.sha256_fingerprint, web_found.fingerprint);
    assert_eq!(certificate.metadata.get("imported_from"), Some(&web_found.name));
    let actions: Vec<String> =
        srv.store.outbox_batch(1000).await.unwrap()[before..].iter().map(|e| e.event.action.clone()).collect();
    assert_eq!(
        actions,
        ["inventory.CreateCertificate", "inventory.CreateCertificateVersion", "inventory.ClaimDiscoveredCertificate"]
    );
    // Claiming again returns it, and imports nothing.
    let again = srv.client.clone().claim_discovered_certificate(request).await.unwrap().into_inner();
    assert_eq!(again.discovered_certificate.unwrap(), claimed);
    assert_eq!(srv.outbox_len().await, before + 3);
    let elsewhere = pb::ClaimDiscoveredCertificateRequest { certificate_id: "other".into(), ..claim(&web_found.name) };
    assert_code(srv.client.clone().claim_discovered_certificate(elsewhere).await, Code::FailedPrecondition);

    // Dismiss the other; a later report keeps it dismissed but moves its location.
    let old_found = found.iter().find(|d| d.subject.contains("old.example.com")).expect("old is listed").clone();
    let dismiss = pb::DismissDiscoveredCertificateRequest { name: old_found.name.clone() };
    let dismissed = srv.client.clone().dismiss_discovered_certificate(dismiss.clone()).await.unwrap().into_inner();
    assert_eq!(dismissed.discovered_certificate.unwrap().state, Dismissed as i32);
    srv.set_now(T0 + 120);
    let third =
        report_from(&srv, "agents/a", vec![report("/etc/ssl/old.pem", der(&old.certificate_pem))]).await.unwrap();
    assert_eq!(counts(&third), (0, 1));
    let old_now = get(&srv, &old_found.name).await;
    assert_eq!((old_now.state, old_now.locations[0].last_seen_time), (Dismissed as i32, ts(T0 + 120)));
    assert!(discovered(&srv, New).await.is_empty());
    let claimed_only: Vec<String> = discovered(&srv, Claimed).await.into_iter().map(|d| d.name).collect();
    assert_eq!(claimed_only, std::slice::from_ref(&web_found.name));
    srv.client.clone().dismiss_discovered_certificate(dismiss).await.expect("dismissing twice is fine");
    let dismiss_claimed = pb::DismissDiscoveredCertificateRequest { name: web_found.name };
    assert_code(srv.client.clone().dismiss_discovered_certificate(dismiss_claimed).await, Code::FailedPrecondition);
}

#[tokio::test]
async fn managed_certificates_are_found_claimed_and_claims_pick_free_ids() {
    let srv = Served::start().await;
    create_agent(&srv, "a").await;
    let pki = Pki::new("Root");
    let managed = pki.leaf("api.example.com", T0 - DAY, 90 * DAY);
    let item = pb::ImportItem { pem_chain: managed.certificate_pem.clone(), ..Default::default() };
    srv.client.clone().import_certificates(pb::ImportCertificatesRequest { items: vec![item] }).await.unwrap();

    // Another certificate for the same name: its claim must not become a version of the first.
    let twin = pki.leaf("api.example.com", T0 - 2 * DAY, 30 * DAY);
    let r = report_from(
        &srv,
        "agents/a",
        vec![report("/a.pem", der(&managed.certificate_pem)), report("/b.pem", der(&twin.certificate_pem))],
    )
    .await
    .unwrap();
    assert_eq!(counts(&r), (1, 1), "the managed one is not new");
    let claimed = discovered(&srv, Claimed).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].certificate, "certificates/api.example.com");

    let twin_found = discovered(&srv, New).await.remove(0);
    let done = srv.client.clone().claim_discovered_certificate(claim(&twin_found.name)).await.unwrap().into_inner();
    assert_eq!(done.discovered_certificate.unwrap().certificate, "certificates/api.example.com-2");
    let first = srv.get("certificates/api.example.com").await.unwrap();
    assert_eq!(first.sha256_fingerprint, claimed[0].fingerprint, "the first certificate is untouched");

    // Claiming into a named certificate adds a version to it.
    let third = pki.leaf("api.example.com", T0, 60 * DAY);
    report_from(&srv, "agents/a", vec![report("/c.pem", der(&third.certificate_pem))]).await.unwrap();
    let third_found = discovered(&srv, New).await.remove(0);
    let into =
        pb::ClaimDiscoveredCertificateRequest { certificate_id: "api.example.com".into(), ..claim(&third_found.name) };
    srv.client.clone().claim_discovered_certificate(into).await.unwrap();
    let first = srv.get("certificates/api.example.com").await.unwrap();
    assert_eq!(first.current_version, "certificates/api.example.com/versions/2");
}

#[tokio::test]
async fn bad_reports_and_claims_are_refused_whole() {
    let srv = Served::start().await;
    create_agent(&srv, "a").await;
    let pki = Pki::new("Root");
    let good = der(&pki.leaf("web.example.com", T0, DAY).certificate_pem);
    let before = srv.outbox_len().await;

    let cases: Vec<(Vec<pb::DiscoveryReport>, &str)> = vec![
        (vec![report("/ok.pem", good.clone()), report("/bad.pem", b"not DER".to_vec())], "reports[1].certificate_der"),
        (vec![report("/ok.pem", good.clone()), report("/empty.pem", vec![])], "reports[1].certificate_der"),
        (vec![report("/ok.pem", good.clone()), report("/big.pem", vec![0x30; 70_000])], "reports[1].certificate_der"),
        (vec![report("", good.clone())], "reports[0].path"),
        (vec![report("/etc/\u{7}.pem", good.clone())], "reports[0].path"),
        (vec![report("/x", good.clone()); 1001], "reports"),
    ];
    for (reports, field) in cases {
        expect_invalid(
            srv.client
                .clone()
                .report_discoveries(pb::ReportDiscoveriesRequest { agent: "agents/a".into(), reports })
                .await,
            field,
        );
    }
    let truncated = good[..good.len() / 2].to_vec();
    let status = report_from(&srv, "agents/a", vec![report("/t.pem", truncated)]).await.unwrap_err();
    assert!(status.message().contains("not a DER-encoded X.509 certificate"), "{status:?}");
    expect_invalid(srv.client.clone().report_discoveries(pb::ReportDiscoveriesRequest::default()).await, "agent");
    assert_code(report_from(&srv, "agents/ghost", vec![report("/ok.pem", good.clone())]).await, Code::NotFound);
    assert!(discovered(&srv, pb::DiscoveryState::Unspecified).await.is_empty(), "nothing half-written");
    assert_eq!(srv.outbox_len().await, before);

    srv.client.clone().retire_agent(pb::RetireAgentRequest { name: "agents/a".into() }).await.unwrap();
    assert_code(report_from(&srv, "agents/a", vec![report("/ok.pem", good.clone())]).await, Code::FailedPrecondition);

    create_agent(&srv, "b").await;
    report_from(&srv, "agents/b", vec![report("/ok.pem", good)]).await.unwrap();
    let name = discovered(&srv, New).await.remove(0).name;
    let mut c = srv.client.clone();
    expect_invalid(
        c.claim_discovered_certificate(pb::ClaimDiscoveredCertificateRequest {
            owner: "owners/ghost".into(),
            ..claim(&name)
        })
        .await,
        "owner",
    );
    expect_invalid(
        c.claim_discovered_certificate(pb::ClaimDiscoveredCertificateRequest { team: "alice".into(), ..claim(&name) })
            .await,
        "team",
    );
    expect_invalid(
        c.claim_discovered_certificate(pb::ClaimDiscoveredCertificateRequest {
            certificate_id: "Not An Id".into(),
            ..claim(&name)
        })
        .await,
        "certificate_id",
    );
    expect_invalid(c.claim_discovered_certificate(claim("certificates/web")).await, "name");
    assert_code(c.claim_discovered_certificate(claim("discoveredCertificates/0000")).await, Code::NotFound);
    expect_invalid(
        c.list_discovered_certificates(pb::ListDiscoveredCertificatesRequest { state: 7, ..Default::default() }).await,
        "state",
    );
    assert_eq!(discovered(&srv, New).await.len(), 1, "refused claims leave it NEW");
    let listed = c.list_certificates(pb::ListCertificatesRequest::default()).await.unwrap().into_inner();
    assert!(listed.certificates.is_empty(), "and import nothing");
}
