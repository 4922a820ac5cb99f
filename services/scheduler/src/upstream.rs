//! The services the scheduler calls, as it sees them: the inventory (what is
//! due) and issuance (sign). With `grpc.rs`, the only module that sees proto
//! types.

use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_domain::UnixTime;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{GetCertificateRequest, ListCertificatesRequest};
use certctl_proto::issuance::IssueCertificateRequest;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use tonic::transport::Channel;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Certificates per page of the renewal scan.
const DUE_PAGE_SIZE: i32 = 1000;

/// What the scheduler needs to know of a managed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    pub id: String,
    /// `issuers/{id}`; empty means the inventory only tracks it (imported).
    pub issuer: String,
    /// The current version's number and validity, if it has one.
    pub current: Option<(i64, UnixTime, UnixTime)>,
    pub revoked: bool,
}

/// How a call to another service failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request itself is wrong; retrying cannot help.
    Refused { code: String, message: String },
    /// The other side is down or slow; a retry may succeed.
    Unavailable(String),
}

fn classify(status: tonic::Status) -> CallError {
    use tonic::Code;
    let code = match status.code() {
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        _ => return CallError::Unavailable(format!("{:?}: {}", status.code(), status.message())),
    };
    CallError::Refused { code: code.to_owned(), message: status.message().to_owned() }
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    Caller { actor: "scheduler".to_owned(), request_id: String::new() }.stamp(&mut request);
    request.set_timeout(TIMEOUT);
    request
}

fn version_number(name: &str) -> Option<i64> {
    name.rsplit_once("/versions/").and_then(|(_, v)| v.parse().ok())
}

fn managed(c: certctl_proto::inventory::Certificate) -> Managed {
    let current = match (version_number(&c.current_version), c.not_before, c.not_after) {
        (Some(v), Some(nb), Some(na)) => Some((v, nb.seconds, na.seconds)),
        _ => None,
    };
    Managed {
        id: c.name.strip_prefix("certificates/").unwrap_or(&c.name).to_owned(),
        issuer: c.issuer,
        current,
        revoked: c.state == certctl_proto::inventory::CertificateState::Revoked as i32,
    }
}

#[derive(Clone)]
pub struct Upstreams {
    inventory: InventoryServiceClient<Channel>,
    issuance: IssuanceServiceClient<Channel>,
}

impl Upstreams {
    pub fn new(inventory: Channel, issuance: Channel) -> Self {
        Self {
            inventory: InventoryServiceClient::new(inventory).max_decoding_message_size(64 << 20),
            issuance: IssuanceServiceClient::new(issuance),
        }
    }

    /// One page of the certificates due for their next version by `now`
    /// (the inventory keeps each one's renewal time), soonest due first.
    pub async fn due(&self, now: UnixTime, page_token: &str) -> Result<(Vec<Managed>, String), CallError> {
        let answer = self
            .inventory
            .clone()
            .list_certificates(request(ListCertificatesRequest {
                page_size: DUE_PAGE_SIZE,
                page_token: page_token.to_owned(),
                renew_before: certctl_proto::timestamp(now),
                order_by: "renew_time".to_owned(),
                view: certctl_proto::inventory::CertificateView::Basic as i32,
                ..Default::default()
            }))
            .await
            .map_err(classify)?
            .into_inner();
        Ok((answer.certificates.into_iter().map(managed).collect(), answer.next_page_token))
    }

    pub async fn certificate(&self, name: &str) -> Result<Managed, CallError> {
        let answer = self
            .inventory
            .clone()
            .get_certificate(request(GetCertificateRequest { name: name.to_owned() }))
            .await
            .map_err(classify)?
            .into_inner();
        answer.certificate.map(managed).ok_or_else(|| CallError::Unavailable("empty answer".to_owned()))
    }

    /// Issues the next version; `request_id` makes a repeated call (a retry
    /// after a crash) return the first result instead of signing again.
    pub async fn issue(&self, certificate: &str, csr_pem: &str, request_id: &str) -> Result<String, CallError> {
        let answer = self
            .issuance
            .clone()
            .issue_certificate(request(IssueCertificateRequest {
                certificate: certificate.to_owned(),
                csr_pem: csr_pem.to_owned(),
                lifetime: None,
                request_id: request_id.to_owned(),
            }))
            .await
            .map_err(classify)?
            .into_inner();
        Ok(answer.issued_certificate.map(|i| i.certificate_version).unwrap_or_default())
    }
}

/// A certificate as the agent steps need it: its names, key and targets.
#[derive(Debug, Clone)]
pub struct Placement {
    pub certificate: certctl_proto::inventory::Certificate,
    /// Its targets that name an agent, as the inventory holds them now.
    pub targets: Vec<certctl_proto::inventory::Target>,
}

impl Placement {
    /// The distinct agents its targets name, sorted.
    pub fn agents(&self) -> Vec<String> {
        let mut agents: Vec<String> = self.targets.iter().map(|t| t.agent.clone()).collect();
        agents.sort_unstable();
        agents.dedup();
        agents
    }
}

impl Upstreams {
    /// The certificate and those of its targets an agent deploys to.
    pub async fn placement(&self, name: &str) -> Result<Placement, CallError> {
        let certificate = self
            .inventory
            .clone()
            .get_certificate(request(GetCertificateRequest { name: name.to_owned() }))
            .await
            .map_err(classify)?
            .into_inner()
            .certificate
            .ok_or_else(|| CallError::Unavailable("empty answer".to_owned()))?;
        let mut targets = Vec::with_capacity(certificate.targets.len());
        for target in &certificate.targets {
            let found = self
                .inventory
                .clone()
                .get_target(request(certctl_proto::inventory::GetTargetRequest { name: target.clone() }))
                .await
                .map_err(classify)?
                .into_inner()
                .target
                .ok_or_else(|| CallError::Unavailable("empty answer".to_owned()))?;
            if !found.agent.is_empty() {
                targets.push(found);
            }
        }
        Ok(Placement { certificate, targets })
    }

    pub async fn version(&self, name: &str) -> Result<certctl_proto::inventory::CertificateVersion, CallError> {
        self.inventory
            .clone()
            .get_certificate_version(request(certctl_proto::inventory::GetCertificateVersionRequest {
                name: name.to_owned(),
            }))
            .await
            .map_err(classify)?
            .into_inner()
            .certificate_version
            .ok_or_else(|| CallError::Unavailable("empty answer".to_owned()))
    }
}

impl Upstreams {
    /// Records how deployments went (or that they started).
    pub async fn record_deployments(
        &self,
        deployments: Vec<certctl_proto::inventory::Deployment>,
    ) -> Result<(), CallError> {
        self.inventory
            .clone()
            .record_deployments(request(certctl_proto::inventory::RecordDeploymentsRequest { deployments }))
            .await
            .map_err(classify)?;
        Ok(())
    }
}
