//! Proto ⇄ domain for policies, their evaluation and violations.

use certctl_domain::name::Collection;
use certctl_domain::policy::{Policy, Rule, RuleKind, Selector, Severity};
use certctl_proto::inventory as pb;
use tonic::Status;

use super::{invalid, key_algorithm_from_pb, key_algorithm_to_pb};
use crate::service::{CertificateViolation, Evaluation, ViolationPage};

pub fn severity_to_pb(s: Severity) -> pb::PolicySeverity {
    match s {
        Severity::Warning => pb::PolicySeverity::Warning,
        Severity::Error => pb::PolicySeverity::Error,
        Severity::Critical => pb::PolicySeverity::Critical,
    }
}

/// Unspecified is `None`.
pub fn severity_from_pb(field: &str, value: i32) -> Result<Option<Severity>, Status> {
    Ok(match pb::PolicySeverity::try_from(value) {
        Ok(pb::PolicySeverity::Unspecified) => None,
        Ok(pb::PolicySeverity::Warning) => Some(Severity::Warning),
        Ok(pb::PolicySeverity::Error) => Some(Severity::Error),
        Ok(pb::PolicySeverity::Critical) => Some(Severity::Critical),
        Err(_) => return Err(invalid(field, &format!("{value} is not a policy severity"))),
    })
}

fn duration(secs: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds: secs, nanos: 0 })
}

fn rule_to_pb(r: Rule) -> pb::PolicyRule {
    use pb::policy_rule::Kind;
    let kind = match r.kind {
        RuleKind::AllowedIssuers(issuers) => Kind::AllowedIssuers(pb::AllowedIssuersRule { issuers }),
        RuleKind::AllowedDomains(patterns) => Kind::AllowedDomains(pb::AllowedDomainsRule { patterns }),
        RuleKind::RequiredMetadataKeys(keys) => Kind::RequiredMetadataKeys(pb::RequiredMetadataKeysRule { keys }),
        RuleKind::AllowedEnvironments(environments) => {
            Kind::AllowedEnvironments(pb::AllowedEnvironmentsRule { environments })
        }
        RuleKind::MaxLifetime { secs } => Kind::MaxLifetime(pb::MaxLifetimeRule { max_lifetime: duration(secs) }),
        RuleKind::KeyAlgorithms { allowed, min_strength_bits } => Kind::KeyAlgorithms(pb::KeyAlgorithmsRule {
            allowed: allowed.into_iter().map(|k| key_algorithm_to_pb(k) as i32).collect(),
            min_strength_bits,
        }),
        RuleKind::MinRenewalLead { secs } => Kind::MinRenewalLead(pb::MinRenewalLeadRule { min_lead: duration(secs) }),
    };
    pb::PolicyRule { id: r.id, severity: severity_to_pb(r.severity) as i32, kind: Some(kind) }
}

fn rule_from_pb(i: usize, r: pb::PolicyRule) -> Result<Rule, Status> {
    use pb::policy_rule::Kind;
    let field = format!("policy.rules[{i}]");
    let severity = severity_from_pb(&format!("{field}.severity"), r.severity)?
        .ok_or_else(|| invalid(&format!("{field}.severity"), "required: WARNING, ERROR or CRITICAL"))?;
    let secs = |d: Option<pbjson_types::Duration>, name: &str| {
        d.map(|d| d.seconds).ok_or_else(|| invalid(&format!("{field}.{name}"), "required"))
    };
    let kind = match r.kind {
        Some(Kind::AllowedIssuers(k)) => RuleKind::AllowedIssuers(k.issuers),
        Some(Kind::AllowedDomains(k)) => RuleKind::AllowedDomains(k.patterns),
        Some(Kind::RequiredMetadataKeys(k)) => RuleKind::RequiredMetadataKeys(k.keys),
        Some(Kind::AllowedEnvironments(k)) => RuleKind::AllowedEnvironments(k.environments),
        Some(Kind::MaxLifetime(k)) => {
            RuleKind::MaxLifetime { secs: secs(k.max_lifetime, "max_lifetime.max_lifetime")? }
        }
        Some(Kind::MinRenewalLead(k)) => {
            RuleKind::MinRenewalLead { secs: secs(k.min_lead, "min_renewal_lead.min_lead")? }
        }
        Some(Kind::KeyAlgorithms(k)) => {
            let mut allowed = Vec::new();
            for (j, a) in k.allowed.into_iter().enumerate() {
                let f = format!("{field}.key_algorithms.allowed[{j}]");
                allowed.push(key_algorithm_from_pb(&f, a)?.ok_or_else(|| invalid(&f, "name an algorithm"))?);
            }
            RuleKind::KeyAlgorithms { allowed, min_strength_bits: k.min_strength_bits }
        }
        None => {
            return Err(invalid(
                &field,
                "required: set one of allowed_issuers, allowed_domains, required_metadata_keys, \
                 allowed_environments, max_lifetime, key_algorithms or min_renewal_lead",
            ));
        }
    };
    Ok(Rule { id: r.id, severity, kind })
}

pub fn policy_to_pb(p: Policy) -> pb::Policy {
    pb::Policy {
        name: Collection::Policies.name(&p.id),
        display_name: p.display_name,
        rules: p.rules.into_iter().map(rule_to_pb).collect(),
        selector: Some(pb::PolicySelector {
            labels: p.selector.labels.into_iter().collect(),
            environments: p.selector.environments,
            teams: p.selector.teams,
        }),
        create_time: certctl_proto::timestamp(p.create_time),
        update_time: certctl_proto::timestamp(p.update_time),
    }
}

pub fn policy_from_pb(p: pb::Policy, id: String) -> Result<Policy, Status> {
    let selector = p.selector.unwrap_or_default();
    Ok(Policy {
        id,
        display_name: p.display_name,
        rules: p.rules.into_iter().enumerate().map(|(i, r)| rule_from_pb(i, r)).collect::<Result<_, _>>()?,
        selector: Selector {
            labels: selector.labels.into_iter().collect(),
            environments: selector.environments,
            teams: selector.teams,
        },
        create_time: 0,
        update_time: 0,
    })
}

pub fn evaluation_from_pb(r: pb::EvaluatePolicyRequest) -> Result<Evaluation, Status> {
    Ok(Evaluation {
        key_algorithm: key_algorithm_from_pb("key_algorithm", r.key_algorithm)?,
        lifetime_secs: r.lifetime.map(|d| d.seconds),
        certificate: r.certificate,
        common_name: r.common_name,
        subject_alt_names: r.subject_alt_names,
        issuer: r.issuer,
        environment: r.environment,
        team: r.team,
        metadata: r.metadata.into_iter().collect(),
        labels: r.labels.into_iter().collect(),
        policies: r.policies,
    })
}

pub fn violation_to_pb(v: CertificateViolation) -> pb::PolicyViolation {
    pb::PolicyViolation {
        policy: v.violation.policy,
        rule: v.violation.rule,
        severity: severity_to_pb(v.violation.severity) as i32,
        message: v.violation.message,
        certificate: v.certificate,
    }
}

pub fn violation_page_to_pb(page: ViolationPage) -> pb::ListPolicyViolationsResponse {
    pb::ListPolicyViolationsResponse {
        violations: page.violations.into_iter().map(violation_to_pb).collect(),
        next_page_token: page.next_page_token,
        counts: page
            .counts
            .into_iter()
            .map(|(policy, by)| pb::PolicyViolationCount {
                policy,
                warning_count: by.get(&Severity::Warning).copied().unwrap_or_default(),
                error_count: by.get(&Severity::Error).copied().unwrap_or_default(),
                critical_count: by.get(&Severity::Critical).copied().unwrap_or_default(),
            })
            .collect(),
        examined_certificate_count: page.examined,
    }
}
