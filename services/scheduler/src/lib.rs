//! The scheduler service (`certctl.scheduler.v1`): jobs, leasing, the renewal loop.
//!
//! Layers, bottom up: `certctl_domain::job` holds the state machine and the
//! retry policy; `transition` applies them to a job; `store` persists jobs on
//! SQLite or PostgreSQL and enforces leases; `worker` runs handlers over
//! claimed jobs. `listing` turns page tokens into store queries for the gRPC
//! edge.
//!
//! Architecture invariant: no proto types below the gRPC edge; the store
//! speaks domain types only and touches no other service's tables. Cancel and
//! retry commit their audit event to the outbox in the same transaction.

pub mod agent_work;
pub mod clock;
pub mod error;
pub mod grpc;
pub mod handler;
pub mod leader;
pub mod listing;
pub mod renewal_loop;
pub mod service;
pub mod store;
mod transition;
pub mod upstream;
pub mod wakeup;
pub mod worker;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certctl_common::db::{ConnectError, Database};
use certctl_common::shutdown::Shutdown;
use certctl_domain::audit::NewAuditEvent;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{LeaseLoss, SchedulerError};
pub use store::{JobOutcome, PostgresStore, SqliteStore, Store};
pub use worker::{JobHandler, Worker, WorkerConfig};

pub const SERVICE: &str = "scheduler";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Migrates the database.
pub async fn migrate(db: &Database) -> Result<(), ConnectError> {
    db.migrate(SERVICE, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await
}

/// The audit event for `action` (`CancelJob`, `RetryJob`) on a job, as
/// `cancel` and `retry` commit it.
pub fn audit_event(
    actor: &str,
    request_id: &str,
    action: &str,
    job_name: &str,
    details: serde_json::Value,
) -> NewAuditEvent {
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    NewAuditEvent {
        actor: if actor.is_empty() { "anonymous".into() } else { actor.to_owned() },
        action: format!("{SERVICE}.{action}"),
        resource: job_name.to_owned(),
        event_time_micros: micros,
        request_id: request_id.to_owned(),
        details,
        source: SERVICE.into(),
        // Random rather than the outbox row id: a restored database reuses
        // row ids, and audit would drop new events as duplicates of old ones.
        source_id: format!("{:032x}", rand::random::<u128>()),
    }
}

/// The audit event of a job that failed for good (`scheduler.JobFailed`):
/// which job, of which certificate, and why.
pub fn job_failed_event(job: &certctl_domain::job::Job) -> NewAuditEvent {
    let (code, message) = job.error.as_ref().map(|e| (e.code.clone(), e.message.clone())).unwrap_or_default();
    let details = serde_json::json!({
        "kind": job.kind.as_str(),
        "certificate": job.certificate.clone().unwrap_or_default(),
        "attempts": job.attempts,
        "error_code": code,
        "error_message": message,
    });
    audit_event("scheduler", "", "JobFailed", &job.name(), details)
}

/// How a scheduler replica runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often the renewal-scan leader walks the inventory.
    pub scan_interval: Duration,
    /// This replica's worker name (the lease owner recorded on jobs).
    pub worker_name: String,
    /// Signing requests in flight per issuer from this replica.
    pub issuer_concurrency: usize,
    /// How long a claimed job stays leased without renewal: how soon
    /// another replica resumes the jobs of one that died.
    pub lease_secs: i64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            scan_interval: Duration::from_secs(60),
            worker_name: format!("scheduler-{:08x}", rand::random::<u32>()),
            issuer_concurrency: handler::DEFAULT_ISSUER_CONCURRENCY,
            lease_secs: 60,
        }
    }
}

/// A running scheduler replica: its gRPC service, a worker, the renewal
/// loop (run while this replica leads) and the audit relay.
pub fn build<S: Store>(
    store: Arc<S>,
    upstreams: upstream::Upstreams,
    audit: tonic::transport::Channel,
    config: SchedulerConfig,
    shutdown: Shutdown,
) -> certctl_proto::scheduler::scheduler_service_server::SchedulerServiceServer<grpc::SchedulerGrpc<S>> {
    let relay_wake = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(certctl_outbox::run(Arc::new(OutboxOf(store.clone())), audit, relay_wake, shutdown.clone()));
    tokio::spawn(renewal_loop::run(store.clone(), upstreams.clone(), config.scan_interval, shutdown.clone()));
    let handler = Arc::new(handler::LifecycleHandler::new(store.clone(), upstreams.clone(), config.issuer_concurrency));
    let worker = WorkerConfig { lease_secs: config.lease_secs, ..WorkerConfig::new(config.worker_name) };
    tokio::spawn(Worker::new(store.clone(), handler, worker).run(shutdown));
    grpc::SchedulerGrpc::new(service::Scheduler { store, upstreams }).into_server()
}

/// The scheduler store's outbox, as the shared relay reads it.
struct OutboxOf<S: Store>(Arc<S>);

#[async_trait::async_trait]
impl<S: Store> certctl_outbox::Outbox for OutboxOf<S> {
    async fn outbox_batch(&self, limit: i64) -> Result<Vec<certctl_outbox::OutboxEntry>, certctl_common::StoreError> {
        let rows = self.0.outbox_batch(limit).await?;
        Ok(rows.into_iter().map(|r| certctl_outbox::OutboxEntry { id: r.id, event: r.event }).collect())
    }

    async fn outbox_ack(&self, ids: &[i64]) -> Result<(), certctl_common::StoreError> {
        self.0.outbox_ack(ids).await
    }
}
