//! The gRPC edge of the inventory: the only module that sees proto types.
//! Converts requests to domain values, calls `Inventory`, converts back.

mod agents;
mod deployments;
mod discovery;
mod policies;

use certctl_domain::DomainError;
use certctl_domain::agents::Enrolment;
use certctl_domain::inventory::{self as domain, CertificateState, KeyAlgorithm, TargetConfig, WebServerConfig};
use certctl_domain::name::{self, Collection};
use certctl_proto::inventory::{self as pb, inventory_service_server::InventoryService};
use certctl_proto::types::KeyAlgorithm as PbKeyAlgorithm;
use tonic::{Request, Response, Status};

use crate::service::{Caller, CertificateFilter, ImportItem, Inventory, ViolationFilter};
use crate::store::Store;
use agents::{agent_from_pb, agent_status_from_pb, join_token_from_pb, join_token_to_pb, session_from_pb};
use deployments::{deployment_state_from_pb, deployment_to_pb, new_deployment_from_pb};
use discovery::{discovered_to_pb, discovery_state_from_pb, report_from_pb};
use policies::{evaluation_from_pb, severity_from_pb, violation_page_to_pb, violation_to_pb};

/// Metadata keys the gateway sets on every call it forwards.
pub use certctl_common::caller::{ACTOR_HEADER, REQUEST_ID_HEADER};

pub fn caller<T>(request: &Request<T>) -> Caller {
    Caller::from_metadata(request.metadata())
}

fn invalid(field: &str, message: &str) -> Status {
    certctl_common::status_from_domain(DomainError::invalid(field, message))
}

fn mask(m: Option<pbjson_types::FieldMask>) -> Vec<String> {
    m.map(|m| m.paths).unwrap_or_default()
}

fn ts(t: Option<pbjson_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds)
}

pub fn state_to_pb(s: CertificateState) -> pb::CertificateState {
    match s {
        CertificateState::Pending => pb::CertificateState::Pending,
        CertificateState::Active => pb::CertificateState::Active,
        CertificateState::Expiring => pb::CertificateState::Expiring,
        CertificateState::Expired => pb::CertificateState::Expired,
        CertificateState::Revoked => pb::CertificateState::Revoked,
    }
}

fn state_from_pb(value: i32) -> Result<Option<CertificateState>, Status> {
    Ok(match pb::CertificateState::try_from(value) {
        Ok(pb::CertificateState::Unspecified) => None,
        Ok(pb::CertificateState::Pending) => Some(CertificateState::Pending),
        Ok(pb::CertificateState::Active) => Some(CertificateState::Active),
        Ok(pb::CertificateState::Expiring) => Some(CertificateState::Expiring),
        Ok(pb::CertificateState::Expired) => Some(CertificateState::Expired),
        Ok(pb::CertificateState::Revoked) => Some(CertificateState::Revoked),
        Err(_) => return Err(invalid("state", &format!("{value} is not a certificate state"))),
    })
}

fn key_algorithm_to_pb(k: KeyAlgorithm) -> PbKeyAlgorithm {
    match k {
        KeyAlgorithm::EcdsaP256 => PbKeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384 => PbKeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Rsa2048 => PbKeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => PbKeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => PbKeyAlgorithm::Rsa4096,
        KeyAlgorithm::Ed25519 => PbKeyAlgorithm::Ed25519,
        KeyAlgorithm::Other => PbKeyAlgorithm::Other,
    }
}

/// Unspecified is `None` (the profile decides). OTHER passes through for the
/// domain to refuse; a number outside the enum is refused here.
fn key_algorithm_from_pb(field: &str, value: i32) -> Result<Option<KeyAlgorithm>, Status> {
    Ok(match PbKeyAlgorithm::try_from(value) {
        Ok(PbKeyAlgorithm::Unspecified) => None,
        Ok(PbKeyAlgorithm::EcdsaP256) => Some(KeyAlgorithm::EcdsaP256),
        Ok(PbKeyAlgorithm::EcdsaP384) => Some(KeyAlgorithm::EcdsaP384),
        Ok(PbKeyAlgorithm::Rsa2048) => Some(KeyAlgorithm::Rsa2048),
        Ok(PbKeyAlgorithm::Rsa3072) => Some(KeyAlgorithm::Rsa3072),
        Ok(PbKeyAlgorithm::Rsa4096) => Some(KeyAlgorithm::Rsa4096),
        Ok(PbKeyAlgorithm::Ed25519) => Some(KeyAlgorithm::Ed25519),
        Ok(PbKeyAlgorithm::Other) => Some(KeyAlgorithm::Other),
        Err(_) => return Err(invalid(field, &format!("{value} is not a key algorithm"))),
    })
}

/// The id of a resource named in an update (`certificate.name`, ...).
fn id_of(field: &str, collection: Collection, name: &str) -> Result<String, Status> {
    name::parse(field, collection, name).map(str::to_owned).map_err(certctl_common::status_from_domain)
}

fn certificate_from_pb(c: pb::Certificate, id: String) -> Result<domain::Certificate, Status> {
    Ok(domain::Certificate {
        id,
        display_name: c.display_name,
        common_name: c.common_name,
        subject_alt_names: c.subject_alt_names,
        owner: c.owner,
        team: c.team,
        environment: c.environment,
        issuer: c.issuer,
        profile: c.profile,
        renewal_policy: c.renewal_policy,
        targets: c.targets,
        labels: c.labels.into_iter().collect(),
        metadata: c.metadata.into_iter().collect(),
        server_keyed: c.server_keyed,
        key_algorithm: key_algorithm_from_pb("certificate.key_algorithm", c.key_algorithm)?,
        ..Default::default()
    })
}

fn certificate_to_pb(c: domain::Certificate, state: CertificateState) -> pb::Certificate {
    let current = c.current.clone();
    pb::Certificate {
        name: c.name(),
        display_name: c.display_name,
        common_name: c.common_name,
        subject_alt_names: c.subject_alt_names,
        owner: c.owner,
        team: c.team,
        environment: c.environment,
        issuer: c.issuer,
        profile: c.profile,
        renewal_policy: c.renewal_policy,
        targets: c.targets,
        labels: c.labels.into_iter().collect(),
        metadata: c.metadata.into_iter().collect(),
        state: state_to_pb(state) as i32,
        current_version: current.as_ref().map(|v| name::version_name(&c.id, v.version)).unwrap_or_default(),
        not_before: current.as_ref().and_then(|v| certctl_proto::timestamp(v.not_before)),
        not_after: current.as_ref().and_then(|v| certctl_proto::timestamp(v.not_after)),
        create_time: certctl_proto::timestamp(c.create_time),
        update_time: certctl_proto::timestamp(c.update_time),
        serial_number: current.as_ref().map(|v| v.serial_number.clone()).unwrap_or_default(),
        sha256_fingerprint: current.map(|v| v.sha256_fingerprint).unwrap_or_default(),
        server_keyed: c.server_keyed,
        key_algorithm: c.key_algorithm.map_or(PbKeyAlgorithm::Unspecified, key_algorithm_to_pb) as i32,
        renew_time: c.renew_time.and_then(certctl_proto::timestamp),
    }
}

fn version_to_pb(v: domain::CertificateVersion) -> pb::CertificateVersion {
    let name = v.name();
    let p = v.parsed;
    pb::CertificateVersion {
        name,
        pem_chain: v.pem_chain,
        serial_number: p.serial_number,
        sha256_fingerprint: p.sha256_fingerprint,
        subject: p.subject,
        issuer: p.issuer,
        subject_alt_names: p.subject_alt_names,
        key_algorithm: key_algorithm_to_pb(p.key_algorithm) as i32,
        key_size: p.key_size,
        not_before: certctl_proto::timestamp(p.not_before),
        not_after: certctl_proto::timestamp(p.not_after),
        create_time: certctl_proto::timestamp(v.create_time),
        revoke_time: v.revocation.as_ref().and_then(|r| certctl_proto::timestamp(r.revoke_time)),
        revocation_reason: v.revocation.map(|r| r.reason).unwrap_or_default(),
    }
}

fn owner_to_pb(o: domain::Owner) -> pb::Owner {
    pb::Owner {
        name: Collection::Owners.name(&o.id),
        display_name: o.display_name,
        email: o.email,
        team: o.team,
        create_time: certctl_proto::timestamp(o.create_time),
        update_time: certctl_proto::timestamp(o.update_time),
    }
}

fn owner_from_pb(o: pb::Owner, id: String) -> domain::Owner {
    domain::Owner { id, display_name: o.display_name, email: o.email, team: o.team, ..Default::default() }
}

fn team_to_pb(t: domain::Team) -> pb::Team {
    pb::Team {
        name: Collection::Teams.name(&t.id),
        display_name: t.display_name,
        email: t.email,
        create_time: certctl_proto::timestamp(t.create_time),
        update_time: certctl_proto::timestamp(t.update_time),
    }
}

fn team_from_pb(t: pb::Team, id: String) -> domain::Team {
    domain::Team { id, display_name: t.display_name, email: t.email, ..Default::default() }
}

fn web_to_pb(c: WebServerConfig) -> pb::WebServerTargetConfig {
    pb::WebServerTargetConfig {
        certificate_path: c.certificate_path,
        key_path: c.key_path,
        verify_host: c.verify_host,
        verify_port: c.verify_port,
        verify_server_name: c.verify_server_name,
        validate_command: c.validate_command,
        reload_command: c.reload_command,
    }
}

fn web_from_pb(c: pb::WebServerTargetConfig) -> WebServerConfig {
    WebServerConfig {
        certificate_path: c.certificate_path,
        key_path: c.key_path,
        verify_host: c.verify_host,
        verify_port: c.verify_port,
        verify_server_name: c.verify_server_name,
        validate_command: c.validate_command,
        reload_command: c.reload_command,
    }
}

fn target_to_pb(t: domain::Target) -> pb::Target {
    use pb::target::Config;
    let config = match t.config {
        TargetConfig::File { directory, mode, owner, group, post_deploy_command } => {
            Config::File(pb::FileTargetConfig { directory, mode, owner, group, post_deploy_command })
        }
        TargetConfig::Nginx(c) => Config::Nginx(web_to_pb(c)),
        TargetConfig::Apache(c) => Config::Apache(web_to_pb(c)),
        TargetConfig::Haproxy(c) => Config::Haproxy(web_to_pb(c)),
        TargetConfig::Caddy(c) => Config::Caddy(web_to_pb(c)),
        TargetConfig::Lighttpd(c) => Config::Lighttpd(web_to_pb(c)),
        TargetConfig::Postfix(c) => Config::Postfix(web_to_pb(c)),
        TargetConfig::Dovecot(c) => Config::Dovecot(web_to_pb(c)),
    };
    pb::Target {
        name: Collection::Targets.name(&t.id),
        display_name: t.display_name,
        agent: t.agent,
        labels: t.labels.into_iter().collect(),
        config: Some(config),
        create_time: certctl_proto::timestamp(t.create_time),
        update_time: certctl_proto::timestamp(t.update_time),
    }
}

/// The members of `Target.config`, as update masks name them.
const CONFIG_CASES: &[&str] = &["file", "nginx", "apache", "haproxy", "caddy", "lighttpd", "postfix", "dovecot"];

fn target_config_from_pb(config: Option<pb::target::Config>) -> Result<TargetConfig, Status> {
    use pb::target::Config;
    Ok(match config {
        Some(Config::File(f)) => TargetConfig::File {
            directory: f.directory,
            mode: f.mode,
            owner: f.owner,
            group: f.group,
            post_deploy_command: f.post_deploy_command,
        },
        Some(Config::Nginx(c)) => TargetConfig::Nginx(web_from_pb(c)),
        Some(Config::Apache(c)) => TargetConfig::Apache(web_from_pb(c)),
        Some(Config::Haproxy(c)) => TargetConfig::Haproxy(web_from_pb(c)),
        Some(Config::Caddy(c)) => TargetConfig::Caddy(web_from_pb(c)),
        Some(Config::Lighttpd(c)) => TargetConfig::Lighttpd(web_from_pb(c)),
        Some(Config::Postfix(c)) => TargetConfig::Postfix(web_from_pb(c)),
        Some(Config::Dovecot(c)) => TargetConfig::Dovecot(web_from_pb(c)),
        None => {
            return Err(invalid("target.config", &format!("required: set one of {}", CONFIG_CASES.join(", "))));
        }
    })
}

fn policy_to_pb(p: domain::RenewalPolicy) -> pb::RenewalPolicy {
    pb::RenewalPolicy {
        name: Collection::RenewalPolicies.name(&p.id),
        display_name: p.display_name,
        alert_threshold_days: p.alert_threshold_days,
        renew_before_lifetime_fraction: p.renew_before_lifetime_fraction.unwrap_or_default(),
        renew_before: p.renew_before_secs.map(|s| pbjson_types::Duration { seconds: s, nanos: 0 }),
        create_time: certctl_proto::timestamp(p.create_time),
        update_time: certctl_proto::timestamp(p.update_time),
    }
}

/// Unset fields take the defaults (30/14/7/0 days, renew at 2/3 of the lifetime).
fn policy_from_pb(p: pb::RenewalPolicy, id: String, for_create: bool) -> domain::RenewalPolicy {
    let defaults = domain::RenewalPolicy::default();
    let thresholds = if p.alert_threshold_days.is_empty() && for_create {
        defaults.alert_threshold_days
    } else {
        p.alert_threshold_days
    };
    let lead = p.renew_before.map(|d| d.seconds);
    let fraction = if p.renew_before_lifetime_fraction != 0.0 {
        Some(p.renew_before_lifetime_fraction)
    } else if for_create && lead.is_none() {
        defaults.renew_before_lifetime_fraction
    } else {
        None
    };
    domain::RenewalPolicy {
        id,
        display_name: p.display_name,
        alert_threshold_days: thresholds,
        renew_before_lifetime_fraction: fraction,
        renew_before_secs: lead,
        create_time: 0,
        update_time: 0,
    }
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, Status> {
    value.ok_or_else(|| invalid(field, "required"))
}

/// The tonic service over an `Inventory`.
pub struct InventoryGrpc<S> {
    inner: Inventory<S>,
}

impl<S: Store> InventoryGrpc<S> {
    pub fn new(inner: Inventory<S>) -> Self {
        Self { inner }
    }

    pub fn into_server(self) -> certctl_proto::inventory::inventory_service_server::InventoryServiceServer<Self> {
        certctl_proto::inventory::inventory_service_server::InventoryServiceServer::new(self)
            .max_decoding_message_size(32 << 20)
    }
}

type R<T> = Result<Response<T>, Status>;

impl<S: Store> InventoryGrpc<S> {
    fn agent_to_pb(&self, a: domain::Agent) -> pb::Agent {
        let status = self.inner.agent_status(&a);
        agents::agent_to_pb(a, status)
    }
}

#[tonic::async_trait]
impl<S: Store> InventoryService for InventoryGrpc<S> {
    async fn get_certificate(&self, request: Request<pb::GetCertificateRequest>) -> R<pb::GetCertificateResponse> {
        let c = self.inner.get_certificate(&request.into_inner().name).await?;
        let state = self.inner.state_of(&c);
        Ok(Response::new(pb::GetCertificateResponse { certificate: Some(certificate_to_pb(c, state)) }))
    }

    async fn list_certificates(
        &self,
        request: Request<pb::ListCertificatesRequest>,
    ) -> R<pb::ListCertificatesResponse> {
        let r = request.into_inner();
        let filter = CertificateFilter {
            owner: r.owner,
            team: r.team,
            state: state_from_pb(r.state)?,
            issuer: r.issuer,
            environment: r.environment,
            expire_before: ts(r.expire_before),
            renew_before: ts(r.renew_before),
            search: r.search,
            basic: match pb::CertificateView::try_from(r.view) {
                Ok(pb::CertificateView::Basic) => true,
                Ok(pb::CertificateView::Unspecified | pb::CertificateView::Full) => false,
                Err(_) => return Err(invalid("view", &format!("{} is not a certificate view", r.view))),
            },
            order_by: r.order_by,
        };
        let page = self.inner.list_certificates(&filter, r.page_size, &r.page_token).await?;
        let certificates = page
            .items
            .into_iter()
            .map(|c| {
                let state = self.inner.state_of(&c);
                certificate_to_pb(c, state)
            })
            .collect();
        Ok(Response::new(pb::ListCertificatesResponse { certificates, next_page_token: page.next_page_token }))
    }

    async fn create_certificate(
        &self,
        request: Request<pb::CreateCertificateRequest>,
    ) -> R<pb::CreateCertificateResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let c = certificate_from_pb(required("certificate", r.certificate)?, r.certificate_id)?;
        let created = self.inner.create_certificate(&caller, c, &r.request_id).await?;
        let state = self.inner.state_of(&created);
        Ok(Response::new(pb::CreateCertificateResponse { certificate: Some(certificate_to_pb(created, state)) }))
    }

    async fn update_certificate(
        &self,
        request: Request<pb::UpdateCertificateRequest>,
    ) -> R<pb::UpdateCertificateResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let c = required("certificate", r.certificate)?;
        let id = id_of("certificate.name", Collection::Certificates, &c.name)?;
        let updated = self.inner.update_certificate(&caller, certificate_from_pb(c, id)?, &mask(r.update_mask)).await?;
        let state = self.inner.state_of(&updated);
        Ok(Response::new(pb::UpdateCertificateResponse { certificate: Some(certificate_to_pb(updated, state)) }))
    }

    async fn delete_certificate(
        &self,
        request: Request<pb::DeleteCertificateRequest>,
    ) -> R<pb::DeleteCertificateResponse> {
        let caller = caller(&request);
        self.inner.delete_certificate(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteCertificateResponse {}))
    }

    async fn summarize_certificates(
        &self,
        _request: Request<pb::SummarizeCertificatesRequest>,
    ) -> R<pb::SummarizeCertificatesResponse> {
        let s = self.inner.summarize().await?;
        Ok(Response::new(pb::SummarizeCertificatesResponse {
            total: s.total,
            pending: s.pending,
            active: s.active,
            expiring: s.expiring,
            expired: s.expired,
            revoked: s.revoked,
            expiring_within_7_days: s.expiring_within_7_days,
            expiring_within_30_days: s.expiring_within_30_days,
        }))
    }

    async fn import_certificates(
        &self,
        request: Request<pb::ImportCertificatesRequest>,
    ) -> R<pb::ImportCertificatesResponse> {
        let caller = caller(&request);
        let items = request
            .into_inner()
            .items
            .into_iter()
            .map(|i| ImportItem {
                pem_chain: i.pem_chain,
                certificate_id: i.certificate_id,
                owner: i.owner,
                team: i.team,
                environment: i.environment,
                source: i.source,
            })
            .collect();
        let outcomes = self.inner.import(&caller, items).await?;
        let imported = outcomes.iter().filter(|o| o.result.is_ok()).count() as i32;
        let failed = outcomes.len() as i32 - imported;
        let results = outcomes
            .into_iter()
            .map(|o| match o.result {
                Ok(version) => pb::ImportResult { source: o.source, version, error: String::new() },
                Err(error) => pb::ImportResult { source: o.source, version: String::new(), error },
            })
            .collect();
        Ok(Response::new(pb::ImportCertificatesResponse { results, imported, failed }))
    }

    async fn get_certificate_version(
        &self,
        request: Request<pb::GetCertificateVersionRequest>,
    ) -> R<pb::GetCertificateVersionResponse> {
        let v = self.inner.get_version(&request.into_inner().name).await?;
        Ok(Response::new(pb::GetCertificateVersionResponse { certificate_version: Some(version_to_pb(v)) }))
    }

    async fn list_certificate_versions(
        &self,
        request: Request<pb::ListCertificateVersionsRequest>,
    ) -> R<pb::ListCertificateVersionsResponse> {
        let r = request.into_inner();
        let page = self.inner.list_versions(&r.parent, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListCertificateVersionsResponse {
            certificate_versions: page.items.into_iter().map(version_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_certificate_version(
        &self,
        request: Request<pb::CreateCertificateVersionRequest>,
    ) -> R<pb::CreateCertificateVersionResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let v = self.inner.create_version(&caller, &r.parent, &r.pem_chain).await?;
        Ok(Response::new(pb::CreateCertificateVersionResponse { certificate_version: Some(version_to_pb(v)) }))
    }

    async fn record_revocation(
        &self,
        request: Request<pb::RecordRevocationRequest>,
    ) -> R<pb::RecordRevocationResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let c = self.inner.record_revocation(&caller, &r.name, &r.reason, ts(r.revoke_time)).await?;
        let state = self.inner.state_of(&c);
        Ok(Response::new(pb::RecordRevocationResponse { certificate: Some(certificate_to_pb(c, state)) }))
    }

    async fn get_owner(&self, request: Request<pb::GetOwnerRequest>) -> R<pb::GetOwnerResponse> {
        let o = self.inner.get_document(Collection::Owners, &request.into_inner().name).await?;
        Ok(Response::new(pb::GetOwnerResponse { owner: Some(owner_to_pb(o)) }))
    }

    async fn list_owners(&self, request: Request<pb::ListOwnersRequest>) -> R<pb::ListOwnersResponse> {
        let r = request.into_inner();
        let page = self.inner.list_documents::<domain::Owner>(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListOwnersResponse {
            owners: page.items.into_iter().map(owner_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_owner(&self, request: Request<pb::CreateOwnerRequest>) -> R<pb::CreateOwnerResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let o = self.inner.create_owner(&caller, owner_from_pb(required("owner", r.owner)?, r.owner_id)).await?;
        Ok(Response::new(pb::CreateOwnerResponse { owner: Some(owner_to_pb(o)) }))
    }

    async fn update_owner(&self, request: Request<pb::UpdateOwnerRequest>) -> R<pb::UpdateOwnerResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let o = required("owner", r.owner)?;
        let id = id_of("owner.name", Collection::Owners, &o.name)?;
        let o = self.inner.update_owner(&caller, owner_from_pb(o, id), &mask(r.update_mask)).await?;
        Ok(Response::new(pb::UpdateOwnerResponse { owner: Some(owner_to_pb(o)) }))
    }

    async fn delete_owner(&self, request: Request<pb::DeleteOwnerRequest>) -> R<pb::DeleteOwnerResponse> {
        let caller = caller(&request);
        self.inner.delete_owner(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteOwnerResponse {}))
    }

    async fn get_team(&self, request: Request<pb::GetTeamRequest>) -> R<pb::GetTeamResponse> {
        let t = self.inner.get_document(Collection::Teams, &request.into_inner().name).await?;
        Ok(Response::new(pb::GetTeamResponse { team: Some(team_to_pb(t)) }))
    }

    async fn list_teams(&self, request: Request<pb::ListTeamsRequest>) -> R<pb::ListTeamsResponse> {
        let r = request.into_inner();
        let page = self.inner.list_documents::<domain::Team>(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListTeamsResponse {
            teams: page.items.into_iter().map(team_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_team(&self, request: Request<pb::CreateTeamRequest>) -> R<pb::CreateTeamResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let t = self.inner.create_team(&caller, team_from_pb(required("team", r.team)?, r.team_id)).await?;
        Ok(Response::new(pb::CreateTeamResponse { team: Some(team_to_pb(t)) }))
    }

    async fn update_team(&self, request: Request<pb::UpdateTeamRequest>) -> R<pb::UpdateTeamResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let t = required("team", r.team)?;
        let id = id_of("team.name", Collection::Teams, &t.name)?;
        let t = self.inner.update_team(&caller, team_from_pb(t, id), &mask(r.update_mask)).await?;
        Ok(Response::new(pb::UpdateTeamResponse { team: Some(team_to_pb(t)) }))
    }

    async fn delete_team(&self, request: Request<pb::DeleteTeamRequest>) -> R<pb::DeleteTeamResponse> {
        let caller = caller(&request);
        self.inner.delete_team(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteTeamResponse {}))
    }

    async fn get_target(&self, request: Request<pb::GetTargetRequest>) -> R<pb::GetTargetResponse> {
        let t = self.inner.get_document(Collection::Targets, &request.into_inner().name).await?;
        Ok(Response::new(pb::GetTargetResponse { target: Some(target_to_pb(t)) }))
    }

    async fn list_targets(&self, request: Request<pb::ListTargetsRequest>) -> R<pb::ListTargetsResponse> {
        let r = request.into_inner();
        name::parse_optional("agent", Collection::Agents, &r.agent).map_err(certctl_common::status_from_domain)?;
        let page = self.inner.list_documents::<domain::Target>(r.page_size, &r.page_token).await?;
        let targets =
            page.items.into_iter().filter(|t| r.agent.is_empty() || t.agent == r.agent).map(target_to_pb).collect();
        Ok(Response::new(pb::ListTargetsResponse { targets, next_page_token: page.next_page_token }))
    }

    async fn create_target(&self, request: Request<pb::CreateTargetRequest>) -> R<pb::CreateTargetResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let t = required("target", r.target)?;
        let target = domain::Target {
            id: r.target_id,
            display_name: t.display_name,
            agent: t.agent,
            labels: t.labels.into_iter().collect(),
            config: target_config_from_pb(t.config)?,
            create_time: 0,
            update_time: 0,
        };
        let t = self.inner.create_target(&caller, target).await?;
        Ok(Response::new(pb::CreateTargetResponse { target: Some(target_to_pb(t)) }))
    }

    async fn update_target(&self, request: Request<pb::UpdateTargetRequest>) -> R<pb::UpdateTargetResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let t = required("target", r.target)?;
        let id = id_of("target.name", Collection::Targets, &t.name)?;
        let mut paths = mask(r.update_mask);
        // Masks name proto fields (AIP-161): the oneof's members, as the GUI
        // sends them, stand for the domain's `config`.
        for path in &mut paths {
            if CONFIG_CASES.contains(&path.as_str()) {
                *path = "config".to_owned();
            }
        }
        paths.sort_unstable();
        paths.dedup();
        let config = match t.config {
            Some(c) => target_config_from_pb(Some(c))?,
            None => {
                // No config in the patch: keep the current one. A mask that
                // names config asks for one, and must not fall back to the
                // fields the patch happens to set.
                if paths.iter().any(|p| p == "config") {
                    return Err(invalid("target.config", "required: update_mask names config"));
                }
                if paths.is_empty() {
                    paths = ["display_name", "agent", "labels"]
                        .into_iter()
                        .filter(|f| match *f {
                            "display_name" => !t.display_name.is_empty(),
                            "agent" => !t.agent.is_empty(),
                            _ => !t.labels.is_empty(),
                        })
                        .map(str::to_owned)
                        .collect();
                    if paths.is_empty() {
                        return Err(invalid("update_mask", "nothing to update"));
                    }
                }
                self.inner.get_document::<domain::Target>(Collection::Targets, &t.name).await?.config
            }
        };
        let patch = domain::Target {
            id,
            display_name: t.display_name,
            agent: t.agent,
            labels: t.labels.into_iter().collect(),
            config,
            create_time: 0,
            update_time: 0,
        };
        let t = self.inner.update_target(&caller, patch, &paths).await?;
        Ok(Response::new(pb::UpdateTargetResponse { target: Some(target_to_pb(t)) }))
    }

    async fn delete_target(&self, request: Request<pb::DeleteTargetRequest>) -> R<pb::DeleteTargetResponse> {
        let caller = caller(&request);
        self.inner.delete_target(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteTargetResponse {}))
    }

    async fn get_agent(&self, request: Request<pb::GetAgentRequest>) -> R<pb::GetAgentResponse> {
        let a = self.inner.get_agent(&request.into_inner().name).await?;
        Ok(Response::new(pb::GetAgentResponse { agent: Some(self.agent_to_pb(a)) }))
    }

    async fn list_agents(&self, request: Request<pb::ListAgentsRequest>) -> R<pb::ListAgentsResponse> {
        let r = request.into_inner();
        let page = self.inner.list_agents(agent_status_from_pb(r.status)?, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListAgentsResponse {
            agents: page.items.into_iter().map(|a| self.agent_to_pb(a)).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_agent(&self, request: Request<pb::CreateAgentRequest>) -> R<pb::CreateAgentResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let a = self.inner.create_agent(&caller, agent_from_pb(required("agent", r.agent)?, r.agent_id)).await?;
        Ok(Response::new(pb::CreateAgentResponse { agent: Some(self.agent_to_pb(a)) }))
    }

    async fn update_agent(&self, request: Request<pb::UpdateAgentRequest>) -> R<pb::UpdateAgentResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let a = required("agent", r.agent)?;
        let id = id_of("agent.name", Collection::Agents, &a.name)?;
        let a = self.inner.update_agent(&caller, agent_from_pb(a, id), &mask(r.update_mask)).await?;
        Ok(Response::new(pb::UpdateAgentResponse { agent: Some(self.agent_to_pb(a)) }))
    }

    async fn delete_agent(&self, request: Request<pb::DeleteAgentRequest>) -> R<pb::DeleteAgentResponse> {
        let caller = caller(&request);
        self.inner.delete_agent(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteAgentResponse {}))
    }

    async fn retire_agent(&self, request: Request<pb::RetireAgentRequest>) -> R<pb::RetireAgentResponse> {
        let caller = caller(&request);
        let a = self.inner.retire_agent(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::RetireAgentResponse { agent: Some(self.agent_to_pb(a)) }))
    }

    async fn record_agent_identity(
        &self,
        request: Request<pb::RecordAgentIdentityRequest>,
    ) -> R<pb::RecordAgentIdentityResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let a =
            self.inner.record_agent_identity(&caller, &r.agent, &r.identity_serial, ts(r.identity_expire_time)).await?;
        Ok(Response::new(pb::RecordAgentIdentityResponse { agent: Some(self.agent_to_pb(a)) }))
    }

    async fn record_agent_sessions(
        &self,
        request: Request<pb::RecordAgentSessionsRequest>,
    ) -> R<pb::RecordAgentSessionsResponse> {
        let sessions = request.into_inner().sessions.into_iter().map(session_from_pb).collect();
        let refused_agents = self.inner.record_agent_sessions(sessions).await?;
        Ok(Response::new(pb::RecordAgentSessionsResponse { refused_agents }))
    }

    async fn create_join_token(&self, request: Request<pb::CreateJoinTokenRequest>) -> R<pb::CreateJoinTokenResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let (token, expire_time, ttl) = join_token_from_pb(required("join_token", r.join_token)?, r.join_token_id);
        let (token, secret) = self.inner.create_join_token(&caller, token, expire_time, ttl).await?;
        Ok(Response::new(pb::CreateJoinTokenResponse { join_token: Some(join_token_to_pb(token)), secret }))
    }

    async fn get_join_token(&self, request: Request<pb::GetJoinTokenRequest>) -> R<pb::GetJoinTokenResponse> {
        let t = self.inner.get_join_token(&request.into_inner().name).await?;
        Ok(Response::new(pb::GetJoinTokenResponse { join_token: Some(join_token_to_pb(t)) }))
    }

    async fn list_join_tokens(&self, request: Request<pb::ListJoinTokensRequest>) -> R<pb::ListJoinTokensResponse> {
        let r = request.into_inner();
        let page = self.inner.list_join_tokens(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListJoinTokensResponse {
            join_tokens: page.items.into_iter().map(join_token_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_join_token(&self, request: Request<pb::DeleteJoinTokenRequest>) -> R<pb::DeleteJoinTokenResponse> {
        let caller = caller(&request);
        self.inner.delete_join_token(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteJoinTokenResponse {}))
    }

    async fn redeem_join_token(&self, request: Request<pb::RedeemJoinTokenRequest>) -> R<pb::RedeemJoinTokenResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let enrolment = Enrolment { hostname: r.hostname, version: r.version, capabilities: r.capabilities };
        let a = self.inner.redeem_join_token(&caller, &r.secret, enrolment).await?;
        Ok(Response::new(pb::RedeemJoinTokenResponse { agent: Some(self.agent_to_pb(a)) }))
    }

    async fn list_deployments(&self, request: Request<pb::ListDeploymentsRequest>) -> R<pb::ListDeploymentsResponse> {
        let r = request.into_inner();
        let state = deployment_state_from_pb("state", r.state)?;
        let page = self.inner.list_deployments(&r.parent, &r.target, state, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListDeploymentsResponse {
            deployments: page.items.into_iter().map(deployment_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn record_deployments(
        &self,
        request: Request<pb::RecordDeploymentsRequest>,
    ) -> R<pb::RecordDeploymentsResponse> {
        let caller = caller(&request);
        let reports = request
            .into_inner()
            .deployments
            .into_iter()
            .enumerate()
            .map(|(i, d)| new_deployment_from_pb(i, d))
            .collect::<Result<Vec<_>, Status>>()?;
        let recorded = self.inner.record_deployments(&caller, reports).await?;
        Ok(Response::new(pb::RecordDeploymentsResponse {
            deployments: recorded.into_iter().map(deployment_to_pb).collect(),
        }))
    }

    async fn list_discovered_certificates(
        &self,
        request: Request<pb::ListDiscoveredCertificatesRequest>,
    ) -> R<pb::ListDiscoveredCertificatesResponse> {
        let r = request.into_inner();
        let state = discovery_state_from_pb(r.state)?;
        let page = self.inner.list_discovered_certificates(state, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListDiscoveredCertificatesResponse {
            discovered_certificates: page.items.into_iter().map(discovered_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_discovered_certificate(
        &self,
        request: Request<pb::GetDiscoveredCertificateRequest>,
    ) -> R<pb::GetDiscoveredCertificateResponse> {
        let d = self.inner.get_discovered_certificate(&request.into_inner().name).await?;
        Ok(Response::new(pb::GetDiscoveredCertificateResponse { discovered_certificate: Some(discovered_to_pb(d)) }))
    }

    async fn claim_discovered_certificate(
        &self,
        request: Request<pb::ClaimDiscoveredCertificateRequest>,
    ) -> R<pb::ClaimDiscoveredCertificateResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let d = self.inner.claim_discovered_certificate(&caller, &r.name, &r.certificate_id, &r.owner, &r.team).await?;
        Ok(Response::new(pb::ClaimDiscoveredCertificateResponse { discovered_certificate: Some(discovered_to_pb(d)) }))
    }

    async fn dismiss_discovered_certificate(
        &self,
        request: Request<pb::DismissDiscoveredCertificateRequest>,
    ) -> R<pb::DismissDiscoveredCertificateResponse> {
        let caller = caller(&request);
        let d = self.inner.dismiss_discovered_certificate(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DismissDiscoveredCertificateResponse {
            discovered_certificate: Some(discovered_to_pb(d)),
        }))
    }

    async fn report_discoveries(
        &self,
        request: Request<pb::ReportDiscoveriesRequest>,
    ) -> R<pb::ReportDiscoveriesResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let reports = r.reports.into_iter().map(report_from_pb).collect();
        let tally = self.inner.report_discoveries(&caller, &r.agent, reports).await?;
        Ok(Response::new(pb::ReportDiscoveriesResponse {
            new_count: i32::try_from(tally.new).unwrap_or(i32::MAX),
            known_count: i32::try_from(tally.known).unwrap_or(i32::MAX),
        }))
    }

    async fn get_renewal_policy(
        &self,
        request: Request<pb::GetRenewalPolicyRequest>,
    ) -> R<pb::GetRenewalPolicyResponse> {
        let p = self.inner.get_document(Collection::RenewalPolicies, &request.into_inner().name).await?;
        Ok(Response::new(pb::GetRenewalPolicyResponse { renewal_policy: Some(policy_to_pb(p)) }))
    }

    async fn list_renewal_policies(
        &self,
        request: Request<pb::ListRenewalPoliciesRequest>,
    ) -> R<pb::ListRenewalPoliciesResponse> {
        let r = request.into_inner();
        let page = self.inner.list_documents::<domain::RenewalPolicy>(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListRenewalPoliciesResponse {
            renewal_policies: page.items.into_iter().map(policy_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_renewal_policy(
        &self,
        request: Request<pb::CreateRenewalPolicyRequest>,
    ) -> R<pb::CreateRenewalPolicyResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let p = policy_from_pb(required("renewal_policy", r.renewal_policy)?, r.renewal_policy_id, true);
        let p = self.inner.create_renewal_policy(&caller, p).await?;
        Ok(Response::new(pb::CreateRenewalPolicyResponse { renewal_policy: Some(policy_to_pb(p)) }))
    }

    async fn update_renewal_policy(
        &self,
        request: Request<pb::UpdateRenewalPolicyRequest>,
    ) -> R<pb::UpdateRenewalPolicyResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let p = required("renewal_policy", r.renewal_policy)?;
        let id = id_of("renewal_policy.name", Collection::RenewalPolicies, &p.name)?;
        let p = self.inner.update_renewal_policy(&caller, policy_from_pb(p, id, false), &mask(r.update_mask)).await?;
        Ok(Response::new(pb::UpdateRenewalPolicyResponse { renewal_policy: Some(policy_to_pb(p)) }))
    }

    async fn delete_renewal_policy(
        &self,
        request: Request<pb::DeleteRenewalPolicyRequest>,
    ) -> R<pb::DeleteRenewalPolicyResponse> {
        let caller = caller(&request);
        self.inner.delete_renewal_policy(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeleteRenewalPolicyResponse {}))
    }

    async fn get_policy(&self, request: Request<pb::GetPolicyRequest>) -> R<pb::GetPolicyResponse> {
        let p = self.inner.get_document(Collection::Policies, &request.into_inner().name).await?;
        Ok(Response::new(pb::GetPolicyResponse { policy: Some(policies::policy_to_pb(p)) }))
    }

    async fn list_policies(&self, request: Request<pb::ListPoliciesRequest>) -> R<pb::ListPoliciesResponse> {
        let r = request.into_inner();
        let page = self.inner.list_documents::<certctl_domain::policy::Policy>(r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: page.items.into_iter().map(policies::policy_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_policy(&self, request: Request<pb::CreatePolicyRequest>) -> R<pb::CreatePolicyResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let p = policies::policy_from_pb(required("policy", r.policy)?, r.policy_id)?;
        let p = self.inner.create_policy(&caller, p).await?;
        Ok(Response::new(pb::CreatePolicyResponse { policy: Some(policies::policy_to_pb(p)) }))
    }

    async fn update_policy(&self, request: Request<pb::UpdatePolicyRequest>) -> R<pb::UpdatePolicyResponse> {
        let caller = caller(&request);
        let r = request.into_inner();
        let p = required("policy", r.policy)?;
        let id = id_of("policy.name", Collection::Policies, &p.name)?;
        let p = self.inner.update_policy(&caller, policies::policy_from_pb(p, id)?, &mask(r.update_mask)).await?;
        Ok(Response::new(pb::UpdatePolicyResponse { policy: Some(policies::policy_to_pb(p)) }))
    }

    async fn delete_policy(&self, request: Request<pb::DeletePolicyRequest>) -> R<pb::DeletePolicyResponse> {
        let caller = caller(&request);
        self.inner.delete_policy(&caller, &request.into_inner().name).await?;
        Ok(Response::new(pb::DeletePolicyResponse {}))
    }

    async fn evaluate_policy(&self, request: Request<pb::EvaluatePolicyRequest>) -> R<pb::EvaluatePolicyResponse> {
        let evaluation = evaluation_from_pb(request.into_inner())?;
        let violations = self.inner.evaluate_policy(evaluation).await?;
        let blocked = violations.iter().any(|v| v.violation.severity.blocks_issuance());
        Ok(Response::new(pb::EvaluatePolicyResponse {
            violations: violations.into_iter().map(violation_to_pb).collect(),
            blocked,
        }))
    }

    async fn list_policy_violations(
        &self,
        request: Request<pb::ListPolicyViolationsRequest>,
    ) -> R<pb::ListPolicyViolationsResponse> {
        let r = request.into_inner();
        let filter = ViolationFilter {
            policy: r.policy,
            severity: severity_from_pb("severity", r.severity)?,
            certificate: r.certificate,
        };
        let page = self.inner.list_policy_violations(&filter, r.page_size, &r.page_token).await?;
        Ok(Response::new(violation_page_to_pb(page)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_config_case_round_trips_and_names_its_mask_path() {
        use pb::target::Config;
        let web = pb::WebServerTargetConfig {
            certificate_path: "/etc/tls/mail.pem".into(),
            verify_port: 25,
            validate_command: "postfix check".into(),
            ..Default::default()
        };
        let file = pb::FileTargetConfig { directory: "/srv/tls".into(), ..Default::default() };
        let cases = [
            Config::File(file),
            Config::Nginx(web.clone()),
            Config::Apache(web.clone()),
            Config::Haproxy(web.clone()),
            Config::Caddy(web.clone()),
            Config::Lighttpd(web.clone()),
            Config::Postfix(web.clone()),
            Config::Dovecot(web),
        ];
        assert_eq!(cases.len(), CONFIG_CASES.len());
        for (config, mask_path) in cases.into_iter().zip(CONFIG_CASES) {
            let domain = target_config_from_pb(Some(config.clone())).unwrap();
            assert_eq!(domain.type_name(), *mask_path);
            let target = domain::Target {
                id: "t".into(),
                display_name: String::new(),
                agent: String::new(),
                labels: Default::default(),
                config: domain,
                create_time: 0,
                update_time: 0,
            };
            assert_eq!(target_to_pb(target).config, Some(config));
        }
        let none = target_config_from_pb(None).unwrap_err();
        assert!(none.message().contains("postfix, dovecot"), "{none:?}");
    }
}
