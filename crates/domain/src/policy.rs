//! Certificate policies: rules a certificate must keep, and the evaluation
//! that says, for one certificate, which rules it breaks and why.
//!
//! The same `evaluate` runs in two places: the inventory's `EvaluatePolicy`,
//! which issuance calls before it signs (an ERROR or CRITICAL violation
//! refuses the request), and `ListPolicyViolations`, which judges every
//! current certificate against every current policy.
//!
//! Facts nobody knows are not judged: a subject without a requested lifetime
//! breaks no lifetime rule. Facts known to be absent are: a certificate with
//! no environment breaks an allowed-environments rule.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::Violations;
use crate::inventory::{DAY, KeyAlgorithm, RenewalPolicy, effective_mask, validate_map};
use crate::name::{self, Collection};
use crate::{DomainError, UnixTime};

/// How bad breaking a rule is. ERROR and CRITICAL refuse issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
            Self::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "WARNING" => Some(Self::Warning),
            "ERROR" => Some(Self::Error),
            "CRITICAL" => Some(Self::Critical),
            _ => None,
        }
    }

    /// Whether a violation of this severity refuses an issuance.
    pub fn blocks_issuance(self) -> bool {
        self >= Self::Error
    }
}

/// What a rule requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The certificate's issuer (`issuers/{issuer}`) is one of these.
    AllowedIssuers(Vec<String>),
    /// Every name (common name and DNS SANs) matches one of these patterns:
    /// `web.example.com` itself, `*.example.com` one label below (and the
    /// literal wildcard `*.example.com`), `.example.com` any depth below.
    AllowedDomains(Vec<String>),
    /// The certificate's metadata has each of these keys, with a value.
    RequiredMetadataKeys(Vec<String>),
    /// The certificate's environment is one of these.
    AllowedEnvironments(Vec<String>),
    /// A version may be valid for at most this long.
    MaxLifetime { secs: i64 },
    /// The key is one of `allowed` (empty: any) and at least
    /// `min_strength_bits` strong (0: any), see `strength_bits`.
    KeyAlgorithms { allowed: Vec<KeyAlgorithm>, min_strength_bits: i32 },
    /// The certificate is renewed at least this long before it expires.
    MinRenewalLead { secs: i64 },
}

impl RuleKind {
    /// The rule's default id, and how the proto names its kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::AllowedIssuers(_) => "allowed-issuers",
            Self::AllowedDomains(_) => "allowed-domains",
            Self::RequiredMetadataKeys(_) => "required-metadata-keys",
            Self::AllowedEnvironments(_) => "allowed-environments",
            Self::MaxLifetime { .. } => "max-lifetime",
            Self::KeyAlgorithms { .. } => "key-algorithms",
            Self::MinRenewalLead { .. } => "min-renewal-lead",
        }
    }
}

/// The comparable security strength of a key, in bits (NIST SP 800-57 part 1,
/// table 2; RSA 4096, which the table leaves out, between 3072 and 7680).
/// `OTHER` keys are of unknown strength, 0.
pub fn strength_bits(key: KeyAlgorithm) -> i32 {
    match key {
        KeyAlgorithm::Rsa2048 => 112,
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::EcdsaP256 | KeyAlgorithm::Ed25519 => 128,
        KeyAlgorithm::Rsa4096 => 140,
        KeyAlgorithm::EcdsaP384 => 192,
        KeyAlgorithm::Other => 0,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Unique within its policy; names the rule in violations.
    pub id: String,
    pub severity: Severity,
    pub kind: RuleKind,
}

/// Which certificates a policy applies to. Empty parts match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Selector {
    /// Every one of these labels, with this value.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// One of these environments.
    #[serde(default)]
    pub environments: Vec<String>,
    /// One of these teams (`teams/{team}`).
    #[serde(default)]
    pub teams: Vec<String>,
}

impl Selector {
    pub fn matches(&self, s: &Subject) -> bool {
        self.labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
            && (self.environments.is_empty() || self.environments.contains(&s.environment))
            && (self.teams.is_empty() || self.teams.contains(&s.team))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    pub display_name: String,
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub selector: Selector,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

pub const MAX_RULES: usize = 64;
const MAX_LIST: usize = 256;

impl Policy {
    pub fn name(&self) -> String {
        Collection::Policies.name(&self.id)
    }

    /// Rules without an id take their kind's name.
    pub fn normalize(&mut self) {
        for rule in &mut self.rules {
            if rule.id.is_empty() {
                rule.id = rule.kind.kind_name().to_owned();
            }
        }
    }

    /// Refuses a policy whose rules could not be evaluated as written, naming
    /// the field (`policy.rules[2].allowed_domains[0]`).
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("policy_id", &self.id));
        v.check(self.display_name.len() <= 200, "policy.display_name", "at most 200 characters");
        v.check(!self.rules.is_empty(), "policy.rules", "a policy needs at least one rule");
        v.check(self.rules.len() <= MAX_RULES, "policy.rules", "at most 64 rules");
        let mut ids = BTreeSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let field = format!("policy.rules[{i}]");
            v.merge(rule.validate(&field));
            if !ids.insert(rule.id.as_str()) {
                v.add(format!("{field}.id"), format!("`{}` names another rule of this policy too", rule.id));
            }
        }
        v.merge(validate_map("policy.selector.labels", &self.selector.labels));
        for (i, env) in self.selector.environments.iter().enumerate() {
            v.check(is_environment(env), &format!("policy.selector.environments[{i}]"), ENVIRONMENT_RULE);
        }
        for (i, team) in self.selector.teams.iter().enumerate() {
            v.merge(name::parse(&format!("policy.selector.teams[{i}]"), Collection::Teams, team).map(|_| ()));
        }
        v.into_result()
    }

    pub fn apply_update(&mut self, patch: Policy, mask: &[String]) -> Result<(), DomainError> {
        let paths = effective_mask(mask, &["display_name", "rules", "selector"], |f| match f {
            "display_name" => !patch.display_name.is_empty(),
            "rules" => !patch.rules.is_empty(),
            "selector" => patch.selector != Selector::default(),
            _ => false,
        })?;
        for p in paths {
            match p {
                "display_name" => self.display_name = patch.display_name.clone(),
                "rules" => self.rules = patch.rules.clone(),
                _ => self.selector = patch.selector.clone(),
            }
        }
        self.normalize();
        self.validate()
    }

    /// The violations of this policy's rules by `subject`, or none when the
    /// policy does not select it.
    pub fn evaluate(&self, subject: &Subject) -> Vec<Violation> {
        if !self.selector.matches(subject) {
            return Vec::new();
        }
        let name = self.name();
        evaluate(&self.rules, subject).into_iter().map(|v| Violation { policy: name.clone(), ..v }).collect()
    }
}

const ENVIRONMENT_RULE: &str = "at most 63 letters, digits, '-' or '_'";

fn is_environment(env: &str) -> bool {
    !env.is_empty() && env.len() <= 63 && env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Rule {
    fn validate(&self, field: &str) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id(&format!("{field}.id"), &self.id));
        let list_field = format!("{field}.{}", self.kind.kind_name().replace('-', "_"));
        let check_list = |v: &mut Violations, list: &[String], each: &dyn Fn(&str) -> Result<(), String>| {
            v.check(!list.is_empty(), &list_field, "list at least one value");
            v.check(list.len() <= MAX_LIST, &list_field, "at most 256 values");
            for (i, item) in list.iter().enumerate() {
                if let Err(why) = each(item) {
                    v.add(format!("{list_field}[{i}]"), why);
                }
            }
        };
        match &self.kind {
            RuleKind::AllowedIssuers(list) => check_list(&mut v, list, &|s| {
                name::parse("", Collection::Issuers, s)
                    .map(|_| ())
                    .map_err(|_| format!("`{s}` is not an issuer name: expected `issuers/{{issuer}}`"))
            }),
            RuleKind::AllowedDomains(list) => check_list(&mut v, list, &check_domain_pattern),
            RuleKind::RequiredMetadataKeys(list) => check_list(&mut v, list, &|k| {
                let ok = !k.is_empty()
                    && k.len() <= 63
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
                if ok { Ok(()) } else { Err(format!("`{k}`: keys are 1-63 letters, digits, '-', '_', '.' or '/'")) }
            }),
            RuleKind::AllowedEnvironments(list) => check_list(&mut v, list, &|e| {
                if is_environment(e) { Ok(()) } else { Err(format!("`{e}`: {ENVIRONMENT_RULE}")) }
            }),
            RuleKind::MaxLifetime { secs } => {
                v.check(*secs > 0 && *secs <= 3650 * DAY, &list_field, "must be positive and at most 3650 days")
            }
            RuleKind::MinRenewalLead { secs } => {
                v.check(*secs > 0 && *secs <= 3650 * DAY, &list_field, "must be positive and at most 3650 days")
            }
            RuleKind::KeyAlgorithms { allowed, min_strength_bits } => {
                v.check(
                    !allowed.is_empty() || *min_strength_bits > 0,
                    &list_field,
                    "list allowed algorithms, a minimum strength, or both",
                );
                v.check(
                    !allowed.contains(&KeyAlgorithm::Other),
                    &format!("{list_field}.allowed"),
                    "OTHER is not a key type; list the algorithms to allow",
                );
                v.check(
                    (0..=256).contains(min_strength_bits),
                    &format!("{list_field}.min_strength_bits"),
                    "between 0 and 256 bits (112 is RSA 2048, 128 P-256, RSA 3072 or Ed25519, 192 P-384)",
                );
            }
        }
        v.into_result()
    }
}

/// `web.example.com`, `*.example.com` or `.example.com`, lower case.
fn check_domain_pattern(pattern: &str) -> Result<(), String> {
    let (kind, rest) = if let Some(rest) = pattern.strip_prefix("*.") {
        ("wildcard", rest)
    } else if let Some(rest) = pattern.strip_prefix('.') {
        ("suffix", rest)
    } else {
        ("name", pattern)
    };
    if rest.contains('*') {
        return Err(format!("`{pattern}`: `*` is allowed only as a whole first label, as in `*.example.com`"));
    }
    if kind != "name" && !rest.contains('.') {
        return Err(format!("`{pattern}` is too broad: a {kind} needs at least a second-level domain"));
    }
    crate::issuance::check_dns_name(rest).map_err(|why| format!("`{pattern}`: `{rest}` {why}"))
}

/// Whether `name` (a DNS name, possibly a wildcard) is allowed by `pattern`.
pub fn domain_matches(pattern: &str, name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if pattern.starts_with('.') {
        return name.len() > pattern.len() && name.ends_with(pattern) && !name.starts_with('.');
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.'));
    }
    name == pattern
}

/// What is known about a certificate being judged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subject {
    /// The common name and subject alternative names. IP and e-mail SANs
    /// are not domains and are not judged by domain rules.
    pub names: Vec<String>,
    /// `issuers/{issuer}`; `None`: unknown.
    pub issuer: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Empty: the certificate has none.
    pub environment: String,
    /// `teams/{team}`, or empty.
    pub team: String,
    /// How long the version is (or is to be) valid.
    pub lifetime_secs: Option<i64>,
    pub key_algorithm: Option<KeyAlgorithm>,
    /// How long before expiry the certificate's renewal policy renews it.
    pub renewal_lead_secs: Option<i64>,
}

/// The lead a renewal policy gives a version of `lifetime_secs`: the larger
/// of its fixed lead and its fraction of the lifetime (the renewal happens at
/// the earlier of the two points, see `renewal`), before clamping and jitter.
pub fn renewal_lead(policy: &RenewalPolicy, lifetime_secs: Option<i64>) -> Option<i64> {
    let by_fraction = policy.renew_before_lifetime_fraction.zip(lifetime_secs).map(|(f, l)| (f * l as f64) as i64);
    match (policy.renew_before_secs, by_fraction) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// One rule a subject breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `policies/{policy}`; empty from the bare `evaluate`.
    pub policy: String,
    pub rule: String,
    pub severity: Severity,
    /// Why, in a sentence an operator understands.
    pub message: String,
}

impl Violation {
    /// `policies/p, rule r (ERROR): why`.
    pub fn describe(&self) -> String {
        format!("{} rule `{}` ({}): {}", self.policy, self.rule, self.severity.as_str(), self.message)
    }
}

/// The rules `subject` breaks, in rule order.
pub fn evaluate(rules: &[Rule], subject: &Subject) -> Vec<Violation> {
    rules
        .iter()
        .filter_map(|rule| {
            why_broken(&rule.kind, subject).map(|message| Violation {
                policy: String::new(),
                rule: rule.id.clone(),
                severity: rule.severity,
                message,
            })
        })
        .collect()
}

fn why_broken(kind: &RuleKind, s: &Subject) -> Option<String> {
    match kind {
        RuleKind::AllowedIssuers(allowed) => {
            let issuer = s.issuer.as_ref()?;
            if allowed.contains(issuer) {
                None
            } else if issuer.is_empty() {
                Some(format!("the certificate has no issuer; allowed issuers are {}", allowed.join(", ")))
            } else {
                Some(format!("{issuer} is not an allowed issuer; allowed issuers are {}", allowed.join(", ")))
            }
        }
        RuleKind::AllowedDomains(patterns) => {
            let outside: Vec<&str> = s
                .names
                .iter()
                .filter(|n| is_domain_name(n))
                .filter(|n| !patterns.iter().any(|p| domain_matches(p, n)))
                .map(String::as_str)
                .collect();
            (!outside.is_empty()).then(|| {
                format!(
                    "{} {} outside the allowed domains {}",
                    outside.join(", "),
                    if outside.len() == 1 { "is" } else { "are" },
                    patterns.join(", ")
                )
            })
        }
        RuleKind::RequiredMetadataKeys(keys) => {
            let missing: Vec<&str> = keys
                .iter()
                .filter(|k| s.metadata.get(*k).is_none_or(|v| v.trim().is_empty()))
                .map(String::as_str)
                .collect();
            (!missing.is_empty()).then(|| format!("the metadata lacks required key(s) {}", missing.join(", ")))
        }
        RuleKind::AllowedEnvironments(envs) => {
            if envs.contains(&s.environment) {
                None
            } else if s.environment.is_empty() {
                Some(format!("the certificate has no environment; allowed environments are {}", envs.join(", ")))
            } else {
                Some(format!("environment `{}` is not one of {}", s.environment, envs.join(", ")))
            }
        }
        RuleKind::MaxLifetime { secs } => {
            let lifetime = s.lifetime_secs?;
            (lifetime > *secs)
                .then(|| format!("a lifetime of {} exceeds the maximum of {}", describe(lifetime), describe(*secs)))
        }
        RuleKind::KeyAlgorithms { allowed, min_strength_bits } => {
            let key = s.key_algorithm?;
            if !allowed.is_empty() && !allowed.contains(&key) {
                let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
                return Some(format!("key algorithm {} is not allowed; use one of {}", key.as_str(), names.join(", ")));
            }
            let strength = strength_bits(key);
            (strength < *min_strength_bits).then(|| {
                if key == KeyAlgorithm::Other {
                    format!("the key's strength is unknown; at least {min_strength_bits} bits are required")
                } else {
                    format!(
                        "a {} key is {strength} bits strong, below the minimum of {min_strength_bits}",
                        key.as_str()
                    )
                }
            })
        }
        RuleKind::MinRenewalLead { secs } => {
            let lead = s.renewal_lead_secs?;
            (lead < *secs).then(|| {
                format!("it is renewed {} before expiry, less than the required {}", describe(lead), describe(*secs))
            })
        }
    }
}

/// IP addresses and e-mail addresses are not domains.
fn is_domain_name(name: &str) -> bool {
    !name.contains('@') && name.parse::<std::net::IpAddr>().is_err()
}

fn describe(secs: i64) -> String {
    if secs % DAY == 0 {
        format!("{} days", secs / DAY)
    } else if secs % 3600 == 0 {
        format!("{} hours", secs / 3600)
    } else {
        format!("{secs} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind) -> Rule {
        Rule { id: kind.kind_name().into(), severity: Severity::Error, kind }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn domain_patterns_match_as_documented() {
        let check = |pattern: &str, name: &str, expected: bool| {
            assert_eq!(domain_matches(pattern, name), expected, "{pattern} vs {name}");
        };
        check("web.example.com", "web.example.com", true);
        check("web.example.com", "WEB.example.com", true);
        check("web.example.com", "api.example.com", false);
        check("*.example.com", "web.example.com", true);
        check("*.example.com", "*.example.com", true);
        check("*.example.com", "a.b.example.com", false);
        check("*.example.com", "example.com", false);
        check("*.example.com", "badexample.com", false);
        check(".example.com", "web.example.com", true);
        check(".example.com", "a.b.example.com", true);
        check(".example.com", "*.example.com", true);
        check(".example.com", "example.com", false);
        check(".example.com", "badexample.com", false);
        check(".example.com", "web.example.com.evil.net", false);
    }

    #[test]
    fn invalid_rules_are_refused_naming_the_field() {
        let check = |kind: RuleKind, field: Option<&str>| {
            let policy = Policy { id: "p".into(), rules: vec![rule(kind.clone())], ..Default::default() };
            match (policy.validate(), field) {
                (Ok(()), None) => {}
                (Err(DomainError::InvalidArgument(v)), Some(f)) => {
                    assert_eq!(v[0].field, f, "{kind:?}: {v:?}")
                }
                (got, _) => panic!("{kind:?}: unexpected {got:?}"),
            }
        };
        check(RuleKind::AllowedDomains(strings(&["*.example.com", ".example.org", "a.example.net"])), None);
        check(
            RuleKind::AllowedDomains(strings(&["*.example.com", "a.*.example.com"])),
            Some("policy.rules[0].allowed_domains[1]"),
        );
        check(RuleKind::AllowedDomains(strings(&["**.example.com"])), Some("policy.rules[0].allowed_domains[0]"));
        check(RuleKind::AllowedDomains(strings(&["Example.COM"])), Some("policy.rules[0].allowed_domains[0]"));
        check(RuleKind::AllowedDomains(strings(&[".com"])), Some("policy.rules[0].allowed_domains[0]"));
        check(RuleKind::AllowedDomains(strings(&["*.com"])), Some("policy.rules[0].allowed_domains[0]"));
        check(RuleKind::AllowedDomains(strings(&["com"])), Some("policy.rules[0].allowed_domains[0]"));
        check(RuleKind::AllowedDomains(vec![]), Some("policy.rules[0].allowed_domains"));
        check(RuleKind::AllowedIssuers(strings(&["issuers/local"])), None);
        check(RuleKind::AllowedIssuers(strings(&["local"])), Some("policy.rules[0].allowed_issuers[0]"));
        check(RuleKind::RequiredMetadataKeys(strings(&["cost-center"])), None);
        check(RuleKind::RequiredMetadataKeys(strings(&["a b"])), Some("policy.rules[0].required_metadata_keys[0]"));
        check(RuleKind::AllowedEnvironments(strings(&["prod"])), None);
        check(RuleKind::AllowedEnvironments(strings(&["pro d"])), Some("policy.rules[0].allowed_environments[0]"));
        check(RuleKind::MaxLifetime { secs: 0 }, Some("policy.rules[0].max_lifetime"));
        check(RuleKind::MinRenewalLead { secs: -1 }, Some("policy.rules[0].min_renewal_lead"));
        check(
            RuleKind::KeyAlgorithms { allowed: vec![], min_strength_bits: 0 },
            Some("policy.rules[0].key_algorithms"),
        );
        check(
            RuleKind::KeyAlgorithms { allowed: vec![KeyAlgorithm::Other], min_strength_bits: 0 },
            Some("policy.rules[0].key_algorithms.allowed"),
        );
        check(
            RuleKind::KeyAlgorithms { allowed: vec![], min_strength_bits: 1000 },
            Some("policy.rules[0].key_algorithms.min_strength_bits"),
        );
    }

    #[test]
    fn policies_are_validated_as_a_whole() {
        let mut p = Policy { id: "p".into(), ..Default::default() };
        assert!(matches!(p.validate(), Err(DomainError::InvalidArgument(v)) if v[0].field == "policy.rules"));
        p.rules = vec![rule(RuleKind::MaxLifetime { secs: DAY }), rule(RuleKind::MaxLifetime { secs: 2 * DAY })];
        let err = p.validate().unwrap_err();
        assert!(matches!(err, DomainError::InvalidArgument(ref v) if v[0].field == "policy.rules[1].id"), "{err:?}");
        p.rules[1].id = String::new();
        p.normalize();
        assert_eq!(p.rules[1].id, "max-lifetime", "an empty id takes the kind's name");
        p.rules[1].id = "Bad Id".into();
        assert!(matches!(p.validate(), Err(DomainError::InvalidArgument(v)) if v[0].field == "policy.rules[1].id"));
    }

    fn subject() -> Subject {
        Subject {
            names: strings(&["web.example.com", "10.0.0.1", "ops@example.com"]),
            issuer: Some("issuers/local".into()),
            metadata: [("cost-center".to_string(), "42".to_string())].into(),
            labels: BTreeMap::new(),
            environment: "prod".into(),
            team: "teams/web".into(),
            lifetime_secs: Some(90 * DAY),
            key_algorithm: Some(KeyAlgorithm::EcdsaP256),
            renewal_lead_secs: Some(30 * DAY),
        }
    }

    #[test]
    fn evaluation_says_which_rule_is_broken_and_why() {
        // (rule, how the subject differs, the message, or None for no violation)
        let check = |kind: RuleKind, change: &dyn Fn(&mut Subject), expected: Option<&str>| {
            let mut s = subject();
            change(&mut s);
            let got = evaluate(&[rule(kind.clone())], &s);
            match expected {
                None => assert!(got.is_empty(), "{kind:?}: {got:?}"),
                Some(message) => {
                    assert_eq!(got.len(), 1, "{kind:?}: {got:?}");
                    assert_eq!(got[0].rule, kind.kind_name());
                    assert_eq!(got[0].severity, Severity::Error);
                    assert_eq!(got[0].message, message, "{kind:?}");
                }
            }
        };
        let same = |_: &mut Subject| {};
        let issuers = || RuleKind::AllowedIssuers(strings(&["issuers/local", "issuers/acme"]));
        check(issuers(), &same, None);
        check(
            issuers(),
            &|s| s.issuer = Some("issuers/other".into()),
            Some("issuers/other is not an allowed issuer; allowed issuers are issuers/local, issuers/acme"),
        );
        check(
            issuers(),
            &|s| s.issuer = Some(String::new()),
            Some("the certificate has no issuer; allowed issuers are issuers/local, issuers/acme"),
        );
        check(issuers(), &|s| s.issuer = None, None);

        let domains = || RuleKind::AllowedDomains(strings(&["*.example.com", ".internal.example.org"]));
        check(domains(), &same, None);
        check(domains(), &|s| s.names.push("a.b.internal.example.org".into()), None);
        check(
            domains(),
            &|s| s.names.push("a.b.example.com".into()),
            Some("a.b.example.com is outside the allowed domains *.example.com, .internal.example.org"),
        );
        check(
            domains(),
            &|s| s.names = strings(&["evil.net", "example.com"]),
            Some("evil.net, example.com are outside the allowed domains *.example.com, .internal.example.org"),
        );

        let metadata = || RuleKind::RequiredMetadataKeys(strings(&["cost-center", "ticket"]));
        check(
            metadata(),
            &|s| {
                s.metadata.insert("ticket".into(), "T-1".into());
            },
            None,
        );
        check(metadata(), &same, Some("the metadata lacks required key(s) ticket"));
        check(
            metadata(),
            &|s| {
                s.metadata.insert("cost-center".into(), " ".into());
            },
            Some("the metadata lacks required key(s) cost-center, ticket"),
        );

        let envs = || RuleKind::AllowedEnvironments(strings(&["prod", "staging"]));
        check(envs(), &same, None);
        check(envs(), &|s| s.environment = "dev".into(), Some("environment `dev` is not one of prod, staging"));
        check(
            envs(),
            &|s| s.environment = String::new(),
            Some("the certificate has no environment; allowed environments are prod, staging"),
        );

        let lifetime = || RuleKind::MaxLifetime { secs: 90 * DAY };
        check(lifetime(), &same, None);
        check(
            lifetime(),
            &|s| s.lifetime_secs = Some(90 * DAY + 3600),
            Some("a lifetime of 2161 hours exceeds the maximum of 90 days"),
        );
        check(
            lifetime(),
            &|s| s.lifetime_secs = Some(365 * DAY),
            Some("a lifetime of 365 days exceeds the maximum of 90 days"),
        );
        check(lifetime(), &|s| s.lifetime_secs = None, None);

        let keys = || RuleKind::KeyAlgorithms {
            allowed: vec![KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048],
            min_strength_bits: 128,
        };
        check(keys(), &same, None);
        check(keys(), &|s| s.key_algorithm = Some(KeyAlgorithm::EcdsaP384), None);
        check(
            keys(),
            &|s| s.key_algorithm = Some(KeyAlgorithm::Rsa2048),
            Some("a RSA_2048 key is 112 bits strong, below the minimum of 128"),
        );
        check(
            keys(),
            &|s| s.key_algorithm = Some(KeyAlgorithm::Ed25519),
            Some("key algorithm ED25519 is not allowed; use one of ECDSA_P256, ECDSA_P384, RSA_2048"),
        );
        check(
            RuleKind::KeyAlgorithms { allowed: vec![], min_strength_bits: 112 },
            &|s| s.key_algorithm = Some(KeyAlgorithm::Other),
            Some("the key's strength is unknown; at least 112 bits are required"),
        );
        check(keys(), &|s| s.key_algorithm = None, None);

        let lead = || RuleKind::MinRenewalLead { secs: 14 * DAY };
        check(lead(), &same, None);
        check(
            lead(),
            &|s| s.renewal_lead_secs = Some(7 * DAY),
            Some("it is renewed 7 days before expiry, less than the required 14 days"),
        );
        check(lead(), &|s| s.renewal_lead_secs = None, None);
    }

    #[test]
    fn selectors_pick_the_certificates_a_policy_judges() {
        let policy = Policy {
            id: "prod-only".into(),
            rules: vec![rule(RuleKind::MaxLifetime { secs: DAY })],
            selector: Selector {
                labels: [("tier".to_string(), "web".to_string())].into(),
                environments: strings(&["prod"]),
                teams: vec![],
            },
            ..Default::default()
        };
        let mut s = subject();
        assert!(policy.evaluate(&s).is_empty(), "no tier label: not selected");
        s.labels.insert("tier".into(), "web".into());
        let got = policy.evaluate(&s);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].policy, "policies/prod-only");
        assert_eq!(
            got[0].describe(),
            "policies/prod-only rule `max-lifetime` (ERROR): a lifetime of 90 days exceeds the maximum of 1 days"
        );
        s.environment = "dev".into();
        assert!(policy.evaluate(&s).is_empty(), "another environment: not selected");
    }

    #[test]
    fn renewal_leads_and_strengths() {
        let check = |fraction: Option<f64>, fixed: Option<i64>, lifetime: Option<i64>, expected: Option<i64>| {
            let p = RenewalPolicy {
                renew_before_lifetime_fraction: fraction,
                renew_before_secs: fixed,
                ..Default::default()
            };
            assert_eq!(renewal_lead(&p, lifetime), expected, "{fraction:?} {fixed:?} {lifetime:?}");
        };
        check(Some(1.0 / 3.0), None, Some(90 * DAY), Some(30 * DAY));
        check(Some(1.0 / 3.0), None, None, None);
        check(None, Some(7 * DAY), None, Some(7 * DAY));
        check(Some(0.5), Some(7 * DAY), Some(10 * DAY), Some(7 * DAY));
        check(Some(0.5), Some(DAY), Some(10 * DAY), Some(5 * DAY));
        assert!(Severity::Error.blocks_issuance() && Severity::Critical.blocks_issuance());
        assert!(!Severity::Warning.blocks_issuance());
        assert_eq!(Severity::parse("critical"), Some(Severity::Critical));
    }
}
