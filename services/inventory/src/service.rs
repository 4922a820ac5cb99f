//! The inventory's rules over its store, in domain types only.

mod agents;
mod deployments;
mod discovery;
mod policies;

pub use discovery::DiscoveryReport;
pub use policies::{CertificateViolation, Evaluation, SCAN_BUDGET, ViolationFilter, ViolationPage};

use std::sync::Arc;

use certctl_common::StoreError;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::{
    Agent, Certificate, CertificateState, CertificateVersion, DAY, KeyAlgorithm, Owner, ParsedCertificate,
    RenewalPolicy, Revocation, Target, Team,
};
use certctl_domain::name::{self, Collection};
use certctl_domain::page;
use certctl_domain::policy::Policy;
use certctl_domain::{DomainError, UnixTime};
use tokio::sync::Notify;

use crate::store::{
    CertificateOrder, CertificateQuery, Cursor, Document, ReferenceColumn, RevocationRecord, Store, Summary, Table,
};

/// Who is calling and under which request id; recorded in every audit event.
pub use certctl_common::caller::Caller;

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<InventoryError> for tonic::Status {
    fn from(err: InventoryError) -> Self {
        match err {
            InventoryError::Domain(e) => certctl_common::status_from_domain(e),
            InventoryError::Store(e) => e.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, InventoryError>;

/// A page of results and the token for the next one (empty at the end).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// Filters of a certificate listing, as the caller gave them.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    pub owner: String,
    pub team: String,
    pub state: Option<CertificateState>,
    pub issuer: String,
    pub environment: String,
    pub expire_before: Option<UnixTime>,
    pub renew_before: Option<UnixTime>,
    pub search: String,
    /// The BASIC view: see `CertificateQuery::basic`.
    pub basic: bool,
    pub order_by: String,
}

/// The outcome of importing one PEM bundle.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub source: String,
    pub result: std::result::Result<String, String>,
}

pub struct ImportItem {
    pub pem_chain: String,
    pub certificate_id: String,
    pub owner: String,
    pub team: String,
    pub environment: String,
    pub source: String,
}

pub const MAX_IMPORT_ITEMS: usize = 1000;

/// Every document type is stored the same way, keyed by its id.
macro_rules! document {
    ($($type:ty => $table:ident),* $(,)?) => {$(
        impl Document for $type {
            const TABLE: Table = Table::$table;
            fn id(&self) -> &str {
                &self.id
            }
            fn create_time(&self) -> UnixTime {
                self.create_time
            }
            fn update_time(&self) -> UnixTime {
                self.update_time
            }
        }
    )*};
}

document!(
    Owner => Owners,
    Team => Teams,
    Target => Targets,
    Agent => Agents,
    RenewalPolicy => RenewalPolicies,
    Policy => Policies,
);

/// The inventory service's core.
pub struct Inventory<S> {
    store: Arc<S>,
    outbox_wake: Arc<Notify>,
    clock: Arc<dyn Fn() -> UnixTime + Send + Sync>,
}

impl<S> Clone for Inventory<S> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), outbox_wake: self.outbox_wake.clone(), clock: self.clock.clone() }
    }
}

fn rfc3339(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{t} (Unix time)"))
}

fn micros_now() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

impl<S: Store> Inventory<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store, outbox_wake: Arc::new(Notify::new()), clock: Arc::new(certctl_domain::now) }
    }

    /// Replaces the clock (tests drive time through it).
    pub fn with_clock(mut self, clock: impl Fn() -> UnixTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Woken after every committed mutation so the relay forwards it promptly.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    fn now(&self) -> UnixTime {
        (self.clock)()
    }

    fn event(&self, caller: &Caller, action: &str, resource: &str, details: serde_json::Value) -> NewAuditEvent {
        NewAuditEvent {
            actor: if caller.actor.is_empty() { "anonymous".into() } else { caller.actor.clone() },
            action: format!("inventory.{action}"),
            resource: resource.to_owned(),
            event_time_micros: micros_now(),
            request_id: caller.request_id.clone(),
            details,
            source: "inventory".into(),
            // Random rather than the outbox row id: a database restored from a
            // backup reuses row ids, and audit would drop the new events as
            // duplicates of old ones.
            source_id: format!("{:032x}", rand::random::<u128>()),
        }
    }

    fn committed(&self) {
        self.outbox_wake.notify_one();
    }

    async fn require<D: Document>(&self, field: &str, collection: Collection, reference: &str) -> Result<()> {
        if reference.is_empty() {
            return Ok(());
        }
        let id = name::parse(field, collection, reference)?;
        match self.store.get_document::<D>(id).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => {
                Err(DomainError::invalid(field, format!("{reference} does not exist; create it first")).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A target's agent must exist, not be retired, and support its type.
    async fn check_target_agent(&self, target: &Target) -> Result<()> {
        if target.agent.is_empty() {
            return Ok(());
        }
        let id = name::parse("target.agent", Collection::Agents, &target.agent)?;
        let agent = match self.store.get_agent(id).await {
            Ok(agent) => agent,
            Err(StoreError::NotFound { .. }) => {
                return Err(DomainError::invalid(
                    "target.agent",
                    format!("{} does not exist; enrol it first", target.agent),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        match agent.target_refusal(target.config.type_name()) {
            Some(refusal) => Err(DomainError::FailedPrecondition(refusal).into()),
            None => Ok(()),
        }
    }

    async fn check_certificate_references(&self, c: &Certificate) -> Result<()> {
        self.require::<Owner>("certificate.owner", Collection::Owners, &c.owner).await?;
        self.require::<Team>("certificate.team", Collection::Teams, &c.team).await?;
        self.require::<RenewalPolicy>("certificate.renewal_policy", Collection::RenewalPolicies, &c.renewal_policy)
            .await?;
        for (i, t) in c.targets.iter().enumerate() {
            self.require::<Target>(&format!("certificate.targets[{i}]"), Collection::Targets, t).await?;
        }
        Ok(())
    }

    // ---- certificates -------------------------------------------------------

    pub async fn create_certificate(
        &self,
        caller: &Caller,
        mut certificate: Certificate,
        request_id: &str,
    ) -> Result<Certificate> {
        certificate.validate()?;
        if request_id.len() > 128 {
            return Err(DomainError::invalid("request_id", "at most 128 characters").into());
        }
        self.check_certificate_references(&certificate).await?;
        let now = self.now();
        certificate.current = None;
        certificate.revoked = false;
        // The store sets the alert lead and renewal time from the policy in
        // its transaction.
        certificate.create_time = now;
        certificate.update_time = now;
        let event = self.event(
            caller,
            "CreateCertificate",
            &certificate.name(),
            serde_json::json!({
                "common_name": certificate.common_name,
                "owner": certificate.owner,
                "server_keyed": certificate.server_keyed,
                "key_algorithm": certificate.key_algorithm.map(KeyAlgorithm::as_str),
            }),
        );
        let request_id = (!request_id.is_empty()).then_some(request_id);
        let created = self.store.create_certificate(&certificate, request_id, event).await?;
        self.committed();
        Ok(created)
    }

    pub async fn get_certificate(&self, name: &str) -> Result<Certificate> {
        let id = name::parse("name", Collection::Certificates, name)?;
        Ok(self.store.get_certificate(id).await?)
    }

    pub async fn update_certificate(
        &self,
        caller: &Caller,
        patch: Certificate,
        mask: &[String],
    ) -> Result<Certificate> {
        let mut current = self.store.get_certificate(&patch.id).await?;
        current.apply_update(patch, mask)?;
        self.check_certificate_references(&current).await?;
        current.update_time = self.now();
        // Key custody is recorded as it stands after every update, whatever
        // the mask: who holds a key matters when reading the trail later.
        let event = self.event(
            caller,
            "UpdateCertificate",
            &current.name(),
            serde_json::json!({
                "update_mask": mask,
                "server_keyed": current.server_keyed,
                "key_algorithm": current.key_algorithm.map(KeyAlgorithm::as_str),
            }),
        );
        let updated = self.store.update_certificate(&current, event).await?;
        self.committed();
        Ok(updated)
    }

    pub async fn delete_certificate(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Certificates, name)?;
        let event = self.event(caller, "DeleteCertificate", name, serde_json::Value::Null);
        self.store.delete_certificate(id, event).await?;
        self.committed();
        Ok(())
    }

    pub async fn list_certificates(
        &self,
        filter: &CertificateFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Certificate>> {
        let limit = page::page_size(page_size)?;
        name::parse_optional("owner", Collection::Owners, &filter.owner)?;
        name::parse_optional("team", Collection::Teams, &filter.team)?;
        name::parse_optional("issuer", Collection::Issuers, &filter.issuer)?;
        if filter.search.len() > 253 {
            return Err(DomainError::invalid("search", "at most 253 characters").into());
        }
        for (field, value) in [("search", &filter.search), ("environment", &filter.environment)] {
            if value.chars().any(char::is_control) {
                return Err(DomainError::invalid(field, "must not contain control characters").into());
            }
        }
        let order = match filter.order_by.trim() {
            "" | "not_after" | "not_after asc" => CertificateOrder::NotAfter { descending: false },
            "not_after desc" => CertificateOrder::NotAfter { descending: true },
            "name" | "name asc" => CertificateOrder::Name { descending: false },
            "name desc" => CertificateOrder::Name { descending: true },
            "create_time" | "create_time asc" => CertificateOrder::CreateTime { descending: false },
            "create_time desc" => CertificateOrder::CreateTime { descending: true },
            "renew_time" | "renew_time asc" => CertificateOrder::RenewTime,
            other => {
                return Err(DomainError::invalid(
                    "order_by",
                    format!(
                        "`{other}` is not supported; use not_after, name or create_time, optionally followed by \
                         desc, or renew_time"
                    ),
                )
                .into());
            }
        };
        let now = self.now();
        let fingerprint = page::query_fingerprint(&[
            &filter.owner,
            &filter.team,
            &format!("{:?}", filter.state),
            &filter.issuer,
            &filter.environment,
            &format!("{:?}", filter.expire_before),
            &format!("{:?}", filter.renew_before),
            &format!("{:?}", filter.basic),
            &filter.search.to_lowercase(),
            &format!("{order:?}"),
        ]);
        let after = match page::decode_token(page_token, &fingerprint)? {
            Some(v) => Some(
                serde_json::from_value::<Cursor>(v)
                    .map_err(|_| DomainError::invalid("page_token", "not a page token issued by this server"))?,
            ),
            None => None,
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let query = CertificateQuery {
            owner: opt(&filter.owner),
            team: opt(&filter.team),
            state: filter.state,
            issuer: opt(&filter.issuer),
            environment: opt(&filter.environment),
            expire_before: filter.expire_before,
            renew_before: filter.renew_before,
            search: opt(&filter.search.to_lowercase()),
            order,
            basic: filter.basic,
            after,
            limit: limit + 1,
            now,
        };
        let mut items = self.store.list_certificates(&query).await?;
        let next_page_token = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            let last = items.last().expect("limit is at least 1");
            let key = match order {
                CertificateOrder::NotAfter { .. } => {
                    last.current.as_ref().map_or(crate::store::PENDING_EXPIRY_KEY, |c| c.not_after)
                }
                CertificateOrder::Name { .. } => 0,
                CertificateOrder::CreateTime { .. } => last.create_time,
                CertificateOrder::RenewTime => last.renew_time.unwrap_or_default(),
            };
            page::encode_token(&fingerprint, serde_json::to_value(Cursor { key, id: last.id.clone() }).expect("cursor"))
        } else {
            String::new()
        };
        Ok(Page { items, next_page_token })
    }

    pub async fn summarize(&self) -> Result<Summary> {
        Ok(self.store.summarize(self.now()).await?)
    }

    pub fn state_of(&self, certificate: &Certificate) -> CertificateState {
        certificate.state(self.now())
    }

    // ---- versions -----------------------------------------------------------

    pub async fn create_version(&self, caller: &Caller, parent: &str, pem_chain: &str) -> Result<CertificateVersion> {
        let id = name::parse("parent", Collection::Certificates, parent)?.to_owned();
        let chain =
            certctl_pki::parse_pem_chain(pem_chain).map_err(|e| DomainError::invalid("pem_chain", e.to_string()))?;
        self.add_parsed_version(caller, &id, chain, "").await
    }

    async fn add_parsed_version(
        &self,
        caller: &Caller,
        id: &str,
        chain: certctl_pki::parse::ParsedChain,
        source: &str,
    ) -> Result<CertificateVersion> {
        let existing = self.store.get_certificate(id).await?;
        if existing.current.as_ref().is_some_and(|c| c.sha256_fingerprint == chain.leaf.sha256_fingerprint) {
            return Err(DomainError::AlreadyExists {
                resource: format!("a version of certificates/{id} with fingerprint {}", chain.leaf.sha256_fingerprint),
            }
            .into());
        }
        let now = self.now();
        let leaf = chain.leaf.clone();
        let this = self.clone();
        let caller = caller.clone();
        let source = source.to_owned();
        let version = self
            .store
            .add_version(id, &chain.pem, &chain.leaf, now, move |v| {
                this.event(
                    &caller,
                    "CreateCertificateVersion",
                    &name::version_name(&existing.id, v),
                    serde_json::json!({
                        "serial_number": leaf.serial_number,
                        "sha256_fingerprint": leaf.sha256_fingerprint,
                        "not_after": leaf.not_after,
                        "source": source,
                    }),
                )
            })
            .await?;
        self.committed();
        Ok(version)
    }

    /// Records that the CA revoked the version `name`. The same revocation
    /// again is a no-op; a different one for a revoked version is refused.
    pub async fn record_revocation(
        &self,
        caller: &Caller,
        name: &str,
        reason: &str,
        revoke_time: Option<UnixTime>,
    ) -> Result<Certificate> {
        let (id, version) = name::parse_version("name", name)?;
        let revocation = Revocation::new(revoke_time, reason)?;
        let event = self.event(
            caller,
            "RecordRevocation",
            name,
            serde_json::json!({"reason": revocation.reason, "revoke_time": revocation.revoke_time}),
        );
        match self.store.record_revocation(&id, version, &revocation, self.now(), event).await? {
            RevocationRecord::Recorded(certificate) => {
                self.committed();
                Ok(certificate)
            }
            RevocationRecord::AlreadyRevoked { existing, certificate } if existing == revocation => Ok(certificate),
            RevocationRecord::AlreadyRevoked { existing, .. } => Err(DomainError::FailedPrecondition(format!(
                "{name} was already revoked at {} ({}); a revocation is recorded once",
                rfc3339(existing.revoke_time),
                existing.reason
            ))
            .into()),
        }
    }

    pub async fn get_version(&self, name: &str) -> Result<CertificateVersion> {
        let (id, version) = name::parse_version("name", name)?;
        Ok(self.store.get_version(&id, version).await?)
    }

    pub async fn list_versions(
        &self,
        parent: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<CertificateVersion>> {
        let id = name::parse("parent", Collection::Certificates, parent)?;
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["versions", id]);
        let before = page::decode_token(page_token, &fingerprint)?
            .map(|v| {
                v.as_i64().ok_or_else(|| DomainError::invalid("page_token", "not a page token issued by this server"))
            })
            .transpose()?;
        // A listing of an unknown certificate is NOT_FOUND, not an empty page.
        self.store.get_certificate(id).await?;
        let mut items = self.store.list_versions(id, before, limit + 1).await?;
        let next_page_token = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            page::encode_token(&fingerprint, serde_json::json!(items.last().expect("non-empty").version))
        } else {
            String::new()
        };
        Ok(Page { items, next_page_token })
    }

    /// Imports each item on its own: one bad PEM never blocks the rest.
    pub async fn import(&self, caller: &Caller, items: Vec<ImportItem>) -> Result<Vec<ImportOutcome>> {
        if items.is_empty() {
            return Err(DomainError::invalid("items", "nothing to import").into());
        }
        if items.len() > MAX_IMPORT_ITEMS {
            return Err(DomainError::invalid("items", format!("at most {MAX_IMPORT_ITEMS} items per request")).into());
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let source = if item.source.is_empty() { format!("items[{i}]") } else { item.source.clone() };
            let result = self.import_one(caller, item, &source).await.map_err(|e| match e {
                InventoryError::Store(StoreError::Unavailable(_) | StoreError::Internal(_)) => {
                    "storage error; see the server log".to_owned()
                }
                other => other.to_string(),
            });
            outcomes.push(ImportOutcome { source, result });
        }
        Ok(outcomes)
    }

    async fn import_one(&self, caller: &Caller, item: ImportItem, source: &str) -> Result<String> {
        let chain = certctl_pki::parse_pem_chain(&item.pem_chain)
            .map_err(|e| DomainError::invalid("pem_chain", e.to_string()))?;
        let leaf = &chain.leaf;
        let id =
            if item.certificate_id.is_empty() { derived_certificate_id(leaf) } else { item.certificate_id.clone() };
        name::validate_id("certificate_id", &id)?;
        match self.store.get_certificate(&id).await {
            Ok(_) => {}
            Err(StoreError::NotFound { .. }) => {
                let certificate = Certificate {
                    id: id.clone(),
                    display_name: leaf.common_name.clone(),
                    common_name: if leaf.common_name.is_empty()
                        || certctl_domain::inventory::validate_dns_name("", &leaf.common_name).is_err()
                    {
                        String::new()
                    } else {
                        leaf.common_name.clone()
                    },
                    subject_alt_names: leaf
                        .subject_alt_names
                        .iter()
                        .filter(|s| certctl_domain::inventory::validate_san("", s).is_ok())
                        .cloned()
                        .collect(),
                    owner: item.owner.clone(),
                    team: item.team.clone(),
                    environment: item.environment.clone(),
                    metadata: [("imported_from".to_owned(), source.to_owned())].into_iter().collect(),
                    ..Default::default()
                };
                self.create_certificate(caller, certificate, "").await?;
            }
            Err(e) => return Err(e.into()),
        }
        let version = self.add_parsed_version(caller, &id, chain, source).await?;
        Ok(version.name())
    }

    // ---- documents (owners, teams, targets, agents, renewal policies) -------

    pub async fn create_owner(&self, caller: &Caller, mut owner: Owner) -> Result<Owner> {
        owner.validate()?;
        self.require::<Team>("owner.team", Collection::Teams, &owner.team).await?;
        owner.create_time = self.now();
        owner.update_time = owner.create_time;
        self.create_doc(caller, "CreateOwner", Collection::Owners, &owner).await?;
        Ok(owner)
    }

    pub async fn update_owner(&self, caller: &Caller, patch: Owner, mask: &[String]) -> Result<Owner> {
        let mut current: Owner = self.store.get_document(&patch.id).await?;
        current.apply_update(patch, mask)?;
        self.require::<Team>("owner.team", Collection::Teams, &current.team).await?;
        current.update_time = self.now();
        self.update_doc(caller, "UpdateOwner", Collection::Owners, &current, mask).await?;
        Ok(current)
    }

    pub async fn delete_owner(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Owners, name)?;
        if self.store.certificate_references(ReferenceColumn::Owner, name).await? {
            return Err(DomainError::FailedPrecondition(format!(
                "{name} still owns certificates; move them to another owner first"
            ))
            .into());
        }
        self.delete_doc::<Owner>(caller, "DeleteOwner", name, id).await
    }

    pub async fn create_team(&self, caller: &Caller, mut team: Team) -> Result<Team> {
        team.validate()?;
        team.create_time = self.now();
        team.update_time = team.create_time;
        self.create_doc(caller, "CreateTeam", Collection::Teams, &team).await?;
        Ok(team)
    }

    pub async fn update_team(&self, caller: &Caller, patch: Team, mask: &[String]) -> Result<Team> {
        let mut current: Team = self.store.get_document(&patch.id).await?;
        current.apply_update(patch, mask)?;
        current.update_time = self.now();
        self.update_doc(caller, "UpdateTeam", Collection::Teams, &current, mask).await?;
        Ok(current)
    }

    pub async fn delete_team(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Teams, name)?;
        if self.store.certificate_references(ReferenceColumn::Team, name).await? {
            return Err(DomainError::FailedPrecondition(format!(
                "{name} still has certificates; move them to another team first"
            ))
            .into());
        }
        if self.any_document::<Owner>(|o| o.team == name).await? {
            return Err(DomainError::FailedPrecondition(format!(
                "{name} still has owners; move them to another team first"
            ))
            .into());
        }
        self.delete_doc::<Team>(caller, "DeleteTeam", name, id).await
    }

    pub async fn create_target(&self, caller: &Caller, mut target: Target) -> Result<Target> {
        target.validate()?;
        self.check_target_agent(&target).await?;
        target.create_time = self.now();
        target.update_time = target.create_time;
        self.create_doc(caller, "CreateTarget", Collection::Targets, &target).await?;
        Ok(target)
    }

    pub async fn update_target(&self, caller: &Caller, patch: Target, mask: &[String]) -> Result<Target> {
        let mut current: Target = self.store.get_document(&patch.id).await?;
        current.apply_update(patch, mask)?;
        self.check_target_agent(&current).await?;
        current.update_time = self.now();
        self.update_doc(caller, "UpdateTarget", Collection::Targets, &current, mask).await?;
        Ok(current)
    }

    pub async fn delete_target(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Targets, name)?;
        if self.store.certificate_references(ReferenceColumn::Target, name).await? {
            return Err(DomainError::FailedPrecondition(format!(
                "certificates are still deployed to {name}; remove it from their targets first"
            ))
            .into());
        }
        self.delete_doc::<Target>(caller, "DeleteTarget", name, id).await
    }

    pub async fn create_agent(&self, caller: &Caller, mut agent: Agent) -> Result<Agent> {
        agent.validate()?;
        agent.create_time = self.now();
        agent.update_time = agent.create_time;
        self.create_doc(caller, "CreateAgent", Collection::Agents, &agent).await?;
        Ok(agent)
    }

    pub async fn update_agent(&self, caller: &Caller, patch: Agent, mask: &[String]) -> Result<Agent> {
        // With its session state, which the update leaves alone.
        let mut current = self.store.get_agent(&patch.id).await?;
        current.apply_update(patch, mask)?;
        current.update_time = self.now();
        self.update_doc(caller, "UpdateAgent", Collection::Agents, &current, mask).await?;
        Ok(current)
    }

    pub async fn delete_agent(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Agents, name)?;
        if self.any_document::<Target>(|t| t.agent == name).await? {
            return Err(DomainError::FailedPrecondition(format!(
                "{name} still deploys to targets; move or delete them first"
            ))
            .into());
        }
        self.delete_doc::<Agent>(caller, "DeleteAgent", name, id).await
    }

    pub async fn create_renewal_policy(&self, caller: &Caller, mut policy: RenewalPolicy) -> Result<RenewalPolicy> {
        policy.normalize();
        policy.validate()?;
        policy.create_time = self.now();
        policy.update_time = policy.create_time;
        self.create_doc(caller, "CreateRenewalPolicy", Collection::RenewalPolicies, &policy).await?;
        Ok(policy)
    }

    pub async fn update_renewal_policy(
        &self,
        caller: &Caller,
        patch: RenewalPolicy,
        mask: &[String],
    ) -> Result<RenewalPolicy> {
        let mut current: RenewalPolicy = self.store.get_document(&patch.id).await?;
        current.apply_update(patch, mask)?;
        current.update_time = self.now();
        let name = Collection::RenewalPolicies.name(&current.id);
        let event = self.event(caller, "UpdateRenewalPolicy", &name, serde_json::json!({"update_mask": mask}));
        // The policy and its certificates' alert leads and renewal times move together.
        self.store.update_renewal_policy(&current, event).await?;
        self.committed();
        Ok(current)
    }

    pub async fn delete_renewal_policy(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::RenewalPolicies, name)?;
        if self.store.certificate_references(ReferenceColumn::RenewalPolicy, name).await? {
            return Err(DomainError::FailedPrecondition(format!(
                "{name} is still used by certificates; move them to another policy first"
            ))
            .into());
        }
        self.delete_doc::<RenewalPolicy>(caller, "DeleteRenewalPolicy", name, id).await
    }

    pub async fn get_document<D: Document>(&self, collection: Collection, name: &str) -> Result<D> {
        let id = name::parse("name", collection, name)?;
        Ok(self.store.get_document(id).await?)
    }

    pub async fn list_documents<D: Document>(&self, page_size: i32, page_token: &str) -> Result<Page<D>> {
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&[D::TABLE.as_str()]);
        let after = page::decode_token(page_token, &fingerprint)?
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| DomainError::invalid("page_token", "not a page token issued by this server"))
            })
            .transpose()?;
        let mut items: Vec<D> = self.store.list_documents(after.as_deref(), limit + 1).await?;
        let next_page_token = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            page::encode_token(&fingerprint, serde_json::json!(items.last().expect("non-empty").id()))
        } else {
            String::new()
        };
        Ok(Page { items, next_page_token })
    }

    /// True when some document of type `D` matches; for the small document
    /// tables whose references live inside the JSON body.
    async fn any_document<D: Document>(&self, matches: impl Fn(&D) -> bool) -> Result<bool> {
        const BATCH: i64 = 500;
        let mut after: Option<String> = None;
        loop {
            let batch: Vec<D> = self.store.list_documents(after.as_deref(), BATCH).await?;
            if batch.iter().any(&matches) {
                return Ok(true);
            }
            match batch.last() {
                Some(last) if batch.len() as i64 == BATCH => after = Some(last.id().to_owned()),
                _ => return Ok(false),
            }
        }
    }

    async fn create_doc<D: Document>(&self, caller: &Caller, action: &str, c: Collection, doc: &D) -> Result<()> {
        let event = self.event(caller, action, &c.name(doc.id()), serde_json::Value::Null);
        self.store.create_document(doc, event).await?;
        self.committed();
        Ok(())
    }

    async fn update_doc<D: Document>(
        &self,
        caller: &Caller,
        action: &str,
        c: Collection,
        doc: &D,
        mask: &[String],
    ) -> Result<()> {
        let event = self.event(caller, action, &c.name(doc.id()), serde_json::json!({"update_mask": mask}));
        self.store.update_document(doc, event).await?;
        self.committed();
        Ok(())
    }

    async fn delete_doc<D: Document>(&self, caller: &Caller, action: &str, name: &str, id: &str) -> Result<()> {
        let event = self.event(caller, action, name, serde_json::Value::Null);
        self.store.delete_document::<D>(id, event).await?;
        self.committed();
        Ok(())
    }
}

/// The id an imported certificate gets when the caller names none: from
/// its common name, else its first SAN, else its fingerprint.
fn derived_certificate_id(leaf: &ParsedCertificate) -> String {
    let basis = if leaf.common_name.is_empty() {
        leaf.subject_alt_names.first().cloned().unwrap_or_else(|| leaf.sha256_fingerprint[..16].to_owned())
    } else {
        leaf.common_name.clone()
    };
    name::id_from_common_name(&basis)
}

/// The alert lead of the built-in default policy.
pub const DEFAULT_ALERT_LEAD_SECS: i64 = 30 * DAY;
