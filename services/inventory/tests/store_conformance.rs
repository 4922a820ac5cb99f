//! The store conformance suite: every test is a generic async fn over
//! `Arc<impl Store>`, and `conformance!` runs it once on SQLite and once on
//! PostgreSQL (when `CERTCTL_TEST_DATABASE_URL` names a server; each
//! PostgreSQL test gets a database of its own, dropped afterwards).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use certctl_common::StoreError;
use certctl_common::db::{Database, DatabaseConfig};
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::{Certificate, KeyAlgorithm, ParsedCertificate};
use certctl_inventory::store::{CertificateOrder, CertificateQuery, OutboxEntry, PostgresStore, SqliteStore, Store};
use sqlx::Connection as _;

pub const ADMIN_URL_ENV: &str = "CERTCTL_TEST_DATABASE_URL";

/// A fixed "now" for every test: far from the epoch, well inside i64.
pub const NOW: UnixTime = 1_700_000_000;
pub const DAY: i64 = 86_400;

/// Generates `sqlite::<test>` and `postgres::<test>` for each listed suite fn.
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    $crate::on_sqlite(super::$test).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    $crate::on_postgres(super::$test).await;
                }
            )+
        }
    };
}

// After the macro, so the suites see it.
#[path = "store_conformance/agents.rs"]
mod agents;
#[path = "store_conformance/certificates.rs"]
mod certificates;
#[path = "store_conformance/concurrency.rs"]
mod concurrency;
#[path = "store_conformance/deployments.rs"]
mod deployments;
#[path = "store_conformance/discovery.rs"]
mod discovery;
#[path = "store_conformance/documents.rs"]
mod documents;
#[path = "store_conformance/listing.rs"]
mod listing;
#[path = "store_conformance/renewal_times.rs"]
mod renewal_times;
#[path = "store_conformance/revocations.rs"]
mod revocations;

pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<SqliteStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = DatabaseConfig::Sqlite { data_dir: PathBuf::from(dir.path()) };
    let db = Database::connect(&config, certctl_inventory::SERVICE).await.expect("SQLite opens");
    certctl_inventory::migrate(&db).await.expect("SQLite migrates");
    let Database::Sqlite(pool) = db else { unreachable!("a SQLite config opens SQLite") };
    test(Arc::new(SqliteStore::new(pool.clone()))).await;
    pool.close().await;
}

pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<PostgresStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = match std::env::var(ADMIN_URL_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            eprintln!("note: {ADMIN_URL_ENV} is not set; skipping this PostgreSQL conformance test");
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
    let db = Database::connect(&config, certctl_inventory::SERVICE).await.expect("PostgreSQL connects");
    certctl_inventory::migrate(&db).await.expect("PostgreSQL migrates");
    let Database::Postgres(pool) = db else { unreachable!("a PostgreSQL config opens PostgreSQL") };
    // Run on a task so a failing test still gets its database dropped.
    let outcome = tokio::spawn(test(Arc::new(PostgresStore::new(pool.clone())))).await;
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
        "certctl_test_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The admin URL with its database path replaced by `database`.
fn with_database(admin: &str, database: &str) -> String {
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

#[test]
fn database_urls_keep_everything_but_the_path() {
    assert_eq!(with_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
    assert_eq!(with_database("postgres://u@h:5432", "t1"), "postgres://u@h:5432/t1");
    assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "t1"), "postgres://u:p@h/t1?sslmode=disable");
}

// ---- shared fixtures -------------------------------------------------------

/// The audit event a caller would commit with `action` on `resource`.
pub fn event(action: &str, resource: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "users/tester".into(),
        action: format!("inventory.{action}"),
        resource: resource.to_owned(),
        event_time_micros: NOW * 1_000_000,
        request_id: String::new(),
        details: serde_json::json!({"resource": resource}),
        source: "inventory".into(),
        source_id: String::new(),
    }
}

/// A pending certificate as the service would hand it to the store.
pub fn certificate(id: &str) -> Certificate {
    Certificate {
        id: id.to_owned(),
        display_name: format!("The {id} certificate"),
        common_name: format!("{id}.example.com"),
        subject_alt_names: vec![format!("{id}.example.com"), format!("www.{id}.example.com")],
        alert_lead_secs: 30 * DAY,
        create_time: NOW,
        update_time: NOW,
        ..Default::default()
    }
}

/// Stores renewal policy `renewalPolicies/{id}` whose first alert threshold
/// is `days` (the alert lead of the certificates on it); returns its name.
pub async fn policy_with_lead<S: Store>(store: &S, id: &str, days: i32) -> String {
    let policy = certctl_domain::inventory::RenewalPolicy {
        id: id.to_owned(),
        alert_threshold_days: vec![days],
        ..Default::default()
    };
    let name = format!("renewalPolicies/{id}");
    store.create_document(&policy, event("CreateRenewalPolicy", &name)).await.expect("create the policy");
    name
}

/// A parsed leaf; the store never looks inside the PEM.
pub fn parsed(serial: &str, not_before: UnixTime, not_after: UnixTime) -> ParsedCertificate {
    ParsedCertificate {
        serial_number: serial.to_owned(),
        sha256_fingerprint: format!("{serial:0>64}"),
        subject: format!("CN=serial-{serial}"),
        issuer: "CN=Test Root,O=certctl".into(),
        common_name: format!("serial-{serial}.example.com"),
        subject_alt_names: vec![format!("serial-{serial}.example.com")],
        key_algorithm: KeyAlgorithm::EcdsaP256,
        key_size: 256,
        not_before,
        not_after,
    }
}

pub fn pem(serial: &str) -> String {
    format!("-----BEGIN CERTIFICATE-----\n{serial}\n-----END CERTIFICATE-----\n")
}

/// A listing of everything, soonest expiry first, as of `NOW`.
pub fn query() -> CertificateQuery {
    CertificateQuery {
        owner: None,
        team: None,
        state: None,
        issuer: None,
        environment: None,
        expire_before: None,
        renew_before: None,
        search: None,
        order: CertificateOrder::NotAfter { descending: false },
        basic: false,
        after: None,
        limit: 1000,
        now: NOW,
    }
}

/// The ids one listing call returns, in order.
pub async fn listed_ids<S: Store>(store: &S, query: &CertificateQuery) -> Vec<String> {
    store.list_certificates(query).await.expect("list_certificates").into_iter().map(|c| c.id).collect()
}

/// Every undelivered outbox entry, oldest first.
pub async fn outbox<S: Store>(store: &S) -> Vec<OutboxEntry> {
    store.outbox_batch(100_000).await.expect("outbox_batch")
}

/// The (action, resource) of every undelivered outbox entry, oldest first.
pub async fn outbox_actions<S: Store>(store: &S) -> Vec<(String, String)> {
    outbox(store).await.into_iter().map(|e| (e.event.action, e.event.resource)).collect()
}

pub fn action(action: &str, resource: &str) -> (String, String) {
    (format!("inventory.{action}"), resource.to_owned())
}

pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, resource: &str) {
    match result {
        Err(StoreError::NotFound { resource: r }) => assert_eq!(r, resource),
        other => panic!("expected {resource} not found, got {other:?}"),
    }
}

pub fn assert_already_exists<T: std::fmt::Debug>(result: Result<T, StoreError>, resource: &str) {
    match result {
        Err(StoreError::AlreadyExists { resource: r }) => assert_eq!(r, resource),
        other => panic!("expected {resource} to already exist, got {other:?}"),
    }
}
