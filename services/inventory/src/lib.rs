//! The inventory service (`certctl.inventory.v1`): managed certificates and
//! their versions, owners, teams, targets, agents and renewal policies.
//!
//! Architecture invariant: only `grpc.rs` sees proto types; the store never
//! sees anything but domain types; no other service's tables are touched.
//! Every mutation commits its audit event in the same transaction (outbox).

pub mod grpc;
pub mod service;
pub mod store;

use std::sync::Arc;

use certctl_common::db::{ConnectError, Database};
use certctl_common::shutdown::Shutdown;

pub use service::Inventory;

pub const SERVICE: &str = "inventory";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Migrates the database.
pub async fn migrate(db: &Database) -> Result<(), ConnectError> {
    db.migrate(SERVICE, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await
}

/// A running inventory: its gRPC service and the outbox relay towards audit.
pub fn build<S: store::Store>(
    store: Arc<S>,
    audit: tonic::transport::Channel,
    shutdown: Shutdown,
) -> certctl_proto::inventory::inventory_service_server::InventoryServiceServer<grpc::InventoryGrpc<S>> {
    let inventory = Inventory::new(store.clone());
    tokio::spawn(finish_data_migrations(store.clone(), shutdown.clone()));
    tokio::spawn(certctl_outbox::run(store, audit, inventory.outbox_wake(), shutdown));
    grpc::InventoryGrpc::new(inventory).into_server()
}

/// Runs what the SQL migrations left to the service (`Store::run_data_migrations`)
/// next to serving, retrying until it is done.
async fn finish_data_migrations<S: store::Store>(store: Arc<S>, shutdown: Shutdown) {
    loop {
        match store.run_data_migrations().await {
            Ok(done) => {
                for name in done {
                    tracing::info!(migration = %name, "finished a data migration");
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "a data migration failed; retrying in 30 s"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
            _ = shutdown.clone().wait() => return,
        }
    }
}
