//! The inventory as issuance sees it: what a managed certificate asks for,
//! and where signed versions and revocations are recorded. The only module
//! besides `grpc.rs` that sees proto types.

use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_domain::UnixTime;
use certctl_domain::inventory::KeyAlgorithm;
use certctl_domain::policy::Severity;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{
    CreateCertificateVersionRequest, EvaluatePolicyRequest, GetCertificateRequest, PolicySeverity,
    RecordRevocationRequest,
};
use tonic::transport::Channel;

const TIMEOUT: Duration = Duration::from_secs(15);

/// What the inventory declares for one managed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedCertificate {
    pub id: String,
    pub common_name: String,
    pub subject_alt_names: Vec<String>,
    /// `issuers/{id}` or empty.
    pub issuer: String,
    /// `profiles/{id}` or empty.
    pub profile: String,
    pub server_keyed: bool,
    pub key_algorithm: Option<KeyAlgorithm>,
    pub current_version: String,
    pub sha256_fingerprint: String,
}

/// What is about to be signed for a managed certificate, for its policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCheck {
    /// `certificates/{certificate}`.
    pub certificate: String,
    pub common_name: String,
    /// DNS names and IP addresses, as they go into the certificate.
    pub subject_alt_names: Vec<String>,
    /// `issuers/{issuer}`.
    pub issuer: String,
    pub key_algorithm: KeyAlgorithm,
    pub lifetime_secs: i64,
}

/// A policy rule the version would break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyViolation {
    pub policy: String,
    pub rule: String,
    pub severity: Severity,
    pub message: String,
}

impl PolicyViolation {
    /// `policies/baseline rule `lifetime` (ERROR): why`.
    pub fn describe(&self) -> String {
        format!("{} rule `{}` ({}): {}", self.policy, self.rule, self.severity.as_str(), self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("{0}")]
    NotFound(String),
    #[error("the inventory refused: {0}")]
    Refused(String),
    #[error("the inventory is unavailable: {0}")]
    Unavailable(String),
    /// The current version already has this fingerprint: a retry whose
    /// first attempt got through.
    #[error("already recorded")]
    AlreadyRecorded,
}

fn error(status: tonic::Status) -> InventoryError {
    match status.code() {
        tonic::Code::NotFound => InventoryError::NotFound(status.message().to_owned()),
        tonic::Code::AlreadyExists => InventoryError::AlreadyRecorded,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
            InventoryError::Refused(status.message().to_owned())
        }
        _ => InventoryError::Unavailable(format!("{:?}: {}", status.code(), status.message())),
    }
}

#[derive(Debug, Clone)]
pub struct Inventory {
    client: InventoryServiceClient<Channel>,
}

impl Inventory {
    pub fn new(channel: Channel) -> Self {
        Self { client: InventoryServiceClient::new(channel) }
    }

    fn request<T>(caller: &Caller, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        caller.stamp(&mut request);
        request.set_timeout(TIMEOUT);
        request
    }

    pub async fn certificate(&self, caller: &Caller, name: &str) -> Result<ManagedCertificate, InventoryError> {
        let answer = self
            .client
            .clone()
            .get_certificate(Self::request(caller, GetCertificateRequest { name: name.to_owned() }))
            .await
            .map_err(error)?
            .into_inner();
        let c = answer.certificate.ok_or_else(|| InventoryError::Unavailable("empty answer".to_owned()))?;
        // A number outside the enum from a newer inventory means "unspecified" here.
        let key_algorithm =
            crate::grpc::key_algorithm_from_pb("certificate.key_algorithm", c.key_algorithm).ok().flatten();
        Ok(ManagedCertificate {
            id: c.name.strip_prefix("certificates/").unwrap_or(&c.name).to_owned(),
            common_name: c.common_name,
            subject_alt_names: c.subject_alt_names,
            issuer: c.issuer,
            profile: c.profile,
            server_keyed: c.server_keyed,
            key_algorithm,
            current_version: c.current_version,
            sha256_fingerprint: c.sha256_fingerprint,
        })
    }

    /// Records a signed chain as the certificate's next version; returns the
    /// version's name. A retry after the first attempt got through finds the
    /// same fingerprint current and returns that version.
    pub async fn record_version(
        &self,
        caller: &Caller,
        certificate_id: &str,
        pem_chain: &str,
        fingerprint: &str,
    ) -> Result<String, InventoryError> {
        let parent = format!("certificates/{certificate_id}");
        let request = CreateCertificateVersionRequest { parent: parent.clone(), pem_chain: pem_chain.to_owned() };
        match self.client.clone().create_certificate_version(Self::request(caller, request)).await.map_err(error) {
            Ok(answer) => Ok(answer.into_inner().certificate_version.map(|v| v.name).unwrap_or_default()),
            Err(InventoryError::AlreadyRecorded) => {
                let current = self.certificate(caller, &parent).await?;
                if current.sha256_fingerprint.eq_ignore_ascii_case(fingerprint) {
                    Ok(current.current_version)
                } else {
                    Err(InventoryError::Refused(format!("{parent} already holds a version with this fingerprint")))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The policy violations the version described by `check` would have.
    pub async fn evaluate_policy(
        &self,
        caller: &Caller,
        check: &PolicyCheck,
    ) -> Result<Vec<PolicyViolation>, InventoryError> {
        let request = EvaluatePolicyRequest {
            certificate: check.certificate.clone(),
            common_name: check.common_name.clone(),
            subject_alt_names: check.subject_alt_names.clone(),
            issuer: check.issuer.clone(),
            key_algorithm: crate::grpc::key_algorithm_to_pb(check.key_algorithm),
            lifetime: Some(pbjson_types::Duration { seconds: check.lifetime_secs, nanos: 0 }),
            ..Default::default()
        };
        let answer = self.client.clone().evaluate_policy(Self::request(caller, request)).await.map_err(|status| {
            match status.code() {
                // The certificate vanished between reading and checking it.
                tonic::Code::NotFound => InventoryError::NotFound(status.message().to_owned()),
                // Anything else means the policies could not be checked,
                // and nothing is signed unchecked.
                code => InventoryError::Unavailable(format!(
                    "the policies of {} could not be checked ({code:?}: {})",
                    check.certificate,
                    status.message()
                )),
            }
        })?;
        Ok(answer
            .into_inner()
            .violations
            .into_iter()
            .map(|v| PolicyViolation {
                // An unknown severity from a newer inventory counts as the worst.
                severity: match PolicySeverity::try_from(v.severity) {
                    Ok(PolicySeverity::Warning) => Severity::Warning,
                    Ok(PolicySeverity::Error) => Severity::Error,
                    _ => Severity::Critical,
                },
                policy: v.policy,
                rule: v.rule,
                message: v.message,
            })
            .collect())
    }

    pub async fn record_revocation(
        &self,
        caller: &Caller,
        version: &str,
        reason: &str,
        time: UnixTime,
    ) -> Result<(), InventoryError> {
        let request = RecordRevocationRequest {
            name: version.to_owned(),
            reason: reason.to_owned(),
            revoke_time: certctl_proto::timestamp(time),
        };
        self.client.clone().record_revocation(Self::request(caller, request)).await.map_err(error)?;
        Ok(())
    }
}
