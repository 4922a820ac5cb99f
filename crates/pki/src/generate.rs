//! Key and certificate generation with rcgen: the demo's seed data and test
//! fixtures today, the Local CA's signing core later.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::keys::{KeyError, KeyType};

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    #[error("`{0}` is not a valid subject alternative name")]
    BadName(String),
}

/// A freshly issued leaf. The key is for fixtures and the demo only.
#[derive(Debug, Clone)]
pub struct IssuedLeaf {
    pub certificate_pem: String,
    pub private_key_pem: String,
}

/// A self-signed CA that can sign leaves.
pub struct CertificateAuthority {
    pub certificate_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn at(unix: i64) -> Result<OffsetDateTime, GenerateError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| GenerateError::Certificate(e.to_string()))
}

impl CertificateAuthority {
    pub fn new(common_name: &str, kind: KeyType) -> Result<Self, GenerateError> {
        let key = kind.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "certctl");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = certctl_domain::now();
        params.not_before = at(now - 86_400)?;
        params.not_after = at(now + 10 * 365 * 86_400)?;
        let cert = params.self_signed(&key).map_err(|e| GenerateError::Certificate(e.to_string()))?;
        Ok(Self { certificate_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// Issues a leaf valid from `not_before` for `lifetime_secs`.
    pub fn issue_leaf(
        &self,
        common_name: &str,
        sans: &[String],
        kind: KeyType,
        not_before: i64,
        lifetime_secs: i64,
    ) -> Result<IssuedLeaf, GenerateError> {
        let key = kind.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        for san in sans {
            let entry = match san.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(san.clone().try_into().map_err(|_| GenerateError::BadName(san.clone()))?),
            };
            params.subject_alt_names.push(entry);
        }
        params.not_before = at(not_before)?;
        params.not_after = at(not_before + lifetime_secs)?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| GenerateError::Certificate(e.to_string()))?;
        Ok(IssuedLeaf { certificate_pem: cert.pem(), private_key_pem: key.serialize_pem() })
    }
}
