//! The renewal loop: one replica at a time (the leader of `renewal-scan`)
//! asks the inventory for the certificates whose next version is due (the
//! inventory keeps each one's renewal time, `Certificate::next_issue_time`)
//! and enqueues an issuance job for every one without a version and a
//! renewal job for every other. Jobs are keyed by certificate and version, so
//! a re-scan, a second leader after a failover or a manual renewal never
//! creates a second job for the same version.

use std::sync::Arc;
use std::time::Duration;

use certctl_common::shutdown::Shutdown;
use certctl_domain::job::{JobKind, NewJob};
use certctl_domain::renewal;

use crate::store::Store;
use crate::upstream::{CallError, Managed, Upstreams};

pub const LEADER_NAME: &str = "renewal-scan";

/// What one scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub examined: usize,
    pub enqueued: usize,
}

/// The job that issues a certificate's next version (its first, or the
/// renewal of the current one), whenever it is due; `None` for certificates
/// certctl does not issue (no issuer) or no longer may (revoked).
pub fn next_version_job(certificate: &Managed) -> Option<NewJob> {
    if certificate.issuer.is_empty() || certificate.revoked {
        return None;
    }
    let name = format!("certificates/{}", certificate.id);
    let (kind, key) = match certificate.current {
        None => (JobKind::Issuance, format!("issuance:{name}")),
        Some((version, _, _)) => (JobKind::Renewal, renewal::renewal_idempotency_key(&certificate.id, version)),
    };
    let mut job = NewJob::new(kind, key);
    job.certificate = Some(name);
    job.payload = serde_json::json!({ "issuer": certificate.issuer });
    Some(job)
}

/// Reads what is due from the inventory once and enqueues it.
pub async fn scan_once<S: Store + ?Sized>(store: &S, upstreams: &Upstreams) -> Result<ScanReport, String> {
    let now = store.clock().now();
    let mut report = ScanReport::default();
    let mut page = upstreams.due(now, "").await.map_err(describe)?;
    loop {
        let (certificates, next) = page;
        report.examined += certificates.len();
        let jobs: Vec<NewJob> = certificates.iter().filter_map(next_version_job).collect();
        // Enqueue one page while the next is read: the two take about as long.
        let fetch = async { if next.is_empty() { None } else { Some(upstreams.due(now, &next).await) } };
        let enqueue = async {
            if jobs.is_empty() {
                return Ok(0);
            }
            store.enqueue_many(jobs).await.map(|done| done.iter().filter(|e| e.created).count())
        };
        let (fetched, enqueued) = tokio::join!(fetch, enqueue);
        report.enqueued += enqueued.map_err(|e| e.to_string())?;
        match fetched {
            Some(fetched) => page = fetched.map_err(describe)?,
            None => return Ok(report),
        }
    }
}

fn describe(e: CallError) -> String {
    match e {
        CallError::Refused { code, message } => format!("the inventory refused the scan ({code}): {message}"),
        CallError::Unavailable(reason) => format!("the inventory is unavailable: {reason}"),
    }
}

/// Runs the scan every `interval` while this replica leads; other replicas
/// wait to take over.
pub async fn run<S: Store + ?Sized>(store: Arc<S>, upstreams: Upstreams, interval: Duration, shutdown: Shutdown) {
    loop {
        match store.try_lead(LEADER_NAME).await {
            Ok(Some(mut leadership)) => {
                tracing::info!("leading the renewal scan");
                loop {
                    match scan_once(store.as_ref(), &upstreams).await {
                        Ok(report) if report.enqueued > 0 => {
                            tracing::info!(examined = report.examined, enqueued = report.enqueued, "renewal scan")
                        }
                        Ok(_) => {}
                        Err(reason) => tracing::warn!(%reason, "renewal scan failed; trying again next round"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = leadership.lost() => {
                            tracing::warn!("lost the renewal-scan leadership");
                            break;
                        }
                        _ = shutdown.clone().wait() => return,
                    }
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take part in the renewal-scan election"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.clone().wait() => return,
        }
    }
}
