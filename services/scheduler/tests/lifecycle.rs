//! The whole lifecycle with no agent: audit, inventory, issuance and the
//! scheduler as real gRPC servers on loopback. A server-keyed certificate
//! with a five-minute lifetime is issued by a job and renewed by the
//! renewal loop when the scheduler's clock reaches its renewal time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::shutdown::{self, Shutdown, ShutdownTrigger};
use certctl_proto::inventory as inv;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::issuance as iss;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use certctl_proto::scheduler as pb;
use certctl_proto::scheduler::scheduler_service_client::SchedulerServiceClient;
use certctl_scheduler::{Clock, ManualClock, SchedulerConfig};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};

async fn serve(routes: tonic::service::Routes, stop: Shutdown) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), stop.wait())
            .await
            .unwrap();
    });
    addr
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
}

struct Platform {
    _dir: tempfile::TempDir,
    _trigger: ShutdownTrigger,
    clock: Arc<ManualClock>,
    inventory: InventoryServiceClient<Channel>,
    issuance: IssuanceServiceClient<Channel>,
    scheduler: SchedulerServiceClient<Channel>,
}

async fn platform() -> Platform {
    let dir = tempfile::tempdir().unwrap();
    let database = DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() };
    let (trigger, stop) = shutdown::channel();

    let db = Database::connect(&database, certctl_audit::SERVICE).await.unwrap();
    certctl_audit::migrate(&db).await.unwrap();
    let (public, ingest) = certctl_audit::build(certctl_audit::store(db));
    let audit = channel(serve(tonic::service::Routes::new(public).add_service(ingest), stop.clone()).await);

    let db = Database::connect(&database, certctl_inventory::SERVICE).await.unwrap();
    certctl_inventory::migrate(&db).await.unwrap();
    let Database::Sqlite(pool) = db else { unreachable!() };
    let inventory_server = certctl_inventory::build(
        Arc::new(certctl_inventory::store::SqliteStore::new(pool)),
        audit.clone(),
        stop.clone(),
    );
    let inventory = channel(serve(tonic::service::Routes::new(inventory_server), stop.clone()).await);

    // One clock for the scheduler and issuance, so certificates are issued
    // "now" in the time the scheduler sees.
    let clock = Arc::new(ManualClock::new(certctl_domain::now()));
    let db = Database::connect(&database, certctl_issuance::SERVICE).await.unwrap();
    certctl_issuance::migrate(&db).await.unwrap();
    let core = certctl_issuance::Issuance::new(
        certctl_issuance::store(db),
        certctl_issuance::inventory::Inventory::new(inventory.clone()),
        certctl_issuance::IssuanceConfig {
            context: certctl_issuance::issuers::IssuerContext {
                master_key: certctl_common::secret::MasterKey::generate(),
                public_url: "http://127.0.0.1:9".to_owned(),
            },
            crl_lifetime_secs: 3600,
        },
    )
    .with_clock({
        let clock = clock.clone();
        Arc::new(move || clock.now())
    });
    core.start().await.unwrap();
    let issuance_server = certctl_issuance::build(core, audit.clone(), stop.clone());
    let issuance = channel(serve(tonic::service::Routes::new(issuance_server), stop.clone()).await);

    let db = Database::connect(&database, certctl_scheduler::SERVICE).await.unwrap();
    certctl_scheduler::migrate(&db).await.unwrap();
    let Database::Sqlite(pool) = db else { unreachable!() };
    let store = Arc::new(certctl_scheduler::SqliteStore::new(pool).with_clock(clock.clone()));
    let scheduler_server = certctl_scheduler::build(
        store,
        certctl_scheduler::upstream::Upstreams::new(inventory.clone(), issuance.clone()),
        audit,
        SchedulerConfig { scan_interval: Duration::from_millis(200), ..Default::default() },
        stop.clone(),
    );
    let scheduler = channel(serve(tonic::service::Routes::new(scheduler_server), stop).await);

    Platform {
        _dir: dir,
        _trigger: trigger,
        clock,
        inventory: InventoryServiceClient::new(inventory),
        issuance: IssuanceServiceClient::new(issuance),
        scheduler: SchedulerServiceClient::new(scheduler),
    }
}

async fn jobs(p: &mut Platform, certificate: &str) -> Vec<pb::Job> {
    p.scheduler
        .list_jobs(pb::ListJobsRequest { certificate: certificate.to_owned(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .jobs
}

/// Waits (polling, up to ~20 s) for a job of `kind` on `certificate` to finish.
async fn finished(p: &mut Platform, certificate: &str, kind: pb::JobKind) -> pb::Job {
    for _ in 0..400 {
        let found = jobs(p, certificate).await.into_iter().find(|j| j.kind == kind as i32);
        if let Some(job) = found
            && [pb::JobState::Succeeded, pb::JobState::Failed, pb::JobState::Cancelled]
                .iter()
                .any(|s| *s as i32 == job.state)
        {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no finished {kind:?} job for {certificate}: {:?}", jobs(p, certificate).await);
}

async fn current_version(p: &mut Platform, name: &str) -> inv::Certificate {
    p.inventory
        .get_certificate(inv::GetCertificateRequest { name: name.to_owned() })
        .await
        .unwrap()
        .into_inner()
        .certificate
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_minute_certificate_is_issued_and_renewed_by_the_scheduler() {
    let mut p = platform().await;
    p.issuance
        .create_profile(iss::CreateProfileRequest {
            profile_id: "short".into(),
            profile: Some(iss::Profile {
                max_lifetime: Some(pbjson_types::Duration { seconds: 300, nanos: 0 }),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    p.inventory
        .create_certificate(inv::CreateCertificateRequest {
            certificate: Some(inv::Certificate {
                common_name: "short.example.com".into(),
                subject_alt_names: vec!["short.example.com".into()],
                issuer: "issuers/local".into(),
                profile: "profiles/short".into(),
                server_keyed: true,
                ..Default::default()
            }),
            certificate_id: "short".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();

    let issuance = finished(&mut p, "certificates/short", pb::JobKind::Issuance).await;
    assert_eq!(issuance.state, pb::JobState::Succeeded as i32, "{issuance:?}");
    let first = current_version(&mut p, "certificates/short").await;
    assert_eq!(first.current_version, "certificates/short/versions/1");
    let lifetime = first.not_after.unwrap().seconds - first.not_before.unwrap().seconds;
    assert!((290..=360).contains(&lifetime), "five minutes (plus the backdating): {lifetime}");

    // Nothing is due yet: the scan runs but enqueues no renewal.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(jobs(&mut p, "certificates/short").await.iter().all(|j| j.kind != pb::JobKind::Renewal as i32));

    // Four minutes later (scheduler time) the renewal point has passed.
    p.clock.advance(240);
    let renewal = finished(&mut p, "certificates/short", pb::JobKind::Renewal).await;
    assert_eq!(renewal.state, pb::JobState::Succeeded as i32, "{renewal:?}");
    let second = current_version(&mut p, "certificates/short").await;
    assert_eq!(second.current_version, "certificates/short/versions/2");
    assert_ne!(second.serial_number, first.serial_number);

    // Re-scans enqueue nothing more for version 1, and version 2 is not due.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(jobs(&mut p, "certificates/short").await.len(), 2);

    // Its timeline tells the story.
    let events = p
        .scheduler
        .list_job_events(pb::ListJobEventsRequest { parent: renewal.name.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .job_events;
    let states: Vec<i32> = events.iter().map(|e| e.to_state).collect();
    assert_eq!(
        states,
        [pb::JobState::Pending as i32, pb::JobState::Running as i32, pb::JobState::Succeeded as i32],
        "{events:?}"
    );
    assert!(p.clock.now() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_renewal_is_watched_to_the_end_and_refusals_are_readable() {
    let mut p = platform().await;
    for (id, server_keyed) in [("keyed", true), ("owned", false)] {
        p.inventory
            .create_certificate(inv::CreateCertificateRequest {
                certificate: Some(inv::Certificate {
                    common_name: format!("{id}.example.com"),
                    issuer: "issuers/local".into(),
                    server_keyed,
                    ..Default::default()
                }),
                certificate_id: id.into(),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    // The loop issues the keyed one; the owned one needs a CSR and fails readably.
    finished(&mut p, "certificates/keyed", pb::JobKind::Issuance).await;
    let owned = finished(&mut p, "certificates/owned", pb::JobKind::Issuance).await;
    assert_eq!(owned.state, pb::JobState::Failed as i32);
    let error = owned.error.clone().unwrap();
    assert_eq!(error.code, "NEEDS_CSR");
    assert!(error.message.contains("--csr"), "{}", error.message);

    // Renew now, and watch it happen.
    let renewed = p
        .scheduler
        .renew_certificates(pb::RenewCertificatesRequest {
            certificates: vec!["certificates/keyed".into()],
            csr_pem: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].kind, pb::JobKind::Renewal as i32);
    let mut stream = p
        .scheduler
        .watch_jobs(pb::WatchJobsRequest { names: vec![renewed[0].name.clone()] })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(update) = stream.next().await {
        seen.push(update.unwrap().job.unwrap().state);
    }
    assert_eq!(seen.last(), Some(&(pb::JobState::Succeeded as i32)), "{seen:?}");
    assert_eq!(current_version(&mut p, "certificates/keyed").await.current_version, "certificates/keyed/versions/2");

    // Asking again for the same version returns the same job.
    let again = p
        .scheduler
        .renew_certificates(pb::RenewCertificatesRequest {
            certificates: vec!["certificates/keyed".into()],
            csr_pem: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_ne!(again[0].name, renewed[0].name, "version 2's renewal is a new job");

    // The fix the error names: renew with a CSR. The failed job stays as it
    // was; a job of its own carries the CSR and issues version 1.
    let key = certctl_pki::KeyType::EcdsaP256.generate().unwrap();
    let csr = certctl_pki::build_csr(&key, "owned.example.com", &["owned.example.com".to_owned()]).unwrap();
    let with_csr = p
        .scheduler
        .renew_certificates(pb::RenewCertificatesRequest {
            certificates: vec!["certificates/owned".into()],
            csr_pem: csr,
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_ne!(with_csr[0].name, owned.name);
    let mut stream = p
        .scheduler
        .watch_jobs(pb::WatchJobsRequest { names: vec![with_csr[0].name.clone()] })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(update) = stream.next().await {
        last = update.unwrap().job;
    }
    assert_eq!(last.map(|j| j.state), Some(pb::JobState::Succeeded as i32));
    assert_eq!(current_version(&mut p, "certificates/owned").await.current_version, "certificates/owned/versions/1");

    // Cancelling a finished job is refused.
    let cancel = p
        .scheduler
        .cancel_job(pb::CancelJobRequest { name: owned.name.clone(), reason: String::new() })
        .await
        .unwrap_err();
    assert_eq!(cancel.code(), tonic::Code::FailedPrecondition, "{cancel:?}");
    let unknown = p.scheduler.get_job(pb::GetJobRequest { name: "jobs/0123".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let bad = p
        .scheduler
        .renew_certificates(pb::RenewCertificatesRequest { certificates: vec![], csr_pem: String::new() })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
