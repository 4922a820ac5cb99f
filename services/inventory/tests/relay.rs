//! The outbox relay against a stand-in for the audit service's ingest RPC that
//! refuses its first calls, then records what it receives.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certctl_domain::inventory::{Certificate, Team};
use certctl_inventory::Inventory;
use certctl_inventory::service::Caller;
use certctl_inventory::store::{Outbox, SqliteStore};
use certctl_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use certctl_proto::audit::audit_ingest_service_server::{AuditIngestService, AuditIngestServiceServer};
use certctl_proto::audit::{AppendAuditEventsRequest, AppendAuditEventsResponse, AuditEvent};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Answers UNAVAILABLE to its first `failures` calls, then keeps every event.
struct FlakyAudit {
    failures: usize,
    calls: AtomicUsize,
    received: Mutex<Vec<AuditEvent>>,
}

#[tonic::async_trait]
impl AuditIngestService for FlakyAudit {
    async fn append_audit_events(
        &self,
        request: Request<AppendAuditEventsRequest>,
    ) -> Result<Response<AppendAuditEventsResponse>, Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(Status::unavailable("the audit service is starting"));
        }
        let events = request.into_inner().audit_events;
        let appended = events.len() as i32;
        self.received.lock().unwrap().extend(events);
        Ok(Response::new(AppendAuditEventsResponse { appended }))
    }
}

impl FlakyAudit {
    async fn serve(failures: usize) -> (Arc<Self>, Channel) {
        let audit = Arc::new(Self { failures, calls: AtomicUsize::new(0), received: Mutex::new(Vec::new()) });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = AuditIngestServiceServer::from_arc(audit.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        (audit, channel)
    }

    fn received(&self) -> Vec<AuditEvent> {
        self.received.lock().unwrap().clone()
    }
}

fn caller() -> Caller {
    Caller { actor: "users/ops".into(), request_id: "req-42".into() }
}

fn team(id: &str) -> Team {
    Team { id: id.into(), display_name: format!("Team {id}"), ..Default::default() }
}

/// Five mutations of different kinds; returns their (action, resource).
async fn mutate(inventory: &Inventory<SqliteStore>, suffix: &str) -> Vec<(String, String)> {
    let caller = caller();
    let id = format!("web-{suffix}");
    inventory.create_team(&caller, team(&format!("edge-{suffix}"))).await.unwrap();
    let certificate = Certificate { id: id.clone(), common_name: format!("{id}.example.com"), ..Default::default() };
    inventory.create_certificate(&caller, certificate, "").await.unwrap();
    let patch = Certificate { id: id.clone(), display_name: "Web".into(), ..Default::default() };
    inventory.update_certificate(&caller, patch, &["display_name".into()]).await.unwrap();
    inventory.delete_certificate(&caller, &format!("certificates/{id}")).await.unwrap();
    inventory.delete_team(&caller, &format!("teams/edge-{suffix}")).await.unwrap();
    [
        ("CreateTeam", format!("teams/edge-{suffix}")),
        ("CreateCertificate", format!("certificates/{id}")),
        ("UpdateCertificate", format!("certificates/{id}")),
        ("DeleteCertificate", format!("certificates/{id}")),
        ("DeleteTeam", format!("teams/edge-{suffix}")),
    ]
    .into_iter()
    .map(|(action, resource)| (format!("inventory.{action}"), resource))
    .collect()
}

fn actions(events: &[AuditEvent]) -> Vec<(String, String)> {
    events.iter().map(|e| (e.action.clone(), e.resource.clone())).collect()
}

#[tokio::test]
async fn events_stay_in_the_outbox_until_the_audit_service_takes_them() {
    let (_dir, store) = support::sqlite_store().await;
    let inventory = Inventory::new(store.clone());
    let expected = mutate(&inventory, "a").await;
    let outbox = store.outbox_batch(100).await.unwrap();
    assert_eq!(outbox.len(), 5);
    let (audit, channel) = FlakyAudit::serve(1).await;
    let mut client = AuditIngestServiceClient::new(channel);

    assert!(certctl_outbox::relay_once(store.as_ref(), &mut client).await.is_err(), "UNAVAILABLE is an error");
    assert_eq!(store.outbox_batch(100).await.unwrap(), outbox, "a refused batch stays put");
    assert!(audit.received().is_empty());

    assert_eq!(certctl_outbox::relay_once(store.as_ref(), &mut client).await, Ok(5));
    assert!(store.outbox_batch(100).await.unwrap().is_empty());
    let received = audit.received();
    assert_eq!(actions(&received), expected);
    let source_ids: Vec<String> = outbox.iter().map(|e| e.event.source_id.clone()).collect();
    assert!(source_ids.iter().all(|id| id.len() == 32), "every event carries its own id: {source_ids:?}");
    assert_eq!(received.iter().map(|e| e.source_id.clone()).collect::<Vec<_>>(), source_ids);
    for (event, entry) in received.iter().zip(&outbox) {
        assert_eq!(event.source, "inventory");
        assert_eq!(event.actor, "users/ops");
        assert_eq!(event.request_id, "req-42");
        let time = event.event_time.as_ref().expect("an event time");
        assert_eq!(time.seconds * 1_000_000 + i64::from(time.nanos) / 1000, entry.event.event_time_micros);
    }
    let details = received[1].details.as_ref().expect("CreateCertificate has details");
    let common_name = details.fields.get("common_name").and_then(|v| v.kind.clone());
    assert_eq!(common_name, Some(pbjson_types::value::Kind::StringValue("web-a.example.com".into())));

    // Nothing left: no call at all.
    assert_eq!(certctl_outbox::relay_once(store.as_ref(), &mut client).await, Ok(0));
    assert_eq!(audit.calls.load(Ordering::SeqCst), 2);
}

/// Waits, a bounded number of short sleeps, until `done` holds.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

#[tokio::test]
async fn the_relay_delivers_every_event_once_and_in_order() {
    let (_dir, store) = support::sqlite_store().await;
    let inventory = Inventory::new(store.clone());
    // More than one relay batch (500) is waiting when the relay starts.
    let mut expected = Vec::new();
    for n in 0..101 {
        expected.extend(mutate(&inventory, &n.to_string()).await);
    }
    assert_eq!(expected.len(), 505);
    let (audit, channel) = FlakyAudit::serve(3).await;
    let (trigger, shutdown) = certctl_common::shutdown::channel();
    let relay = tokio::spawn(certctl_outbox::run(store.clone(), channel, inventory.outbox_wake(), shutdown));

    assert!(eventually(|| audit.received().len() >= expected.len()).await, "the backlog arrives");
    // Mutations made while the relay runs wake it; no need to wait for its poll.
    expected.extend(mutate(&inventory, "late").await);
    assert!(eventually(|| audit.received().len() >= expected.len()).await, "new events arrive");

    let received = audit.received();
    assert_eq!(received.len(), expected.len(), "every event exactly once");
    assert_eq!(actions(&received), expected, "in commit order");
    let ids: std::collections::HashSet<&str> = received.iter().map(|e| e.source_id.as_str()).collect();
    assert_eq!(ids.len(), received.len(), "source ids are unique");
    assert!(audit.calls.load(Ordering::SeqCst) >= 3 + 2, "three refusals, then at least two batches");
    // The ack follows the append; give the last one its moment.
    let drained = async {
        for _ in 0..600 {
            if store.outbox_batch(10).await.unwrap().is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(drained.await, "the outbox ends empty");

    trigger.trigger();
    relay.await.expect("the relay stops on shutdown");
    assert_eq!(audit.received().len(), expected.len(), "nothing was sent twice");
}
