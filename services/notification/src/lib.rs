//! The notification service (`certctl.notification.v1`): channels, routing
//! rules, expiry alerts, durable deliveries, inboxes and daily digests.
//!
//! Layers: `model` holds the rules (routing, thresholds, backoff) with no
//! IO; `channels/` one file per channel kind behind the `Notifier` trait;
//! `store` persists everything on SQLite or PostgreSQL; `service` records
//! events as notifications with their deliveries; `delivery` sends them;
//! `scan` runs the leader-only loops (expiry scan, audit follower,
//! digests); `upstream` and `grpc` are the only modules that see proto types.
//!
//! Architecture invariant: a notification is recorded once per dedup key,
//! and its deliveries are rows that outlive any process: nothing is sent
//! from memory alone, so a restart loses nothing.

pub mod channels;
pub mod delivery;
pub mod error;
pub mod grpc;
pub mod http;
pub mod model;
pub mod scan;
pub mod service;
pub mod store;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use certctl_common::db::{ConnectError, Database};
use certctl_common::secret::MasterKey;
use certctl_common::shutdown::Shutdown;

pub use error::NotificationError;
pub use service::{Clock, Notifications};
pub use store::{PostgresStore, SqliteStore, Store};

pub const SERVICE: &str = "notification";

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub async fn migrate(db: &Database) -> Result<(), ConnectError> {
    db.migrate(SERVICE, &SQLITE_MIGRATIONS, &POSTGRES_MIGRATIONS).await
}

/// The store for an open database.
pub fn store(db: Database) -> Arc<dyn Store> {
    match db {
        Database::Sqlite(pool) => Arc::new(SqliteStore::new(pool)),
        Database::Postgres(pool) => Arc::new(PostgresStore::new(pool)),
    }
}

/// How a notification replica runs.
#[derive(Debug, Clone)]
pub struct NotificationConfig {
    pub scan: scan::ScanConfig,
    pub retry: model::RetryPolicy,
    /// How often the delivery worker looks for due deliveries queued elsewhere.
    pub delivery_poll: Duration,
    /// Bounds every HTTP request of the HTTP channels.
    pub http_timeout: Duration,
    pub clock: Clock,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        Self {
            scan: scan::ScanConfig::default(),
            retry: model::RetryPolicy::default(),
            delivery_poll: Duration::from_secs(2),
            http_timeout: Duration::from_secs(15),
            clock: Clock::system(),
        }
    }
}

/// What `build` starts: the gRPC server and the core it shares with the loops.
pub struct Built<S: Store + ?Sized> {
    pub server:
        certctl_proto::notification::notification_service_server::NotificationServiceServer<grpc::NotificationGrpc<S>>,
    pub core: Arc<Notifications<S>>,
}

/// A running notification replica: its gRPC service, the delivery worker,
/// the leader-only scan loops and the audit relay.
pub fn build<S: Store + ?Sized>(
    store: Arc<S>,
    master_key: MasterKey,
    upstreams: upstream::Upstreams,
    audit: tonic::transport::Channel,
    config: NotificationConfig,
    shutdown: Shutdown,
) -> Built<S> {
    let core = Arc::new(Notifications::new(
        store.clone(),
        master_key,
        http::HttpClient::new(config.http_timeout),
        config.clock.clone(),
        config.retry,
    ));
    tokio::spawn(certctl_outbox::run(store, audit, core.relay_wake.clone(), shutdown.clone()));
    tokio::spawn(delivery::run(core.clone(), config.delivery_poll, shutdown.clone()));
    tokio::spawn(scan::run(core.clone(), upstreams, config.scan, shutdown));
    Built { server: grpc::NotificationGrpc::new(core.clone()).into_server(), core }
}
