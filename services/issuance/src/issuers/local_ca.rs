//! The Local CA: certctl's own certificate authority. A generated hierarchy
//! is a self-signed root whose key signs only the intermediate and the root's
//! CRL, and an intermediate that signs leaves, CRLs and OCSP answers. An
//! imported authority (for example a subordinate of AD CS) signs the same
//! way with the certificate and key it was given.
//!
//! Keys live in memory once loaded and in the database only sealed under the
//! master key. Every certificate carries a CRL distribution point and AIA
//! (OCSP, CA issuers) pointing at the gateway's `/pki` paths.

use async_trait::async_trait;
use certctl_domain::UnixTime;
use certctl_domain::issuance::{ExtendedKeyUsage, RevocationReason};
use certctl_pki::KeyType;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer as RcgenIssuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use sha2::Digest as _;
use time::OffsetDateTime;

use super::{IssueError, Issuer, IssuerContext, LeafRequest, SignedLeaf};
use crate::store::{AuthorityRecord, IssuerRecord, RevokedSerial};

pub const KIND: &str = "local_ca";

const AIA_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const AD_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];
const AD_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];

/// Where an authority's revocation information is published.
pub fn crl_url(public_url: &str, issuer: &str, authority: &str) -> String {
    format!("{}/pki/{issuer}/{authority}.crl", public_url.trim_end_matches('/'))
}

pub fn ocsp_url(public_url: &str, issuer: &str, authority: &str) -> String {
    format!("{}/pki/{issuer}/{authority}/ocsp", public_url.trim_end_matches('/'))
}

pub fn certificate_url(public_url: &str, issuer: &str, authority: &str) -> String {
    format!("{}/pki/{issuer}/{authority}.crt", public_url.trim_end_matches('/'))
}

/// One authority with its key, ready to sign.
pub struct LoadedAuthority {
    pub record: AuthorityRecord,
    pub certificate_der: Vec<u8>,
    signer: RcgenIssuer<'static, KeyPair>,
}

impl LoadedAuthority {
    fn load(record: AuthorityRecord, context: &IssuerContext) -> Result<Self, IssueError> {
        let sealed = record.sealed_key.as_deref().ok_or_else(|| {
            IssueError::Misconfigured(format!(
                "issuers/{}/authorities/{} has no private key stored",
                record.issuer_id, record.id
            ))
        })?;
        let pkcs8 = context.master_key.open(&key_context(&record.issuer_id, &record.id), sealed).map_err(|e| {
            IssueError::Misconfigured(format!(
                "cannot open the key of issuers/{}/authorities/{}: {e}",
                record.issuer_id, record.id
            ))
        })?;
        let key = certctl_pki::keys::key_pair_from_pkcs8_der(&pkcs8)
            .map_err(|e| IssueError::Misconfigured(format!("the stored CA key is unusable: {e}")))?;
        let certificate_der = pem_to_der(&record.certificate_pem)
            .ok_or_else(|| IssueError::Misconfigured("the stored CA certificate is not PEM".to_owned()))?;
        let signer = RcgenIssuer::from_ca_cert_der(&certificate_der.clone().into(), key)
            .map_err(|e| IssueError::Misconfigured(format!("the stored CA certificate is unusable: {e}")))?;
        Ok(Self { record, certificate_der, signer })
    }

    pub fn key(&self) -> &KeyPair {
        self.signer.key()
    }

    pub fn name(&self) -> String {
        format!("issuers/{}/authorities/{}", self.record.issuer_id, self.record.id)
    }

    /// Signs a CRL listing `revoked`.
    pub fn sign_crl(
        &self,
        revoked: &[RevokedSerial],
        number: i64,
        this_update: UnixTime,
        next_update: UnixTime,
    ) -> Result<Vec<u8>, IssueError> {
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(
                        &hex::decode(&r.serial)
                            .map_err(|_| IssueError::Misconfigured(format!("stored serial {} is not hex", r.serial)))?,
                    ),
                    revocation_time: at(r.revocation.time)?,
                    reason_code: rcgen_reason(r.revocation.reason),
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, IssueError>>()?;
        let params = CertificateRevocationListParams {
            this_update: at(this_update)?,
            next_update: at(next_update)?,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.signer).map_err(|e| IssueError::Misconfigured(format!("CRL signing: {e}")))?;
        Ok(crl.der().to_vec())
    }
}

fn rcgen_reason(reason: RevocationReason) -> Option<rcgen::RevocationReason> {
    use rcgen::RevocationReason as R;
    Some(match reason {
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => R::KeyCompromise,
        RevocationReason::CaCompromise => R::CaCompromise,
        RevocationReason::AffiliationChanged => R::AffiliationChanged,
        RevocationReason::Superseded => R::Superseded,
        RevocationReason::CessationOfOperation => R::CessationOfOperation,
        RevocationReason::CertificateHold => R::CertificateHold,
        RevocationReason::RemoveFromCrl => R::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => R::AaCompromise,
    })
}

/// The sealing context of an authority's key: a sealed key copied to another
/// authority's row does not open.
pub fn key_context(issuer: &str, authority: &str) -> String {
    format!("issuance/authority/{issuer}/{authority}")
}

/// A Local CA issuer, loaded.
pub struct LocalCa {
    issuer_id: String,
    public_url: String,
    /// Every authority whose key is held here, root first.
    authorities: Vec<LoadedAuthority>,
    issuing: usize,
}

impl LocalCa {
    pub fn load(
        record: &IssuerRecord,
        authorities: Vec<AuthorityRecord>,
        context: &IssuerContext,
    ) -> Result<Self, IssueError> {
        let mut loaded = Vec::new();
        for a in authorities.into_iter().filter(|a| a.sealed_key.is_some()) {
            loaded.push(LoadedAuthority::load(a, context)?);
        }
        let issuing = loaded.iter().position(|a| a.record.id == record.issuing_authority).ok_or_else(|| {
            IssueError::Misconfigured(format!(
                "issuers/{} names authority {} as issuing, but its key is not stored",
                record.id, record.issuing_authority
            ))
        })?;
        Ok(Self { issuer_id: record.id.clone(), public_url: context.public_url.clone(), authorities: loaded, issuing })
    }

    pub fn issuing(&self) -> &LoadedAuthority {
        &self.authorities[self.issuing]
    }

    pub fn authority(&self, id: &str) -> Option<&LoadedAuthority> {
        self.authorities.iter().find(|a| a.record.id == id)
    }

    pub fn authorities(&self) -> &[LoadedAuthority] {
        &self.authorities
    }

    fn sign_leaf(&self, request: &LeafRequest) -> Result<SignedLeaf, IssueError> {
        let authority = self.issuing();
        let now = certctl_domain::now();
        if authority.record.not_after <= now {
            return Err(IssueError::Misconfigured(format!(
                "{} expired at {}; create a new issuer or import a renewed CA certificate",
                authority.name(),
                certctl_domain::rfc3339(authority.record.not_after)
            )));
        }
        // A leaf never outlives its CA.
        let not_after = request.not_after.min(authority.record.not_after);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = &request.common_name {
            dn.push(DnType::CommonName, cn.as_str());
        }
        params.distinguished_name = dn;
        for name in &request.dns_names {
            let ia5 = name.clone().try_into().map_err(|_| IssueError::Refused(format!("`{name}` is not IA5 text")))?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params.subject_alt_names.extend(request.ip_addresses.iter().copied().map(SanType::IpAddress));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if request.key_is_rsa {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = request
            .extended_key_usages
            .iter()
            .map(|u| match u {
                ExtendedKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            })
            .collect();
        params.serial_number = Some(SerialNumber::from_slice(&request.serial));
        params.not_before = at(request.not_before)?;
        params.not_after = at(not_after)?;
        params.use_authority_key_identifier_extension = true;
        self.publish_urls(&mut params, &authority.record.id)?;
        let certificate = params
            .signed_by(&request.public_key, &authority.signer)
            .map_err(|e| IssueError::Refused(format!("cannot sign this request: {e}")))?;
        Ok(SignedLeaf {
            authority_id: authority.record.id.clone(),
            pem_chain: format!("{}{}", certificate.pem(), authority.record.chain_pem),
            not_before: request.not_before,
            not_after,
        })
    }

    fn publish_urls(&self, params: &mut CertificateParams, authority: &str) -> Result<(), IssueError> {
        params.crl_distribution_points =
            vec![CrlDistributionPoint { uris: vec![crl_url(&self.public_url, &self.issuer_id, authority)] }];
        params.custom_extensions.push(aia_extension(
            &ocsp_url(&self.public_url, &self.issuer_id, authority),
            &certificate_url(&self.public_url, &self.issuer_id, authority),
        ));
        Ok(())
    }
}

#[async_trait]
impl Issuer for LocalCa {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn sign(&self, request: LeafRequest) -> Result<SignedLeaf, IssueError> {
        self.sign_leaf(&request)
    }

    fn local_ca(&self) -> Option<&LocalCa> {
        Some(self)
    }
}

/// The AuthorityInfoAccess extension (RFC 5280 §4.2.2.1) with an OCSP
/// responder and a CA issuers URL.
fn aia_extension(ocsp: &str, ca_issuers: &str) -> CustomExtension {
    let content = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (method, url) in [(AD_OCSP, ocsp), (AD_CA_ISSUERS, ca_issuers)] {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&yasna::models::ObjectIdentifier::from_slice(method));
                    // GeneralName uniformResourceIdentifier [6] IMPLICIT IA5String
                    w.next().write_tagged_implicit(yasna::Tag::context(6), |w| w.write_ia5_string(url));
                });
            }
        })
    });
    CustomExtension::from_oid_content(AIA_OID, content)
}

/// What a new hierarchy should look like.
#[derive(Debug, Clone)]
pub struct HierarchySpec {
    pub common_name: String,
    pub organization: String,
    pub key_type: KeyType,
    pub root_lifetime_secs: i64,
}

/// Generates a root and an intermediate under it. Slow for RSA keys: call
/// it off the async runtime.
pub fn generate_hierarchy(
    issuer_id: &str,
    spec: &HierarchySpec,
    context: &IssuerContext,
    now: UnixTime,
) -> Result<Vec<AuthorityRecord>, IssueError> {
    let keygen = |what: &str| {
        spec.key_type.generate().map_err(|e| IssueError::Misconfigured(format!("generating the {what} key: {e}")))
    };
    let root_key = keygen("root")?;
    let intermediate_key = keygen("intermediate")?;
    let ca_params = |cn: String, lifetime: i64, path_len: u8| -> Result<CertificateParams, IssueError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        dn.push(DnType::OrganizationName, spec.organization.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
        // Backdated an hour so clients with a slow clock accept it at once.
        params.not_before = at(now - 3600)?;
        params.not_after = at(now + lifetime)?;
        Ok(params)
    };
    let root_params = ca_params(format!("{} Root CA", spec.common_name), spec.root_lifetime_secs, 1)?;
    let root_cert = root_params.self_signed(&root_key).map_err(|e| IssueError::Misconfigured(e.to_string()))?;
    let root_pem = root_cert.pem();
    let root_signer = RcgenIssuer::new(root_params, root_key);

    let mut intermediate_params =
        ca_params(format!("{} Issuing CA", spec.common_name), spec.root_lifetime_secs / 2, 0)?;
    intermediate_params.use_authority_key_identifier_extension = true;
    intermediate_params.crl_distribution_points =
        vec![CrlDistributionPoint { uris: vec![crl_url(&context.public_url, issuer_id, ROOT_ID)] }];
    intermediate_params.custom_extensions.push(aia_extension(
        &ocsp_url(&context.public_url, issuer_id, ROOT_ID),
        &certificate_url(&context.public_url, issuer_id, ROOT_ID),
    ));
    let intermediate_cert = intermediate_params
        .signed_by(&intermediate_key, &root_signer)
        .map_err(|e| IssueError::Misconfigured(e.to_string()))?;
    let intermediate_pem = intermediate_cert.pem();

    let root = authority_record(
        issuer_id,
        ROOT_ID,
        "root",
        None,
        &root_pem,
        &root_pem,
        &root_signer.key().serialize_der(),
        context,
        now,
        false,
    )?;
    let intermediate = authority_record(
        issuer_id,
        INTERMEDIATE_ID,
        "intermediate",
        Some(ROOT_ID),
        &intermediate_pem,
        &format!("{intermediate_pem}{root_pem}"),
        &intermediate_key.serialize_der(),
        context,
        now,
        true,
    )?;
    Ok(vec![root, intermediate])
}

pub const ROOT_ID: &str = "root-1";
pub const INTERMEDIATE_ID: &str = "intermediate-1";
pub const IMPORTED_ID: &str = "imported-1";

/// Adopts an existing CA certificate (first in `chain_pem`) and its PKCS#8 key.
pub fn import_authority(
    issuer_id: &str,
    chain_pem: &str,
    private_key_pem: &str,
    context: &IssuerContext,
    now: UnixTime,
) -> Result<AuthorityRecord, IssueError> {
    let refuse = |m: String| IssueError::Refused(m);
    let chain = certctl_pki::parse_pem_chain(chain_pem).map_err(|e| refuse(format!("certificate_chain_pem: {e}")))?;
    let key_der = pem_block(private_key_pem, "PRIVATE KEY").ok_or_else(|| {
        refuse(
            "private_key_pem: expected a PKCS#8 `-----BEGIN PRIVATE KEY-----` block \
             (convert with `openssl pkcs8 -topk8 -nocrypt`)"
                .to_owned(),
        )
    })?;
    let key =
        certctl_pki::keys::key_pair_from_pkcs8_der(&key_der).map_err(|e| refuse(format!("private_key_pem: {e}")))?;
    let cert_der = pem_to_der(chain_pem).ok_or_else(|| refuse("certificate_chain_pem: not PEM".to_owned()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| refuse(format!("certificate_chain_pem: the first certificate does not parse: {e}")))?;
    if !cert.is_ca() {
        return Err(refuse("certificate_chain_pem: the first certificate is not a CA (basicConstraints cA)".into()));
    }
    if let Ok(Some(usage)) = cert.key_usage()
        && !usage.value.key_cert_sign()
    {
        return Err(refuse("certificate_chain_pem: the CA certificate may not sign certificates (keyCertSign)".into()));
    }
    if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        return Err(refuse("private_key_pem does not belong to the first certificate of certificate_chain_pem".into()));
    }
    if chain.leaf.not_after <= now {
        return Err(refuse(format!(
            "certificate_chain_pem: the CA certificate expired at {}",
            certctl_domain::rfc3339(chain.leaf.not_after)
        )));
    }
    let first_pem = first_pem_block(&chain.pem).unwrap_or_else(|| chain.pem.clone());
    authority_record(
        issuer_id,
        IMPORTED_ID,
        "imported",
        None,
        &first_pem,
        &chain.pem,
        &key.serialize_der(),
        context,
        now,
        true,
    )
}

#[allow(clippy::too_many_arguments)]
fn authority_record(
    issuer_id: &str,
    id: &str,
    role: &str,
    parent: Option<&str>,
    certificate_pem: &str,
    chain_pem: &str,
    pkcs8: &[u8],
    context: &IssuerContext,
    now: UnixTime,
    issuing: bool,
) -> Result<AuthorityRecord, IssueError> {
    let parsed = certctl_pki::parse_pem_chain(certificate_pem)
        .map_err(|e| IssueError::Misconfigured(format!("the new CA certificate does not parse: {e}")))?
        .leaf;
    Ok(AuthorityRecord {
        issuer_id: issuer_id.to_owned(),
        id: id.to_owned(),
        role: role.to_owned(),
        parent_id: parent.map(str::to_owned),
        certificate_pem: certificate_pem.to_owned(),
        chain_pem: chain_pem.to_owned(),
        sealed_key: Some(context.master_key.seal(&key_context(issuer_id, id), pkcs8)),
        key_algorithm: parsed.key_algorithm.as_str().to_owned(),
        serial_number: parsed.serial_number,
        fingerprint: parsed.sha256_fingerprint,
        subject: parsed.subject,
        not_before: parsed.not_before,
        not_after: parsed.not_after,
        issuing,
        create_time: now,
    })
}

fn at(unix: UnixTime) -> Result<OffsetDateTime, IssueError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| IssueError::Refused(format!("time out of range: {e}")))
}

/// The DER of the first `CERTIFICATE` block.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    pem_block(pem, "CERTIFICATE")
}

fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn first_pem_block(pem: &str) -> Option<String> {
    let end = "-----END CERTIFICATE-----";
    let stop = pem.find(end)? + end.len();
    Some(format!("{}\n", &pem[pem.find("-----BEGIN CERTIFICATE-----")?..stop]))
}

/// SHA-256 of DER, upper-case hex, as the inventory prints fingerprints.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode_upper(sha2::Sha256::digest(der))
}
