//! Deployments: what the jobs that deploy certificates report, and listings of it.

use certctl_domain::deployment::{self, Deployment, DeploymentState, NewDeployment};
use certctl_domain::name::{self, Collection};
use certctl_domain::{DomainError, page};

use super::{Caller, Inventory, Page, Result};
use crate::store::{DeploymentQuery, Store};

/// The parent that lists every certificate's deployments (AIP-159).
pub const EVERY_CERTIFICATE: &str = "certificates/-";

impl<S: Store> Inventory<S> {
    /// Records each reported deployment in place of its (certificate,
    /// target)'s previous one, with one audit event each; all or nothing.
    pub async fn record_deployments(&self, caller: &Caller, reports: Vec<NewDeployment>) -> Result<Vec<Deployment>> {
        let deployments = deployment::deployments(reports, self.now())?;
        let events = deployments
            .iter()
            .map(|d| {
                self.event(
                    caller,
                    "RecordDeployment",
                    &d.name(),
                    serde_json::json!({
                        "version": d.version_name(),
                        "target": d.target_name(),
                        "state": d.state.as_str(),
                        "served_fingerprint": d.served_fingerprint,
                        "message": d.message,
                        "job": d.job,
                    }),
                )
            })
            .collect();
        self.store.record_deployments(&deployments, events).await?;
        self.committed();
        Ok(deployments)
    }

    /// `parent` is `certificates/{id}`, or `certificates/-` for all of them.
    pub async fn list_deployments(
        &self,
        parent: &str,
        target: &str,
        state: Option<DeploymentState>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Deployment>> {
        let limit = page::page_size(page_size)?;
        let certificate_id = if parent == EVERY_CERTIFICATE {
            None
        } else {
            Some(name::parse("parent", Collection::Certificates, parent)?.to_owned())
        };
        let target_id =
            if target.is_empty() { None } else { Some(name::parse("target", Collection::Targets, target)?.to_owned()) };
        let fingerprint = page::query_fingerprint(&["deployments", parent, target, &format!("{state:?}")]);
        let after = match page::decode_token(page_token, &fingerprint)? {
            Some(v) => Some(
                serde_json::from_value::<(String, String)>(v)
                    .map_err(|_| DomainError::invalid("page_token", "not a page token issued by this server"))?,
            ),
            None => None,
        };
        if let Some(id) = &certificate_id {
            // A listing of an unknown certificate is NOT_FOUND, not an empty page.
            self.store.get_certificate(id).await?;
        }
        let query = DeploymentQuery { certificate_id, target_id, state, after, limit: limit + 1 };
        let mut items = self.store.list_deployments(&query).await?;
        let next_page_token = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            let last = items.last().expect("limit is at least 1");
            page::encode_token(&fingerprint, serde_json::json!([last.certificate_id, last.target_id]))
        } else {
            String::new()
        };
        Ok(Page { items, next_page_token })
    }
}
