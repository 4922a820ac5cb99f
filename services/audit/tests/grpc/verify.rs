//! VerifyChain after tampering, and every RPC with the database gone.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use certctl_proto::audit::{self as pb};

use crate::common::Harness;
use crate::server::*;

on_every_backend!(verify_reports_tampering, an_unreachable_database_is_unavailable);

async fn verify_reports_tampering(h: &Harness) {
    let mut s = serve(h).await;
    let verify = pb::VerifyChainRequest::default;
    let empty = s.audit.verify_chain(verify()).await.unwrap().into_inner();
    assert_eq!((empty.valid, empty.events_checked, empty.first_broken_sequence), (true, 0, 0));
    seed(&mut s, 10).await;
    let intact = s.audit.verify_chain(verify()).await.unwrap().into_inner();
    assert_eq!((intact.valid, intact.events_checked, intact.first_broken_sequence), (true, 10, 0));
    assert!(intact.problem.is_empty());

    h.remove_append_only_guard().await;
    h.exec("UPDATE audit_events SET actor = 'users/mallory' WHERE sequence = 4").await.unwrap();
    let broken = s.audit.verify_chain(verify()).await.unwrap().into_inner();
    assert_eq!((broken.valid, broken.events_checked, broken.first_broken_sequence), (false, 3, 4));
    assert!(broken.problem.contains("event 4"), "{}", broken.problem);
    s.shutdown().await;
}

async fn an_unreachable_database_is_unavailable(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, 3).await;
    h.close().await;
    let unavailable = |status: Status| {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(status.get_error_details().retry_info().is_some(), "tells the caller to retry");
    };
    unavailable(s.append(vec![pb_event(4)]).await.unwrap_err());
    unavailable(s.list(pb::ListAuditEventsRequest::default()).await.unwrap_err());
    unavailable(s.audit.get_audit_event(pb::GetAuditEventRequest { name: "auditEvents/1".into() }).await.unwrap_err());
    unavailable(s.audit.verify_chain(pb::VerifyChainRequest {}).await.unwrap_err());
    let csv = pb::ExportAuditEventsRequest { format: pb::ExportFormat::Csv as i32, ..Default::default() };
    unavailable(s.export(csv).await.unwrap_err());
    s.shutdown().await;
}
