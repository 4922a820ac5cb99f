//! Certificates agents find on their hosts: recorded once per fingerprint,
//! with every place they were seen, until someone claims or dismisses them.

use crate::inventory::{ParsedCertificate, validate_dns_name};
use crate::name::Collection;
use crate::{DomainError, UnixTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryState {
    New,
    /// In the inventory: claimed, or already managed when it was found.
    Claimed,
    Dismissed,
}

impl DiscoveryState {
    pub const ALL: [Self; 3] = [Self::New, Self::Claimed, Self::Dismissed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Claimed => "CLAIMED",
            Self::Dismissed => "DISMISSED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// Where an agent saw a certificate, and when last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryLocation {
    /// `agents/{agent}`.
    pub agent: String,
    pub path: String,
    pub last_seen_time: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredCertificate {
    /// `discovered_id(fingerprint)`.
    pub id: String,
    /// Hex SHA-256 of the DER, lower case.
    pub fingerprint: String,
    pub subject: String,
    pub dns_names: Vec<String>,
    pub issuer: String,
    pub serial_number: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// Most recently seen first, at most `MAX_LOCATIONS_SHOWN`.
    pub locations: Vec<DiscoveryLocation>,
    pub state: DiscoveryState,
    /// `certificates/{certificate}` once claimed.
    pub certificate: String,
    pub first_seen_time: UnixTime,
    pub last_seen_time: UnixTime,
    /// The certificate as PEM: what a claim imports. Not shown by the API.
    pub pem: String,
}

/// The locations a discovered certificate carries when read.
pub const MAX_LOCATIONS_SHOWN: usize = 100;
/// Reports per ReportDiscoveries call.
pub const MAX_REPORTS: usize = 1000;
pub const MAX_PATH_LEN: usize = 4096;
/// A certificate larger than this is not one anybody deploys.
pub const MAX_CERTIFICATE_DER_LEN: usize = 64 * 1024;

impl DiscoveredCertificate {
    pub fn name(&self) -> String {
        Collection::DiscoveredCertificates.name(&self.id)
    }

    /// What `agent` reports at `path`, seen for the first time `now`:
    /// CLAIMED by `managed_by` (a certificate that already has it as a
    /// version), otherwise NEW.
    pub fn first_seen(
        sighting: &Sighting,
        agent: &str,
        managed_by: Option<String>,
        now: UnixTime,
    ) -> DiscoveredCertificate {
        let p = &sighting.parsed;
        DiscoveredCertificate {
            id: discovered_id(&p.sha256_fingerprint),
            fingerprint: p.sha256_fingerprint.clone(),
            subject: p.subject.clone(),
            dns_names: dns_names(p),
            issuer: p.issuer.clone(),
            serial_number: p.serial_number.clone(),
            not_before: p.not_before,
            not_after: p.not_after,
            locations: vec![DiscoveryLocation {
                agent: agent.to_owned(),
                path: sighting.path.clone(),
                last_seen_time: now,
            }],
            state: if managed_by.is_some() { DiscoveryState::Claimed } else { DiscoveryState::New },
            certificate: managed_by.unwrap_or_default(),
            first_seen_time: now,
            last_seen_time: now,
            pem: sighting.pem.clone(),
        }
    }
}

/// One certificate file from a report, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub path: String,
    /// The leaf alone, as PEM.
    pub pem: String,
    pub parsed: ParsedCertificate,
}

/// `discoveredCertificates/{id}`'s id: the first 32 hex digits of the fingerprint.
pub fn discovered_id(fingerprint: &str) -> String {
    fingerprint.chars().take(32).collect::<String>().to_ascii_lowercase()
}

/// The subject alternative names that are DNS names (not addresses).
pub fn dns_names(parsed: &ParsedCertificate) -> Vec<String> {
    parsed
        .subject_alt_names
        .iter()
        .filter(|s| s.parse::<std::net::IpAddr>().is_err() && !s.contains('@') && validate_dns_name("", s).is_ok())
        .cloned()
        .collect()
}

/// A reported file path: absolute or not (Windows hosts), but printable and bounded.
pub fn validate_path(field: &str, path: &str) -> Result<(), DomainError> {
    if path.is_empty() {
        return Err(DomainError::invalid(field, "required"));
    }
    if path.len() > MAX_PATH_LEN || path.chars().any(char::is_control) {
        return Err(DomainError::invalid(field, "at most 4096 printable characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::KeyAlgorithm;

    fn parsed() -> ParsedCertificate {
        ParsedCertificate {
            serial_number: "0A".into(),
            sha256_fingerprint: "ab".repeat(32),
            subject: "CN=web.example.com".into(),
            issuer: "CN=Root".into(),
            common_name: "web.example.com".into(),
            subject_alt_names: vec![
                "web.example.com".into(),
                "10.0.0.1".into(),
                "ops@example.com".into(),
                "*.web.example.com".into(),
            ],
            key_algorithm: KeyAlgorithm::EcdsaP256,
            key_size: 256,
            not_before: 1,
            not_after: 2,
        }
    }

    #[test]
    fn first_sightings() {
        let sighting = Sighting { path: "/etc/ssl/web.pem".into(), pem: "PEM".into(), parsed: parsed() };
        let new = DiscoveredCertificate::first_seen(&sighting, "agents/a", None, 10);
        assert_eq!(new.id, "ab".repeat(16));
        assert_eq!(new.name(), format!("discoveredCertificates/{}", "ab".repeat(16)));
        assert_eq!(new.dns_names, ["web.example.com", "*.web.example.com"]);
        assert_eq!((new.state, new.certificate.as_str()), (DiscoveryState::New, ""));
        assert_eq!(
            new.locations,
            [DiscoveryLocation { agent: "agents/a".into(), path: "/etc/ssl/web.pem".into(), last_seen_time: 10 }]
        );
        let managed = DiscoveredCertificate::first_seen(&sighting, "agents/a", Some("certificates/web".into()), 10);
        assert_eq!((managed.state, managed.certificate.as_str()), (DiscoveryState::Claimed, "certificates/web"));
        for state in DiscoveryState::ALL {
            assert_eq!(DiscoveryState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn paths() {
        assert!(validate_path("p", "/etc/ssl/a.pem").is_ok());
        assert!(validate_path("p", r"C:\certs\a.pem").is_ok());
        assert!(validate_path("p", "").is_err());
        assert!(validate_path("p", "/etc/\n").is_err());
        assert!(validate_path("p", &"a".repeat(MAX_PATH_LEN + 1)).is_err());
    }
}
