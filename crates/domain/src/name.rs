//! AIP-122 resource names: `collection/{id}` and the id rules.

use crate::DomainError;

/// Collections certctl names resources in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Certificates,
    Owners,
    Teams,
    Targets,
    Agents,
    RenewalPolicies,
    Issuers,
    Profiles,
    AuditEvents,
    Jobs,
    JoinTokens,
    DiscoveredCertificates,
    Policies,
}

impl Collection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificates => "certificates",
            Self::Owners => "owners",
            Self::Teams => "teams",
            Self::Targets => "targets",
            Self::Agents => "agents",
            Self::RenewalPolicies => "renewalPolicies",
            Self::Issuers => "issuers",
            Self::Profiles => "profiles",
            Self::AuditEvents => "auditEvents",
            Self::Jobs => "jobs",
            Self::JoinTokens => "joinTokens",
            Self::DiscoveredCertificates => "discoveredCertificates",
            Self::Policies => "policies",
        }
    }

    pub fn name(self, id: &str) -> String {
        format!("{}/{id}", self.as_str())
    }
}

pub const MAX_ID_LEN: usize = 63;

/// Ids: 1–63 characters of lower-case ASCII letters, digits, `-` and `.`,
/// starting with a letter or digit. Dots are allowed so that ids derived from
/// host names stay readable.
pub fn validate_id(field: &str, id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && id.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            field,
            format!(
                "`{id}` is not a valid id: use 1-{MAX_ID_LEN} lower-case letters, digits, '-' or '.', starting with a letter or digit"
            ),
        ))
    }
}

/// Parses `collection/{id}` and returns the id.
pub fn parse<'a>(field: &str, collection: Collection, name: &'a str) -> Result<&'a str, DomainError> {
    let prefix = collection.as_str();
    match name.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('/')) {
        Some(id) if !id.contains('/') => {
            validate_id(field, id)?;
            Ok(id)
        }
        _ => Err(DomainError::invalid(
            field,
            if name.is_empty() {
                format!("required: expected `{prefix}/{{id}}`")
            } else {
                format!("`{name}` is not a {prefix} name: expected `{prefix}/{{id}}`")
            },
        )),
    }
}

/// Parses an optional reference: empty stays empty, anything else must be a valid name.
pub fn parse_optional(field: &str, collection: Collection, name: &str) -> Result<(), DomainError> {
    if name.is_empty() { Ok(()) } else { parse(field, collection, name).map(|_| ()) }
}

/// Parses `certificates/{certificate}/versions/{n}`.
pub fn parse_version(field: &str, name: &str) -> Result<(String, i64), DomainError> {
    let bad = || {
        DomainError::invalid(
            field,
            format!("`{name}` is not a certificate version name: expected `certificates/{{id}}/versions/{{n}}`"),
        )
    };
    let (parent, version) = name.rsplit_once("/versions/").ok_or_else(bad)?;
    let id = parse(field, Collection::Certificates, parent)?;
    let n: i64 = version.parse().map_err(|_| bad())?;
    if n < 1 {
        return Err(bad());
    }
    Ok((id.to_owned(), n))
}

pub fn version_name(certificate_id: &str, version: i64) -> String {
    format!("certificates/{certificate_id}/versions/{version}")
}

/// Derives an id from a host name or common name: `*.Example.COM` → `wildcard.example.com`.
pub fn id_from_common_name(common_name: &str) -> String {
    let mut id: String = common_name
        .trim()
        .to_ascii_lowercase()
        .replace("*.", "wildcard.")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
        .collect();
    id = id.trim_start_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned();
    id.truncate(MAX_ID_LEN);
    if id.is_empty() { "certificate".to_owned() } else { id }
}

/// The `n`th candidate for a unique id derived from `base`: `base` itself,
/// then `base-2`, `base-3`, ..., shortened so that the suffix fits.
pub fn numbered_id(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let mut stem = base.to_owned();
    stem.truncate(MAX_ID_LEN - suffix.len());
    let stem = stem.trim_end_matches(['-', '.']);
    format!("{stem}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "web-1", "api.example.com", "0abc"] {
            assert!(validate_id("id", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a/b", "a_b", &"x".repeat(64)] {
            assert!(validate_id("id", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse("name", Collection::Owners, "owners/alice").unwrap(), "alice");
        assert!(parse("name", Collection::Owners, "teams/alice").is_err());
        assert!(parse("name", Collection::Owners, "owners/a/b").is_err());
        assert!(parse("name", Collection::Owners, "").is_err());
        assert_eq!(parse_version("name", "certificates/web/versions/3").unwrap(), ("web".to_owned(), 3));
        assert!(parse_version("name", "certificates/web/versions/0").is_err());
        assert!(parse_version("name", "certificates/web/versions/x").is_err());
    }

    #[test]
    fn derived_ids() {
        assert_eq!(id_from_common_name("*.Example.COM"), "wildcard.example.com");
        assert_eq!(id_from_common_name("My Service"), "my-service");
        assert_eq!(id_from_common_name("  "), "certificate");
        assert!(validate_id("id", &id_from_common_name(&"a".repeat(100))).is_ok());
    }

    #[test]
    fn numbered_ids() {
        assert_eq!(numbered_id("web", 1), "web");
        assert_eq!(numbered_id("web", 2), "web-2");
        assert_eq!(numbered_id("web", 10), "web-10");
        let long = format!("{}bcdefgh", "a".repeat(60));
        let third = numbered_id(&long, 3);
        assert_eq!(third, format!("{}b-3", "a".repeat(60)));
        assert_eq!(third.len(), MAX_ID_LEN);
        // A cut that ends in punctuation drops it rather than doubling it.
        let dotted = format!("{}.b", "a".repeat(60));
        assert_eq!(numbered_id(&dotted, 2), format!("{}-2", "a".repeat(60)));
        assert!(validate_id("id", &numbered_id(&dotted, 2)).is_ok());
    }
}
