//! The audit service (`certctl.audit.v1`): the platform's append-only,
//! hash-chained audit trail.
//!
//! Services write their audit events to an outbox in the same transaction as
//! the change they describe; a relay hands them to `AuditIngestService`,
//! which links each onto the chain exactly once (idempotent on
//! `(source, source_id)`). `AuditService` reads, verifies and exports the
//! chain.
//!
//! Wiring, from a server binary:
//!
//! ```no_run
//! # async fn wire(config: certctl_common::db::DatabaseConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let db = certctl_common::db::Database::connect(&config, certctl_audit::SERVICE).await?;
//! certctl_audit::migrate(&db).await?;
//! let (audit, ingest) = certctl_audit::build(certctl_audit::store(db));
//! tonic::transport::Server::builder().add_service(audit).add_service(ingest);
//! # Ok(()) }
//! ```
//!
//! `build` returns two servers over one core so the ingest API, which is
//! internal, can be mounted on a listener the gateway does not expose.
//!
//! Architecture invariants: only `grpc.rs` sees proto types; the store sees
//! only domain types and has no way to change or remove an event; appends are
//! serialised in the database, so any number of replicas may ingest at once.

pub mod export;
pub mod grpc;
pub mod service;
pub mod store;

use std::sync::Arc;

use certctl_common::db::{ConnectError, Database};
use certctl_proto::audit::audit_ingest_service_server::AuditIngestServiceServer;
use certctl_proto::audit::audit_service_server::AuditServiceServer;

pub use service::Audit;
pub use store::{PostgresStore, SqliteStore, Store};

pub const SERVICE: &str = "audit";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Migrates the database.
pub async fn migrate(db: &Database) -> Result<(), ConnectError> {
    db.migrate(SERVICE, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await
}

/// The store for whichever backend `db` is.
pub fn store(db: Database) -> Arc<dyn Store> {
    match db {
        Database::Sqlite(pool) => Arc::new(SqliteStore::new(pool)),
        Database::Postgres(pool) => Arc::new(PostgresStore::new(pool)),
    }
}

/// The audit service's two gRPC servers, sharing one core: the public
/// `AuditService` and the internal `AuditIngestService`.
pub fn build<S: Store + ?Sized>(
    store: Arc<S>,
) -> (AuditServiceServer<grpc::AuditGrpc<S>>, AuditIngestServiceServer<grpc::AuditIngestGrpc<S>>) {
    let audit = Audit::new(store);
    (grpc::AuditGrpc::new(audit.clone()).into_server(), grpc::AuditIngestGrpc::new(audit).into_server())
}
