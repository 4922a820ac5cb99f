//! The issuance service (`certctl.issuance.v1`): issuers behind one
//! registry (the Local CA today), profiles, signing, server-side keys,
//! revocation, CRLs and OCSP.
//!
//! Wiring, from a server binary: connect the database, `migrate`, build the
//! `Issuance` core over `store(db)`, call `Issuance::start` (checks the
//! master key, seeds profiles and the default Local CA), then `build`.
//!
//! Architecture invariants: only `grpc.rs` and `inventory.rs` see proto
//! types; private keys are in the database only sealed under the master key;
//! every signature and revocation commits its audit event in the same
//! transaction (outbox); the inventory learns of every version and
//! revocation, late if it was down, never twice.

pub mod batch;
pub mod grpc;
pub mod inventory;
pub mod issuers;
pub mod revocation;
pub mod service;
pub mod store;

use std::sync::Arc;

use certctl_common::db::{ConnectError, Database};
use certctl_common::shutdown::Shutdown;

pub use service::{Issuance, IssuanceConfig, IssuanceError};

pub const SERVICE: &str = "issuance";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Migrates the database.
pub async fn migrate(db: &Database) -> Result<(), ConnectError> {
    db.migrate(SERVICE, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await
}

/// The store for whichever backend `db` is.
pub fn store(db: Database) -> Arc<dyn store::Store> {
    match db {
        Database::Sqlite(pool) => Arc::new(store::SqliteStore::new(pool)),
        Database::Postgres(pool) => Arc::new(store::PostgresStore::new(pool)),
    }
}

/// A running issuance service: its gRPC server, the audit relay and the
/// background loops (inventory sync, CRL re-signing).
pub fn build(
    issuance: Issuance,
    audit: tonic::transport::Channel,
    shutdown: Shutdown,
) -> certctl_proto::issuance::issuance_service_server::IssuanceServiceServer<grpc::IssuanceGrpc> {
    tokio::spawn(certctl_outbox::run(issuance.store.clone(), audit, issuance.outbox_wake(), shutdown.clone()));
    tokio::spawn(issuance.clone().run_background(shutdown));
    grpc::IssuanceGrpc::new(issuance).into_server()
}
