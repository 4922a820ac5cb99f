//! The scheduler's storage: the `Store` trait, a SQLite and a PostgreSQL
//! implementation expanded from the same SQL (`sql.rs`, with the two places
//! the backends differ in `sqlite.rs` and `postgres.rs`), and one conformance
//! suite (`tests/store_conformance.rs`) that runs against both.
//!
//! The store is where leases are enforced: every call that reports on leased
//! work names the lease (`LeaseRef`), and the store refuses it with
//! `SchedulerError::LeaseLost` unless that lease is the job's current one.
//! The state machine itself is `certctl_domain::job`; `transition.rs` applies
//! it and this layer persists the result with a timeline entry.

mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::job::{Job, JobError, JobKind, JobState, JobTransition, NewJob, RetryPolicy};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::clock::Clock;
use crate::error::Result;
use crate::leader::Leadership;
use crate::wakeup::Wakeups;

/// The result of enqueueing one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    /// The job stored under the idempotency key: the new one, or the one an
    /// earlier enqueue created.
    pub job: Job,
    /// True when this call created the job.
    pub created: bool,
}

/// The lease a worker holds on a running job, as it names it when reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRef {
    pub job_id: String,
    pub token: String,
}

impl LeaseRef {
    /// The lease of a job returned by `claim` (or `resume` to Running).
    pub fn of(job: &Job) -> Option<Self> {
        job.lease.as_ref().map(|l| Self { job_id: job.id.clone(), token: l.token.clone() })
    }
}

/// How an attempt ended, as a handler or an agent reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// Done; the value is stored as the job's result.
    Succeeded(serde_json::Value),
    /// This attempt failed but another may succeed: Pending again after the
    /// retry policy's backoff, or Failed when no attempts are left.
    Retry(JobError),
    /// Failed for good, whatever attempts are left (bad input, policy refusal).
    Fail(JobError),
    /// Waiting for an agent: the lease is released. `resume` continues the
    /// attempt; if `timeout_at` passes first, a worker claims the job again
    /// (as a new attempt) to decide what to do. `payload`, when given,
    /// replaces the job's: one that names `agent` (`agents/{id}`) and a
    /// `command` is work that agent's hub hears of (`agent_work`).
    AwaitAgent { reason: String, timeout_at: Option<UnixTime>, payload: Option<serde_json::Value> },
}

/// One report of leased work.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub lease: LeaseRef,
    pub outcome: JobOutcome,
}

/// Where `resume` sends a job that waited for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Due now, for any worker to claim.
    Pending,
    /// Leased at once to `worker` (for a caller that finishes the work itself).
    Running { worker: String, lease_secs: i64 },
}

/// Filters of a job listing; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<JobKind>,
    /// `certificates/{id}`.
    pub certificate: Option<String>,
}

/// The position after the last job of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    pub create_time: UnixTime,
    pub id: String,
}

/// One page of a listing, in (create_time, id) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    pub filter: JobFilter,
    pub newest_first: bool,
    pub after: Option<JobCursor>,
    pub limit: i64,
}

/// One row of the audit outbox (the same table shape as every service's).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub event: NewAuditEvent,
}

/// The scheduler's persistence. Times come from the store's `Clock`, so the
/// store, the worker loop and a test agree on "now".
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The clock every call of this store reads.
    fn clock(&self) -> Arc<dyn Clock>;
    /// The backoff `Retry` outcomes follow, and the default `max_attempts`.
    fn retry_policy(&self) -> RetryPolicy;

    /// Enqueues one job; see `enqueue_many`.
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let mut done = self.enqueue_many(vec![job]).await?;
        done.pop().ok_or_else(|| StoreError::Internal("enqueue returned no job".into()).into())
    }

    /// Enqueues jobs in one transaction, in input order. A job whose
    /// idempotency key is already stored (or repeated earlier in `jobs`) is
    /// not inserted: its entry is the stored job with `created: false`.
    /// Invalid jobs fail the whole call with INVALID_ARGUMENT naming
    /// `jobs[i].<field>`. Wakes idle workers when anything was created.
    async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>>;

    /// Leases up to `limit` runnable jobs to `worker` for `lease_secs`:
    /// Pending jobs whose `run_at` has come, Running jobs whose lease expired
    /// and AwaitingAgent jobs whose timeout passed, soonest due first. Each
    /// becomes Running with `attempts + 1` and a fresh lease token. A job
    /// claimed past its last attempt (its worker kept dying) becomes Failed
    /// instead and is not returned. Concurrent callers never get the same job.
    async fn claim(&self, worker: &str, limit: usize, lease_secs: i64) -> Result<Vec<Job>>;

    /// Moves the lease's expiry to `now + lease_secs` and returns it. Refused
    /// with `LeaseLost` once the lease expired, even if nobody claimed the job
    /// yet: a worker that missed its renewal must assume the job is gone.
    async fn extend_lease(&self, lease: &LeaseRef, lease_secs: i64) -> Result<UnixTime>;

    /// Records outcomes of leased work in one transaction. The outer error is
    /// a database failure (nothing was written); each inner result is that
    /// report's: the job as it now is, or why it was refused (`LeaseLost`,
    /// NOT_FOUND). An outcome is accepted after the lease expired as long as
    /// no other worker claimed the job since: the work is done, and nobody
    /// else is doing it.
    async fn report(&self, reports: Vec<Report>) -> Result<Vec<Result<Job>>>;

    /// Reports one outcome; see `report`.
    async fn report_one(&self, lease: &LeaseRef, outcome: JobOutcome) -> Result<Job> {
        let mut done = self.report(vec![Report { lease: lease.clone(), outcome }]).await?;
        done.pop().ok_or_else(|| StoreError::Internal("report returned no result".into()))?
    }

    /// Succeeded with `result`.
    async fn succeed(&self, lease: &LeaseRef, result: serde_json::Value) -> Result<Job> {
        self.report_one(lease, JobOutcome::Succeeded(result)).await
    }

    /// This attempt failed: retried after a backoff while attempts are left,
    /// otherwise Failed.
    async fn fail(&self, lease: &LeaseRef, error: JobError) -> Result<Job> {
        self.report_one(lease, JobOutcome::Retry(error)).await
    }

    /// Releases the lease while an agent does its part.
    async fn await_agent(&self, lease: &LeaseRef, reason: &str, timeout_at: Option<UnixTime>) -> Result<Job> {
        self.report_one(lease, JobOutcome::AwaitAgent { reason: reason.to_owned(), timeout_at, payload: None }).await
    }

    /// Continues a job that awaits an agent, with the agent's answer as the
    /// new payload if given. The interrupted attempt continues: resuming does
    /// not use up another attempt. FAILED_PRECONDITION unless AwaitingAgent.
    async fn resume(&self, id: &str, payload: Option<serde_json::Value>, to: Resume) -> Result<Job>;

    /// Cancels a Pending, Running or AwaitingAgent job, releasing any lease
    /// (its worker's next renewal or report is refused). Commits `event` to
    /// the audit outbox with the change.
    async fn cancel(&self, id: &str, reason: &str, event: NewAuditEvent) -> Result<Job>;

    /// Runs a Failed or Cancelled job again from scratch: Pending, due now,
    /// attempts reset. Commits `event` to the audit outbox with the change.
    async fn retry(&self, id: &str, event: NewAuditEvent) -> Result<Job>;

    async fn get(&self, id: &str) -> Result<Job>;
    /// The job stored under an idempotency key.
    async fn find_by_idempotency_key(&self, key: &str) -> Result<Option<Job>>;
    /// One page of jobs; see `crate::listing` for page tokens.
    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>>;
    /// How many jobs are in each state (states with none are absent).
    async fn count_by_state(&self) -> Result<BTreeMap<JobState, i64>>;
    /// A job's transitions, oldest first, after `after_seq`.
    async fn timeline(&self, id: &str, after_seq: Option<i64>, limit: i64) -> Result<Vec<JobTransition>>;

    /// Jobs awaiting `agent` (`agents/{id}`), in id order after `after_id`.
    async fn agent_work(&self, agent: &str, after_id: Option<&str>, limit: i64) -> Result<Vec<Job>>;

    /// Names agents as jobs start waiting for them, from this store or
    /// (PostgreSQL) any replica. `EVERY_AGENT` means notices may have been
    /// lost; so does a lagging receiver. Either way, look for every agent.
    fn agent_notices(&self) -> tokio::sync::broadcast::Receiver<String>;

    /// The earliest moment some job becomes claimable (a `run_at`, a lease
    /// expiry or an agent timeout), possibly in the past; `None` when nothing
    /// is scheduled. An idle worker sleeps until then or until a wake-up.
    async fn next_run_at(&self) -> Result<Option<UnixTime>>;

    /// Fires when jobs become runnable through this store or (PostgreSQL) any
    /// replica: enqueued, retried or resumed.
    fn wakeups(&self) -> Wakeups;

    /// Tries to become the one leader for `name` (a singleton loop such as
    /// the renewal scan) among all replicas. `None`: someone else leads.
    /// Leadership lasts until the guard is dropped or `Leadership::lost` fires.
    async fn try_lead(&self, name: &str) -> Result<Option<Leadership>>;

    /// The oldest undelivered audit events.
    async fn outbox_batch(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError>;
    async fn outbox_ack(&self, ids: &[i64]) -> Result<(), StoreError>;
}

/// The channel PostgreSQL replicas notify each other on.
pub const WAKE_CHANNEL: &str = "certctl_scheduler_jobs";
/// The channel that names agents with new work (the payload is the agent).
pub const AGENT_WORK_CHANNEL: &str = "certctl_scheduler_agent_work";

/// An agent notice that stands for every agent: notices may have been missed.
pub const EVERY_AGENT: &str = "*";

/// The agent a job waits for, from its payload.
pub fn awaited_agent(job: &Job) -> Option<&str> {
    if job.state != JobState::AwaitingAgent {
        return None;
    }
    job.payload.get("agent").and_then(|a| a.as_str()).filter(|a| !a.is_empty())
}
