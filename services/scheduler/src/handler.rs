//! What workers do with a job. Issuance and renewal ask the issuance service
//! for the certificate's next version, with the job id as the request id so
//! a job re-run after a crash returns the version the first run issued
//! instead of signing twice. A certificate whose targets an agent serves
//! gets its key from that agent: the job first waits for the agent's CSR,
//! and once issued, enqueues one deployment job per agent. A deployment job
//! waits for the agent's report, then records it in the inventory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use certctl_domain::job::{Job, JobError, JobKind, NewJob};
use certctl_proto::agent::TargetOutcome;
use certctl_proto::inventory::{Deployment, DeploymentState};
use tokio::sync::Semaphore;

use crate::agent_work::{self, AGENT_TIMEOUT_SECS};
use crate::store::{JobOutcome, Store};
use crate::upstream::{CallError, Placement, Upstreams};
use crate::worker::JobHandler;

/// Signing requests in flight per issuer from one worker process, so a slow
/// CA is not buried under every due renewal at once.
pub const DEFAULT_ISSUER_CONCURRENCY: usize = 16;

pub struct LifecycleHandler {
    store: Arc<dyn Store>,
    upstreams: Upstreams,
    per_issuer: usize,
    issuers: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl LifecycleHandler {
    pub fn new(store: Arc<dyn Store>, upstreams: Upstreams, per_issuer: usize) -> Self {
        Self { store, upstreams, per_issuer: per_issuer.max(1), issuers: Mutex::default() }
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
        let placement = match self.upstreams.placement(&certificate).await {
            Ok(p) => p,
            Err(e) => return unavailable_or_fail(e),
        };
        let csr = job.payload.get("csr_pem").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let agents = placement.agents();
        if csr.is_empty() && !placement.certificate.server_keyed && !agents.is_empty() {
            let [agent] = agents.as_slice() else {
                return JobOutcome::Fail(JobError::new(
                    "KEY_HOLDER_AMBIGUOUS",
                    format!(
                        "{certificate} keeps its key on the agent that deploys it, but its targets name {}: \
                         give its targets one agent, or mark it server_keyed",
                        agents.join(", ")
                    ),
                ));
            };
            let now = self.store.clock().now();
            return JobOutcome::AwaitAgent {
                reason: format!("a CSR from {agent}"),
                timeout_at: Some(now + AGENT_TIMEOUT_SECS),
                payload: Some(agent_work::request_csr(job, &placement, agent)),
            };
        }
        let outcome = self.sign(job, &certificate, &csr).await;
        if let JobOutcome::Succeeded(result) = &outcome
            && let Some(version) = result.get("version").and_then(|v| v.as_str())
            && let Err(e) = self.enqueue_deployments(&placement, version).await
        {
            // The version stays issued: the retry finds it by the job id.
            return JobOutcome::Retry(JobError::new("ENQUEUE_FAILED", e));
        }
        outcome
    }

    /// One deployment job per agent of the certificate's targets.
    async fn enqueue_deployments(&self, placement: &Placement, version: &str) -> Result<(), String> {
        let jobs: Vec<NewJob> = placement
            .agents()
            .into_iter()
            .map(|agent| {
                let targets: Vec<&str> =
                    placement.targets.iter().filter(|t| t.agent == agent).map(|t| t.name.as_str()).collect();
                let mut job = NewJob::new(JobKind::Deployment, format!("deploy:{version}:{agent}"));
                job.certificate = Some(placement.certificate.name.clone());
                job.payload = serde_json::json!({ "version": version, "deploy_to": agent, "targets": targets });
                job
            })
            .collect();
        if jobs.is_empty() {
            return Ok(());
        }
        self.store.enqueue_many(jobs).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn sign(&self, job: &Job, certificate: &str, csr: &str) -> JobOutcome {
        let certificate = certificate.to_owned();
        let csr = csr.to_owned();
        let issuer = job.payload.get("issuer").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
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
            JobKind::Deployment => self.deploy(job).await,
            JobKind::Validation => JobOutcome::Fail(JobError::new(
                "UNSUPPORTED",
                "validation jobs are not run yet: agents verify each deployment as they make it",
            )),
        }
    }
}

impl LifecycleHandler {
    /// Sends the version to the agent, then records its report.
    async fn deploy(&self, job: &Job) -> JobOutcome {
        let text = |key: &str| job.payload.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let (version, agent) = (text("version"), text("deploy_to"));
        let Some(certificate) = job.certificate.clone().filter(|_| !version.is_empty() && !agent.is_empty()) else {
            return JobOutcome::Fail(JobError::new(
                "BAD_JOB",
                "a deployment job names its certificate, version and agent",
            ));
        };
        if let Some(report) = agent_work::report_of(job) {
            return self.record_report(job, &version, report).await;
        }
        let placement = match self.upstreams.placement(&certificate).await {
            Ok(p) => p,
            Err(e) => return unavailable_or_fail(e),
        };
        if placement.certificate.server_keyed {
            return JobOutcome::Fail(JobError::new(
                "SERVER_KEYED",
                format!(
                    "{certificate} keeps its private key in the platform, and agents deploy only certificates whose \
                     key they made: turn server_keyed off so {agent} makes the key, or export the key and install \
                     it yourself"
                ),
            ));
        }
        let targets: Vec<_> = placement.targets.into_iter().filter(|t| t.agent == agent).collect();
        if targets.is_empty() {
            return JobOutcome::Succeeded(serde_json::json!({ "version": version, "targets": [] }));
        }
        let issued = match self.upstreams.version(&version).await {
            Ok(v) => v,
            Err(e) => return unavailable_or_fail(e),
        };
        let pending = targets
            .iter()
            .map(|t| Deployment {
                version: version.clone(),
                target: t.name.clone(),
                state: DeploymentState::Pending as i32,
                job: job.name(),
                ..Default::default()
            })
            .collect();
        if let Err(e) = self.upstreams.record_deployments(pending).await {
            return unavailable_or_fail(e);
        }
        let now = self.store.clock().now();
        JobOutcome::AwaitAgent {
            reason: format!("{agent} to deploy {version}"),
            timeout_at: Some(now + AGENT_TIMEOUT_SECS),
            payload: Some(agent_work::deploy(job, &agent, &issued, targets)),
        }
    }

    async fn record_report(&self, job: &Job, version: &str, report: certctl_proto::agent::DeployReport) -> JobOutcome {
        let mut failed = Vec::new();
        let deployments = report
            .results
            .iter()
            .map(|r| {
                let outcome = TargetOutcome::try_from(r.outcome).unwrap_or(TargetOutcome::Unspecified);
                let state = match outcome {
                    TargetOutcome::Deployed => DeploymentState::Deployed,
                    TargetOutcome::Verified => DeploymentState::Verified,
                    TargetOutcome::Mismatch => DeploymentState::Mismatch,
                    TargetOutcome::Failed | TargetOutcome::Unspecified => DeploymentState::Failed,
                };
                if matches!(state, DeploymentState::Failed | DeploymentState::Mismatch) {
                    failed.push(format!("{}: {}", r.target, r.message));
                }
                Deployment {
                    version: version.to_owned(),
                    target: r.target.clone(),
                    state: state as i32,
                    served_fingerprint: r.served_fingerprint.clone(),
                    message: r.message.clone(),
                    job: job.name(),
                    ..Default::default()
                }
            })
            .collect();
        if let Err(e) = self.upstreams.record_deployments(deployments).await {
            return unavailable_or_fail(e);
        }
        if failed.is_empty() {
            let targets: Vec<&str> = report.results.iter().map(|r| r.target.as_str()).collect();
            JobOutcome::Succeeded(serde_json::json!({ "version": version, "targets": targets }))
        } else {
            JobOutcome::Fail(JobError::new("DEPLOYMENT_FAILED", failed.join("; ")))
        }
    }
}

fn unavailable_or_fail(e: CallError) -> JobOutcome {
    match e {
        CallError::Unavailable(reason) => JobOutcome::Retry(JobError::new("INVENTORY_UNAVAILABLE", reason)),
        CallError::Refused { code, message } => JobOutcome::Fail(JobError::new(code, message)),
    }
}
