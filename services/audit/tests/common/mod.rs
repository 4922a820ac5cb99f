//! Test harness: a fresh audit database on SQLite (a temporary directory) or
//! on PostgreSQL (a uniquely named schema in the database at
//! `CERTCTL_TEST_DATABASE_URL`), so every test starts empty and tests run in
//! parallel.

#![allow(dead_code)] // Each test binary uses its own part of the harness.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use certctl_audit::Store;
use certctl_common::db::{Database, DatabaseConfig};
use certctl_domain::audit::NewAuditEvent;
use sqlx::Connection;

/// The PostgreSQL to test against; the PostgreSQL cases are skipped without it.
pub const DATABASE_URL_ENV: &str = "CERTCTL_TEST_DATABASE_URL";

enum Backend {
    Sqlite { dir: tempfile::TempDir },
    Postgres { url: String, schema: String },
}

pub struct Harness {
    pub store: Arc<dyn Store>,
    pub db: Database,
    backend: Backend,
}

pub async fn sqlite() -> Harness {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = Database::connect(&DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() }, certctl_audit::SERVICE)
        .await
        .expect("SQLite opens");
    certctl_audit::migrate(&db).await.expect("SQLite migrates");
    Harness { store: certctl_audit::store(db.clone()), db, backend: Backend::Sqlite { dir } }
}

/// `None`, after saying so, when no test PostgreSQL is configured.
pub async fn postgres(test: &str) -> Option<Harness> {
    let Ok(url) = std::env::var(DATABASE_URL_ENV) else {
        eprintln!("skipping the PostgreSQL case of {test}: set {DATABASE_URL_ENV} to run it");
        return None;
    };
    // Database::connect uses its service argument as the schema name, which
    // gives each test a schema of its own. Process id, a counter and the
    // clock keep names unique across parallel tests and test binaries.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let schema = format!("audit_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let db =
        Database::connect(&DatabaseConfig::Postgres { url: url.clone() }, &schema).await.expect("PostgreSQL connects");
    certctl_audit::migrate(&db).await.expect("PostgreSQL migrates");
    Some(Harness { store: certctl_audit::store(db.clone()), db, backend: Backend::Postgres { url, schema } })
}

impl Harness {
    /// Another pool on the same database, as a second replica would have.
    pub async fn replica(&self) -> Arc<dyn Store> {
        let (config, name) = match &self.backend {
            Backend::Sqlite { dir } => {
                (DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() }, certctl_audit::SERVICE.to_owned())
            }
            Backend::Postgres { url, schema } => (DatabaseConfig::Postgres { url: url.clone() }, schema.clone()),
        };
        certctl_audit::store(Database::connect(&config, &name).await.expect("a second pool connects"))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// Runs SQL directly, around the store.
    pub async fn exec(&self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.db {
            Database::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            Database::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        }
    }

    /// What someone with write access to the database would do first to
    /// rewrite history.
    pub async fn remove_append_only_guard(&self) {
        let sql = if self.is_postgres() {
            "ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE chain_head DISABLE TRIGGER USER"
        } else {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
             DROP TRIGGER chain_head_forward_only"
        };
        self.exec(sql).await.expect("the owner can remove the triggers");
    }

    /// Takes the database away, as an outage would.
    pub async fn close(&self) {
        match &self.db {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }

    /// Drops the PostgreSQL schema. Only reached when the test passed, so a
    /// failing test leaves its schema behind for inspection.
    pub async fn cleanup(self) {
        self.close().await;
        if let Backend::Postgres { url, schema } = &self.backend {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("PostgreSQL connects for cleanup");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                .execute(&mut conn)
                .await
                .expect("the test schema drops");
        }
    }
}

/// An event from `inventory` with id `source_id` and otherwise typical fields.
pub fn event(source_id: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "users/alice".into(),
        action: "inventory.UpdateCertificate".into(),
        resource: "certificates/web".into(),
        event_time_micros: 1_700_000_000_000_000,
        request_id: format!("req-{source_id}"),
        details: serde_json::json!({"source_id": source_id}),
        source: "inventory".into(),
        source_id: source_id.into(),
    }
}

/// Runs each listed `async fn(&Harness)` of the including file once on SQLite
/// and once on PostgreSQL (skipped with a note when none is configured).
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let harness = $crate::common::sqlite().await;
                    super::$test(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(harness) = $crate::common::postgres(stringify!($test)).await else { return };
                    super::$test(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
    };
}
