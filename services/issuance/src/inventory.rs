//! The inventory as issuance sees it: what a managed certificate asks for,
//! and where signed versions and revocations are recorded. The only module
//! besides `grpc.rs` that sees proto types.

use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_domain::UnixTime;
use certctl_domain::inventory::KeyAlgorithm;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{CreateCertificateVersionRequest, GetCertificateRequest, RecordRevocationRequest};
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
