//! Issuance rules that need no IO: certificate profiles (what may be signed),
//! DNS name patterns, revocation reasons.

use std::net::IpAddr;

use crate::inventory::KeyAlgorithm;
use crate::{DomainError, FieldViolation, UnixTime};

pub const DAY: i64 = 86_400;

/// Extended key usages a profile can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
}

/// Every key algorithm certctl signs for.
pub const SIGNABLE_KEYS: [KeyAlgorithm; 6] = [
    KeyAlgorithm::EcdsaP256,
    KeyAlgorithm::EcdsaP384,
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::Rsa4096,
    KeyAlgorithm::Ed25519,
];

/// What an issuer may sign under this profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub id: String,
    pub display_name: String,
    /// Empty means every signable key.
    pub allowed_key_algorithms: Vec<KeyAlgorithm>,
    pub default_key_algorithm: KeyAlgorithm,
    pub max_lifetime_secs: i64,
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// `name`, `*.suffix` (one label) or `**.suffix` (the suffix and below).
    pub allowed_dns_patterns: Vec<String>,
    pub allow_ip_addresses: bool,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

/// Longest lifetime any profile may allow: the CA/B Forum's former ceiling.
pub const MAX_PROFILE_LIFETIME_SECS: i64 = 825 * DAY;
/// Shortest: short enough for tests that watch renewals happen.
pub const MIN_LIFETIME_SECS: i64 = 60;

impl Profile {
    /// The profiles every installation starts with.
    pub fn built_in(now: UnixTime) -> Vec<Profile> {
        let base = Profile {
            id: String::new(),
            display_name: String::new(),
            allowed_key_algorithms: Vec::new(),
            default_key_algorithm: KeyAlgorithm::EcdsaP256,
            max_lifetime_secs: 90 * DAY,
            extended_key_usages: vec![ExtendedKeyUsage::ServerAuth],
            allowed_dns_patterns: Vec::new(),
            allow_ip_addresses: true,
            create_time: now,
            update_time: now,
        };
        vec![
            Profile { id: "tls-server".into(), display_name: "TLS server (90 days)".into(), ..base.clone() },
            Profile {
                id: "tls-client".into(),
                display_name: "TLS client (90 days)".into(),
                extended_key_usages: vec![ExtendedKeyUsage::ClientAuth],
                ..base
            },
        ]
    }

    pub fn name(&self) -> String {
        crate::name::Collection::Profiles.name(&self.id)
    }

    /// Checks a profile an operator wrote.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Vec::new();
        if let Err(DomainError::InvalidArgument(violations)) = crate::name::validate_id("profile.name", &self.id) {
            v.extend(violations);
        }
        for (i, key) in self.allowed_key_algorithms.iter().enumerate() {
            if !SIGNABLE_KEYS.contains(key) {
                v.push(FieldViolation::new(
                    format!("profile.allowed_key_algorithms[{i}]"),
                    "must be one of ECDSA P-256/P-384, RSA 2048/3072/4096 or Ed25519",
                ));
            }
        }
        if !self.allows_key(self.default_key_algorithm) {
            v.push(FieldViolation::new(
                "profile.default_key_algorithm",
                "must be a signable key type that the profile allows",
            ));
        }
        if !(MIN_LIFETIME_SECS..=MAX_PROFILE_LIFETIME_SECS).contains(&self.max_lifetime_secs) {
            v.push(FieldViolation::new(
                "profile.max_lifetime",
                format!("must be between {MIN_LIFETIME_SECS} seconds and 825 days"),
            ));
        }
        if self.extended_key_usages.is_empty() {
            v.push(FieldViolation::new("profile.extended_key_usages", "name at least one usage"));
        }
        for (i, pattern) in self.allowed_dns_patterns.iter().enumerate() {
            if let Err(reason) = check_pattern(pattern) {
                v.push(FieldViolation::new(format!("profile.allowed_dns_patterns[{i}]"), reason));
            }
        }
        if self.display_name.chars().count() > 200 {
            v.push(FieldViolation::new("profile.display_name", "at most 200 characters"));
        }
        if v.is_empty() { Ok(()) } else { Err(DomainError::InvalidArgument(v)) }
    }

    pub fn allows_key(&self, key: KeyAlgorithm) -> bool {
        SIGNABLE_KEYS.contains(&key)
            && (self.allowed_key_algorithms.is_empty() || self.allowed_key_algorithms.contains(&key))
    }

    /// The lifetime to sign with: the request's, or the profile's maximum.
    pub fn lifetime(&self, requested_secs: Option<i64>) -> Result<i64, DomainError> {
        match requested_secs {
            None | Some(0) => Ok(self.max_lifetime_secs),
            Some(secs) if secs < MIN_LIFETIME_SECS => {
                Err(DomainError::invalid("lifetime", format!("must be at least {MIN_LIFETIME_SECS} seconds")))
            }
            Some(secs) if secs > self.max_lifetime_secs => Err(DomainError::invalid(
                "lifetime",
                format!(
                    "{} exceeds the maximum of profiles/{} ({})",
                    describe_secs(secs),
                    self.id,
                    describe_secs(self.max_lifetime_secs)
                ),
            )),
            Some(secs) => Ok(secs),
        }
    }

    /// Checks every name a certificate would carry.
    pub fn check_names(&self, dns_names: &[String], ips: &[IpAddr]) -> Result<(), DomainError> {
        let mut v = Vec::new();
        if dns_names.is_empty() && ips.is_empty() {
            v.push(FieldViolation::new("csr", "names no DNS name or IP address; a certificate needs at least one"));
        }
        for name in dns_names {
            if let Err(reason) = check_dns_name(name) {
                v.push(FieldViolation::new("csr", format!("`{name}` {reason}")));
            } else if !self.allowed_dns_patterns.is_empty()
                && !self.allowed_dns_patterns.iter().any(|p| pattern_matches(p, name))
            {
                v.push(FieldViolation::new(
                    "csr",
                    format!(
                        "`{name}` is outside profiles/{} (allowed: {})",
                        self.id,
                        self.allowed_dns_patterns.join(", ")
                    ),
                ));
            }
        }
        if !ips.is_empty() && !self.allow_ip_addresses {
            v.push(FieldViolation::new("csr", format!("profiles/{} does not allow IP address names", self.id)));
        }
        if v.is_empty() { Ok(()) } else { Err(DomainError::InvalidArgument(v)) }
    }
}

fn describe_secs(secs: i64) -> String {
    if secs % DAY == 0 { format!("{} days", secs / DAY) } else { format!("{secs} seconds") }
}

/// A DNS name as certificates carry it: lower-case LDH labels, optionally a
/// leading `*` label for a wildcard.
pub fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.len() > 253 {
        return Err("is longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 && name != "localhost" {
        return Err("is not a fully qualified name");
    }
    for (i, label) in labels.iter().enumerate() {
        if i == 0 && *label == "*" {
            if labels.len() < 3 {
                return Err("is a wildcard too close to the top level");
            }
            continue;
        }
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("is not a valid lower-case DNS name");
        }
    }
    Ok(())
}

fn check_pattern(pattern: &str) -> Result<(), String> {
    let rest = pattern.strip_prefix("**.").or_else(|| pattern.strip_prefix("*.")).unwrap_or(pattern);
    check_dns_name(rest).map_err(|reason| format!("`{pattern}`: the part after any `*.`/`**.` {reason}")).and_then(
        |()| if rest.contains('*') { Err(format!("`{pattern}`: `*` only as the first label")) } else { Ok(()) },
    )
}

/// `example.com` matches itself; `*.example.com` matches one label below
/// (including the literal wildcard `*.example.com`); `**.example.com`
/// matches `example.com` and any depth below.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("**.") {
        return name == suffix || name.strip_suffix(suffix).is_some_and(|head| head.ends_with('.') && head.len() > 1);
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return name
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.'));
    }
    pattern == name
}

/// RFC 5280 §5.3.1 reason codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RevocationReason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    RemoveFromCrl = 8,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

impl RevocationReason {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Unspecified,
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => return None,
        })
    }

    /// The RFC 5280 ASN.1 name (`keyCompromise`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::CaCompromise => "cACompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
            Self::CertificateHold => "certificateHold",
            Self::RemoveFromCrl => "removeFromCRL",
            Self::PrivilegeWithdrawn => "privilegeWithdrawn",
            Self::AaCompromise => "aACompromise",
        }
    }

    /// Reasons that only mean something for CRL-delta or attribute
    /// certificates; a revocation here must not use them.
    pub fn usable_for_revocation(self) -> bool {
        !matches!(self, Self::RemoveFromCrl | Self::AaCompromise | Self::CertificateHold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_documented() {
        let check = |pattern: &str, name: &str, expected: bool| {
            assert_eq!(pattern_matches(pattern, name), expected, "{pattern} vs {name}");
        };
        check("example.com", "example.com", true);
        check("example.com", "www.example.com", false);
        check("*.example.com", "www.example.com", true);
        check("*.example.com", "*.example.com", true);
        check("*.example.com", "a.b.example.com", false);
        check("*.example.com", "example.com", false);
        check("*.example.com", "wwwexample.com", false);
        check("**.example.com", "example.com", true);
        check("**.example.com", "a.b.example.com", true);
        check("**.example.com", "badexample.com", false);
        check("**.example.com", ".example.com", false);
    }

    #[test]
    fn dns_names_are_checked() {
        assert!(check_dns_name("www.example.com").is_ok());
        assert!(check_dns_name("*.example.com").is_ok());
        assert!(check_dns_name("localhost").is_ok());
        for bad in ["WWW.example.com", "a..b", "-a.example.com", "*.com", "a.*.example.com", "com", "a b.example.com"] {
            assert!(check_dns_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn profiles_bound_names_keys_and_lifetimes() {
        let mut profile = Profile::built_in(0).remove(0);
        profile.allowed_dns_patterns = vec!["**.corp.example".into()];
        profile.allow_ip_addresses = false;
        profile.allowed_key_algorithms = vec![KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa3072];
        assert!(profile.validate().is_ok());
        assert!(profile.check_names(&["api.corp.example".into()], &[]).is_ok());
        let outside = profile.check_names(&["api.corp.example".into(), "evil.example".into()], &[]).unwrap_err();
        assert!(outside.to_string().contains("`evil.example` is outside profiles/tls-server"), "{outside}");
        assert!(profile.check_names(&[], &["10.0.0.1".parse().unwrap()]).is_err());
        assert!(profile.check_names(&[], &[]).is_err());
        assert!(profile.allows_key(KeyAlgorithm::Rsa3072));
        assert!(!profile.allows_key(KeyAlgorithm::Rsa2048));
        assert!(!profile.allows_key(KeyAlgorithm::Other));

        assert_eq!(profile.lifetime(None).unwrap(), 90 * DAY);
        assert_eq!(profile.lifetime(Some(300)).unwrap(), 300);
        let long = profile.lifetime(Some(91 * DAY)).unwrap_err();
        assert!(long.to_string().contains("91 days exceeds the maximum of profiles/tls-server (90 days)"), "{long}");
        assert!(profile.lifetime(Some(5)).is_err());
    }

    #[test]
    fn bad_profiles_are_refused_field_by_field() {
        let mut profile = Profile::built_in(0).remove(0);
        profile.id = "Bad Id".into();
        profile.allowed_key_algorithms = vec![KeyAlgorithm::Rsa2048];
        profile.max_lifetime_secs = 900 * DAY;
        profile.extended_key_usages.clear();
        profile.allowed_dns_patterns = vec!["a.*.example".into(), "ok.example".into()];
        let Err(DomainError::InvalidArgument(violations)) = profile.validate() else { panic!("refused") };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "profile.name",
                "profile.default_key_algorithm",
                "profile.max_lifetime",
                "profile.extended_key_usages",
                "profile.allowed_dns_patterns[0]"
            ]
        );
    }

    #[test]
    fn reasons_round_trip_their_codes() {
        for code in 0..=11 {
            match RevocationReason::from_code(code) {
                Some(reason) => assert_eq!(i64::from(reason.code()), code),
                None => assert!(code == 7 || code == 11),
            }
        }
        assert_eq!(RevocationReason::KeyCompromise.as_str(), "keyCompromise");
    }
}
