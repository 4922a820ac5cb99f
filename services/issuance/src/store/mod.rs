//! The issuance service's persistence: issuers and their CA certificates
//! (keys sealed), profiles, every certificate signed, revocations and CRLs.

mod sql;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::issuance::{Profile, RevocationReason};

pub use certctl_outbox::{Outbox, OutboxEntry};
pub use sql::{PostgresStore, SqliteStore};

/// An issuer's configuration, without secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuerRecord {
    pub id: String,
    pub display_name: String,
    /// The registry key of its connector (`local_ca`, ...).
    pub kind: String,
    pub config: serde_json::Value,
    /// Id of the authority that signs leaves.
    pub issuing_authority: String,
    pub create_time: UnixTime,
}

/// One CA certificate of an issuer, its key sealed under the master key.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorityRecord {
    pub issuer_id: String,
    pub id: String,
    /// `root`, `intermediate` or `imported`.
    pub role: String,
    pub parent_id: Option<String>,
    pub certificate_pem: String,
    /// This certificate followed by its issuers up to the root.
    pub chain_pem: String,
    pub sealed_key: Option<String>,
    pub key_algorithm: String,
    pub serial_number: String,
    pub fingerprint: String,
    pub subject: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub issuing: bool,
    pub create_time: UnixTime,
}

/// A revocation as the CA records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub time: UnixTime,
    pub reason: RevocationReason,
}

/// A certificate this platform signed.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedRecord {
    pub issuer_id: String,
    /// Lower-case hex of the serial number's DER INTEGER content.
    pub serial: String,
    pub authority_id: String,
    pub pem_chain: String,
    pub common_name: String,
    pub subject_alt_names: Vec<String>,
    pub profile_id: String,
    pub certificate_id: Option<String>,
    /// `certificates/{c}/versions/{v}` once the inventory recorded it.
    pub certificate_version: Option<String>,
    pub request_id: Option<String>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    /// The private key, sealed, while a server-keyed certificate's key has
    /// not been exported.
    pub sealed_key: Option<String>,
    pub server_keyed: bool,
    pub revocation: Option<Revocation>,
    /// False while the inventory has not heard of the revocation.
    pub revocation_synced: bool,
    pub create_time: UnixTime,
}

impl IssuedRecord {
    pub fn name(&self) -> String {
        format!("issuers/{}/issuedCertificates/{}", self.issuer_id, self.serial)
    }
}

/// The current CRL of an authority.
#[derive(Debug, Clone, PartialEq)]
pub struct CrlRecord {
    pub issuer_id: String,
    pub authority_id: String,
    pub number: i64,
    pub der: Vec<u8>,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
}

/// One revoked serial, as a CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    pub serial: String,
    pub revocation: Revocation,
}

#[async_trait]
pub trait Store: Outbox {
    /// The id and sealed canary of the master key the data was sealed with,
    /// or, on a fresh database, records `(key_id, canary)` and returns them.
    async fn master_key_check(&self, key_id: &str, canary: &str) -> Result<(String, String), StoreError>;

    /// Inserts an issuer with its authorities; ALREADY_EXISTS when the id is taken.
    async fn create_issuer(
        &self,
        issuer: &IssuerRecord,
        authorities: &[AuthorityRecord],
        event: NewAuditEvent,
    ) -> Result<(), StoreError>;
    async fn get_issuer(&self, id: &str) -> Result<IssuerRecord, StoreError>;
    async fn list_issuers(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<IssuerRecord>, StoreError>;
    /// An issuer's authorities, root first.
    async fn authorities(&self, issuer_id: &str) -> Result<Vec<AuthorityRecord>, StoreError>;

    /// Inserts the built-in profiles that do not exist yet.
    async fn ensure_profiles(&self, profiles: &[Profile]) -> Result<(), StoreError>;
    async fn create_profile(&self, profile: &Profile, event: NewAuditEvent) -> Result<(), StoreError>;
    async fn get_profile(&self, id: &str) -> Result<Profile, StoreError>;
    async fn list_profiles(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Profile>, StoreError>;
    async fn update_profile(&self, profile: &Profile, event: NewAuditEvent) -> Result<(), StoreError>;
    /// FAILED_PRECONDITION while a certificate issued under it is still valid.
    async fn delete_profile(&self, id: &str, now: UnixTime, event: NewAuditEvent) -> Result<(), StoreError>;

    /// Records signed certificates and their audit events (`events[i]`
    /// describes `issued[i]`) in one transaction, with one multi-row INSERT
    /// per table. A certificate whose request id is already recorded is
    /// skipped with its event; the result says, per certificate, whether it
    /// was inserted. Fails as a whole (nothing written) on any other error,
    /// ALREADY_EXISTS when a serial number is taken.
    async fn insert_issued(&self, issued: &[IssuedRecord], events: &[NewAuditEvent]) -> Result<Vec<bool>, StoreError>;
    async fn issued_by_request(&self, request_id: &str) -> Result<Option<IssuedRecord>, StoreError>;
    async fn get_issued(&self, issuer_id: &str, serial: &str) -> Result<IssuedRecord, StoreError>;
    async fn list_issued(
        &self,
        issuer_id: &str,
        revoked_only: bool,
        after_serial: Option<&str>,
        limit: i64,
    ) -> Result<Vec<IssuedRecord>, StoreError>;
    /// Marks a certificate revoked; FAILED_PRECONDITION when it already is.
    async fn revoke(
        &self,
        issuer_id: &str,
        serial: &str,
        revocation: Revocation,
        event: NewAuditEvent,
    ) -> Result<IssuedRecord, StoreError>;
    async fn revoked_serials(&self, issuer_id: &str, authority_id: &str) -> Result<Vec<RevokedSerial>, StoreError>;

    /// The managed certificates whose version or revocation the inventory
    /// has not recorded yet, oldest first.
    async fn unsynced(&self, limit: i64) -> Result<Vec<IssuedRecord>, StoreError>;
    async fn set_certificate_version(&self, issuer_id: &str, serial: &str, version: &str) -> Result<(), StoreError>;
    async fn mark_revocation_synced(&self, issuer_id: &str, serial: &str) -> Result<(), StoreError>;

    /// Takes a server-keyed certificate's sealed key out of storage: returns
    /// it once, and FAILED_PRECONDITION ever after.
    async fn take_key(&self, issuer_id: &str, serial: &str, event: NewAuditEvent) -> Result<String, StoreError>;
    async fn issued_by_version(&self, version: &str) -> Result<IssuedRecord, StoreError>;

    async fn get_crl(&self, issuer_id: &str, authority_id: &str) -> Result<Option<CrlRecord>, StoreError>;
    /// Stores a newer CRL; keeps the stored one when it has a higher number
    /// (another replica got there first).
    async fn save_crl(&self, crl: &CrlRecord) -> Result<(), StoreError>;
}
