//! The server under test, its clients and the events the tests send.

use certctl_proto::audit::audit_ingest_service_client::AuditIngestServiceClient;
use certctl_proto::audit::audit_service_client::AuditServiceClient;
use certctl_proto::audit::{self as pb};
use tokio::sync::oneshot;
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::Harness;

pub struct Running {
    pub audit: AuditServiceClient<Channel>,
    pub ingest: AuditIngestServiceClient<Channel>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

pub async fn serve(h: &Harness) -> Running {
    let (audit, ingest) = certctl_audit::build(h.store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(Server::builder().add_service(audit).add_service(ingest).serve_with_incoming_shutdown(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        async {
            stopped.await.ok();
        },
    ));
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    Running {
        audit: AuditServiceClient::new(channel.clone()),
        ingest: AuditIngestServiceClient::new(channel),
        stop,
        server,
    }
}

impl Running {
    pub async fn shutdown(self) {
        drop((self.audit, self.ingest));
        self.stop.send(()).unwrap();
        self.server.await.unwrap().unwrap();
    }

    pub async fn append(&mut self, events: Vec<pb::AuditEvent>) -> Result<i32, Status> {
        let request = pb::AppendAuditEventsRequest { audit_events: events };
        Ok(self.ingest.append_audit_events(request).await?.into_inner().appended)
    }

    pub async fn list(&mut self, request: pb::ListAuditEventsRequest) -> Result<pb::ListAuditEventsResponse, Status> {
        Ok(self.audit.list_audit_events(request).await?.into_inner())
    }

    /// Every page of a listing; asserts each page but the last is full.
    pub async fn list_all(&mut self, mut request: pb::ListAuditEventsRequest) -> Vec<pb::AuditEvent> {
        let mut out = Vec::new();
        loop {
            let page = self.list(request.clone()).await.unwrap();
            let full = page.audit_events.len() as i32 == request.page_size;
            out.extend(page.audit_events);
            if page.next_page_token.is_empty() {
                return out;
            }
            assert!(full, "only the last page may be short");
            request.page_token = page.next_page_token;
        }
    }

    pub async fn export(&mut self, request: pb::ExportAuditEventsRequest) -> Result<Vec<String>, Status> {
        let mut stream = self.audit.export_audit_events(request).await?.into_inner();
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            chunks.push(chunk?.data);
        }
        Ok(chunks)
    }
}

pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = result.expect_err("the request is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    let fields: Vec<String> =
        details.bad_request().expect("BadRequest details").field_violations.iter().map(|v| v.field.clone()).collect();
    assert!(fields.iter().any(|f| f == field), "expected a violation of {field}, got {fields:?}");
    assert_eq!(details.error_info().expect("ErrorInfo details").reason, "INVALID_ARGUMENT");
}

pub const BASE_SECONDS: i64 = 1_700_000_000;

/// Event `i`: one second apart, three actors, resources under and beside
/// `certificates/web/`, every tenth actor full of CSV metacharacters and
/// every tenth request id (offset by five) holding only a line break.
pub fn pb_event(i: i64) -> pb::AuditEvent {
    let actor = if i % 10 == 0 {
        format!("users/\"odd, one\"\nline {i}")
    } else {
        ["users/alice", "users/bob", "system"][(i % 3) as usize].to_owned()
    };
    pb::AuditEvent {
        actor,
        action: if i % 2 == 0 { "inventory.DeleteCertificate" } else { "inventory.CreateCertificate" }.into(),
        resource: ["certificates/web", "certificates/web/versions/1", "certificates/webx"][(i % 3) as usize].into(),
        event_time: Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + i, nanos: 123_456_789 }),
        request_id: if i % 10 == 5 { format!("req\n{i}") } else { format!("req-{i}") },
        details: certctl_proto::json_to_struct(&serde_json::json!({"i": i, "note": "a, \"b\"\nc"})),
        source: "inventory".into(),
        source_id: i.to_string(),
        ..Default::default()
    }
}

/// Appends events 1..=n in batches of at most 1000.
pub async fn seed(server: &mut Running, n: i64) {
    let mut next = 1;
    while next <= n {
        let last = (next + 999).min(n);
        let appended = server.append((next..=last).map(pb_event).collect()).await.unwrap();
        assert_eq!(i64::from(appended), last - next + 1);
        next = last + 1;
    }
}

pub fn sequences(events: &[pb::AuditEvent]) -> Vec<i64> {
    events.iter().map(|e| e.sequence).collect()
}

/// Enough events for several pages, export messages and List's 1000 cap.
pub const EVENTS: i64 = 1205;
