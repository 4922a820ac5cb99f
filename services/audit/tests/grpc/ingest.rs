//! AppendAuditEvents and GetAuditEvent.

use tonic::Code;
use tonic_types::StatusExt;

use certctl_proto::audit::{self as pb};

use crate::common::Harness;
use crate::server::*;

on_every_backend!(ingest_is_idempotent_and_validated, get_by_name);

async fn ingest_is_idempotent_and_validated(h: &Harness) {
    let mut s = serve(h).await;
    assert_eq!(s.append(vec![pb_event(1), pb_event(2), pb_event(3)]).await.unwrap(), 3);
    assert_eq!(s.append(vec![pb_event(1), pb_event(2), pb_event(3)]).await.unwrap(), 0, "a retried batch");
    assert_eq!(s.append(vec![pb_event(3), pb_event(4)]).await.unwrap(), 1);
    // Output-only fields from the caller are ignored, not trusted.
    let forged = pb::AuditEvent { sequence: 99, hash: "f".repeat(64), name: "auditEvents/99".into(), ..pb_event(5) };
    assert_eq!(s.append(vec![forged]).await.unwrap(), 1);
    let fifth = s.audit.get_audit_event(pb::GetAuditEventRequest { name: "auditEvents/5".into() }).await.unwrap();
    assert_ne!(fifth.into_inner().audit_event.unwrap().hash, "f".repeat(64));

    for (field, event) in [
        ("audit_events[1].actor", pb::AuditEvent { actor: String::new(), ..pb_event(7) }),
        ("audit_events[1].action", pb::AuditEvent { action: String::new(), ..pb_event(7) }),
        ("audit_events[1].resource", pb::AuditEvent { resource: String::new(), ..pb_event(7) }),
        ("audit_events[1].source", pb::AuditEvent { source: String::new(), ..pb_event(7) }),
        ("audit_events[1].source_id", pb::AuditEvent { source_id: String::new(), ..pb_event(7) }),
        ("audit_events[1].event_time", pb::AuditEvent { event_time: None, ..pb_event(7) }),
        (
            "audit_events[1].event_time",
            pb::AuditEvent { event_time: Some(pbjson_types::Timestamp { seconds: 0, nanos: -5 }), ..pb_event(7) },
        ),
        ("audit_events[1].actor", pb::AuditEvent { actor: "users/\0".into(), ..pb_event(7) }),
    ] {
        assert_invalid(s.append(vec![pb_event(6), event]).await, field);
    }
    assert_invalid(s.append((1..=1001).map(pb_event).collect()).await, "audit_events");
    // Refused batches append nothing, not even their valid events.
    let report = s.audit.verify_chain(pb::VerifyChainRequest {}).await.unwrap().into_inner();
    assert_eq!((report.valid, report.events_checked), (true, 5));
    s.shutdown().await;
}

async fn get_by_name(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, 3).await;
    let get = |name: &str| pb::GetAuditEventRequest { name: name.into() };
    let e = s.audit.get_audit_event(get("auditEvents/2")).await.unwrap().into_inner().audit_event.unwrap();
    let sent = pb_event(2);
    assert_eq!((e.name.as_str(), e.sequence), ("auditEvents/2", 2));
    assert_eq!((&e.actor, &e.action, &e.resource), (&sent.actor, &sent.action, &sent.resource));
    assert_eq!((&e.request_id, &e.source, &e.source_id), (&sent.request_id, &sent.source, &sent.source_id));
    // Stored at microsecond precision.
    assert_eq!(e.event_time, Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + 2, nanos: 123_456_000 }));
    assert_eq!(certctl_proto::struct_to_json(e.details.as_ref()), serde_json::json!({"i": 2, "note": "a, \"b\"\nc"}));
    let first = s.audit.get_audit_event(get("auditEvents/1")).await.unwrap().into_inner().audit_event.unwrap();
    assert_eq!(e.previous_hash, first.hash);
    assert_eq!(e.hash.len(), 64);

    let missing = s.audit.get_audit_event(get("auditEvents/4")).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    assert_eq!(missing.get_error_details().error_info().unwrap().reason, "NOT_FOUND");
    for bad in ["", "auditEvents/0", "auditEvents/x", "auditEvents/1/2", "certificates/1"] {
        assert_invalid(s.audit.get_audit_event(get(bad)).await, "name");
    }
    s.shutdown().await;
}
