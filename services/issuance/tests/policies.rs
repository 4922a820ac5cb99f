//! Policies before signing: issuance asks the inventory's EvaluatePolicy
//! about the version it is about to sign, refuses an ERROR or CRITICAL
//! violation with FAILED_PRECONDITION naming the policy, the rule and why,
//! and then has signed and recorded nothing. WARNING violations do not block.

mod support;

use certctl_pki::KeyType;
use certctl_proto::inventory as inv;
use certctl_proto::issuance as pb;
use certctl_proto::types::KeyAlgorithm as PbKeyAlgorithm;
use inv::policy_rule::Kind;
use support::{Backend, Platform, csr};
use tonic::Code;

const DAY: i64 = 86_400;

fn days(n: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds: n * DAY, nanos: 0 })
}

fn rule(id: &str, severity: inv::PolicySeverity, kind: Kind) -> inv::PolicyRule {
    inv::PolicyRule { id: id.into(), severity: severity as i32, kind: Some(kind) }
}

async fn issued_count(p: &mut Platform) -> usize {
    let request =
        pb::ListIssuedCertificatesRequest { parent: "issuers/local".into(), page_size: 1000, ..Default::default() };
    p.issuance.list_issued_certificates(request).await.unwrap().into_inner().issued_certificates.len()
}

async fn current_version(p: &mut Platform, name: &str) -> String {
    let request = inv::GetCertificateRequest { name: name.into() };
    p.inventory.get_certificate(request).await.unwrap().into_inner().certificate.unwrap().current_version
}

async fn platform_with_policy() -> Platform {
    let mut p = Platform::start(Backend::Sqlite).await;
    for (id, server_keyed, key) in
        [("shop", false, PbKeyAlgorithm::Unspecified), ("vault", true, PbKeyAlgorithm::Rsa2048)]
    {
        let certificate = inv::Certificate {
            common_name: format!("{id}.example.com"),
            subject_alt_names: vec![format!("{id}.example.com")],
            server_keyed,
            key_algorithm: key as i32,
            ..Default::default()
        };
        let request = inv::CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: id.into(),
            request_id: String::new(),
        };
        p.inventory.create_certificate(request).await.unwrap();
    }
    let policy = inv::Policy {
        rules: vec![
            rule(
                "lifetime",
                inv::PolicySeverity::Error,
                Kind::MaxLifetime(inv::MaxLifetimeRule { max_lifetime: days(30) }),
            ),
            rule(
                "keys",
                inv::PolicySeverity::Critical,
                Kind::KeyAlgorithms(inv::KeyAlgorithmsRule {
                    allowed: vec![PbKeyAlgorithm::EcdsaP256 as i32],
                    min_strength_bits: 0,
                }),
            ),
            rule(
                "cost-center",
                inv::PolicySeverity::Warning,
                Kind::RequiredMetadataKeys(inv::RequiredMetadataKeysRule { keys: vec!["cost-center".into()] }),
            ),
        ],
        ..Default::default()
    };
    let request = inv::CreatePolicyRequest { policy: Some(policy), policy_id: "baseline".into() };
    p.inventory.create_policy(request).await.unwrap();
    p
}

fn issue(certificate: &str, csr_pem: String, lifetime_days: i64) -> pb::IssueCertificateRequest {
    pb::IssueCertificateRequest {
        certificate: certificate.into(),
        csr_pem,
        lifetime: days(lifetime_days),
        request_id: String::new(),
    }
}

fn expect_refused(status: &tonic::Status, words: &[&str]) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    for w in words {
        assert!(status.message().contains(w), "`{}` does not mention `{w}`", status.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_breaks_an_error_rule_is_refused_and_nothing_is_signed() {
    let mut p = platform_with_policy().await;

    let (_, p384) = csr(KeyType::EcdsaP384, &["shop.example.com"]);
    let refused = p.issuance.issue_certificate(issue("certificates/shop", p384.clone(), 90)).await.unwrap_err();
    expect_refused(
        &refused,
        &[
            "certificates/shop may not be issued",
            "policies/baseline rule `keys` (CRITICAL): key algorithm ECDSA_P384 is not allowed; use one of ECDSA_P256",
            "policies/baseline rule `lifetime` (ERROR): a lifetime of 90 days exceeds the maximum of 30 days",
        ],
    );
    let (_, p256) = csr(KeyType::EcdsaP256, &["shop.example.com"]);
    let refused = p.issuance.issue_certificate(issue("certificates/shop", p256.clone(), 31)).await.unwrap_err();
    expect_refused(&refused, &["rule `lifetime` (ERROR): a lifetime of 31 days exceeds the maximum of 30 days"]);
    assert!(!format!("{refused:?}").contains("cost-center"), "warnings do not block, nor are they reasons");

    // SignCertificate for a managed certificate is judged the same way.
    let sign = pb::SignCertificateRequest {
        issuer: "issuers/local".into(),
        csr_pem: p384,
        certificate: "certificates/shop".into(),
        lifetime: days(7),
        ..Default::default()
    };
    let refused = p.issuance.sign_certificate(sign.clone()).await.unwrap_err();
    expect_refused(&refused, &["policies/baseline rule `keys` (CRITICAL)"]);

    // A server-keyed certificate whose key type the policy forbids.
    let refused = p.issuance.issue_certificate(issue("certificates/vault", String::new(), 7)).await.unwrap_err();
    expect_refused(&refused, &["certificates/vault may not be issued", "key algorithm RSA_2048 is not allowed"]);

    assert_eq!(issued_count(&mut p).await, 0, "nothing was signed");
    assert_eq!(current_version(&mut p, "certificates/shop").await, "", "nothing was recorded");
    assert_eq!(current_version(&mut p, "certificates/vault").await, "");

    // Within the rules (the missing cost-center is only a warning): signed and recorded.
    let issued = p.issuance.issue_certificate(issue("certificates/shop", p256, 30)).await.unwrap();
    let issued = issued.into_inner().issued_certificate.unwrap();
    assert_eq!(issued.subject_alt_names, ["shop.example.com"]);
    assert_eq!(current_version(&mut p, "certificates/shop").await, "certificates/shop/versions/1");
    assert_eq!(issued_count(&mut p).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmanaged_signatures_and_relaxed_policies_are_not_refused() {
    let mut p = platform_with_policy().await;
    // Without a managed certificate there is nothing a policy selects.
    let (_, p384) = csr(KeyType::EcdsaP384, &["loose.example.com"]);
    let sign = pb::SignCertificateRequest {
        issuer: "issuers/local".into(),
        csr_pem: p384.clone(),
        lifetime: days(60),
        ..Default::default()
    };
    p.issuance.sign_certificate(sign).await.unwrap();

    // The policy changes: issuance follows it at once.
    let relaxed = inv::Policy {
        name: "policies/baseline".into(),
        rules: vec![rule(
            "keys",
            inv::PolicySeverity::Warning,
            Kind::KeyAlgorithms(inv::KeyAlgorithmsRule { allowed: vec![], min_strength_bits: 128 }),
        )],
        ..Default::default()
    };
    let update = inv::UpdatePolicyRequest { policy: Some(relaxed), update_mask: None };
    p.inventory.update_policy(update).await.unwrap();
    let (_, p384) = csr(KeyType::EcdsaP384, &["shop.example.com"]);
    p.issuance.issue_certificate(issue("certificates/shop", p384, 90)).await.unwrap();
    assert_eq!(current_version(&mut p, "certificates/shop").await, "certificates/shop/versions/1");
    assert_eq!(issued_count(&mut p).await, 2);
}
