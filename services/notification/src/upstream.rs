//! The services the notification service reads, as it sees them: the
//! inventory (certificates, renewal policies' thresholds, owners' and
//! teams' addresses) and the audit trail (events after a cursor). With
//! `grpc.rs`, the only module that sees proto types.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_domain::UnixTime;
use certctl_proto::audit::ListAuditEventsRequest;
use certctl_proto::audit::audit_service_client::AuditServiceClient;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{
    CertificateState, GetCertificateRequest, GetOwnerRequest, GetRenewalPolicyRequest, GetTeamRequest,
    ListCertificatesRequest,
};
use tonic::transport::Channel;

const TIMEOUT: Duration = Duration::from_secs(30);
const POLICY_TTL_SECS: i64 = 60;

/// What the notification service needs of a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateInfo {
    /// `certificates/{id}`.
    pub name: String,
    pub display_name: String,
    pub common_name: String,
    pub owner: String,
    pub team: String,
    pub environment: String,
    pub renewal_policy: String,
    /// `certificates/{id}/versions/{n}`, empty while pending.
    pub current_version: String,
    pub not_after: Option<UnixTime>,
    pub revoked: bool,
}

/// An audit event, as far as notifications care.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub sequence: i64,
    pub action: String,
    pub resource: String,
    pub details: serde_json::Value,
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    Caller { actor: crate::SERVICE.to_owned(), request_id: String::new() }.stamp(&mut request);
    request.set_timeout(TIMEOUT);
    request
}

fn describe(status: tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn info(c: certctl_proto::inventory::Certificate) -> CertificateInfo {
    CertificateInfo {
        display_name: c.display_name,
        common_name: c.common_name,
        owner: c.owner,
        team: c.team,
        environment: c.environment,
        renewal_policy: c.renewal_policy,
        current_version: c.current_version,
        not_after: c.not_after.map(|t| t.seconds),
        revoked: c.state == CertificateState::Revoked as i32,
        name: c.name,
    }
}

/// Renewal policy name → (when read, alert thresholds in days).
type ThresholdCache = HashMap<String, (UnixTime, Vec<i64>)>;

#[derive(Clone)]
pub struct Upstreams {
    inventory: InventoryServiceClient<Channel>,
    audit: AuditServiceClient<Channel>,
    thresholds: Arc<Mutex<ThresholdCache>>,
}

impl Upstreams {
    pub fn new(inventory: Channel, audit: Channel) -> Self {
        Self {
            inventory: InventoryServiceClient::new(inventory).max_decoding_message_size(64 << 20),
            audit: AuditServiceClient::new(audit).max_decoding_message_size(64 << 20),
            thresholds: Arc::default(),
        }
    }

    /// One page of certificates expiring before `before`, soonest first.
    pub async fn expiring(&self, before: UnixTime, page_token: &str) -> Result<(Vec<CertificateInfo>, String), String> {
        let answer = self
            .inventory
            .clone()
            .list_certificates(request(ListCertificatesRequest {
                page_size: 1000,
                page_token: page_token.to_owned(),
                expire_before: certctl_proto::timestamp(before),
                order_by: "not_after".to_owned(),
                ..Default::default()
            }))
            .await
            .map_err(describe)?
            .into_inner();
        Ok((answer.certificates.into_iter().map(info).collect(), answer.next_page_token))
    }

    /// The certificate, or `None` when the inventory no longer has it.
    pub async fn certificate(&self, name: &str) -> Result<Option<CertificateInfo>, String> {
        match self.inventory.clone().get_certificate(request(GetCertificateRequest { name: name.to_owned() })).await {
            Ok(answer) => Ok(answer.into_inner().certificate.map(info)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(describe(status)),
        }
    }

    /// A renewal policy's alert thresholds in days (empty name or none set:
    /// the defaults), cached briefly.
    pub async fn thresholds(&self, policy: &str, now: UnixTime) -> Result<Vec<i64>, String> {
        let default = crate::model::DEFAULT_THRESHOLDS.to_vec();
        if policy.is_empty() {
            return Ok(default);
        }
        if let Some((at, days)) = self.thresholds.lock().expect("threshold cache").get(policy)
            && now - at < POLICY_TTL_SECS
        {
            return Ok(days.clone());
        }
        let answer = self
            .inventory
            .clone()
            .get_renewal_policy(request(GetRenewalPolicyRequest { name: policy.to_owned() }))
            .await;
        let days = match answer {
            Ok(a) => {
                let given: Vec<i64> = a
                    .into_inner()
                    .renewal_policy
                    .map(|p| p.alert_threshold_days.into_iter().map(i64::from).collect())
                    .unwrap_or_default();
                if given.is_empty() { default } else { given }
            }
            Err(status) if status.code() == tonic::Code::NotFound => default,
            Err(status) => return Err(describe(status)),
        };
        self.thresholds.lock().expect("threshold cache").insert(policy.to_owned(), (now, days.clone()));
        Ok(days)
    }

    /// The email address of `owners/{id}` or `teams/{id}`; empty if none.
    pub async fn address(&self, recipient: &str) -> Result<String, String> {
        let mut inventory = self.inventory.clone();
        let answer = if recipient.starts_with("owners/") {
            inventory
                .get_owner(request(GetOwnerRequest { name: recipient.to_owned() }))
                .await
                .map(|a| a.into_inner().owner.map(|o| o.email).unwrap_or_default())
        } else {
            inventory
                .get_team(request(GetTeamRequest { name: recipient.to_owned() }))
                .await
                .map(|a| a.into_inner().team.map(|t| t.email).unwrap_or_default())
        };
        match answer {
            Ok(email) => Ok(email),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(String::new()),
            Err(status) => Err(describe(status)),
        }
    }

    /// Audit events after `after`, oldest first.
    pub async fn audit_after(&self, after: i64, limit: i32) -> Result<Vec<AuditRecord>, String> {
        let answer = self
            .audit
            .clone()
            .list_audit_events(request(ListAuditEventsRequest {
                page_size: limit,
                order_by: "sequence".to_owned(),
                after_sequence: after,
                ..Default::default()
            }))
            .await
            .map_err(describe)?
            .into_inner();
        Ok(answer
            .audit_events
            .into_iter()
            .map(|e| AuditRecord {
                sequence: e.sequence,
                action: e.action,
                resource: e.resource,
                details: certctl_proto::struct_to_json(e.details.as_ref()),
            })
            .collect())
    }

    /// The newest audit sequence (0 for an empty trail).
    pub async fn audit_head(&self) -> Result<i64, String> {
        let answer = self
            .audit
            .clone()
            .list_audit_events(request(ListAuditEventsRequest { page_size: 1, ..Default::default() }))
            .await
            .map_err(describe)?
            .into_inner();
        Ok(answer.audit_events.first().map_or(0, |e| e.sequence))
    }
}
