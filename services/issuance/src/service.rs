//! The issuance core: issuers, profiles, signing, server-side keys and
//! revocation, over domain types. `grpc.rs` converts to and from protobuf;
//! `revocation.rs` holds CRLs and OCSP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use certctl_common::StoreError;
use certctl_common::caller::Caller;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::KeyAlgorithm;
use certctl_domain::issuance::{Profile, RevocationReason};
use certctl_domain::name::{self, Collection};
use certctl_domain::{DomainError, UnixTime, page};
use certctl_pki::KeyType;
use tokio::sync::Notify;

use crate::batch::IssuedWriter;
use crate::inventory::{Inventory, InventoryError, PolicyCheck, PolicyViolation};
use crate::issuers::local_ca::{self, HierarchySpec};
use crate::issuers::{self, IssueError, Issuer, IssuerContext, LeafRequest};
use crate::store::{AuthorityRecord, IssuedRecord, IssuerRecord, Revocation, Store};

pub const SOURCE: &str = "issuance";
/// The issuer every installation starts with.
pub const DEFAULT_ISSUER: &str = "local";
/// The CA of the platform's own identities: agents' client certificates
/// and the agent hub's server certificate. Created at first start.
pub const PLATFORM_ISSUER: &str = "platform";
pub const DEFAULT_PROFILE: &str = "tls-server";
/// How long a signing request trusts a profile it read: changes made through
/// another replica take effect within this time (through this one, at once).
const PROFILE_CACHE_TTL: Duration = Duration::from_secs(5);

/// A profile and when it was read.
type CachedProfile = (Instant, Arc<Profile>);

#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Misconfigured(String),
}

impl From<IssueError> for IssuanceError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Refused(m) => DomainError::FailedPrecondition(m).into(),
            IssueError::Misconfigured(m) => Self::Misconfigured(m),
            IssueError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

impl From<InventoryError> for IssuanceError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::NotFound(m) => DomainError::NotFound { resource: m }.into(),
            InventoryError::Refused(m) => DomainError::FailedPrecondition(m).into(),
            InventoryError::Unavailable(m) => Self::Unavailable(m),
            InventoryError::AlreadyRecorded => Self::Unavailable("the inventory answered out of turn".to_owned()),
        }
    }
}

pub type Result<T, E = IssuanceError> = std::result::Result<T, E>;

/// How to set up a Local CA issuer.
#[derive(Debug, Clone)]
pub enum LocalCaSource {
    Generate(HierarchySpec),
    Import { chain_pem: String, private_key_pem: String },
}

/// What `sign` is asked.
#[derive(Debug, Clone, Default)]
pub struct SignInput {
    pub issuer: String,
    pub profile: String,
    pub csr_pem: String,
    pub lifetime_secs: Option<i64>,
    pub certificate: String,
    pub request_id: String,
}

/// Settings of the issuance service.
#[derive(Debug, Clone)]
pub struct IssuanceConfig {
    pub context: IssuerContext,
    /// How long a CRL is valid; it is re-signed at half that age.
    pub crl_lifetime_secs: i64,
}

#[derive(Clone)]
pub struct Issuance {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) inventory: Inventory,
    pub(crate) config: IssuanceConfig,
    issuers: Arc<RwLock<HashMap<String, Arc<dyn Issuer>>>>,
    profiles: Arc<RwLock<HashMap<String, CachedProfile>>>,
    /// Records signed certificates in group commits (`batch.rs`).
    writer: IssuedWriter,
    pub(crate) outbox_wake: Arc<Notify>,
    pub(crate) sync_wake: Arc<Notify>,
    pub(crate) clock: Arc<dyn Fn() -> UnixTime + Send + Sync>,
}

impl Issuance {
    /// Must be called inside a Tokio runtime: it starts the task that
    /// records signed certificates, which ends when the last clone is dropped.
    pub fn new(store: Arc<dyn Store>, inventory: Inventory, config: IssuanceConfig) -> Self {
        let outbox_wake = Arc::new(Notify::new());
        let (writer, task) = IssuedWriter::new(store.clone(), outbox_wake.clone(), crate::batch::MAX_BATCH);
        tokio::spawn(task.run());
        Self {
            store,
            inventory,
            config,
            issuers: Arc::default(),
            profiles: Arc::default(),
            writer,
            outbox_wake,
            sync_wake: Arc::new(Notify::new()),
            clock: Arc::new(certctl_domain::now),
        }
    }

    /// Replaces the clock (tests drive time with it).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> UnixTime + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> UnixTime {
        (self.clock)()
    }

    pub fn outbox_wake(&self) -> Arc<Notify> {
        self.outbox_wake.clone()
    }

    /// The group-commit writer's counters.
    pub fn writer_stats(&self) -> &crate::batch::WriterStats {
        self.writer.stats()
    }

    pub(crate) fn event(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        details: serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            actor: if caller.actor.is_empty() { "system".to_owned() } else { caller.actor.clone() },
            action: action.to_owned(),
            resource: resource.to_owned(),
            event_time_micros: self.now() * 1_000_000,
            request_id: caller.request_id.clone(),
            details,
            source: SOURCE.to_owned(),
            source_id: format!("{:032x}", rand::random::<u128>()),
        }
    }

    pub(crate) fn wrote(&self) {
        self.outbox_wake.notify_one();
    }

    /// Checks the master key against the database, seeds the built-in
    /// profiles and creates the default Local CA on a fresh installation.
    /// Refuses to go on with a wrong master key: nothing is overwritten.
    pub async fn start(&self) -> Result<()> {
        let key = &self.config.context.master_key;
        let canary = key.seal("issuance/master-key-check", b"certctl");
        let (stored_id, stored_canary) = self.store.master_key_check(key.id(), &canary).await?;
        if stored_id != key.id() || key.open("issuance/master-key-check", &stored_canary).is_err() {
            return Err(IssuanceError::Misconfigured(format!(
                "the configured master key ({}) is not the one this issuance database was created with ({stored_id}); \
                 refusing to start so that no CA key is lost or replaced. Start with the original master key.",
                key.id()
            )));
        }
        self.store.ensure_profiles(&Profile::built_in(self.now())).await?;
        if self.store.list_issuers(None, 1).await?.is_empty() {
            self.create_built_in(DEFAULT_ISSUER, "certctl Local", "Local CA").await?;
        }
        if let Err(StoreError::NotFound { .. }) = self.store.get_issuer(PLATFORM_ISSUER).await {
            self.create_built_in(PLATFORM_ISSUER, "certctl Platform", "certctl platform identities (agents, hubs)")
                .await?;
        }
        Ok(())
    }

    async fn create_built_in(&self, id: &str, common_name: &str, display_name: &str) -> Result<()> {
        let spec = HierarchySpec {
            common_name: common_name.to_owned(),
            organization: "certctl".to_owned(),
            key_type: KeyType::EcdsaP256,
            root_lifetime_secs: 10 * 365 * certctl_domain::issuance::DAY,
        };
        let system = Caller { actor: "system".to_owned(), request_id: String::new() };
        match self.create_issuer(&system, id, display_name, LocalCaSource::Generate(spec)).await {
            Ok(_) => tracing::info!("created the Local CA issuers/{id} (root and intermediate)"),
            // Another replica created it first.
            Err(IssuanceError::Store(StoreError::AlreadyExists { .. })) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    pub async fn create_issuer(
        &self,
        caller: &Caller,
        id: &str,
        display_name: &str,
        source: LocalCaSource,
    ) -> Result<IssuerRecord> {
        name::validate_id("issuer_id", id)?;
        if display_name.chars().count() > 200 {
            return Err(DomainError::invalid("issuer.display_name", "at most 200 characters").into());
        }
        let now = self.now();
        let context = self.config.context.clone();
        let issuer_id = id.to_owned();
        let (authorities, config) = match source {
            LocalCaSource::Generate(spec) => {
                let config = serde_json::json!({
                    "source": "generate",
                    "common_name": spec.common_name,
                    "organization": spec.organization,
                    "key_type": spec.key_type.as_str(),
                    "root_lifetime_secs": spec.root_lifetime_secs,
                });
                // RSA key generation takes seconds: off the async runtime.
                let authorities =
                    tokio::task::spawn_blocking(move || local_ca::generate_hierarchy(&issuer_id, &spec, &context, now))
                        .await
                        .map_err(|e| IssuanceError::Misconfigured(format!("key generation failed: {e}")))??;
                (authorities, config)
            }
            LocalCaSource::Import { chain_pem, private_key_pem } => {
                let authority = local_ca::import_authority(&issuer_id, &chain_pem, &private_key_pem, &context, now)
                    .map_err(|e| match e {
                        IssueError::Refused(m) => {
                            IssuanceError::Domain(DomainError::invalid("issuer.local_ca.import", m))
                        }
                        other => other.into(),
                    })?;
                (vec![authority], serde_json::json!({ "source": "import" }))
            }
        };
        let issuing = authorities.iter().find(|a| a.issuing).map(|a| a.id.clone()).unwrap_or_default();
        let record = IssuerRecord {
            id: id.to_owned(),
            display_name: if display_name.is_empty() { id.to_owned() } else { display_name.to_owned() },
            kind: local_ca::KIND.to_owned(),
            config,
            issuing_authority: issuing,
            create_time: now,
        };
        let details = serde_json::json!({
            "kind": record.kind,
            "config": record.config,
            "authorities": authorities.iter().map(|a| serde_json::json!({
                "id": a.id, "role": a.role, "subject": a.subject, "serial_number": a.serial_number,
                "sha256_fingerprint": a.fingerprint, "not_after": a.not_after,
            })).collect::<Vec<_>>(),
        });
        let event = self.event(caller, "CreateIssuer", &format!("issuers/{id}"), details);
        self.store.create_issuer(&record, &authorities, event).await?;
        self.wrote();
        let connector = issuers::connect(&record, authorities, &self.config.context)?;
        self.issuers.write().expect("issuer cache lock").insert(record.id.clone(), connector);
        Ok(record)
    }

    /// The connector of an issuer, loaded once per process.
    pub async fn connector(&self, id: &str) -> Result<Arc<dyn Issuer>> {
        if let Some(found) = self.issuers.read().expect("issuer cache lock").get(id) {
            return Ok(found.clone());
        }
        let record = self.store.get_issuer(id).await?;
        let authorities = self.store.authorities(id).await?;
        let connector = issuers::connect(&record, authorities, &self.config.context)?;
        self.issuers.write().expect("issuer cache lock").insert(id.to_owned(), connector.clone());
        Ok(connector)
    }

    pub async fn get_issuer(&self, name: &str) -> Result<IssuerRecord> {
        let id = name::parse("name", Collection::Issuers, name)?;
        Ok(self.store.get_issuer(id).await?)
    }

    pub async fn list_issuers(&self, page_size: i32, page_token: &str) -> Result<(Vec<IssuerRecord>, String)> {
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["issuers"]);
        let after = page::decode_token(page_token, &fingerprint)?.and_then(|v| v.as_str().map(str::to_owned));
        let items = self.store.list_issuers(after.as_deref(), limit + 1).await?;
        Ok(paged(items, limit, &fingerprint, |i| i.id.clone()))
    }

    pub async fn authorities(&self, parent: &str) -> Result<Vec<AuthorityRecord>> {
        let id = name::parse("parent", Collection::Issuers, parent)?;
        self.store.get_issuer(id).await?;
        Ok(self.store.authorities(id).await?)
    }

    // Profiles.

    pub async fn get_profile(&self, name: &str) -> Result<Profile> {
        let id = name::parse("name", Collection::Profiles, name)?;
        Ok(self.store.get_profile(id).await?)
    }

    pub async fn list_profiles(&self, page_size: i32, page_token: &str) -> Result<(Vec<Profile>, String)> {
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["profiles"]);
        let after = page::decode_token(page_token, &fingerprint)?.and_then(|v| v.as_str().map(str::to_owned));
        let items = self.store.list_profiles(after.as_deref(), limit + 1).await?;
        Ok(paged(items, limit, &fingerprint, |p| p.id.clone()))
    }

    pub async fn create_profile(&self, caller: &Caller, mut profile: Profile) -> Result<Profile> {
        let now = self.now();
        profile.create_time = now;
        profile.update_time = now;
        profile.validate()?;
        let event = self.event(caller, "CreateProfile", &profile.name(), profile_details(&profile));
        self.store.create_profile(&profile, event).await?;
        self.wrote();
        Ok(profile)
    }

    pub async fn update_profile(&self, caller: &Caller, patch: Profile, mask: &[String]) -> Result<Profile> {
        let mut profile = self.store.get_profile(&patch.id).await?;
        if mask.is_empty() {
            return Err(DomainError::invalid("update_mask", "name the fields to change").into());
        }
        for path in mask {
            match path.as_str() {
                "display_name" => profile.display_name = patch.display_name.clone(),
                "allowed_key_algorithms" => profile.allowed_key_algorithms = patch.allowed_key_algorithms.clone(),
                "default_key_algorithm" => profile.default_key_algorithm = patch.default_key_algorithm,
                "max_lifetime" => profile.max_lifetime_secs = patch.max_lifetime_secs,
                "extended_key_usages" => profile.extended_key_usages = patch.extended_key_usages.clone(),
                "allowed_dns_patterns" => profile.allowed_dns_patterns = patch.allowed_dns_patterns.clone(),
                "allow_ip_addresses" => profile.allow_ip_addresses = patch.allow_ip_addresses,
                other => {
                    return Err(DomainError::invalid(
                        "update_mask",
                        format!("`{other}` is not an updatable field of a profile"),
                    )
                    .into());
                }
            }
        }
        profile.update_time = self.now();
        profile.validate()?;
        let mut details = profile_details(&profile);
        details["update_mask"] = serde_json::json!(mask);
        let event = self.event(caller, "UpdateProfile", &profile.name(), details);
        self.store.update_profile(&profile, event).await?;
        self.forget_profile(&profile.id);
        self.wrote();
        Ok(profile)
    }

    pub async fn delete_profile(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Profiles, name)?;
        let event = self.event(caller, "DeleteProfile", name, serde_json::json!({}));
        self.store.delete_profile(id, self.now(), event).await?;
        self.forget_profile(id);
        self.wrote();
        Ok(())
    }

    // Signing.

    /// Signs a CSR. With a request id used before, returns what that request
    /// signed (finishing its inventory write if that was cut short).
    pub async fn sign(&self, caller: &Caller, input: SignInput) -> Result<IssuedRecord> {
        if let Some(done) = self.repeat(caller, &input.request_id).await? {
            return Ok(done);
        }
        let issuer_id = name::parse("issuer", Collection::Issuers, &input.issuer)?.to_owned();
        let profile_id = profile_id(&input.profile)?;
        let certificate = match input.certificate.as_str() {
            "" => None,
            c => Some(self.inventory.certificate(caller, c).await?),
        };
        if input.csr_pem.trim().is_empty() {
            return Err(DomainError::invalid("csr_pem", "required: a PEM PKCS#10 request").into());
        }
        let csr = verify(&input.csr_pem)?;
        let names = match &certificate {
            Some(c) => Names::of_certificate(c, &csr)?,
            None => Names::of_csr(&csr),
        };
        let signing = Signing {
            issuer_id,
            profile_id,
            lifetime_secs: input.lifetime_secs,
            certificate_id: certificate.map(|c| c.id),
            request_id: input.request_id,
        };
        self.sign_key(caller, signing, csr, names, None).await
    }

    /// Issues a managed certificate's next version from its inventory record.
    pub async fn issue(
        &self,
        caller: &Caller,
        certificate: &str,
        csr_pem: &str,
        lifetime_secs: Option<i64>,
        request_id: &str,
    ) -> Result<IssuedRecord> {
        if let Some(done) = self.repeat(caller, request_id).await? {
            return Ok(done);
        }
        name::parse("certificate", Collection::Certificates, certificate)?;
        let managed = self.inventory.certificate(caller, certificate).await?;
        let issuer_id = match managed.issuer.as_str() {
            "" => DEFAULT_ISSUER.to_owned(),
            issuer => name::parse("certificate.issuer", Collection::Issuers, issuer)?.to_owned(),
        };
        let profile_id = profile_id(&managed.profile)?;
        let signing = Signing {
            issuer_id,
            profile_id: profile_id.clone(),
            lifetime_secs,
            certificate_id: Some(managed.id.clone()),
            request_id: request_id.to_owned(),
        };
        if !csr_pem.trim().is_empty() {
            let csr = verify(csr_pem)?;
            let names = Names::of_certificate(&managed, &csr)?;
            return self.sign_key(caller, signing, csr, names, None).await;
        }
        if !managed.server_keyed {
            return Err(DomainError::invalid(
                "csr_pem",
                format!(
                    "{certificate} keeps its private key with its owner: send a CSR, or mark the certificate \
                     server_keyed to have the platform generate and hold the key"
                ),
            )
            .into());
        }
        let profile = self.signing_profile(&profile_id).await?;
        let algorithm = managed.key_algorithm.unwrap_or(profile.default_key_algorithm);
        let key_type = KeyType::from_algorithm(algorithm).ok_or_else(|| {
            DomainError::FailedPrecondition(format!("{certificate} asks for a key type certctl cannot generate"))
        })?;
        // RSA generation takes up to seconds: off the async runtime.
        let (key, csr) = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let key = key_type.generate().map_err(|e| e.to_string())?;
            let csr_pem = certctl_pki::build_csr(&key, "server-keyed", &[]).map_err(|e| e.to_string())?;
            let csr = certctl_pki::verify_csr(csr_pem.as_bytes()).map_err(|e| e.to_string())?;
            Ok((key.serialize_der(), csr))
        })
        .await
        .map_err(|e| IssuanceError::Misconfigured(format!("key generation failed: {e}")))?
        .map_err(|e| IssuanceError::Misconfigured(format!("key generation failed: {e}")))?;
        let names = Names::declared(&managed);
        self.sign_key(caller, signing, csr, names, Some(key)).await
    }

    /// A profile as signing uses it: read from the store at most every
    /// [`PROFILE_CACHE_TTL`], instead of once per certificate.
    async fn signing_profile(&self, id: &str) -> Result<Arc<Profile>> {
        if let Some((read, profile)) = self.profiles.read().expect("profile cache lock").get(id)
            && read.elapsed() < PROFILE_CACHE_TTL
        {
            return Ok(profile.clone());
        }
        let profile = Arc::new(self.store.get_profile(id).await?);
        self.profiles.write().expect("profile cache lock").insert(id.to_owned(), (Instant::now(), profile.clone()));
        Ok(profile)
    }

    fn forget_profile(&self, id: &str) {
        self.profiles.write().expect("profile cache lock").remove(id);
    }

    async fn repeat(&self, caller: &Caller, request_id: &str) -> Result<Option<IssuedRecord>> {
        if request_id.is_empty() {
            return Ok(None);
        }
        if request_id.len() > 128 || request_id.chars().any(char::is_control) {
            return Err(DomainError::invalid("request_id", "at most 128 printable characters").into());
        }
        match self.store.issued_by_request(request_id).await? {
            Some(done) => Ok(Some(self.record_in_inventory(caller, done).await?)),
            None => Ok(None),
        }
    }

    async fn sign_key(
        &self,
        caller: &Caller,
        signing: Signing,
        csr: certctl_pki::VerifiedCsr,
        names: Names,
        server_key: Option<Vec<u8>>,
    ) -> Result<IssuedRecord> {
        let profile = self.signing_profile(&signing.profile_id).await?;
        if !profile.allows_key(csr.public_key.algorithm) {
            let allowed: Vec<&str> = certctl_domain::issuance::SIGNABLE_KEYS
                .iter()
                .filter(|k| profile.allows_key(**k))
                .map(|k| k.as_str())
                .collect();
            return Err(DomainError::invalid(
                "csr_pem",
                format!(
                    "the CSR's {} key is not allowed by profiles/{} (allowed: {})",
                    csr.public_key.algorithm.as_str(),
                    profile.id,
                    allowed.join(", ")
                ),
            )
            .into());
        }
        profile.check_names(&names.dns, &names.ips)?;
        let lifetime = profile.lifetime(signing.lifetime_secs)?;
        if let Some(certificate_id) = &signing.certificate_id {
            self.check_policies(caller, certificate_id, &signing.issuer_id, &names, csr.public_key.algorithm, lifetime)
                .await?;
        }
        let connector = self.connector(&signing.issuer_id).await?;
        let now = self.now();
        let serial = rand::random::<[u8; 16]>();
        let signed = connector
            .sign(LeafRequest {
                public_key: csr.public_key_data(),
                key_is_rsa: matches!(
                    csr.public_key.algorithm,
                    KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
                ),
                common_name: names.common_name.clone(),
                dns_names: names.dns.clone(),
                ip_addresses: names.ips.clone(),
                // Backdated a minute for relying parties with a slightly slow clock.
                not_before: now - 60,
                not_after: now + lifetime,
                extended_key_usages: profile.extended_key_usages.clone(),
                serial,
            })
            .await?;
        let serial_hex = serial_hex(&serial);
        let sans: Vec<String> = names.dns.iter().cloned().chain(names.ips.iter().map(ToString::to_string)).collect();
        let record = IssuedRecord {
            issuer_id: signing.issuer_id.clone(),
            serial: serial_hex.clone(),
            authority_id: signed.authority_id.clone(),
            pem_chain: signed.pem_chain,
            common_name: names.common_name.unwrap_or_default(),
            subject_alt_names: sans,
            profile_id: profile.id.clone(),
            certificate_id: signing.certificate_id.clone(),
            certificate_version: None,
            request_id: (!signing.request_id.is_empty()).then(|| signing.request_id.clone()),
            not_before: signed.not_before,
            not_after: signed.not_after,
            sealed_key: server_key
                .as_deref()
                .map(|k| self.config.context.master_key.seal(&leaf_key_context(&signing.issuer_id, &serial_hex), k)),
            server_keyed: server_key.is_some(),
            revocation: None,
            revocation_synced: true,
            create_time: now,
        };
        let event = self.event(
            caller,
            "SignCertificate",
            &record.name(),
            serde_json::json!({
                "authority": format!("issuers/{}/authorities/{}", record.issuer_id, record.authority_id),
                "profile": profile.name(),
                "common_name": record.common_name,
                "subject_alt_names": record.subject_alt_names,
                "key_algorithm": csr.public_key.algorithm.as_str(),
                "not_after": record.not_after,
                "certificate": record.certificate_id.as_ref().map(|c| format!("certificates/{c}")),
                "server_keyed": record.server_keyed,
            }),
        );
        // Recorded in a group commit. When the same request id won a race
        // with this one, the answer is its certificate, and this signature
        // is discarded unrecorded (no change, no event).
        let stored = self.writer.write(record, event).await?;
        self.record_in_inventory(caller, stored).await
    }

    /// Asks the inventory whether the version about to be signed keeps the
    /// certificate's policies, and refuses with FAILED_PRECONDITION naming
    /// each ERROR or CRITICAL violation. WARNING violations are logged only.
    async fn check_policies(
        &self,
        caller: &Caller,
        certificate_id: &str,
        issuer_id: &str,
        names: &Names,
        key_algorithm: KeyAlgorithm,
        lifetime_secs: i64,
    ) -> Result<()> {
        let check = PolicyCheck {
            certificate: Collection::Certificates.name(certificate_id),
            common_name: names.common_name.clone().unwrap_or_default(),
            subject_alt_names: names.dns.iter().cloned().chain(names.ips.iter().map(ToString::to_string)).collect(),
            issuer: Collection::Issuers.name(issuer_id),
            key_algorithm,
            lifetime_secs,
        };
        let violations = self.inventory.evaluate_policy(caller, &check).await?;
        let (blocking, warnings): (Vec<_>, Vec<_>) = violations.into_iter().partition(|v| v.severity.blocks_issuance());
        for w in &warnings {
            tracing::warn!(certificate = %check.certificate, "policy warning: {}", w.describe());
        }
        if blocking.is_empty() {
            return Ok(());
        }
        let reasons: Vec<String> = blocking.iter().map(PolicyViolation::describe).collect();
        Err(DomainError::FailedPrecondition(format!("{} may not be issued: {}", check.certificate, reasons.join("; ")))
            .into())
    }

    /// Writes a signed certificate into the inventory as its certificate's
    /// next version, unless that already happened. When the inventory is
    /// down the certificate stays signed and recorded here, and the sync loop
    /// delivers it later; the caller learns that it has not arrived yet.
    pub(crate) async fn record_in_inventory(&self, caller: &Caller, mut record: IssuedRecord) -> Result<IssuedRecord> {
        let (Some(certificate), None) = (&record.certificate_id, &record.certificate_version) else {
            return Ok(record);
        };
        let fingerprint = leaf_fingerprint(&record.pem_chain);
        match self.inventory.record_version(caller, certificate, &record.pem_chain, &fingerprint).await {
            Ok(version) => {
                self.store.set_certificate_version(&record.issuer_id, &record.serial, &version).await?;
                record.certificate_version = Some(version);
                Ok(record)
            }
            Err(InventoryError::Unavailable(reason)) => {
                self.sync_wake.notify_one();
                Err(IssuanceError::Unavailable(format!(
                    "{} was signed, but the inventory could not record it yet ({reason}); it will be delivered \
                     when the inventory is back, and retrying with the same request_id returns it",
                    record.name()
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Hands out a server-keyed certificate's private key, once.
    pub async fn export_key(&self, caller: &Caller, version: &str) -> Result<(IssuedRecord, Vec<u8>)> {
        name::parse_version("version", version)?;
        let record = self.store.issued_by_version(version).await?;
        let event = self.event(caller, "ExportPrivateKey", &record.name(), serde_json::json!({ "version": version }));
        let sealed = self.store.take_key(&record.issuer_id, &record.serial, event).await?;
        self.wrote();
        let key = self
            .config
            .context
            .master_key
            .open(&leaf_key_context(&record.issuer_id, &record.serial), &sealed)
            .map_err(|e| IssuanceError::Misconfigured(e.to_string()))?;
        Ok((record, key))
    }

    pub async fn get_issued(&self, name: &str) -> Result<IssuedRecord> {
        let (issuer, serial) = parse_issued_name("name", name)?;
        Ok(self.store.get_issued(&issuer, &serial).await?)
    }

    pub async fn list_issued(
        &self,
        parent: &str,
        revoked_only: bool,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<IssuedRecord>, String)> {
        let issuer = name::parse("parent", Collection::Issuers, parent)?;
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["issued", issuer, if revoked_only { "revoked" } else { "all" }]);
        let after = page::decode_token(page_token, &fingerprint)?.and_then(|v| v.as_str().map(str::to_owned));
        let items = self.store.list_issued(issuer, revoked_only, after.as_deref(), limit + 1).await?;
        Ok(paged(items, limit, &fingerprint, |i| i.serial.clone()))
    }

    /// Revokes one certificate; its CRL is re-signed before this returns.
    pub async fn revoke(&self, caller: &Caller, name: &str, reason: RevocationReason) -> Result<IssuedRecord> {
        let (issuer, serial) = parse_issued_name("name", name)?;
        if !reason.usable_for_revocation() {
            return Err(DomainError::invalid(
                "reason",
                format!("{} is not a reason to revoke a certificate with", reason.as_str()),
            )
            .into());
        }
        let revocation = Revocation { time: self.now(), reason };
        let event = self.event(caller, "RevokeCertificate", name, serde_json::json!({ "reason": reason.as_str() }));
        let record = self.store.revoke(&issuer, &serial, revocation, event).await?;
        self.wrote();
        self.refresh_crl(&issuer, &record.authority_id, true).await?;
        self.sync_wake.notify_one();
        Ok(record)
    }
}

/// Who a signing is for, after the request was checked.
struct Signing {
    issuer_id: String,
    profile_id: String,
    lifetime_secs: Option<i64>,
    certificate_id: Option<String>,
    request_id: String,
}

/// The names a certificate will carry.
struct Names {
    common_name: Option<String>,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

impl Names {
    fn of_csr(csr: &certctl_pki::VerifiedCsr) -> Self {
        let mut dns = csr.dns_names.clone();
        // A CN that looks like a host name but is missing from the SANs is
        // added: clients match SANs only.
        if let Some(cn) = &csr.common_name
            && !dns.contains(cn)
            && cn.parse::<IpAddr>().is_err()
            && cn.contains('.')
        {
            dns.insert(0, cn.clone());
        }
        Self { common_name: csr.common_name.clone(), dns, ips: csr.ip_addresses.clone() }
    }

    /// The inventory's names, which are what the certificate gets.
    fn declared(c: &crate::inventory::ManagedCertificate) -> Self {
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for name in std::iter::once(&c.common_name).chain(&c.subject_alt_names) {
            match name.parse::<IpAddr>() {
                Ok(ip) if !ips.contains(&ip) => ips.push(ip),
                Ok(_) => {}
                Err(_) if !name.is_empty() && !dns.contains(name) => dns.push(name.clone()),
                Err(_) => {}
            }
        }
        Self { common_name: (!c.common_name.is_empty()).then(|| c.common_name.clone()), dns, ips }
    }

    /// The inventory's names, provided the CSR asks for nothing else.
    fn of_certificate(c: &crate::inventory::ManagedCertificate, csr: &certctl_pki::VerifiedCsr) -> Result<Self> {
        let declared = Self::declared(c);
        let extra: Vec<String> = csr
            .dns_names
            .iter()
            .filter(|n| !declared.dns.contains(n))
            .cloned()
            .chain(csr.ip_addresses.iter().filter(|ip| !declared.ips.contains(ip)).map(ToString::to_string))
            .collect();
        if !extra.is_empty() {
            return Err(DomainError::invalid(
                "csr_pem",
                format!("the CSR asks for {} which certificates/{} does not declare", extra.join(", "), c.id),
            )
            .into());
        }
        Ok(declared)
    }
}

fn verify(csr_pem: &str) -> Result<certctl_pki::VerifiedCsr> {
    certctl_pki::verify_csr(csr_pem.as_bytes()).map_err(|e| DomainError::invalid("csr_pem", e.to_string()).into())
}

fn profile_id(name: &str) -> Result<String> {
    Ok(match name {
        "" => DEFAULT_PROFILE.to_owned(),
        profile => name::parse("profile", Collection::Profiles, profile)?.to_owned(),
    })
}

/// A serial number as the hex of its DER INTEGER content: leading zero bytes
/// dropped, and one zero byte in front when the top bit is set, exactly as
/// the certificate encodes it.
pub fn serial_hex(magnitude: &[u8]) -> String {
    let first = magnitude.iter().position(|b| *b != 0).unwrap_or(magnitude.len());
    let bytes = &magnitude[first..];
    match bytes.first() {
        None => "00".to_owned(),
        Some(b) if b & 0x80 != 0 => format!("00{}", hex::encode(bytes)),
        Some(_) => hex::encode(bytes),
    }
}

pub fn leaf_key_context(issuer: &str, serial: &str) -> String {
    format!("issuance/leaf/{issuer}/{serial}")
}

/// `issuers/{issuer}/issuedCertificates/{serial}` → (issuer, serial).
pub fn parse_issued_name(field: &str, name: &str) -> Result<(String, String), DomainError> {
    let bad = || {
        DomainError::invalid(
            field,
            format!(
                "`{name}` is not an issued certificate name: expected `issuers/{{issuer}}/issuedCertificates/{{serial}}`"
            ),
        )
    };
    let rest = name.strip_prefix("issuers/").ok_or_else(bad)?;
    let (issuer, serial) = rest.split_once("/issuedCertificates/").ok_or_else(bad)?;
    name::validate_id(field, issuer)?;
    let serial = serial.to_ascii_lowercase();
    if serial.is_empty() || serial.len() > 42 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DomainError::invalid(field, format!("`{serial}` is not a serial number in hex")));
    }
    Ok((issuer.to_owned(), serial))
}

fn leaf_fingerprint(pem_chain: &str) -> String {
    local_ca::pem_to_der(pem_chain).map(|der| local_ca::fingerprint(&der)).unwrap_or_default()
}

fn profile_details(p: &Profile) -> serde_json::Value {
    serde_json::json!({
        "allowed_key_algorithms": p.allowed_key_algorithms.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "default_key_algorithm": p.default_key_algorithm.as_str(),
        "max_lifetime_secs": p.max_lifetime_secs,
        "extended_key_usages": p.extended_key_usages,
        "allowed_dns_patterns": p.allowed_dns_patterns,
        "allow_ip_addresses": p.allow_ip_addresses,
    })
}

/// Cuts a `limit + 1` fetch into a page and the token for the next one.
fn paged<T>(mut items: Vec<T>, limit: i64, fingerprint: &str, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let token = match items.last() {
        Some(last) if more => page::encode_token(fingerprint, serde_json::Value::String(key(last))),
        _ => String::new(),
    };
    (items, token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_names_parse_strictly() {
        assert_eq!(
            parse_issued_name("name", "issuers/local/issuedCertificates/0A1b").unwrap(),
            ("local".to_owned(), "0a1b".to_owned())
        );
        for bad in ["issuers/local", "issuers/local/issuedCertificates/", "issuers/local/issuedCertificates/xyz", "x/y"]
        {
            assert!(parse_issued_name("name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serials_print_as_their_der_integer() {
        assert_eq!(serial_hex(&[0x7f, 0x01]), "7f01");
        assert_eq!(serial_hex(&[0x80, 0x01]), "008001");
        assert_eq!(serial_hex(&[0x00, 0x00, 0x42]), "42");
        assert_eq!(serial_hex(&[0x00, 0x90]), "0090");
        assert_eq!(serial_hex(&[]), "00");
    }
}
