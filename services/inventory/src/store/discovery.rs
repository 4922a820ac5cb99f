//! Discovered certificates: one row per fingerprint, and the places agents saw it.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::discovery::{DiscoveredCertificate, DiscoveryState, Sighting};

/// A listing of discovered certificates, ordered by id, after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoveryQuery {
    pub state: Option<DiscoveryState>,
    pub after: Option<String>,
    pub limit: i64,
}

/// What one report added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscoveryTally {
    /// Certificates seen for the first time and recorded NEW.
    pub new: i64,
    /// The other certificates of the report: seen before, or already managed
    /// (and recorded CLAIMED).
    pub known: i64,
}

#[async_trait]
pub trait DiscoveryStore: Send + Sync + 'static {
    /// Records what `agent` (`agents/{id}`) saw at `now`, in one
    /// transaction: each fingerprint once, every (agent, path) as a
    /// location. A certificate that is a version of a managed certificate
    /// is recorded CLAIMED by it, also when it was NEW before; DISMISSED
    /// stays so. `event` is committed for each certificate seen the first time.
    async fn report_discoveries(
        &self,
        agent: &str,
        sightings: &[Sighting],
        now: UnixTime,
        event: impl for<'a> Fn(&'a DiscoveredCertificate) -> NewAuditEvent + Send + Sync,
    ) -> Result<DiscoveryTally, StoreError>
    where
        Self: Sized;
    async fn get_discovered_certificate(&self, id: &str) -> Result<DiscoveredCertificate, StoreError>;
    async fn list_discovered_certificates(
        &self,
        query: &DiscoveryQuery,
    ) -> Result<Vec<DiscoveredCertificate>, StoreError>;
    /// Sets the state and the claiming certificate (`certificates/{id}`, or empty).
    async fn set_discovery_state(
        &self,
        id: &str,
        state: DiscoveryState,
        certificate: &str,
        event: NewAuditEvent,
    ) -> Result<DiscoveredCertificate, StoreError>;
    /// The managed certificate that has a version with this fingerprint, if any.
    async fn certificate_with_fingerprint(&self, fingerprint: &str) -> Result<Option<String>, StoreError>;
}
