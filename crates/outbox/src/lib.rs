//! The transactional outbox and its relay.
//!
//! A service that changes state writes the audit event describing the change
//! into its own `outbox` table in the same transaction, so a change and its
//! event commit together or not at all. The relay forwards committed events to
//! the audit service. Events leave the outbox only after the audit service
//! acknowledged them, and the audit service appends idempotently on
//! (source, source_id), so an event reaches the chain exactly once even if the
//! relay or the audit service dies halfway, or two replicas relay the same rows.
//!
//! Architecture invariant: the relay is the only path from a service to the
//! audit trail; no service calls `AppendAuditEvents` itself.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use certctl_common::error::StoreError;
use certctl_common::shutdown::Shutdown;
use certctl_domain::audit::NewAuditEvent;
use certctl_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use certctl_proto::audit::{AppendAuditEventsRequest, AuditEvent};
use tokio::sync::Notify;
use tonic::transport::Channel;

/// One row of an outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub event: NewAuditEvent,
}

/// A service store's outbox, oldest events first.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    async fn outbox_batch(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError>;
    async fn outbox_ack(&self, ids: &[i64]) -> Result<(), StoreError>;
}

const BATCH: i64 = 500;
const POLL: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub async fn run<S: Outbox + ?Sized>(store: Arc<S>, audit: Channel, wake: Arc<Notify>, shutdown: Shutdown) {
    let mut client = AuditIngestServiceClient::new(audit);
    let mut backoff = Duration::from_millis(200);
    loop {
        if shutdown.is_triggered() {
            return;
        }
        match relay_once(store.as_ref(), &mut client).await {
            Ok(n) if n as i64 == BATCH => {
                backoff = Duration::from_millis(200);
                continue;
            }
            Ok(_) => {
                backoff = Duration::from_millis(200);
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.clone().wait() => return,
                }
            }
            Err(reason) => {
                tracing::warn!(%reason, retry_in = ?backoff, "audit relay failed; events stay in the outbox");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.clone().wait() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sends one batch; returns how many events were relayed.
pub async fn relay_once<S: Outbox + ?Sized>(
    store: &S,
    client: &mut AuditIngestServiceClient<Channel>,
) -> Result<usize, String> {
    let batch = store.outbox_batch(BATCH).await.map_err(|e| e.to_string())?;
    if batch.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = batch.iter().map(|e| e.id).collect();
    let events = batch.into_iter().map(to_proto).collect();
    let mut request = tonic::Request::new(AppendAuditEventsRequest { audit_events: events });
    request.set_timeout(Duration::from_secs(30));
    client.append_audit_events(request).await.map_err(|s| format!("{}: {}", s.code(), s.message()))?;
    store.outbox_ack(&ids).await.map_err(|e| e.to_string())?;
    Ok(ids.len())
}

fn to_proto(entry: OutboxEntry) -> AuditEvent {
    let e = entry.event;
    AuditEvent {
        actor: e.actor,
        action: e.action,
        resource: e.resource,
        event_time: Some(pbjson_types::Timestamp {
            seconds: e.event_time_micros.div_euclid(1_000_000),
            nanos: (e.event_time_micros.rem_euclid(1_000_000) * 1000) as i32,
        }),
        request_id: e.request_id,
        details: certctl_proto::json_to_struct(&e.details),
        source: e.source,
        source_id: if e.source_id.is_empty() { entry.id.to_string() } else { e.source_id },
        ..Default::default()
    }
}
