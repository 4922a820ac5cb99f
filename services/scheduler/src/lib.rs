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

pub mod clock;
pub mod error;
pub mod leader;
pub mod listing;
pub mod store;
mod transition;
pub mod wakeup;
pub mod worker;

use std::time::{SystemTime, UNIX_EPOCH};

use certctl_common::db::{ConnectError, Database};
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
