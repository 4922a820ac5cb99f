//! The services the scheduler calls, as it sees them: the inventory (what is
//! due) and issuance (sign). With `grpc.rs`, the only module that sees proto
//! types.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_domain::UnixTime;
use certctl_domain::inventory::RenewalPolicy;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{GetCertificateRequest, GetRenewalPolicyRequest, ListCertificatesRequest};
use certctl_proto::issuance::IssueCertificateRequest;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use tonic::transport::Channel;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Renewal policies change rarely; a scan re-reads them after this long.
const POLICY_TTL_SECS: i64 = 60;

/// What the scheduler needs to know of a managed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Managed {
    pub id: String,
    /// `issuers/{id}`; empty means the inventory only tracks it (imported).
    pub issuer: String,
    pub renewal_policy: String,
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
        renewal_policy: c.renewal_policy,
        current,
        revoked: c.state == certctl_proto::inventory::CertificateState::Revoked as i32,
    }
}

#[derive(Clone)]
pub struct Upstreams {
    inventory: InventoryServiceClient<Channel>,
    issuance: IssuanceServiceClient<Channel>,
    policies: Arc<Mutex<HashMap<String, (UnixTime, RenewalPolicy)>>>,
}

impl Upstreams {
    pub fn new(inventory: Channel, issuance: Channel) -> Self {
        Self {
            inventory: InventoryServiceClient::new(inventory).max_decoding_message_size(64 << 20),
            issuance: IssuanceServiceClient::new(issuance),
            policies: Arc::default(),
        }
    }

    /// One page of certificates, soonest expiry first.
    pub async fn certificates(&self, page_token: &str, pending: bool) -> Result<(Vec<Managed>, String), CallError> {
        let state = if pending { certctl_proto::inventory::CertificateState::Pending as i32 } else { 0 };
        let answer = self
            .inventory
            .clone()
            .list_certificates(request(ListCertificatesRequest {
                page_size: 1000,
                page_token: page_token.to_owned(),
                state,
                order_by: "not_after".to_owned(),
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

    /// A renewal policy (empty name: the built-in default), cached briefly.
    pub async fn policy(&self, name: &str, now: UnixTime) -> Result<RenewalPolicy, CallError> {
        if name.is_empty() {
            return Ok(RenewalPolicy::default());
        }
        if let Some((at, policy)) = self.policies.lock().expect("policy cache").get(name)
            && now - at < POLICY_TTL_SECS
        {
            return Ok(policy.clone());
        }
        let answer = self
            .inventory
            .clone()
            .get_renewal_policy(request(GetRenewalPolicyRequest { name: name.to_owned() }))
            .await
            .map_err(classify)?
            .into_inner();
        let p = answer.renewal_policy.unwrap_or_default();
        let policy = RenewalPolicy {
            id: name.trim_start_matches("renewalPolicies/").to_owned(),
            renew_before_lifetime_fraction: (p.renew_before_lifetime_fraction > 0.0)
                .then_some(p.renew_before_lifetime_fraction),
            renew_before_secs: p.renew_before.map(|d| d.seconds).filter(|s| *s > 0),
            ..RenewalPolicy::default()
        };
        self.policies.lock().expect("policy cache").insert(name.to_owned(), (now, policy.clone()));
        Ok(policy)
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
