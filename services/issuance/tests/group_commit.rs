//! Group commit of signed certificates (`batch.rs`), on SQLite and, when
//! `CERTCTL_TEST_DATABASE_URL` is set, PostgreSQL: many concurrent signings
//! each land exactly once with their audit event, repeated request ids get
//! the first certificate, and a batch that fails fails only the caller at
//! fault.
//!
//! These tests use the issuance core and its store directly: signing without
//! a managed certificate never calls the inventory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use certctl_common::StoreError;
use certctl_common::caller::Caller;
use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::secret::MasterKey;
use certctl_domain::audit::NewAuditEvent;
use certctl_issuance::batch::IssuedWriter;
use certctl_issuance::issuers::IssuerContext;
use certctl_issuance::service::SignInput;
use certctl_issuance::store::{IssuedRecord, Store};
use certctl_issuance::{Issuance, IssuanceConfig};
use certctl_pki::KeyType;
use sqlx::Connection as _;
use tokio::sync::Notify;

const ADMIN_URL_ENV: &str = "CERTCTL_TEST_DATABASE_URL";

/// An issuance database on each available backend, migrated.
async fn databases() -> Vec<(String, Database, tempfile::TempDir)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let config = DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() };
    out.push(("sqlite".to_owned(), connect(&config).await, dir));
    match std::env::var(ADMIN_URL_ENV) {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("certctl_issuance_batch_{:016x}", rand::random::<u64>());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
            let (base, _) = admin.rsplit_once('/').expect("the admin URL ends in /database");
            let config = DatabaseConfig::Postgres { url: format!("{base}/{name}") };
            out.push((name, connect(&config).await, tempfile::tempdir().unwrap()));
        }
        _ => eprintln!("{ADMIN_URL_ENV} is not set: PostgreSQL variants skipped"),
    }
    out
}

async fn connect(config: &DatabaseConfig) -> Database {
    let db = Database::connect(config, certctl_issuance::SERVICE).await.unwrap();
    certctl_issuance::migrate(&db).await.unwrap();
    db
}

async fn drop_database(label: &str) {
    if let (Ok(admin), true) = (std::env::var(ADMIN_URL_ENV), label.starts_with("certctl_")) {
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        let _ =
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {label} WITH (FORCE)"))).execute(&mut conn).await;
    }
}

fn csr(cn: &str) -> String {
    let key = KeyType::EcdsaP256.generate().unwrap();
    certctl_pki::build_csr(&key, cn, &[cn.to_owned()]).unwrap()
}

/// The audit events waiting in the outbox, by action.
async fn outbox_events(store: &dyn Store) -> Vec<NewAuditEvent> {
    store.outbox_batch(1_000_000).await.unwrap().into_iter().map(|e| e.event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signings_land_once_each_with_their_audit_event() {
    for (label, db, _dir) in databases().await {
        let store = certctl_issuance::store(db);
        // Nothing listens there: signing without `certificate` never asks the inventory.
        let nowhere = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        let core = Issuance::new(
            store.clone(),
            certctl_issuance::inventory::Inventory::new(nowhere),
            IssuanceConfig {
                context: IssuerContext {
                    master_key: MasterKey::generate(),
                    public_url: "http://127.0.0.1:9".to_owned(),
                },
                crl_lifetime_secs: 3600,
            },
        );
        core.start().await.unwrap();

        // 300 signings without a request id, and 40 request ids sent 3 times each.
        let mut calls = Vec::new();
        for i in 0..300 {
            calls.push((format!("plain-{i}.example.com"), String::new()));
        }
        for i in 0..40 {
            for _ in 0..3 {
                calls.push((format!("retried-{i}.example.com"), format!("request-{i}")));
            }
        }
        let mut tasks = Vec::new();
        for (cn, request_id) in calls {
            let (core, csr_pem) = (core.clone(), csr(&cn));
            tasks.push(tokio::spawn(async move {
                let caller = Caller { actor: "tester".to_owned(), request_id: String::new() };
                let input = SignInput {
                    issuer: "issuers/local".to_owned(),
                    csr_pem,
                    request_id: request_id.clone(),
                    ..Default::default()
                };
                (cn, request_id, core.sign(&caller, input).await)
            }));
        }
        let mut by_request: HashMap<String, HashSet<String>> = HashMap::new();
        let mut plain_serials = HashSet::new();
        for task in tasks {
            let (cn, request_id, outcome) = task.await.unwrap();
            let issued = outcome.unwrap_or_else(|e| panic!("{label}: signing {cn}: {e}"));
            assert_eq!(issued.common_name, cn, "{label}");
            if request_id.is_empty() {
                assert!(plain_serials.insert(issued.serial), "{label}: a serial was handed out twice");
            } else {
                by_request.entry(request_id).or_default().insert(issued.serial);
            }
        }
        assert_eq!(by_request.len(), 40, "{label}");
        for (id, serials) in &by_request {
            assert_eq!(serials.len(), 1, "{label}: the callers of {id} got different certificates: {serials:?}");
        }

        // Stored exactly once each: 300 + 40 certificates.
        let mut stored: Vec<IssuedRecord> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store.list_issued("local", false, after.as_deref(), 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.serial.clone());
            stored.extend(page);
        }
        assert_eq!(stored.len(), 340, "{label}");
        let expected: HashSet<String> =
            plain_serials.iter().cloned().chain(by_request.values().flatten().cloned()).collect();
        assert_eq!(stored.iter().map(|r| r.serial.clone()).collect::<HashSet<_>>(), expected, "{label}");

        // One SignCertificate event per stored certificate, naming it.
        let events = outbox_events(store.as_ref()).await;
        let signed: Vec<&NewAuditEvent> = events.iter().filter(|e| e.action == "SignCertificate").collect();
        assert_eq!(signed.len(), 340, "{label}");
        let named: HashSet<&str> = signed.iter().map(|e| e.resource.as_str()).collect();
        assert_eq!(named.len(), 340, "{label}: an event was recorded twice");
        for record in &stored {
            assert!(named.contains(record.name().as_str()), "{label}: no event for {}", record.name());
        }
        let stats = core.writer_stats();
        assert_eq!(stats.records.load(Ordering::Relaxed), 420, "{label}: every signing went through the writer");
        drop(core);
        drop_database(&label).await;
    }
}

/// A signed certificate as the service would record it, and its event.
fn record(serial: &str, request_id: Option<&str>) -> (IssuedRecord, NewAuditEvent) {
    let record = IssuedRecord {
        issuer_id: "local".to_owned(),
        serial: serial.to_owned(),
        authority_id: "intermediate-1".to_owned(),
        pem_chain: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_owned(),
        common_name: format!("{serial}.example.com"),
        subject_alt_names: vec![format!("{serial}.example.com")],
        profile_id: "tls-server".to_owned(),
        certificate_id: None,
        certificate_version: None,
        request_id: request_id.map(str::to_owned),
        not_before: 1_000,
        not_after: 2_000,
        sealed_key: None,
        server_keyed: false,
        revocation: None,
        revocation_synced: true,
        create_time: 1_000,
    };
    let event = NewAuditEvent {
        actor: "tester".to_owned(),
        action: "SignCertificate".to_owned(),
        resource: record.name(),
        event_time_micros: 1_000_000_000,
        request_id: String::new(),
        details: serde_json::json!({}),
        source: "issuance".to_owned(),
        source_id: format!("{:032x}", rand::random::<u128>()),
    };
    (record, event)
}

/// Queues `calls` on a writer that is not running yet, so they all fall in
/// one batch, then runs it and returns each call's outcome.
async fn one_batch(
    store: Arc<dyn Store>,
    calls: Vec<(IssuedRecord, NewAuditEvent)>,
) -> (Vec<(IssuedRecord, Result<IssuedRecord, StoreError>)>, u64) {
    let (writer, task) = IssuedWriter::new(store, Arc::new(Notify::new()), 256);
    let n = calls.len();
    let mut tasks = Vec::new();
    for (record, event) in calls {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move { (record.clone(), writer.write(record, event).await) }));
    }
    while writer.queued() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::spawn(task.run());
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    (out, writer.stats().largest_batch.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_fails_only_the_caller_at_fault() {
    for (label, db, _dir) in databases().await {
        let store = certctl_issuance::store(db);
        // Already stored: a request id the batch repeats.
        let (earlier, earlier_event) = record("0a", Some("earlier"));
        assert_eq!(store.insert_issued(std::slice::from_ref(&earlier), &[earlier_event]).await.unwrap(), [true]);

        let mut calls: Vec<_> = (0..50).map(|i| record(&format!("1{i:03x}"), None)).collect();
        // Two requests for the same serial: one of them cannot be stored.
        calls.push(record("ff01", None));
        calls.push(record("ff01", None));
        // A repeat of a stored request, and a request id twice in the batch.
        calls.push(record("0b", Some("earlier")));
        calls.push(record("0c", Some("twice")));
        calls.push(record("0d", Some("twice")));
        let (outcomes, largest) = one_batch(store.clone(), calls).await;
        assert_eq!(largest, 55, "{label}: the calls were written as one batch");

        let mut failed = Vec::new();
        let mut twice = HashSet::new();
        for (asked, outcome) in &outcomes {
            match (asked.request_id.as_deref(), outcome) {
                (_, Err(e)) => failed.push((asked.serial.clone(), e.to_string(), e)),
                (Some("earlier"), Ok(got)) => assert_eq!(got, &earlier, "{label}: the stored certificate"),
                (Some("twice"), Ok(got)) => {
                    twice.insert(got.serial.clone());
                }
                (_, Ok(got)) => assert_eq!(got, asked, "{label}"),
            }
        }
        assert_eq!(failed.len(), 1, "{label}: only the repeated serial fails: {failed:?}");
        let (serial, message, error) = &failed[0];
        assert_eq!(serial, "ff01", "{label}");
        assert!(matches!(error, StoreError::AlreadyExists { .. }), "{label}: {message}");
        assert!(message.contains("issuers/local/issuedCertificates/ff01"), "{label}: {message}");
        assert_eq!(twice.len(), 1, "{label}: both callers of `twice` got the same certificate");

        // Stored: the earlier one, 50, one ff01 and one of 0c/0d; an event each.
        let stored = store.list_issued("local", false, None, 1000).await.unwrap();
        assert_eq!(stored.len(), 53, "{label}: {:?}", stored.iter().map(|r| &r.serial).collect::<Vec<_>>());
        let events = outbox_events(store.as_ref()).await;
        assert_eq!(events.len(), 53, "{label}");
        let named: HashSet<String> = events.iter().map(|e| e.resource.clone()).collect();
        assert_eq!(named, stored.iter().map(IssuedRecord::name).collect::<HashSet<_>>(), "{label}");
        drop(store);
        drop_database(&label).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_database_fails_every_caller_with_that() {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(&DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() }).await;
    let Database::Sqlite(pool) = &db else { unreachable!() };
    pool.close().await;
    let store = certctl_issuance::store(db);
    let calls: Vec<_> = (0..5).map(|i| record(&format!("2{i}"), None)).collect();
    let (outcomes, _) = one_batch(store, calls).await;
    for (asked, outcome) in outcomes {
        match outcome {
            Err(StoreError::Unavailable(_)) => {}
            other => panic!("{}: expected UNAVAILABLE, got {other:?}", asked.serial),
        }
    }
}
