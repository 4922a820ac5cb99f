//! The renewal loop: one replica at a time (the leader of `renewal-scan`)
//! walks the inventory and enqueues an issuance job for every managed
//! certificate without a version and a renewal job for every version whose
//! renewal time (`certctl_domain::renewal`) has come. Jobs are keyed by
//! certificate and version, so a re-scan, a second leader after a failover or
//! a manual renewal never creates a second job for the same version.

use std::sync::Arc;
use std::time::Duration;

use certctl_common::shutdown::Shutdown;
use certctl_domain::issuance::MAX_PROFILE_LIFETIME_SECS;
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

/// The job a certificate needs now, if any.
pub fn due_job(certificate: &Managed, policy: &certctl_domain::inventory::RenewalPolicy, now: i64) -> Option<NewJob> {
    if let Some((version, not_before, not_after)) = certificate.current
        && renewal::renewal_time(policy, &certificate.id, version, not_before, not_after) > now
    {
        return None;
    }
    next_version_job(certificate)
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

/// Scans the inventory once and enqueues what is due.
pub async fn scan_once<S: Store + ?Sized>(store: &S, upstreams: &Upstreams) -> Result<ScanReport, String> {
    let now = store.clock().now();
    let mut report = ScanReport::default();
    // Pending certificates sort last by expiry; they get a pass of their own.
    for pending in [true, false] {
        let mut token = String::new();
        loop {
            let (page, next) = upstreams.certificates(&token, pending).await.map_err(describe)?;
            let mut jobs = Vec::new();
            let mut past_horizon = false;
            for certificate in &page {
                report.examined += 1;
                if let Some((_, _, not_after)) = certificate.current
                    && not_after - now > MAX_PROFILE_LIFETIME_SECS
                {
                    // Nothing this far from expiry can be due: no profile
                    // issues lifetimes this long.
                    past_horizon = true;
                    break;
                }
                let policy = upstreams.policy(&certificate.renewal_policy, now).await.map_err(describe)?;
                jobs.extend(due_job(certificate, &policy, now));
            }
            if !jobs.is_empty() {
                let enqueued = store.enqueue_many(jobs).await.map_err(|e| e.to_string())?;
                report.enqueued += enqueued.iter().filter(|e| e.created).count();
            }
            if next.is_empty() || past_horizon {
                break;
            }
            token = next;
        }
    }
    Ok(report)
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
