//! The gRPC edge of the audit service: the only module that sees proto types.
//! Converts requests to domain values, calls `Audit`, converts back.
//!
//! Two tonic services share one `Audit` core: `AuditService` (reading,
//! verifying, exporting; exposed through the gateway) and
//! `AuditIngestService` (appending; internal, for the services' outbox
//! relays). They are separate types so a server can mount the ingest API on
//! an internal listener only.

use certctl_domain::audit::{AuditEvent, NewAuditEvent};
use certctl_domain::error::Violations;
use certctl_proto::audit::audit_ingest_service_server::{AuditIngestService, AuditIngestServiceServer};
use certctl_proto::audit::audit_service_server::{AuditService, AuditServiceServer};
use certctl_proto::audit::{self as pb};
use futures::StreamExt;
use futures::stream::BoxStream;
use tonic::{Request, Response, Status};

use crate::export::ExportFormat;
use crate::service::{self, Audit, EventFilter};
use crate::store::Store;

/// Large enough for a full batch of events with large details
/// (`MAX_BATCH` × `MAX_DETAILS_LEN` plus framing).
const MAX_INGEST_MESSAGE: usize = 80 << 20;

/// Microseconds of a protobuf timestamp; `None` when it is not a valid
/// Timestamp (nanos out of range, or outside years 1 to 9999).
pub fn micros_from_pb(t: &pbjson_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    let micros = t.seconds.checked_mul(1_000_000)?.checked_add(i64::from(t.nanos / 1000))?;
    (service::MIN_TIME_MICROS..=service::MAX_TIME_MICROS).contains(&micros).then_some(micros)
}

pub fn micros_to_pb(micros: i64) -> pbjson_types::Timestamp {
    pbjson_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

fn optional_time(v: &mut Violations, field: &str, t: Option<pbjson_types::Timestamp>) -> Option<i64> {
    let t = t?;
    let micros = micros_from_pb(&t);
    if micros.is_none() {
        v.add(field, "not a valid timestamp: nanos must be 0-999999999 and the time between years 1 and 9999");
    }
    micros
}

/// Converts an incoming event. Output-only fields (name, sequence, hashes)
/// are ignored: the chain assigns them.
fn event_from_pb(v: &mut Violations, field: &str, e: pb::AuditEvent) -> NewAuditEvent {
    let time_field = format!("{field}.event_time");
    let event_time_micros = match e.event_time {
        None => {
            v.add(time_field, "required");
            0
        }
        t => optional_time(v, &time_field, t).unwrap_or_default(),
    };
    NewAuditEvent {
        actor: e.actor,
        action: e.action,
        resource: e.resource,
        event_time_micros,
        request_id: e.request_id,
        details: certctl_proto::struct_to_json(e.details.as_ref()),
        source: e.source,
        source_id: e.source_id,
    }
}

pub fn event_to_pb(e: AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        name: e.name(),
        sequence: e.sequence,
        actor: e.event.actor,
        action: e.event.action,
        resource: e.event.resource,
        event_time: Some(micros_to_pb(e.event.event_time_micros)),
        request_id: e.event.request_id,
        details: certctl_proto::json_to_struct(&e.event.details),
        source: e.event.source,
        source_id: e.event.source_id,
        hash: e.hash,
        previous_hash: e.previous_hash,
    }
}

fn filter_from_pb(
    v: &mut Violations,
    start_time: Option<pbjson_types::Timestamp>,
    end_time: Option<pbjson_types::Timestamp>,
    actor: String,
    action: String,
    resource: String,
) -> EventFilter {
    EventFilter {
        start_time_micros: optional_time(v, "start_time", start_time),
        end_time_micros: optional_time(v, "end_time", end_time),
        actor,
        action,
        resource,
    }
}

fn format_from_pb(value: i32) -> Result<ExportFormat, Status> {
    let invalid =
        |message: String| certctl_common::status_from_domain(certctl_domain::DomainError::invalid("format", message));
    match pb::ExportFormat::try_from(value) {
        Ok(pb::ExportFormat::Csv) => Ok(ExportFormat::Csv),
        Ok(pb::ExportFormat::Json) => Ok(ExportFormat::JsonLines),
        Ok(pb::ExportFormat::Unspecified) => {
            Err(invalid("required: choose EXPORT_FORMAT_CSV or EXPORT_FORMAT_JSON".to_owned()))
        }
        Err(_) => Err(invalid(format!("{value} is not an export format"))),
    }
}

fn check(v: Violations) -> Result<(), Status> {
    v.into_result().map_err(certctl_common::status_from_domain)
}

/// `certctl.audit.v1.AuditService` over an `Audit`.
pub struct AuditGrpc<S: ?Sized> {
    inner: Audit<S>,
}

impl<S: Store + ?Sized> AuditGrpc<S> {
    pub fn new(inner: Audit<S>) -> Self {
        Self { inner }
    }

    pub fn into_server(self) -> AuditServiceServer<Self> {
        AuditServiceServer::new(self)
    }
}

/// `certctl.audit.v1.AuditIngestService` over an `Audit`.
pub struct AuditIngestGrpc<S: ?Sized> {
    inner: Audit<S>,
}

impl<S: Store + ?Sized> AuditIngestGrpc<S> {
    pub fn new(inner: Audit<S>) -> Self {
        Self { inner }
    }

    pub fn into_server(self) -> AuditIngestServiceServer<Self> {
        AuditIngestServiceServer::new(self).max_decoding_message_size(MAX_INGEST_MESSAGE)
    }
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<S: Store + ?Sized> AuditService for AuditGrpc<S> {
    async fn get_audit_event(&self, request: Request<pb::GetAuditEventRequest>) -> R<pb::GetAuditEventResponse> {
        let event = self.inner.get(&request.into_inner().name).await?;
        Ok(Response::new(pb::GetAuditEventResponse { audit_event: Some(event_to_pb(event)) }))
    }

    async fn list_audit_events(&self, request: Request<pb::ListAuditEventsRequest>) -> R<pb::ListAuditEventsResponse> {
        let r = request.into_inner();
        let mut v = Violations::new();
        let filter = filter_from_pb(&mut v, r.start_time, r.end_time, r.actor, r.action, r.resource);
        check(v)?;
        if r.after_sequence < 0 {
            return Err(invalid_after_sequence());
        }
        let after = (r.after_sequence > 0).then_some(r.after_sequence);
        let page = self.inner.list_after(&filter, &r.order_by, r.page_size, &r.page_token, after).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            audit_events: page.items.into_iter().map(event_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn verify_chain(&self, _request: Request<pb::VerifyChainRequest>) -> R<pb::VerifyChainResponse> {
        let report = self.inner.verify().await?;
        let (first_broken_sequence, problem) = report.broken.unwrap_or_default();
        if first_broken_sequence != 0 {
            tracing::error!(first_broken_sequence, %problem, "the audit chain does not verify");
        }
        Ok(Response::new(pb::VerifyChainResponse {
            valid: first_broken_sequence == 0,
            events_checked: report.events_checked,
            first_broken_sequence,
            problem,
        }))
    }

    type ExportAuditEventsStream = BoxStream<'static, Result<pb::ExportAuditEventsResponse, Status>>;

    async fn export_audit_events(
        &self,
        request: Request<pb::ExportAuditEventsRequest>,
    ) -> R<Self::ExportAuditEventsStream> {
        let r = request.into_inner();
        let mut v = Violations::new();
        let filter = filter_from_pb(&mut v, r.start_time, r.end_time, r.actor, r.action, r.resource);
        let format = format_from_pb(r.format);
        check(v)?;
        let chunks = self.inner.export(&filter, format?).await?;
        Ok(Response::new(
            chunks.map(|chunk| chunk.map(|data| pb::ExportAuditEventsResponse { data }).map_err(Status::from)).boxed(),
        ))
    }
}

#[tonic::async_trait]
impl<S: Store + ?Sized> AuditIngestService for AuditIngestGrpc<S> {
    async fn append_audit_events(
        &self,
        request: Request<pb::AppendAuditEventsRequest>,
    ) -> R<pb::AppendAuditEventsResponse> {
        let r = request.into_inner();
        if r.audit_events.len() > service::MAX_BATCH {
            // Refused before converting anything an oversized batch holds.
            let message = format!("at most {} events per call", service::MAX_BATCH);
            return Err(certctl_common::status_from_domain(certctl_domain::DomainError::invalid(
                "audit_events",
                message,
            )));
        }
        let mut v = Violations::new();
        let events: Vec<NewAuditEvent> = r
            .audit_events
            .into_iter()
            .enumerate()
            .map(|(i, e)| event_from_pb(&mut v, &format!("audit_events[{i}]"), e))
            .collect();
        // Timestamp mistakes and the service's own checks in one answer
        // (`append` checks again for callers that are not this module).
        service::check_batch(&mut v, &events);
        check(v)?;
        let appended = self.inner.append(events).await?;
        Ok(Response::new(pb::AppendAuditEventsResponse {
            appended: i32::try_from(appended).expect("a batch holds at most MAX_BATCH events"),
        }))
    }
}

fn invalid_after_sequence() -> Status {
    certctl_common::status_from_domain(certctl_domain::DomainError::invalid("after_sequence", "must not be negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: i32) -> pbjson_types::Timestamp {
        pbjson_types::Timestamp { seconds, nanos }
    }

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        for (t, micros) in [
            (ts(0, 0), Some(0)),
            (ts(1_700_000_000, 123_456_789), Some(1_700_000_000_123_456)),
            (ts(-1, 999_999_000), Some(-1)),
            (ts(-62_135_596_800, 0), Some(service::MIN_TIME_MICROS)),
            (ts(253_402_300_799, 999_999_999), Some(service::MAX_TIME_MICROS)),
            (ts(-62_135_596_801, 0), None),
            (ts(253_402_300_800, 0), None),
            (ts(0, -1), None),
            (ts(0, 1_000_000_000), None),
            (ts(i64::MAX, 0), None),
        ] {
            assert_eq!(micros_from_pb(&t), micros, "{t:?}");
            if let Some(m) = micros {
                let back = micros_to_pb(m);
                assert_eq!((back.seconds, back.nanos), (t.seconds, t.nanos / 1000 * 1000));
            }
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format_from_pb(pb::ExportFormat::Csv as i32).unwrap(), ExportFormat::Csv);
        assert_eq!(format_from_pb(pb::ExportFormat::Json as i32).unwrap(), ExportFormat::JsonLines);
        for bad in [pb::ExportFormat::Unspecified as i32, 99] {
            let status = format_from_pb(bad).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().starts_with("format:"), "{}", status.message());
        }
    }

    #[test]
    fn missing_event_time_is_named() {
        let mut v = Violations::new();
        event_from_pb(&mut v, "audit_events[2]", pb::AuditEvent::default());
        let err = v.into_result().unwrap_err();
        assert_eq!(err.to_string(), "audit_events[2].event_time: required");
    }
}
