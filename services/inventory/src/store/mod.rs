//! The inventory's storage: one trait, a SQLite and a PostgreSQL
//! implementation generated from the same SQL (`sql.rs`), and one
//! conformance suite (`tests/store_conformance.rs`) that runs against both.

mod agents;
mod deployments;
mod discovery;
mod sql;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::{
    Certificate, CertificateState, CertificateVersion, ParsedCertificate, RenewalPolicy, Revocation,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use agents::{AgentQuery, AgentStore, Redemption};
pub use certctl_outbox::{Outbox, OutboxEntry};
pub use deployments::{DeploymentQuery, DeploymentStore};
pub use discovery::{DiscoveryQuery, DiscoveryStore, DiscoveryTally};
pub use sql::{PostgresStore, SqliteStore};

/// How certificate listings are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateOrder {
    NotAfter {
        descending: bool,
    },
    Name {
        descending: bool,
    },
    CreateTime {
        descending: bool,
    },
    /// Soonest due first; lists only certificates with a renewal time.
    RenewTime,
}

/// The position after the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateQuery {
    pub owner: Option<String>,
    pub team: Option<String>,
    pub state: Option<CertificateState>,
    pub issuer: Option<String>,
    pub environment: Option<String>,
    pub expire_before: Option<UnixTime>,
    /// Only certificates due for their next version at or before this time.
    pub renew_before: Option<UnixTime>,
    /// Lower-case substring of the CN or a SAN.
    pub search: Option<String>,
    pub order: CertificateOrder,
    /// The API's BASIC view: id, issuer, revocation, current version and
    /// its validity, alert lead and renewal time; every other field empty.
    pub basic: bool,
    pub after: Option<Cursor>,
    pub limit: i64,
    /// "Now" for state filters.
    pub now: UnixTime,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: i64,
    pub pending: i64,
    pub active: i64,
    pub expiring: i64,
    pub expired: i64,
    pub revoked: i64,
    pub expiring_within_7_days: i64,
    pub expiring_within_30_days: i64,
}

/// What `Store::record_revocation` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationRecord {
    /// The revocation and its audit event were committed.
    Recorded(Certificate),
    /// The version was already revoked; nothing was written.
    AlreadyRevoked { existing: Revocation, certificate: Certificate },
}

/// A resource stored as a JSON document (owners, teams, targets, agents,
/// renewal policies, policies): small tables whose fields nobody filters on.
pub trait Document: Serialize + DeserializeOwned + Send + Sync + 'static {
    const TABLE: Table;
    fn id(&self) -> &str;
    fn create_time(&self) -> UnixTime;
    fn update_time(&self) -> UnixTime;
}

/// The document tables, named by a closed set so no caller can inject SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Owners,
    Teams,
    Targets,
    Agents,
    RenewalPolicies,
    Policies,
}

impl Table {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owners => "owners",
            Self::Teams => "teams",
            Self::Targets => "targets",
            Self::Agents => "agents",
            Self::RenewalPolicies => "renewal_policies",
            Self::Policies => "policies",
        }
    }
}

/// The inventory's persistence. Every mutating method takes the audit event
/// describing it and commits both in one transaction (the outbox). The
/// agents' state beyond their registration is in `AgentStore`, deployments
/// in `DeploymentStore`, what agents find on their hosts in `DiscoveryStore`.
#[async_trait]
pub trait Store: Outbox + AgentStore + DeploymentStore + DiscoveryStore {
    /// Inserts a certificate. With a `request_id` already used, returns the
    /// certificate that request created instead.
    ///
    /// Every write that can move a certificate's renewal time stores its
    /// alert lead and `next_issue_time` as the row stands when the
    /// transaction commits, under its renewal policy as read in that
    /// transaction.
    async fn create_certificate(
        &self,
        certificate: &Certificate,
        request_id: Option<&str>,
        event: NewAuditEvent,
    ) -> Result<Certificate, StoreError>;
    async fn get_certificate(&self, id: &str) -> Result<Certificate, StoreError>;
    /// Replaces the caller-settable fields of an existing certificate.
    async fn update_certificate(
        &self,
        certificate: &Certificate,
        event: NewAuditEvent,
    ) -> Result<Certificate, StoreError>;
    async fn delete_certificate(&self, id: &str, event: NewAuditEvent) -> Result<(), StoreError>;
    async fn list_certificates(&self, query: &CertificateQuery) -> Result<Vec<Certificate>, StoreError>;
    async fn summarize(&self, now: UnixTime) -> Result<Summary, StoreError>;
    /// True when some certificate references `name` through `column`.
    async fn certificate_references(&self, column: ReferenceColumn, name: &str) -> Result<bool, StoreError>;
    /// Replaces a renewal policy and moves every certificate on it to the
    /// policy's alert lead and renewal times, in one transaction.
    async fn update_renewal_policy(&self, policy: &RenewalPolicy, event: NewAuditEvent) -> Result<(), StoreError>;
    /// Finishes the work the SQL migrations left to the service (table
    /// `data_migrations`), each in one transaction; returns what it did.
    async fn run_data_migrations(&self) -> Result<Vec<String>, StoreError>;

    /// Appends the next version to a certificate and makes it current.
    async fn add_version(
        &self,
        certificate_id: &str,
        pem_chain: &str,
        parsed: &ParsedCertificate,
        now: UnixTime,
        event: impl FnOnce(i64) -> NewAuditEvent + Send,
    ) -> Result<CertificateVersion, StoreError>
    where
        Self: Sized;
    async fn get_version(&self, certificate_id: &str, version: i64) -> Result<CertificateVersion, StoreError>;
    /// Marks a version revoked and, when it is the certificate's current
    /// version, the certificate too (until its next version). A version
    /// revoked before keeps its first revocation, and nothing is written.
    async fn record_revocation(
        &self,
        certificate_id: &str,
        version: i64,
        revocation: &Revocation,
        now: UnixTime,
        event: NewAuditEvent,
    ) -> Result<RevocationRecord, StoreError>;
    /// Newest first.
    async fn list_versions(
        &self,
        certificate_id: &str,
        before_version: Option<i64>,
        limit: i64,
    ) -> Result<Vec<CertificateVersion>, StoreError>;

    async fn create_document<D: Document>(&self, doc: &D, event: NewAuditEvent) -> Result<(), StoreError>
    where
        Self: Sized;
    async fn get_document<D: Document>(&self, id: &str) -> Result<D, StoreError>
    where
        Self: Sized;
    async fn update_document<D: Document>(&self, doc: &D, event: NewAuditEvent) -> Result<(), StoreError>
    where
        Self: Sized;
    async fn delete_document<D: Document>(&self, id: &str, event: NewAuditEvent) -> Result<(), StoreError>
    where
        Self: Sized;
    /// Ordered by id, after `after_id`.
    async fn list_documents<D: Document>(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<D>, StoreError>
    where
        Self: Sized;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceColumn {
    Owner,
    Team,
    RenewalPolicy,
    /// One of the certificate's targets.
    Target,
}

impl ReferenceColumn {
    /// The condition on `$1` (the referenced name) that finds a referencing row.
    fn condition(self) -> &'static str {
        match self {
            Self::Owner => "owner = $1",
            Self::Team => "team = $1",
            Self::RenewalPolicy => "renewal_policy = $1",
            // `targets` is a JSON array of names; ids hold no LIKE wildcards.
            Self::Target => "targets LIKE '%\"' || $1 || '\"%'",
        }
    }
}

/// Sort key of a pending certificate: after every real expiry.
pub const PENDING_EXPIRY_KEY: i64 = i64::MAX;
