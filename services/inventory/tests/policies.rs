//! Policies through the gRPC edge: configuration (refused when a rule could
//! not be evaluated), evaluation of one certificate, and the violations of
//! the whole inventory with their filters, pages and counts.

mod support;

use std::collections::BTreeSet;

use certctl_proto::inventory as pb;
use certctl_proto::types::KeyAlgorithm as PbKeyAlgorithm;
use pb::policy_rule::Kind;
use support::{DAY, Pki, Served, T0, assert_code, expect_invalid, mask};
use tonic::Code;

fn secs(s: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds: s, nanos: 0 })
}

fn rule(id: &str, severity: pb::PolicySeverity, kind: Kind) -> pb::PolicyRule {
    pb::PolicyRule { id: id.into(), severity: severity as i32, kind: Some(kind) }
}

fn domains(patterns: &[&str]) -> Kind {
    Kind::AllowedDomains(pb::AllowedDomainsRule { patterns: patterns.iter().map(|p| (*p).to_owned()).collect() })
}

/// `baseline`: names under example.com (ERROR), at most 30 days (ERROR), a
/// cost-center (WARNING), P-256 or P-384 keys (CRITICAL).
fn baseline() -> pb::Policy {
    pb::Policy {
        display_name: "Baseline".into(),
        rules: vec![
            rule("domains", pb::PolicySeverity::Error, domains(&["*.example.com", ".internal.example.com"])),
            rule(
                "lifetime",
                pb::PolicySeverity::Error,
                Kind::MaxLifetime(pb::MaxLifetimeRule { max_lifetime: secs(30 * DAY) }),
            ),
            rule(
                "cost-center",
                pb::PolicySeverity::Warning,
                Kind::RequiredMetadataKeys(pb::RequiredMetadataKeysRule { keys: vec!["cost-center".into()] }),
            ),
            rule(
                "keys",
                pb::PolicySeverity::Critical,
                Kind::KeyAlgorithms(pb::KeyAlgorithmsRule {
                    allowed: vec![PbKeyAlgorithm::EcdsaP256 as i32, PbKeyAlgorithm::EcdsaP384 as i32],
                    min_strength_bits: 0,
                }),
            ),
        ],
        ..Default::default()
    }
}

async fn create_policy(srv: &Served, id: &str, policy: pb::Policy) -> pb::Policy {
    let request = pb::CreatePolicyRequest { policy: Some(policy), policy_id: id.into() };
    srv.client.clone().create_policy(request).await.expect("CreatePolicy").into_inner().policy.expect("a policy")
}

async fn evaluate(srv: &Served, request: pb::EvaluatePolicyRequest) -> pb::EvaluatePolicyResponse {
    srv.client.clone().evaluate_policy(request).await.expect("EvaluatePolicy").into_inner()
}

fn summary(violations: &[pb::PolicyViolation]) -> Vec<(String, String, String)> {
    violations.iter().map(|v| (v.certificate.clone(), v.policy.clone(), v.rule.clone())).collect()
}

#[tokio::test]
async fn policies_are_created_read_updated_and_deleted_with_audit_events() {
    let srv = Served::start().await;
    let before = srv.outbox_len().await;
    let created = create_policy(&srv, "baseline", baseline()).await;
    assert_eq!(created.name, "policies/baseline");
    assert_eq!(created.rules.len(), 4);
    assert_eq!(created.create_time.as_ref().map(|t| t.seconds), Some(T0));

    let got = srv.client.clone().get_policy(pb::GetPolicyRequest { name: "policies/baseline".into() }).await.unwrap();
    assert_eq!(got.into_inner().policy.unwrap(), created);

    // A rule without an id takes its kind's name.
    let patch = pb::Policy {
        name: "policies/baseline".into(),
        rules: vec![rule("", pb::PolicySeverity::Warning, domains(&["web.example.com"]))],
        selector: Some(pb::PolicySelector { environments: vec!["prod".into()], ..Default::default() }),
        ..Default::default()
    };
    let request = pb::UpdatePolicyRequest { policy: Some(patch), update_mask: mask(&["rules", "selector"]) };
    let updated = srv.client.clone().update_policy(request).await.unwrap().into_inner().policy.unwrap();
    assert_eq!(updated.display_name, "Baseline", "outside the mask: kept");
    assert_eq!(updated.rules.len(), 1);
    assert_eq!(updated.rules[0].id, "allowed-domains");
    assert_eq!(updated.selector.unwrap().environments, ["prod"]);

    let listed = srv.client.clone().list_policies(pb::ListPoliciesRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["policies/baseline"]);

    srv.client.clone().delete_policy(pb::DeletePolicyRequest { name: "policies/baseline".into() }).await.unwrap();
    assert_code(
        srv.client.clone().get_policy(pb::GetPolicyRequest { name: "policies/baseline".into() }).await,
        Code::NotFound,
    );
    assert_eq!(srv.outbox_len().await, before + 3, "create, update and delete, each audited");
}

#[tokio::test]
async fn a_rule_that_could_not_be_evaluated_is_refused_naming_its_field() {
    let srv = Served::start().await;
    let before = srv.outbox_len().await;
    let with_rules = |rules: Vec<pb::PolicyRule>| pb::CreatePolicyRequest {
        policy: Some(pb::Policy { rules, ..Default::default() }),
        policy_id: "p".into(),
    };
    let cases: Vec<(Vec<pb::PolicyRule>, &str)> = vec![
        (
            vec![rule("d", pb::PolicySeverity::Error, domains(&["*.example.com", "a.*.example.com"]))],
            "policy.rules[0].allowed_domains[1]",
        ),
        (vec![rule("d", pb::PolicySeverity::Error, domains(&["*.com"]))], "policy.rules[0].allowed_domains[0]"),
        (vec![rule("d", pb::PolicySeverity::Unspecified, domains(&["a.example.com"]))], "policy.rules[0].severity"),
        (vec![pb::PolicyRule { id: "x".into(), severity: 2, kind: None }], "policy.rules[0]"),
        (
            vec![rule(
                "i",
                pb::PolicySeverity::Error,
                Kind::AllowedIssuers(pb::AllowedIssuersRule { issuers: vec!["local".into()] }),
            )],
            "policy.rules[0].allowed_issuers[0]",
        ),
        (
            vec![rule("l", pb::PolicySeverity::Error, Kind::MaxLifetime(pb::MaxLifetimeRule { max_lifetime: None }))],
            "policy.rules[0].max_lifetime.max_lifetime",
        ),
        (vec![], "policy.rules"),
    ];
    for (rules, field) in cases {
        expect_invalid(srv.client.clone().create_policy(with_rules(rules)).await, field);
    }
    assert_eq!(srv.outbox_len().await, before, "nothing refused was written");
}

#[tokio::test]
async fn evaluation_judges_a_certificate_and_the_version_to_be_issued() {
    let srv = Served::start().await;
    create_policy(&srv, "baseline", baseline()).await;
    srv.create_certificate("web", "web.example.com").await;
    let pki = Pki::new("Test Root");
    let leaf = pki.leaf("web.example.com", T0 - DAY, 90 * DAY);
    srv.add_version("certificates/web", &pki.chain(&leaf)).await.unwrap();

    // As recorded: a 90-day P-256 version, no cost-center.
    let got =
        evaluate(&srv, pb::EvaluatePolicyRequest { certificate: "certificates/web".into(), ..Default::default() })
            .await;
    assert!(got.blocked);
    let found: Vec<(&str, i32, &str)> =
        got.violations.iter().map(|v| (v.rule.as_str(), v.severity, v.message.as_str())).collect();
    assert_eq!(
        found,
        [
            ("lifetime", pb::PolicySeverity::Error as i32, "a lifetime of 90 days exceeds the maximum of 30 days"),
            ("cost-center", pb::PolicySeverity::Warning as i32, "the metadata lacks required key(s) cost-center"),
        ]
    );
    assert!(got.violations.iter().all(|v| v.policy == "policies/baseline" && v.certificate == "certificates/web"));

    // The next version as asked for: 30 days, RSA, another name.
    let got = evaluate(
        &srv,
        pb::EvaluatePolicyRequest {
            certificate: "certificates/web".into(),
            lifetime: secs(30 * DAY),
            key_algorithm: PbKeyAlgorithm::Rsa2048 as i32,
            subject_alt_names: vec!["web.example.com".into(), "web.example.net".into()],
            metadata: [("cost-center".to_owned(), "42".to_owned())].into(),
            ..Default::default()
        },
    )
    .await;
    let found: Vec<(&str, &str)> = got.violations.iter().map(|v| (v.rule.as_str(), v.message.as_str())).collect();
    assert_eq!(
        found,
        [
            ("keys", "key algorithm RSA_2048 is not allowed; use one of ECDSA_P256, ECDSA_P384"),
            ("domains", "web.example.net is outside the allowed domains *.example.com, .internal.example.com"),
        ],
        "most severe first"
    );

    // A description alone, and only the policies asked for.
    let clean = pb::EvaluatePolicyRequest {
        common_name: "api.example.com".into(),
        lifetime: secs(7 * DAY),
        key_algorithm: PbKeyAlgorithm::EcdsaP384 as i32,
        metadata: [("cost-center".to_owned(), "42".to_owned())].into(),
        policies: vec!["policies/baseline".into()],
        ..Default::default()
    };
    let got = evaluate(&srv, clean.clone()).await;
    assert!(!got.blocked && got.violations.is_empty(), "{got:?}");

    let missing = pb::EvaluatePolicyRequest { policies: vec!["policies/nope".into()], ..clean };
    expect_invalid(srv.client.clone().evaluate_policy(missing).await, "policies[0]");
    let ghost = pb::EvaluatePolicyRequest { certificate: "certificates/ghost".into(), ..Default::default() };
    assert_code(srv.client.clone().evaluate_policy(ghost).await, Code::NotFound);
}

async fn list(srv: &Served, request: pb::ListPolicyViolationsRequest) -> pb::ListPolicyViolationsResponse {
    srv.client.clone().list_policy_violations(request).await.expect("ListPolicyViolations").into_inner()
}

#[tokio::test]
async fn the_inventory_s_violations_are_listed_filtered_paged_and_counted() {
    let srv = Served::start().await;
    create_policy(&srv, "baseline", baseline()).await;
    // Only certificates labelled tier=web, which must be in prod.
    let prod = pb::Policy {
        rules: vec![rule(
            "env",
            pb::PolicySeverity::Critical,
            Kind::AllowedEnvironments(pb::AllowedEnvironmentsRule { environments: vec!["prod".into()] }),
        )],
        selector: Some(pb::PolicySelector {
            labels: [("tier".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    create_policy(&srv, "prod", prod).await;
    let pki = Pki::new("Test Root");
    for (id, cn, days, tier) in [
        ("a", "a.example.com", 90, true),
        ("b", "b.example.org", 10, false),
        ("c", "c.example.com", 10, true),
        ("d", "d.internal.example.com", 10, false),
    ] {
        let mut certificate = pb::Certificate {
            common_name: cn.into(),
            subject_alt_names: vec![cn.into()],
            metadata: [("cost-center".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        if tier {
            certificate.labels.insert("tier".into(), "web".into());
        }
        if id == "d" {
            certificate.metadata.clear();
        }
        srv.create(id, certificate).await;
        let leaf = pki.leaf(cn, T0 - DAY, days * DAY);
        srv.add_version(&format!("certificates/{id}"), &pki.chain(&leaf)).await.unwrap();
    }
    let expected = [
        ("certificates/a", "policies/baseline", "lifetime"),
        ("certificates/a", "policies/prod", "env"),
        ("certificates/b", "policies/baseline", "domains"),
        ("certificates/c", "policies/prod", "env"),
        ("certificates/d", "policies/baseline", "cost-center"),
    ]
    .map(|(c, p, r)| (c.to_owned(), p.to_owned(), r.to_owned()));

    let all = list(&srv, pb::ListPolicyViolationsRequest::default()).await;
    assert_eq!(summary(&all.violations), expected);
    assert!(all.next_page_token.is_empty());
    assert_eq!(all.examined_certificate_count, 4);
    let counts: Vec<(&str, i32, i32, i32)> =
        all.counts.iter().map(|c| (c.policy.as_str(), c.warning_count, c.error_count, c.critical_count)).collect();
    assert_eq!(counts, [("policies/baseline", 1, 2, 0), ("policies/prod", 0, 0, 2)]);
    let a_env = &all.violations[1];
    assert_eq!(a_env.message, "the certificate has no environment; allowed environments are prod");

    // Pages of one, resuming inside certificate a: every violation once.
    let mut walked = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page =
            list(&srv, pb::ListPolicyViolationsRequest { page_size: 1, page_token: token, ..Default::default() }).await;
        assert!(page.violations.len() <= 1);
        walked.extend(summary(&page.violations));
        pages += 1;
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
        assert!(pages < 20, "the pages end");
    }
    assert_eq!(walked, expected);

    // Filters.
    let by = |policy: &str, severity: pb::PolicySeverity, certificate: &str| pb::ListPolicyViolationsRequest {
        policy: policy.into(),
        severity: severity as i32,
        certificate: certificate.into(),
        ..Default::default()
    };
    let page = list(&srv, by("policies/prod", pb::PolicySeverity::Unspecified, "")).await;
    assert_eq!(
        summary(&page.violations),
        expected.iter().filter(|v| v.1 == "policies/prod").cloned().collect::<Vec<_>>()
    );
    let page = list(&srv, by("", pb::PolicySeverity::Error, "")).await;
    let rules: BTreeSet<String> = page.violations.iter().map(|v| v.rule.clone()).collect();
    assert_eq!(rules, ["domains".to_owned(), "lifetime".to_owned()].into());
    let page = list(&srv, by("", pb::PolicySeverity::Unspecified, "certificates/a")).await;
    assert_eq!(summary(&page.violations), expected[..2]);
    assert_eq!(page.examined_certificate_count, 1);

    // A token is bound to its filters; unknown policies are refused.
    let first = list(&srv, pb::ListPolicyViolationsRequest { page_size: 1, ..Default::default() }).await;
    let replay = pb::ListPolicyViolationsRequest {
        page_token: first.next_page_token,
        ..by("policies/prod", pb::PolicySeverity::Unspecified, "")
    };
    expect_invalid(srv.client.clone().list_policy_violations(replay).await, "page_token");
    expect_invalid(
        srv.client.clone().list_policy_violations(by("policies/nope", pb::PolicySeverity::Unspecified, "")).await,
        "policy",
    );

    // Violations follow the policies as they are now.
    srv.client.clone().delete_policy(pb::DeletePolicyRequest { name: "policies/prod".into() }).await.unwrap();
    let page = list(&srv, pb::ListPolicyViolationsRequest::default()).await;
    assert_eq!(page.violations.len(), 3);
}

#[tokio::test]
async fn a_page_examines_a_bounded_number_of_certificates() {
    let srv = Served::start().await;
    let strict = pb::Policy {
        rules: vec![rule("domains", pb::PolicySeverity::Error, domains(&["*.example.org"]))],
        ..Default::default()
    };
    create_policy(&srv, "strict", strict).await;
    // One more than a page examines; only the last one breaks the rule.
    let budget = certctl_inventory::service::SCAN_BUDGET as usize;
    for i in 0..budget {
        srv.create_certificate(&format!("c{i:05}"), &format!("c{i}.example.org")).await;
    }
    srv.create_certificate("z-last", "z.example.com").await;

    let first = list(&srv, pb::ListPolicyViolationsRequest::default()).await;
    assert_eq!(first.examined_certificate_count as usize, budget);
    assert!(first.violations.is_empty());
    assert!(!first.next_page_token.is_empty(), "an empty page that is not the last");
    let second =
        list(&srv, pb::ListPolicyViolationsRequest { page_token: first.next_page_token, ..Default::default() }).await;
    assert_eq!(second.examined_certificate_count, 1);
    assert_eq!(
        summary(&second.violations),
        [("certificates/z-last".to_owned(), "policies/strict".to_owned(), "domains".to_owned())]
    );
    assert!(second.next_page_token.is_empty());
}
