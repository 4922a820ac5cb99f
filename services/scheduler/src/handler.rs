//! What workers do with a job. Issuance and renewal ask the issuance service
//! for the certificate's next version, with the job id as the request id so
//! a job re-run after a crash returns the version the first run issued
//! instead of signing twice. Deployment and validation wait for agents.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use certctl_domain::job::{Job, JobError, JobKind};
use tokio::sync::Semaphore;

use crate::store::JobOutcome;
use crate::upstream::{CallError, Upstreams};
use crate::worker::JobHandler;

/// Signing requests in flight per issuer from one worker process, so a slow
/// CA is not buried under every due renewal at once.
pub const DEFAULT_ISSUER_CONCURRENCY: usize = 16;

pub struct LifecycleHandler {
    upstreams: Upstreams,
    per_issuer: usize,
    issuers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl LifecycleHandler {
    pub fn new(upstreams: Upstreams, per_issuer: usize) -> Self {
        Self { upstreams, per_issuer: per_issuer.max(1), issuers: Mutex::default() }
    }

    fn gate(&self, issuer: &str) -> Arc<Semaphore> {
        self.issuers
            .lock()
            .expect("issuer gates")
            .entry(issuer.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_issuer)))
            .clone()
    }

    async fn issue(&self, job: &Job) -> JobOutcome {
        let Some(certificate) = job.certificate.clone() else {
            return JobOutcome::Fail(JobError::new("BAD_JOB", "an issuance job must name its certificate"));
        };
        let issuer = job.payload.get("issuer").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let csr = job.payload.get("csr_pem").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let gate = self.gate(&issuer);
        let Ok(_permit) = gate.acquire().await else {
            return JobOutcome::Retry(JobError::new("SHUTTING_DOWN", "the worker is stopping"));
        };
        match self.upstreams.issue(&certificate, &csr, &job.id).await {
            Ok(version) => JobOutcome::Succeeded(serde_json::json!({ "version": version })),
            Err(CallError::Unavailable(reason)) => JobOutcome::Retry(JobError::new("ISSUER_UNAVAILABLE", reason)),
            Err(CallError::Refused { code, message })
                if code == "INVALID_ARGUMENT" && message.contains("server_keyed") =>
            {
                JobOutcome::Fail(JobError::new(
                    "NEEDS_CSR",
                    format!(
                        "{certificate} keeps its private key with its owner and no agent holds it: renew it with a \
                         CSR (`certctl cert renew {certificate} --csr FILE`) or mark it server_keyed"
                    ),
                ))
            }
            Err(CallError::Refused { code, message }) => JobOutcome::Fail(JobError::new(code, message)),
        }
    }
}

#[async_trait]
impl JobHandler for LifecycleHandler {
    async fn run(&self, job: &Job) -> JobOutcome {
        match job.kind {
            JobKind::Issuance | JobKind::Renewal => self.issue(job).await,
            JobKind::Deployment | JobKind::Validation => {
                JobOutcome::AwaitAgent { reason: "waiting for the certificate's agent".to_owned(), timeout_at: None }
            }
        }
    }
}
