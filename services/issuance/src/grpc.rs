//! The gRPC edge of issuance: converts protobuf to domain values, calls
//! `Issuance`, converts back.

use certctl_common::caller::Caller;
use certctl_domain::DomainError;
use certctl_domain::inventory::KeyAlgorithm;
use certctl_domain::issuance::{ExtendedKeyUsage, Profile, RevocationReason};
use certctl_pki::KeyType;
use certctl_proto::issuance::{self as pb, issuance_service_server::IssuanceService};
use certctl_proto::types::KeyAlgorithm as PbKeyAlgorithm;
use tonic::{Request, Response, Status};

use crate::issuers::local_ca::{self, HierarchySpec};
use crate::service::{Issuance, IssuanceError, LocalCaSource, SignInput};
use crate::store::{AuthorityRecord, IssuedRecord, IssuerRecord};

impl From<IssuanceError> for Status {
    fn from(e: IssuanceError) -> Self {
        match e {
            IssuanceError::Domain(d) => certctl_common::status_from_domain(d),
            IssuanceError::Store(s) => s.into(),
            IssuanceError::Unavailable(m) => Status::unavailable(m),
            IssuanceError::Misconfigured(m) => {
                tracing::error!(reason = %m, "issuer misconfigured");
                certctl_common::status_from_domain(DomainError::FailedPrecondition(m))
            }
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> Status {
    certctl_common::status_from_domain(DomainError::invalid(field, message))
}

pub(crate) fn key_algorithm_to_pb(k: KeyAlgorithm) -> i32 {
    (match k {
        KeyAlgorithm::EcdsaP256 => PbKeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384 => PbKeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048 => PbKeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => PbKeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => PbKeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519 => PbKeyAlgorithm::Ed25519,
        KeyAlgorithm::Other => PbKeyAlgorithm::Other,
    }) as i32
}

/// Unspecified is `None`; a number outside the enum is refused.
pub(crate) fn key_algorithm_from_pb(field: &str, value: i32) -> Result<Option<KeyAlgorithm>, Status> {
    Ok(match PbKeyAlgorithm::try_from(value) {
        Ok(PbKeyAlgorithm::Unspecified) => None,
        Ok(PbKeyAlgorithm::EcdsaP256) => Some(KeyAlgorithm::EcdsaP256),
        Ok(PbKeyAlgorithm::EcdsaP384) => Some(KeyAlgorithm::EcdsaP384),
        Ok(PbKeyAlgorithm::Rsa2048) => Some(KeyAlgorithm::Rsa2048),
        Ok(PbKeyAlgorithm::Rsa3072) => Some(KeyAlgorithm::Rsa3072),
        Ok(PbKeyAlgorithm::Rsa4096) => Some(KeyAlgorithm::Rsa4096),
        Ok(PbKeyAlgorithm::Ed25519) => Some(KeyAlgorithm::Ed25519),
        Ok(PbKeyAlgorithm::Other) => Some(KeyAlgorithm::Other),
        Err(_) => return Err(invalid(field, format!("{value} is not a key algorithm"))),
    })
}

fn duration_secs(field: &str, d: Option<pbjson_types::Duration>) -> Result<Option<i64>, Status> {
    match d {
        None => Ok(None),
        Some(d) if d.seconds < 0 || d.nanos < 0 => Err(invalid(field, "must not be negative")),
        Some(d) => Ok(Some(d.seconds + i64::from(d.nanos > 0))),
    }
}

fn duration(secs: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds: secs, nanos: 0 })
}

fn eku_from_pb(field: &str, value: i32) -> Result<ExtendedKeyUsage, Status> {
    match pb::ExtendedKeyUsage::try_from(value) {
        Ok(pb::ExtendedKeyUsage::ServerAuth) => Ok(ExtendedKeyUsage::ServerAuth),
        Ok(pb::ExtendedKeyUsage::ClientAuth) => Ok(ExtendedKeyUsage::ClientAuth),
        _ => Err(invalid(field, format!("{value} is not an extended key usage (SERVER_AUTH or CLIENT_AUTH)"))),
    }
}

fn eku_to_pb(e: ExtendedKeyUsage) -> i32 {
    (match e {
        ExtendedKeyUsage::ServerAuth => pb::ExtendedKeyUsage::ServerAuth,
        ExtendedKeyUsage::ClientAuth => pb::ExtendedKeyUsage::ClientAuth,
    }) as i32
}

fn reason_from_pb(value: i32) -> Result<RevocationReason, Status> {
    let code =
        pb::RevocationReason::try_from(value).map_err(|_| invalid("reason", format!("{value} is not a reason")))?;
    RevocationReason::from_code(code as i64).ok_or_else(|| invalid("reason", format!("{value} is not a reason")))
}

fn reason_to_pb(r: RevocationReason) -> i32 {
    pb::RevocationReason::try_from(i32::from(r.code())).map_or(0, |r| r as i32)
}

fn issuer_to_pb(r: IssuerRecord) -> pb::Issuer {
    let config = match r.config.get("source").and_then(|s| s.as_str()) {
        Some("generate") => pb::local_ca_config::Source::Generate(pb::GeneratedHierarchy {
            common_name: r.config["common_name"].as_str().unwrap_or_default().to_owned(),
            organization: r.config["organization"].as_str().unwrap_or_default().to_owned(),
            key_algorithm: r.config["key_type"]
                .as_str()
                .and_then(|k| k.parse::<KeyType>().ok())
                .map_or(0, |k| key_algorithm_to_pb(k.algorithm())),
            root_lifetime: duration(r.config["root_lifetime_secs"].as_i64().unwrap_or_default()),
        }),
        _ => pb::local_ca_config::Source::Import(pb::ImportedAuthority::default()),
    };
    pb::Issuer {
        name: format!("issuers/{}", r.id),
        display_name: r.display_name,
        r#type: pb::IssuerType::LocalCa as i32,
        config: Some(pb::issuer::Config::LocalCa(pb::LocalCaConfig { source: Some(config) })),
        issuing_authority: format!("issuers/{}/authorities/{}", r.id, r.issuing_authority),
        create_time: certctl_proto::timestamp(r.create_time),
    }
}

fn authority_to_pb(a: AuthorityRecord, public_url: &str) -> pb::Authority {
    pb::Authority {
        name: format!("issuers/{}/authorities/{}", a.issuer_id, a.id),
        crl_url: local_ca::crl_url(public_url, &a.issuer_id, &a.id),
        ocsp_url: local_ca::ocsp_url(public_url, &a.issuer_id, &a.id),
        role: a.role,
        certificate_pem: a.certificate_pem,
        subject: a.subject,
        serial_number: a.serial_number,
        sha256_fingerprint: a.fingerprint,
        key_algorithm: key_algorithm_to_pb(KeyAlgorithm::parse(&a.key_algorithm)),
        not_before: certctl_proto::timestamp(a.not_before),
        not_after: certctl_proto::timestamp(a.not_after),
        issuing: a.issuing,
    }
}

fn profile_to_pb(p: Profile) -> pb::Profile {
    pb::Profile {
        name: p.name(),
        display_name: p.display_name,
        allowed_key_algorithms: p.allowed_key_algorithms.into_iter().map(key_algorithm_to_pb).collect(),
        default_key_algorithm: key_algorithm_to_pb(p.default_key_algorithm),
        max_lifetime: duration(p.max_lifetime_secs),
        extended_key_usages: p.extended_key_usages.into_iter().map(eku_to_pb).collect(),
        allowed_dns_patterns: p.allowed_dns_patterns,
        allow_ip_addresses: p.allow_ip_addresses,
        create_time: certctl_proto::timestamp(p.create_time),
        update_time: certctl_proto::timestamp(p.update_time),
    }
}

/// A profile from the API. Unset fields take the built-in defaults, so
/// `{"allowedDnsPatterns": ["**.corp.example"]}` is a complete profile.
fn profile_from_pb(p: pb::Profile, id: String) -> Result<Profile, Status> {
    let defaults = Profile::built_in(0).remove(0);
    let mut allowed = Vec::new();
    for (i, k) in p.allowed_key_algorithms.iter().enumerate() {
        let field = format!("profile.allowed_key_algorithms[{i}]");
        allowed.push(key_algorithm_from_pb(&field, *k)?.ok_or_else(|| invalid(&field, "must name a key type"))?);
    }
    let ekus = p
        .extended_key_usages
        .iter()
        .enumerate()
        .map(|(i, e)| eku_from_pb(&format!("profile.extended_key_usages[{i}]"), *e))
        .collect::<Result<Vec<_>, _>>()?;
    let default_key = key_algorithm_from_pb("profile.default_key_algorithm", p.default_key_algorithm)?
        .or_else(|| allowed.first().copied().filter(|_| !allowed.contains(&KeyAlgorithm::EcdsaP256)))
        .unwrap_or(KeyAlgorithm::EcdsaP256);
    Ok(Profile {
        id,
        display_name: p.display_name,
        allowed_key_algorithms: allowed,
        default_key_algorithm: default_key,
        max_lifetime_secs: duration_secs("profile.max_lifetime", p.max_lifetime)?
            .filter(|s| *s > 0)
            .unwrap_or(defaults.max_lifetime_secs),
        extended_key_usages: if ekus.is_empty() { defaults.extended_key_usages } else { ekus },
        allowed_dns_patterns: p.allowed_dns_patterns,
        allow_ip_addresses: p.allow_ip_addresses,
        create_time: 0,
        update_time: 0,
    })
}

fn issued_to_pb(r: IssuedRecord) -> pb::IssuedCertificate {
    pb::IssuedCertificate {
        name: r.name(),
        authority: format!("issuers/{}/authorities/{}", r.issuer_id, r.authority_id),
        serial_number: r.serial.to_ascii_uppercase(),
        pem_chain: r.pem_chain,
        common_name: r.common_name,
        subject_alt_names: r.subject_alt_names,
        profile: format!("profiles/{}", r.profile_id),
        certificate_version: r.certificate_version.unwrap_or_default(),
        not_before: certctl_proto::timestamp(r.not_before),
        not_after: certctl_proto::timestamp(r.not_after),
        server_keyed: r.sealed_key.is_some(),
        revoked: r.revocation.is_some(),
        revocation_reason: r.revocation.map_or(0, |v| reason_to_pb(v.reason)),
        revoke_time: r.revocation.and_then(|v| certctl_proto::timestamp(v.time)),
    }
}

fn caller<T>(request: &Request<T>) -> Caller {
    Caller::from_metadata(request.metadata())
}

/// The tonic service.
#[derive(Clone)]
pub struct IssuanceGrpc {
    issuance: Issuance,
}

impl IssuanceGrpc {
    pub fn new(issuance: Issuance) -> Self {
        Self { issuance }
    }

    pub fn into_server(self) -> pb::issuance_service_server::IssuanceServiceServer<Self> {
        pb::issuance_service_server::IssuanceServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl IssuanceService for IssuanceGrpc {
    async fn get_issuer(
        &self,
        request: Request<pb::GetIssuerRequest>,
    ) -> Result<Response<pb::GetIssuerResponse>, Status> {
        let issuer = self.issuance.get_issuer(&request.get_ref().name).await?;
        Ok(Response::new(pb::GetIssuerResponse { issuer: Some(issuer_to_pb(issuer)) }))
    }

    async fn list_issuers(
        &self,
        request: Request<pb::ListIssuersRequest>,
    ) -> Result<Response<pb::ListIssuersResponse>, Status> {
        let r = request.get_ref();
        let (items, next_page_token) = self.issuance.list_issuers(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListIssuersResponse {
            issuers: items.into_iter().map(issuer_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn create_issuer(
        &self,
        request: Request<pb::CreateIssuerRequest>,
    ) -> Result<Response<pb::CreateIssuerResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let issuer = r.issuer.ok_or_else(|| invalid("issuer", "required"))?;
        let Some(pb::issuer::Config::LocalCa(config)) = issuer.config else {
            return Err(invalid("issuer.local_ca", "required: the Local CA is the issuer type this build can create"));
        };
        let source = match config.source {
            Some(pb::local_ca_config::Source::Generate(g)) => {
                let key_type = match key_algorithm_from_pb("issuer.local_ca.generate.key_algorithm", g.key_algorithm)? {
                    None => KeyType::EcdsaP256,
                    Some(k) => KeyType::from_algorithm(k).ok_or_else(|| {
                        invalid("issuer.local_ca.generate.key_algorithm", "must be a key type certctl can generate")
                    })?,
                };
                let lifetime = duration_secs("issuer.local_ca.generate.root_lifetime", g.root_lifetime)?
                    .filter(|s| *s > 0)
                    .unwrap_or(10 * 365 * certctl_domain::issuance::DAY);
                if !(certctl_domain::issuance::DAY..=30 * 365 * certctl_domain::issuance::DAY).contains(&lifetime) {
                    return Err(invalid(
                        "issuer.local_ca.generate.root_lifetime",
                        "must be between 1 day and 30 years",
                    ));
                }
                let display =
                    if issuer.display_name.is_empty() { r.issuer_id.clone() } else { issuer.display_name.clone() };
                LocalCaSource::Generate(HierarchySpec {
                    common_name: if g.common_name.is_empty() { display } else { g.common_name },
                    organization: if g.organization.is_empty() { "certctl".to_owned() } else { g.organization },
                    key_type,
                    root_lifetime_secs: lifetime,
                })
            }
            Some(pb::local_ca_config::Source::Import(i)) => {
                LocalCaSource::Import { chain_pem: i.certificate_chain_pem, private_key_pem: i.private_key_pem }
            }
            None => return Err(invalid("issuer.local_ca", "set `generate` or `import`")),
        };
        let created = self.issuance.create_issuer(&caller, &r.issuer_id, &issuer.display_name, source).await?;
        Ok(Response::new(pb::CreateIssuerResponse { issuer: Some(issuer_to_pb(created)) }))
    }

    async fn list_authorities(
        &self,
        request: Request<pb::ListAuthoritiesRequest>,
    ) -> Result<Response<pb::ListAuthoritiesResponse>, Status> {
        let authorities = self.issuance.authorities(&request.get_ref().parent).await?;
        let url = self.issuance.config.context.public_url.clone();
        Ok(Response::new(pb::ListAuthoritiesResponse {
            authorities: authorities.into_iter().map(|a| authority_to_pb(a, &url)).collect(),
        }))
    }

    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::GetProfileResponse>, Status> {
        let profile = self.issuance.get_profile(&request.get_ref().name).await?;
        Ok(Response::new(pb::GetProfileResponse { profile: Some(profile_to_pb(profile)) }))
    }

    async fn list_profiles(
        &self,
        request: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        let r = request.get_ref();
        let (items, next_page_token) = self.issuance.list_profiles(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListProfilesResponse {
            profiles: items.into_iter().map(profile_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn create_profile(
        &self,
        request: Request<pb::CreateProfileRequest>,
    ) -> Result<Response<pb::CreateProfileResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let profile = profile_from_pb(r.profile.ok_or_else(|| invalid("profile", "required"))?, r.profile_id)?;
        let created = self.issuance.create_profile(&caller, profile).await?;
        Ok(Response::new(pb::CreateProfileResponse { profile: Some(profile_to_pb(created)) }))
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let patch = r.profile.ok_or_else(|| invalid("profile", "required"))?;
        let id = certctl_domain::name::parse("profile.name", certctl_domain::name::Collection::Profiles, &patch.name)
            .map_err(certctl_common::status_from_domain)?
            .to_owned();
        let mask: Vec<String> = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut profile = profile_from_pb(patch, id)?;
        // An explicitly emptied usage list must stay empty for validation to refuse it.
        if mask.iter().any(|m| m == "extended_key_usages") && profile.extended_key_usages.is_empty() {
            profile.extended_key_usages.clear();
        }
        let updated = self.issuance.update_profile(&caller, profile, &mask).await?;
        Ok(Response::new(pb::UpdateProfileResponse { profile: Some(profile_to_pb(updated)) }))
    }

    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::DeleteProfileResponse>, Status> {
        let caller = caller(&request);
        self.issuance.delete_profile(&caller, &request.get_ref().name).await?;
        Ok(Response::new(pb::DeleteProfileResponse {}))
    }

    async fn sign_certificate(
        &self,
        request: Request<pb::SignCertificateRequest>,
    ) -> Result<Response<pb::SignCertificateResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let input = SignInput {
            issuer: r.issuer,
            profile: r.profile,
            csr_pem: r.csr_pem,
            lifetime_secs: duration_secs("lifetime", r.lifetime)?,
            certificate: r.certificate,
            request_id: r.request_id,
        };
        let issued = self.issuance.sign(&caller, input).await?;
        Ok(Response::new(pb::SignCertificateResponse { issued_certificate: Some(issued_to_pb(issued)) }))
    }

    async fn issue_certificate(
        &self,
        request: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let lifetime = duration_secs("lifetime", r.lifetime)?;
        let issued = self.issuance.issue(&caller, &r.certificate, &r.csr_pem, lifetime, &r.request_id).await?;
        Ok(Response::new(pb::IssueCertificateResponse { issued_certificate: Some(issued_to_pb(issued)) }))
    }

    async fn export_private_key(
        &self,
        request: Request<pb::ExportPrivateKeyRequest>,
    ) -> Result<Response<pb::ExportPrivateKeyResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let format = pb::KeyFormat::try_from(r.format).unwrap_or(pb::KeyFormat::Unspecified);
        match format {
            pb::KeyFormat::Pem => {}
            pb::KeyFormat::Pkcs12 if r.password.chars().count() >= 12 => {}
            pb::KeyFormat::Pkcs12 => {
                return Err(invalid("password", "PKCS#12 needs a password of at least 12 characters"));
            }
            pb::KeyFormat::Unspecified => {
                return Err(invalid("format", "required: KEY_FORMAT_PEM or KEY_FORMAT_PKCS12"));
            }
        }
        let (record, key) = self.issuance.export_key(&caller, &r.version).await?;
        let (content, content_type) = match format {
            pb::KeyFormat::Pkcs12 => {
                let chain: Vec<Vec<u8>> = pem_certificates(&record.pem_chain);
                let p12 = certctl_pki::pkcs12::to_pkcs12(&chain, &key, &r.password, &record.common_name)
                    .map_err(|e| Status::internal(format!("PKCS#12 packaging failed: {e}")))?;
                (p12, "application/x-pkcs12")
            }
            _ => {
                let pem = format!("{}{}", pem_block("PRIVATE KEY", &key), record.pem_chain);
                (pem.into_bytes(), "application/x-pem-file")
            }
        };
        Ok(Response::new(pb::ExportPrivateKeyResponse { content, content_type: content_type.to_owned() }))
    }

    async fn get_issued_certificate(
        &self,
        request: Request<pb::GetIssuedCertificateRequest>,
    ) -> Result<Response<pb::GetIssuedCertificateResponse>, Status> {
        let issued = self.issuance.get_issued(&request.get_ref().name).await?;
        Ok(Response::new(pb::GetIssuedCertificateResponse { issued_certificate: Some(issued_to_pb(issued)) }))
    }

    async fn list_issued_certificates(
        &self,
        request: Request<pb::ListIssuedCertificatesRequest>,
    ) -> Result<Response<pb::ListIssuedCertificatesResponse>, Status> {
        let r = request.get_ref();
        let (items, next_page_token) =
            self.issuance.list_issued(&r.parent, r.revoked_only, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListIssuedCertificatesResponse {
            issued_certificates: items.into_iter().map(issued_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn revoke_certificate(
        &self,
        request: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::RevokeCertificateResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        let reason = reason_from_pb(r.reason)?;
        let revoked = self.issuance.revoke(&caller, &r.name, reason).await?;
        Ok(Response::new(pb::RevokeCertificateResponse { issued_certificate: Some(issued_to_pb(revoked)) }))
    }

    async fn batch_revoke_certificates(
        &self,
        request: Request<pb::BatchRevokeCertificatesRequest>,
    ) -> Result<Response<pb::BatchRevokeCertificatesResponse>, Status> {
        let caller = caller(&request);
        let r = request.into_inner();
        if r.requests.is_empty() || r.requests.len() > 1000 {
            return Err(invalid("requests", "send 1 to 1000 revocations"));
        }
        let mut items = Vec::with_capacity(r.requests.len());
        for (i, item) in r.requests.into_iter().enumerate() {
            let reason =
                reason_from_pb(item.reason).map_err(|_| invalid(&format!("requests[{i}].reason"), "not a reason"))?;
            items.push((item.name, reason));
        }
        let results = self.issuance.revoke_many(&caller, items).await;
        let failed = results.iter().filter(|(_, e)| e.is_some()).count() as i32;
        Ok(Response::new(pb::BatchRevokeCertificatesResponse {
            revoked: results.len() as i32 - failed,
            failed,
            results: results
                .into_iter()
                .map(|(name, error)| pb::RevocationResult { name, error: error.unwrap_or_default() })
                .collect(),
        }))
    }

    async fn get_crl(&self, request: Request<pb::GetCrlRequest>) -> Result<Response<pb::GetCrlResponse>, Status> {
        let crl = self.issuance.crl(&request.get_ref().authority).await?;
        Ok(Response::new(pb::GetCrlResponse {
            crl_der: crl.der,
            crl_number: crl.number,
            this_update: certctl_proto::timestamp(crl.this_update),
            next_update: certctl_proto::timestamp(crl.next_update),
        }))
    }

    async fn answer_ocsp(
        &self,
        request: Request<pb::AnswerOcspRequest>,
    ) -> Result<Response<pb::AnswerOcspResponse>, Status> {
        let r = request.into_inner();
        let response_der = self.issuance.answer_ocsp(&r.authority, &r.request_der).await?;
        Ok(Response::new(pb::AnswerOcspResponse { response_der }))
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_certificates(pem: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(der) = local_ca::pem_to_der(rest) {
        out.push(der);
        match rest.find("-----END CERTIFICATE-----") {
            Some(end) => rest = &rest[end + 25..],
            None => break,
        }
    }
    out
}
