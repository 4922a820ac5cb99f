//! What the scheduler's test crates share: a store on a fresh SQLite file or
//! a throwaway PostgreSQL database, on a manual clock, plus replicas of it
//! (more stores on the same database, as other scheduler processes would be).

// Each test crate uses a different subset.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use certctl_common::db::{Database, DatabaseConfig};
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::job::{Job, JobKind, NewJob};
use certctl_scheduler::clock::{Clock, ManualClock};
use certctl_scheduler::store::{PostgresStore, SqliteStore, Store};
use sqlx::Connection as _;
use sqlx::postgres::PgPoolOptions;

pub const ADMIN_URL_ENV: &str = "CERTCTL_TEST_DATABASE_URL";
/// The manual clock's start.
pub const T0: i64 = 1_700_000_000;

/// A store backend the suites run on, and how to open another process's
/// view of the same database.
#[async_trait]
pub trait Backend: Store + Sized {
    const NAME: &'static str;
    async fn replica(&self, clock: Arc<dyn Clock>) -> Self;
}

#[async_trait]
impl Backend for SqliteStore {
    const NAME: &'static str = "sqlite";
    /// One process owns a SQLite file: a replica is a clone sharing the pool
    /// and the in-process wake-ups.
    async fn replica(&self, clock: Arc<dyn Clock>) -> Self {
        self.clone().with_clock(clock)
    }
}

#[async_trait]
impl Backend for PostgresStore {
    const NAME: &'static str = "postgres";
    async fn replica(&self, clock: Arc<dyn Clock>) -> Self {
        let options = (*self.pool().connect_options()).clone();
        let pool = PgPoolOptions::new().max_connections(8).connect_with(options).await.expect("a replica pool");
        PostgresStore::new(pool).with_clock(clock).with_leader_ping(Duration::from_millis(200))
    }
}

/// A store on a manual clock, and replicas on the same clock.
pub struct TestDb<S> {
    pub store: Arc<S>,
    pub clock: Arc<ManualClock>,
}

impl<S: Backend> TestDb<S> {
    pub async fn replica(&self) -> Arc<S> {
        Arc::new(self.store.replica(self.clock.clone()).await)
    }
}

pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb<SqliteStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = DatabaseConfig::Sqlite { data_dir: dir.path().to_path_buf() };
    let db = Database::connect(&config, certctl_scheduler::SERVICE).await.expect("SQLite opens");
    certctl_scheduler::migrate(&db).await.expect("SQLite migrates");
    let Database::Sqlite(pool) = db else { unreachable!("a SQLite config opens SQLite") };
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(SqliteStore::new(pool.clone()).with_clock(clock.clone()));
    test(TestDb { store, clock }).await;
    pool.close().await;
}

pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb<PostgresStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = match std::env::var(ADMIN_URL_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!("note: {ADMIN_URL_ENV} is not set; skipping this PostgreSQL test");
            return;
        }
    };
    let name = unique_database_name();
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("the test PostgreSQL answers");
    // The name is ours (letters, digits, underscores), never user input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let config = DatabaseConfig::Postgres { url: with_database(&admin, &name) };
    let db = Database::connect(&config, certctl_scheduler::SERVICE).await.expect("PostgreSQL connects");
    certctl_scheduler::migrate(&db).await.expect("PostgreSQL migrates");
    let Database::Postgres(pool) = db else { unreachable!("a PostgreSQL config opens PostgreSQL") };
    let clock = Arc::new(ManualClock::new(T0));
    let store = PostgresStore::new(pool.clone()).with_clock(clock.clone()).with_leader_ping(Duration::from_millis(200));
    // On a task so a failing test still gets its database dropped.
    let outcome = tokio::spawn(test(TestDb { store: Arc::new(store), clock })).await;
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut conn)
        .await
        .expect("DROP DATABASE");
    conn.close().await.ok();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn unique_database_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_nanos();
    format!(
        "certctl_sched_test_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The admin URL with its database path replaced by `database`.
pub fn with_database(admin: &str, database: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

// ---- fixtures ----------------------------------------------------------------

pub fn new_job(key: &str) -> NewJob {
    NewJob { payload: serde_json::json!({ "key": key }), ..NewJob::new(JobKind::Renewal, key) }
}

pub async fn enqueue<S: Store>(store: &S, key: &str) -> Job {
    store.enqueue(new_job(key)).await.expect("enqueue").job
}

pub fn event(action: &str, resource: &str) -> NewAuditEvent {
    certctl_scheduler::audit_event("users/tester", "req-1", action, resource, serde_json::json!({}))
}

/// Polls `check` every 20 ms until it is true; fails the test after 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Generates `sqlite::<test>` and `postgres::<test>` for each listed suite fn.
#[macro_export]
macro_rules! on_both {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::support::on_sqlite(super::$test).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    $crate::support::on_postgres(super::$test).await;
                }
            )+
        }
    };
}
