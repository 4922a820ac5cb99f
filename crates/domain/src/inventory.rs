//! Inventory resources and their rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Violations;
use crate::name::{self, Collection};
use crate::{DomainError, UnixTime};

pub const DAY: i64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CertificateState {
    Pending,
    Active,
    Expiring,
    Expired,
    Revoked,
}

/// Key algorithms certctl recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
    Other,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ECDSA_P256",
            Self::EcdsaP384 => "ECDSA_P384",
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::Ed25519 => "ED25519",
            Self::Other => "OTHER",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "ECDSA_P256" => Self::EcdsaP256,
            "ECDSA_P384" => Self::EcdsaP384,
            "RSA_2048" => Self::Rsa2048,
            "RSA_3072" => Self::Rsa3072,
            "RSA_4096" => Self::Rsa4096,
            "ED25519" => Self::Ed25519,
            _ => Self::Other,
        }
    }
}

/// What was read from an X.509 certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCertificate {
    pub serial_number: String,
    pub sha256_fingerprint: String,
    pub subject: String,
    pub issuer: String,
    pub common_name: String,
    pub subject_alt_names: Vec<String>,
    pub key_algorithm: KeyAlgorithm,
    pub key_size: i32,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

/// One stored version of a managed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateVersion {
    pub certificate_id: String,
    pub version: i64,
    pub pem_chain: String,
    pub parsed: ParsedCertificate,
    pub create_time: UnixTime,
    /// Set once the CA has revoked this version.
    pub revocation: Option<Revocation>,
}

/// The CRLReason names of RFC 5280 (section 5.3.1) that revoke a certificate.
/// `removeFromCRL` is left out: it takes an entry off a CRL, it revokes nothing.
pub const REVOCATION_REASONS: &[&str] = &[
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
    "aACompromise",
];

/// That, when and why a CA revoked a certificate version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub revoke_time: UnixTime,
    /// One of `REVOCATION_REASONS`.
    pub reason: String,
}

impl Revocation {
    /// A revocation as a caller reports it; an empty reason is `unspecified`,
    /// as an absent reason code is in a CRL.
    pub fn new(revoke_time: Option<UnixTime>, reason: &str) -> Result<Self, DomainError> {
        let mut v = Violations::new();
        v.check(revoke_time.is_some(), "revoke_time", "required");
        let reason = if reason.is_empty() { "unspecified" } else { reason };
        if !REVOCATION_REASONS.contains(&reason) {
            v.add(
                "reason",
                format!("`{reason}` is not an RFC 5280 reason; use one of {}", REVOCATION_REASONS.join(", ")),
            );
        }
        v.into_result()?;
        Ok(Self { revoke_time: revoke_time.expect("checked above"), reason: reason.to_owned() })
    }
}

impl CertificateVersion {
    pub fn name(&self) -> String {
        name::version_name(&self.certificate_id, self.version)
    }
}

/// The summary of the current version kept on the certificate row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentVersion {
    pub version: i64,
    pub serial_number: String,
    pub sha256_fingerprint: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Certificate {
    pub id: String,
    pub display_name: String,
    pub common_name: String,
    pub subject_alt_names: Vec<String>,
    pub owner: String,
    pub team: String,
    pub environment: String,
    pub issuer: String,
    pub profile: String,
    pub renewal_policy: String,
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// The platform generates and keeps this certificate's private key
    /// instead of the agent or the caller.
    pub server_keyed: bool,
    /// Key type for new keys; `None` leaves it to the profile.
    pub key_algorithm: Option<KeyAlgorithm>,
    pub current: Option<CurrentVersion>,
    pub revoked: bool,
    /// How long before not_after the certificate counts as expiring: its
    /// policy's first alert threshold.
    pub alert_lead_secs: i64,
    /// When its next version is due (`next_issue_time` under its policy),
    /// kept on the row so that "what is due" is one index range.
    pub renew_time: Option<UnixTime>,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl Certificate {
    pub fn name(&self) -> String {
        Collection::Certificates.name(&self.id)
    }

    /// The moment the certificate enters its first alert threshold.
    pub fn expiring_at(&self) -> Option<UnixTime> {
        self.current.as_ref().map(|c| c.not_after - self.alert_lead_secs)
    }

    /// When certctl should issue this certificate's next version under
    /// `policy`: at once while it has none, then at its current version's
    /// renewal time (`renewal::renewal_time`). `None` for a certificate
    /// certctl does not issue (no issuer) or no longer may (revoked).
    pub fn next_issue_time(&self, policy: &RenewalPolicy) -> Option<UnixTime> {
        if self.issuer.is_empty() || self.revoked {
            return None;
        }
        Some(match &self.current {
            None => self.create_time,
            Some(c) => crate::renewal::renewal_time(policy, &self.id, c.version, c.not_before, c.not_after),
        })
    }

    pub fn state(&self, now: UnixTime) -> CertificateState {
        match &self.current {
            _ if self.revoked => CertificateState::Revoked,
            None => CertificateState::Pending,
            Some(c) if c.not_after <= now => CertificateState::Expired,
            Some(c) if c.not_after - self.alert_lead_secs <= now => CertificateState::Expiring,
            Some(_) => CertificateState::Active,
        }
    }

    /// Checks everything a caller may set.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("certificate_id", &self.id));
        v.check(self.display_name.len() <= 200, "certificate.display_name", "at most 200 characters");
        if self.common_name.is_empty() && self.subject_alt_names.is_empty() {
            v.add(
                "certificate.common_name",
                "a certificate needs a common name or at least one subject alternative name",
            );
        }
        if !self.common_name.is_empty() {
            v.merge(validate_dns_name("certificate.common_name", &self.common_name));
        }
        for (i, san) in self.subject_alt_names.iter().enumerate() {
            v.merge(validate_san(&format!("certificate.subject_alt_names[{i}]"), san));
        }
        v.merge(name::parse_optional("certificate.owner", Collection::Owners, &self.owner));
        v.merge(name::parse_optional("certificate.team", Collection::Teams, &self.team));
        v.merge(name::parse_optional("certificate.issuer", Collection::Issuers, &self.issuer));
        v.merge(name::parse_optional("certificate.profile", Collection::Profiles, &self.profile));
        v.merge(name::parse_optional("certificate.renewal_policy", Collection::RenewalPolicies, &self.renewal_policy));
        for (i, target) in self.targets.iter().enumerate() {
            v.merge(name::parse(&format!("certificate.targets[{i}]"), Collection::Targets, target).map(|_| ()));
        }
        v.check(
            self.environment.len() <= 63
                && self.environment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "certificate.environment",
            "at most 63 letters, digits, '-' or '_'",
        );
        v.merge(validate_map("certificate.labels", &self.labels));
        v.merge(validate_map("certificate.metadata", &self.metadata));
        v.check(
            self.key_algorithm != Some(KeyAlgorithm::Other),
            "certificate.key_algorithm",
            "OTHER describes keys found on imported certificates; choose a key type certctl can generate",
        );
        v.into_result()
    }

    /// Applies `patch` to the fields named in `mask` (AIP-134). An empty mask
    /// means every field the patch sets.
    pub fn apply_update(&mut self, patch: Certificate, mask: &[String]) -> Result<(), DomainError> {
        const FIELDS: &[&str] = &[
            "display_name",
            "common_name",
            "subject_alt_names",
            "owner",
            "team",
            "environment",
            "issuer",
            "profile",
            "renewal_policy",
            "targets",
            "labels",
            "metadata",
            "server_keyed",
            "key_algorithm",
        ];
        let paths = effective_mask(mask, FIELDS, |f| match f {
            "display_name" => !patch.display_name.is_empty(),
            "common_name" => !patch.common_name.is_empty(),
            "subject_alt_names" => !patch.subject_alt_names.is_empty(),
            "owner" => !patch.owner.is_empty(),
            "team" => !patch.team.is_empty(),
            "environment" => !patch.environment.is_empty(),
            "issuer" => !patch.issuer.is_empty(),
            "profile" => !patch.profile.is_empty(),
            "renewal_policy" => !patch.renewal_policy.is_empty(),
            "targets" => !patch.targets.is_empty(),
            "labels" => !patch.labels.is_empty(),
            "metadata" => !patch.metadata.is_empty(),
            "server_keyed" => patch.server_keyed,
            "key_algorithm" => patch.key_algorithm.is_some(),
            _ => false,
        })?;
        for path in paths {
            match path {
                "display_name" => self.display_name = patch.display_name.clone(),
                "common_name" => self.common_name = patch.common_name.clone(),
                "subject_alt_names" => self.subject_alt_names = patch.subject_alt_names.clone(),
                "owner" => self.owner = patch.owner.clone(),
                "team" => self.team = patch.team.clone(),
                "environment" => self.environment = patch.environment.clone(),
                "issuer" => self.issuer = patch.issuer.clone(),
                "profile" => self.profile = patch.profile.clone(),
                "renewal_policy" => self.renewal_policy = patch.renewal_policy.clone(),
                "targets" => self.targets = patch.targets.clone(),
                "labels" => self.labels = patch.labels.clone(),
                "metadata" => self.metadata = patch.metadata.clone(),
                "server_keyed" => self.server_keyed = patch.server_keyed,
                "key_algorithm" => self.key_algorithm = patch.key_algorithm,
                _ => unreachable!("effective_mask only returns known fields"),
            }
        }
        self.validate()
    }
}

/// Resolves an update mask against the updatable fields. Unknown paths are an
/// error naming `update_mask`; `*` means all fields; empty means the set ones.
pub fn effective_mask<'a>(
    mask: &[String],
    fields: &[&'a str],
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<&'a str>, DomainError> {
    if mask.is_empty() {
        return Ok(fields.iter().copied().filter(|f| is_set(f)).collect());
    }
    if mask.len() == 1 && mask[0] == "*" {
        return Ok(fields.to_vec());
    }
    let mut out = Vec::new();
    for path in mask {
        match fields.iter().find(|f| **f == path.as_str()) {
            Some(f) => out.push(*f),
            None => {
                return Err(DomainError::invalid(
                    "update_mask",
                    format!("`{path}` is not an updatable field; updatable fields are: {}", fields.join(", ")),
                ));
            }
        }
    }
    Ok(out)
}

pub(crate) fn validate_map(field: &str, map: &BTreeMap<String, String>) -> Result<(), DomainError> {
    let mut v = Violations::new();
    v.check(map.len() <= 64, field, "at most 64 entries");
    for (k, val) in map {
        let key_ok =
            !k.is_empty() && k.len() <= 63 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
        v.check(key_ok, &format!("{field}[{k}]"), "keys are 1-63 letters, digits, '-', '_', '.' or '/'");
        v.check(val.len() <= 1024, &format!("{field}[{k}]"), "values are at most 1024 characters");
    }
    v.into_result()
}

/// A DNS name, optionally with one leading wildcard label.
pub fn validate_dns_name(field: &str, name: &str) -> Result<(), DomainError> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    let ok = !host.is_empty()
        && name.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok { Ok(()) } else { Err(DomainError::invalid(field, format!("`{name}` is not a valid DNS name"))) }
}

/// A SAN: a DNS name, an IP address, or an e-mail address.
pub fn validate_san(field: &str, san: &str) -> Result<(), DomainError> {
    if san.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some((local, domain)) = san.split_once('@') {
        if !local.is_empty() && validate_dns_name(field, domain).is_ok() {
            return Ok(());
        }
        return Err(DomainError::invalid(field, format!("`{san}` is not a valid e-mail address")));
    }
    validate_dns_name(field, san)
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Owner {
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub team: String,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl Owner {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("owner_id", &self.id));
        v.check(self.display_name.len() <= 200, "owner.display_name", "at most 200 characters");
        v.check(self.email.is_empty() || is_email(&self.email), "owner.email", "not a valid e-mail address");
        v.merge(name::parse_optional("owner.team", Collection::Teams, &self.team));
        v.into_result()
    }

    pub fn apply_update(&mut self, patch: Owner, mask: &[String]) -> Result<(), DomainError> {
        let paths = effective_mask(mask, &["display_name", "email", "team"], |f| match f {
            "display_name" => !patch.display_name.is_empty(),
            "email" => !patch.email.is_empty(),
            "team" => !patch.team.is_empty(),
            _ => false,
        })?;
        for p in paths {
            match p {
                "display_name" => self.display_name = patch.display_name.clone(),
                "email" => self.email = patch.email.clone(),
                _ => self.team = patch.team.clone(),
            }
        }
        self.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub display_name: String,
    pub email: String,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl Team {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("team_id", &self.id));
        v.check(self.display_name.len() <= 200, "team.display_name", "at most 200 characters");
        v.check(self.email.is_empty() || is_email(&self.email), "team.email", "not a valid e-mail address");
        v.into_result()
    }

    pub fn apply_update(&mut self, patch: Team, mask: &[String]) -> Result<(), DomainError> {
        let paths = effective_mask(mask, &["display_name", "email"], |f| match f {
            "display_name" => !patch.display_name.is_empty(),
            "email" => !patch.email.is_empty(),
            _ => false,
        })?;
        for p in paths {
            match p {
                "display_name" => self.display_name = patch.display_name.clone(),
                _ => self.email = patch.email.clone(),
            }
        }
        self.validate()
    }
}

fn is_email(s: &str) -> bool {
    matches!(s.split_once('@'), Some((local, domain)) if !local.is_empty() && validate_dns_name("", domain).is_ok())
}

/// How a target receives certificates; one variant per target type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetConfig {
    File {
        directory: String,
        mode: String,
        owner: String,
        group: String,
        post_deploy_command: String,
    },
    Nginx(WebServerConfig),
    Apache(WebServerConfig),
    Haproxy(WebServerConfig),
    Caddy(WebServerConfig),
    Lighttpd(WebServerConfig),
    /// A mail server: verified over SMTP STARTTLS (implicit TLS on port 465).
    Postfix(WebServerConfig),
    /// A mail server: verified over IMAP STARTTLS (implicit TLS on port 993).
    Dovecot(WebServerConfig),
}

/// The server types whose key may live inside the certificate file, so that
/// `key_path` may be empty.
const KEY_OPTIONAL: &[&str] = &["haproxy", "lighttpd", "postfix"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WebServerConfig {
    pub certificate_path: String,
    pub key_path: String,
    pub verify_host: String,
    pub verify_port: i32,
    pub verify_server_name: String,
    /// Empty: the server type's default check (see the proto).
    #[serde(default)]
    pub validate_command: String,
    /// Empty: the server type's default reload.
    #[serde(default)]
    pub reload_command: String,
}

impl TargetConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::File { .. } => "file",
            Self::Nginx(_) => "nginx",
            Self::Apache(_) => "apache",
            Self::Haproxy(_) => "haproxy",
            Self::Caddy(_) => "caddy",
            Self::Lighttpd(_) => "lighttpd",
            Self::Postfix(_) => "postfix",
            Self::Dovecot(_) => "dovecot",
        }
    }

    /// The configuration of a server type (every type but `file`).
    pub fn server(&self) -> Option<&WebServerConfig> {
        match self {
            Self::File { .. } => None,
            Self::Nginx(c)
            | Self::Apache(c)
            | Self::Haproxy(c)
            | Self::Caddy(c)
            | Self::Lighttpd(c)
            | Self::Postfix(c)
            | Self::Dovecot(c) => Some(c),
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        match self {
            Self::File { directory, mode, .. } => {
                v.check(directory.starts_with('/'), "target.file.directory", "must be an absolute path");
                v.check(
                    mode.is_empty() || (mode.len() <= 4 && u32::from_str_radix(mode, 8).is_ok_and(|m| m <= 0o777)),
                    "target.file.mode",
                    "must be an octal mode such as 0640",
                );
            }
            server => {
                let c = server.server().expect("every type but file configures a server");
                let kind = self.type_name();
                v.check(
                    c.certificate_path.starts_with('/'),
                    &format!("target.{kind}.certificate_path"),
                    "must be an absolute path",
                );
                if !KEY_OPTIONAL.contains(&kind) || !c.key_path.is_empty() {
                    v.check(
                        c.key_path.starts_with('/'),
                        &format!("target.{kind}.key_path"),
                        "must be an absolute path",
                    );
                }
                v.check(
                    (0..=65535).contains(&c.verify_port),
                    &format!("target.{kind}.verify_port"),
                    "must be a TCP port (1-65535), or 0 to skip live verification",
                );
            }
        }
        v.into_result()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub display_name: String,
    pub agent: String,
    pub labels: BTreeMap<String, String>,
    pub config: TargetConfig,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl Target {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("target_id", &self.id));
        v.check(self.display_name.len() <= 200, "target.display_name", "at most 200 characters");
        v.merge(name::parse_optional("target.agent", Collection::Agents, &self.agent));
        v.merge(validate_map("target.labels", &self.labels));
        v.merge(self.config.validate());
        v.into_result()
    }

    /// `config` in a mask replaces the whole typed config (its type may change).
    pub fn apply_update(&mut self, patch: Target, mask: &[String]) -> Result<(), DomainError> {
        let paths = effective_mask(mask, &["display_name", "agent", "labels", "config"], |f| match f {
            "display_name" => !patch.display_name.is_empty(),
            "agent" => !patch.agent.is_empty(),
            "labels" => !patch.labels.is_empty(),
            "config" => true,
            _ => false,
        })?;
        for p in paths {
            match p {
                "display_name" => self.display_name = patch.display_name.clone(),
                "agent" => self.agent = patch.agent.clone(),
                "labels" => self.labels = patch.labels.clone(),
                _ => self.config = patch.config.clone(),
            }
        }
        self.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Agent {
    pub id: String,
    pub display_name: String,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
    // What the agent and its hub report, and its identity: never set by a
    // caller, and kept out of the stored document (`serde(skip)`) in
    // columns of their own, so heartbeats write them without reading it.
    #[serde(skip)]
    pub version: String,
    #[serde(skip)]
    pub capabilities: Vec<String>,
    #[serde(skip)]
    pub hub: String,
    #[serde(skip)]
    pub last_seen_time: Option<UnixTime>,
    /// Hex, upper case.
    #[serde(skip)]
    pub identity_serial: String,
    #[serde(skip)]
    pub identity_expire_time: Option<UnixTime>,
    #[serde(skip)]
    pub retire_time: Option<UnixTime>,
}

impl Agent {
    /// Why this agent cannot take a target of `target_type`, if it cannot:
    /// it is retired, or it reported the target types it supports and this
    /// is not one of them. An agent that never connected is given the
    /// benefit of the doubt.
    pub fn target_refusal(&self, target_type: &str) -> Option<String> {
        let name = self.name();
        if self.retire_time.is_some() {
            return Some(format!("{name} is retired; give the target another agent"));
        }
        if !self.capabilities.is_empty() && !self.capabilities.iter().any(|c| c == target_type) {
            return Some(format!(
                "{name} cannot deploy to {target_type} targets: it reports {} (upgrade the agent, or pick another)",
                self.capabilities.join(", ")
            ));
        }
        None
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("agent_id", &self.id));
        v.check(self.display_name.len() <= 200, "agent.display_name", "at most 200 characters");
        if !self.hostname.is_empty() {
            v.merge(validate_dns_name("agent.hostname", &self.hostname));
        }
        v.merge(validate_map("agent.labels", &self.labels));
        v.into_result()
    }

    pub fn apply_update(&mut self, patch: Agent, mask: &[String]) -> Result<(), DomainError> {
        let paths = effective_mask(mask, &["display_name", "hostname", "labels"], |f| match f {
            "display_name" => !patch.display_name.is_empty(),
            "hostname" => !patch.hostname.is_empty(),
            "labels" => !patch.labels.is_empty(),
            _ => false,
        })?;
        for p in paths {
            match p {
                "display_name" => self.display_name = patch.display_name.clone(),
                "hostname" => self.hostname = patch.hostname.clone(),
                _ => self.labels = patch.labels.clone(),
            }
        }
        self.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewalPolicy {
    pub id: String,
    pub display_name: String,
    /// Days before expiry at which alerts fire, largest first.
    pub alert_threshold_days: Vec<i32>,
    /// Renew when this fraction of the lifetime remains.
    pub renew_before_lifetime_fraction: Option<f64>,
    /// Renew this many seconds before expiry.
    pub renew_before_secs: Option<i64>,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

pub const DEFAULT_ALERT_THRESHOLD_DAYS: [i32; 4] = [30, 14, 7, 0];
/// cert-manager's default: renew once two thirds of the lifetime has passed.
pub const DEFAULT_RENEW_BEFORE_FRACTION: f64 = 1.0 / 3.0;

impl Default for RenewalPolicy {
    fn default() -> Self {
        Self {
            id: String::new(),
            display_name: String::new(),
            alert_threshold_days: DEFAULT_ALERT_THRESHOLD_DAYS.to_vec(),
            renew_before_lifetime_fraction: Some(DEFAULT_RENEW_BEFORE_FRACTION),
            renew_before_secs: None,
            create_time: 0,
            update_time: 0,
        }
    }
}

impl RenewalPolicy {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("renewal_policy_id", &self.id));
        v.check(
            !self.alert_threshold_days.is_empty() && self.alert_threshold_days.len() <= 16,
            "renewal_policy.alert_threshold_days",
            "between 1 and 16 thresholds",
        );
        v.check(
            self.alert_threshold_days.iter().all(|d| (0..=3650).contains(d)),
            "renewal_policy.alert_threshold_days",
            "each threshold is between 0 and 3650 days",
        );
        if let Some(f) = self.renew_before_lifetime_fraction {
            v.check(
                f > 0.0 && f < 1.0,
                "renewal_policy.renew_before_lifetime_fraction",
                "must be between 0 and 1 (exclusive), or 0 for none",
            );
        }
        if let Some(s) = self.renew_before_secs {
            v.check(s > 0 && s <= 3650 * DAY, "renewal_policy.renew_before", "must be positive and at most 3650 days");
        }
        v.check(
            self.renew_before_lifetime_fraction.is_some() || self.renew_before_secs.is_some(),
            "renewal_policy.renew_before_lifetime_fraction",
            "set a lifetime fraction, a fixed lead time (renew_before), or both",
        );
        v.into_result()
    }

    /// Sorted largest first, duplicates removed.
    pub fn normalize(&mut self) {
        self.alert_threshold_days.sort_unstable_by(|a, b| b.cmp(a));
        self.alert_threshold_days.dedup();
    }

    /// The lead that makes a certificate "expiring": the first threshold.
    pub fn alert_lead_secs(&self) -> i64 {
        i64::from(self.alert_threshold_days.iter().copied().max().unwrap_or(30)) * DAY
    }

    pub fn apply_update(&mut self, patch: RenewalPolicy, mask: &[String]) -> Result<(), DomainError> {
        let paths = effective_mask(
            mask,
            &["display_name", "alert_threshold_days", "renew_before_lifetime_fraction", "renew_before"],
            |f| match f {
                "display_name" => !patch.display_name.is_empty(),
                "alert_threshold_days" => !patch.alert_threshold_days.is_empty(),
                "renew_before_lifetime_fraction" => patch.renew_before_lifetime_fraction.is_some(),
                "renew_before" => patch.renew_before_secs.is_some(),
                _ => false,
            },
        )?;
        for p in paths {
            match p {
                "display_name" => self.display_name = patch.display_name.clone(),
                "alert_threshold_days" => self.alert_threshold_days = patch.alert_threshold_days.clone(),
                "renew_before_lifetime_fraction" => {
                    self.renew_before_lifetime_fraction = patch.renew_before_lifetime_fraction
                }
                _ => self.renew_before_secs = patch.renew_before_secs,
            }
        }
        self.normalize();
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with(not_after: Option<i64>) -> Certificate {
        Certificate {
            id: "web".into(),
            common_name: "web.example.com".into(),
            current: not_after.map(|na| CurrentVersion {
                version: 1,
                serial_number: "01".into(),
                sha256_fingerprint: "ab".into(),
                not_before: 0,
                not_after: na,
            }),
            alert_lead_secs: 30 * DAY,
            ..Default::default()
        }
    }

    #[test]
    fn states() {
        let now = 1_000 * DAY;
        let check = |not_after: Option<i64>, revoked: bool, expected: CertificateState| {
            let mut c = cert_with(not_after);
            c.revoked = revoked;
            assert_eq!(c.state(now), expected, "{not_after:?} revoked={revoked}");
        };
        check(None, false, CertificateState::Pending);
        check(Some(now - 1), false, CertificateState::Expired);
        check(Some(now), false, CertificateState::Expired);
        check(Some(now + DAY), false, CertificateState::Expiring);
        check(Some(now + 30 * DAY), false, CertificateState::Expiring);
        check(Some(now + 30 * DAY + 1), false, CertificateState::Active);
        check(Some(now + 400 * DAY), true, CertificateState::Revoked);
    }

    #[test]
    fn next_issue_time() {
        let policy = RenewalPolicy::default();
        let mut c = cert_with(None);
        c.create_time = 5;
        assert_eq!(c.next_issue_time(&policy), None, "no issuer: certctl does not issue it");
        c.issuer = "issuers/local".into();
        assert_eq!(c.next_issue_time(&policy), Some(5), "pending: due at once");
        c = Certificate { issuer: c.issuer.clone(), ..cert_with(Some(90 * DAY)) };
        let due = crate::renewal::renewal_time(&policy, "web", 1, 0, 90 * DAY);
        assert_eq!(c.next_issue_time(&policy), Some(due));
        assert!(due > 0 && due < 90 * DAY);
        c.revoked = true;
        assert_eq!(c.next_issue_time(&policy), None, "revoked: never again");
    }

    #[test]
    fn masks() {
        let mut c = cert_with(None);
        let patch = Certificate { owner: "owners/bob".into(), display_name: "X".into(), ..Default::default() };
        c.apply_update(patch.clone(), &["owner".into()]).unwrap();
        assert_eq!(c.owner, "owners/bob");
        assert_eq!(c.display_name, "");
        let err = c.apply_update(patch.clone(), &["nope".into()]).unwrap_err();
        assert!(matches!(err, DomainError::InvalidArgument(ref v) if v[0].field == "update_mask"));
        c.apply_update(patch, &[]).unwrap();
        assert_eq!(c.display_name, "X");
    }

    #[test]
    fn key_custody_masks() {
        let mut c = cert_with(None);
        let patch = Certificate {
            server_keyed: true,
            key_algorithm: Some(KeyAlgorithm::Rsa3072),
            display_name: "X".into(),
            ..Default::default()
        };
        // An empty mask takes what the patch sets.
        c.apply_update(patch, &[]).unwrap();
        assert_eq!(
            (c.server_keyed, c.key_algorithm, c.display_name.as_str()),
            (true, Some(KeyAlgorithm::Rsa3072), "X")
        );
        // Named paths reset to the patch's (default) values; others stay.
        c.apply_update(Certificate::default(), &["server_keyed".into()]).unwrap();
        assert_eq!((c.server_keyed, c.key_algorithm), (false, Some(KeyAlgorithm::Rsa3072)));
        c.apply_update(Certificate::default(), &["key_algorithm".into()]).unwrap();
        assert_eq!(c.key_algorithm, None);

        let other = Certificate { key_algorithm: Some(KeyAlgorithm::Other), ..Default::default() };
        let err = c.apply_update(other, &["key_algorithm".into()]).unwrap_err();
        assert!(matches!(err, DomainError::InvalidArgument(ref v) if v[0].field == "certificate.key_algorithm"));
    }

    #[test]
    fn revocations() {
        let check = |time: Option<i64>, reason: &str, expected: Result<&str, &[&str]>| {
            let got = Revocation::new(time, reason);
            match (got, expected) {
                (Ok(r), Ok(name)) => assert_eq!((r.revoke_time, r.reason.as_str()), (time.unwrap(), name)),
                (Err(DomainError::InvalidArgument(v)), Err(fields)) => {
                    assert_eq!(v.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(), fields, "{reason:?}")
                }
                (got, _) => panic!("{time:?} {reason:?}: unexpected {got:?}"),
            }
        };
        check(Some(5), "keyCompromise", Ok("keyCompromise"));
        check(Some(5), "superseded", Ok("superseded"));
        check(Some(5), "", Ok("unspecified"));
        check(Some(5), "KeyCompromise", Err(&["reason"]));
        check(Some(5), "removeFromCRL", Err(&["reason"]));
        check(None, "keyCompromise", Err(&["revoke_time"]));
        check(None, "nope", Err(&["revoke_time", "reason"]));
    }

    #[test]
    fn san_validation() {
        for ok in ["a.example.com", "*.example.com", "10.0.0.1", "::1", "ops@example.com", "localhost"] {
            assert!(validate_san("s", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", "-a.com", "*.*.a.com", "a b", "@example.com"] {
            assert!(validate_san("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_agent_takes_only_targets_it_can_deploy_to() {
        let mut agent = Agent { id: "web-01".into(), ..Default::default() };
        assert_eq!(agent.target_refusal("haproxy"), None, "never connected: not known yet");
        agent.capabilities = vec!["file".into(), "nginx".into()];
        assert_eq!(agent.target_refusal("nginx"), None);
        let refusal = agent.target_refusal("haproxy").unwrap();
        assert!(refusal.contains("cannot deploy to haproxy targets: it reports file, nginx"), "{refusal}");
        agent.retire_time = Some(5);
        assert!(agent.target_refusal("nginx").unwrap().contains("retired"));
    }

    #[test]
    fn target_config_validation() {
        let nginx = TargetConfig::Nginx(WebServerConfig {
            certificate_path: "/etc/nginx/tls/web.crt".into(),
            key_path: "/etc/nginx/tls/web.key".into(),
            verify_port: 443,
            ..Default::default()
        });
        assert!(nginx.validate().is_ok());
        let bad = TargetConfig::Nginx(WebServerConfig { certificate_path: "relative".into(), ..Default::default() });
        assert!(bad.validate().is_err());
        let file = TargetConfig::File {
            directory: "/srv/certs".into(),
            mode: "0999".into(),
            owner: String::new(),
            group: String::new(),
            post_deploy_command: String::new(),
        };
        assert!(file.validate().is_err());
    }

    #[test]
    fn key_path_is_optional_only_where_the_key_can_share_the_certificate_file() {
        let without_key = WebServerConfig { certificate_path: "/etc/tls/site.pem".into(), ..Default::default() };
        let check = |config: TargetConfig, ok: bool| {
            let kind = config.type_name();
            assert_eq!(config.server(), Some(&without_key));
            match config.validate() {
                Ok(()) => assert!(ok, "{kind} accepted an empty key_path"),
                Err(e) => {
                    assert!(!ok, "{kind} refused an empty key_path: {e}");
                    assert!(e.to_string().contains(&format!("target.{kind}.key_path")), "{e}");
                }
            }
        };
        check(TargetConfig::Haproxy(without_key.clone()), true);
        check(TargetConfig::Lighttpd(without_key.clone()), true);
        check(TargetConfig::Postfix(without_key.clone()), true);
        check(TargetConfig::Nginx(without_key.clone()), false);
        check(TargetConfig::Apache(without_key.clone()), false);
        check(TargetConfig::Caddy(without_key.clone()), false);
        check(TargetConfig::Dovecot(without_key.clone()), false);
        let relative_key = WebServerConfig { key_path: "site.key".into(), ..without_key.clone() };
        assert!(TargetConfig::Postfix(relative_key).validate().is_err());
    }

    #[test]
    fn type_names_round_trip_through_serde() {
        let c = WebServerConfig { certificate_path: "/etc/tls/site.pem".into(), ..Default::default() };
        for (config, name) in [
            (TargetConfig::Caddy(c.clone()), "caddy"),
            (TargetConfig::Lighttpd(c.clone()), "lighttpd"),
            (TargetConfig::Postfix(c.clone()), "postfix"),
            (TargetConfig::Dovecot(c.clone()), "dovecot"),
        ] {
            assert_eq!(config.type_name(), name);
            let json = serde_json::to_value(&config).unwrap();
            assert_eq!(json["type"], name);
            assert_eq!(serde_json::from_value::<TargetConfig>(json).unwrap(), config);
        }
    }
}
