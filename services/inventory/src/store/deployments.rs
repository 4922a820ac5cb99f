//! Deployments: one row per (certificate, target), the latest report.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::deployment::{Deployment, DeploymentState};

/// A deployment listing, ordered by (certificate, target), after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentQuery {
    /// One certificate's deployments; `None` for every certificate's.
    pub certificate_id: Option<String>,
    pub target_id: Option<String>,
    pub state: Option<DeploymentState>,
    /// The (certificate id, target id) of the last row of the previous page.
    pub after: Option<(String, String)>,
    pub limit: i64,
}

#[async_trait]
pub trait DeploymentStore: Send + Sync + 'static {
    /// Replaces each (certificate, target)'s deployment and commits
    /// `events[i]` with `deployments[i]`, all in one transaction. NOT_FOUND
    /// names the first certificate, version or target that does not exist.
    async fn record_deployments(
        &self,
        deployments: &[Deployment],
        events: Vec<NewAuditEvent>,
    ) -> Result<(), StoreError>;
    async fn list_deployments(&self, query: &DeploymentQuery) -> Result<Vec<Deployment>, StoreError>;
}
