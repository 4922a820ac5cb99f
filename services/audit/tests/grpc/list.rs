//! ListAuditEvents: filters, keyset pages, page tokens bound to their query.

use certctl_proto::audit::{self as pb};

use crate::common::Harness;
use crate::server::*;

on_every_backend!(list_filters_and_pages, list_refuses_bad_input);

async fn list_filters_and_pages(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, EVENTS).await;
    let list = pb::ListAuditEventsRequest::default;

    let first = s.list(list()).await.unwrap();
    assert_eq!(sequences(&first.audit_events), (EVENTS - 49..=EVENTS).rev().collect::<Vec<_>>(), "50, newest first");
    assert!(!first.next_page_token.is_empty());
    let capped = s.list(pb::ListAuditEventsRequest { page_size: 5000, ..list() }).await.unwrap();
    assert_eq!(capped.audit_events.len(), 1000);
    assert!(!capped.next_page_token.is_empty());

    let everything = s.list_all(pb::ListAuditEventsRequest { page_size: 100, ..list() }).await;
    assert_eq!(sequences(&everything), (1..=EVENTS).rev().collect::<Vec<_>>());
    let ascending =
        s.list_all(pb::ListAuditEventsRequest { page_size: 333, order_by: "sequence".into(), ..list() }).await;
    assert_eq!(sequences(&ascending), (1..=EVENTS).collect::<Vec<_>>());
    // A follower's cursor: everything after sequence 40, oldest first.
    let followed = s
        .list_all(pb::ListAuditEventsRequest {
            page_size: 25,
            order_by: "sequence".into(),
            after_sequence: 40,
            ..list()
        })
        .await;
    assert_eq!(sequences(&followed), (41..=EVENTS).collect::<Vec<_>>());

    // Each filter, paged in small pages so the cursor crosses filtered gaps.
    let expect = |keep: &dyn Fn(i64) -> bool| (1..=EVENTS).rev().filter(|i| keep(*i)).collect::<Vec<_>>();
    let alice = pb::ListAuditEventsRequest { actor: "users/alice".into(), page_size: 7, ..list() };
    assert_eq!(sequences(&s.list_all(alice).await), expect(&|i| i % 3 == 0 && i % 10 != 0));
    let deletes = pb::ListAuditEventsRequest { action: "inventory.DeleteCertificate".into(), page_size: 90, ..list() };
    assert_eq!(sequences(&s.list_all(deletes).await), expect(&|i| i % 2 == 0));
    let under_web = pb::ListAuditEventsRequest { resource: "certificates/web/".into(), page_size: 64, ..list() };
    assert_eq!(sequences(&s.list_all(under_web).await), expect(&|i| i % 3 == 1));
    let exact_web = pb::ListAuditEventsRequest { resource: "certificates/web".into(), page_size: 64, ..list() };
    assert_eq!(sequences(&s.list_all(exact_web).await), expect(&|i| i % 3 == 0));
    // [start, end): event i happened at BASE + i seconds and 123456 µs.
    let window = pb::ListAuditEventsRequest {
        start_time: Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + 100, nanos: 123_456_000 }),
        end_time: Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + 110, nanos: 123_456_000 }),
        page_size: 3,
        ..list()
    };
    assert_eq!(sequences(&s.list_all(window).await), (100..110).rev().collect::<Vec<_>>());
    let combined = pb::ListAuditEventsRequest {
        actor: "users/bob".into(),
        action: "inventory.CreateCertificate".into(),
        resource: "certificates/web/".into(),
        start_time: Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + 1000, nanos: 0 }),
        page_size: 2,
        ..list()
    };
    assert_eq!(
        sequences(&s.list_all(combined).await),
        expect(&|i| i >= 1000 && i % 3 == 1 && i % 2 == 1 && i % 10 != 0)
    );
    let nothing = s.list(pb::ListAuditEventsRequest { actor: "users/nobody".into(), ..list() }).await.unwrap();
    assert!(nothing.audit_events.is_empty() && nothing.next_page_token.is_empty());
    s.shutdown().await;
}

async fn list_refuses_bad_input(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, 30).await;
    let list = pb::ListAuditEventsRequest::default;
    let alice = || pb::ListAuditEventsRequest { actor: "users/alice".into(), page_size: 2, ..list() };
    let token = s.list(alice()).await.unwrap().next_page_token;
    assert!(!token.is_empty());
    // The token works for its own query...
    let second = s.list(pb::ListAuditEventsRequest { page_token: token.clone(), ..alice() }).await.unwrap();
    assert_eq!(sequences(&second.audit_events), [21, 18]);
    // ...and for another page size, but not for another query.
    assert!(s.list(pb::ListAuditEventsRequest { page_token: token.clone(), page_size: 5, ..alice() }).await.is_ok());
    for other in [
        pb::ListAuditEventsRequest { actor: "users/bob".into(), ..alice() },
        pb::ListAuditEventsRequest { order_by: "sequence".into(), ..alice() },
        pb::ListAuditEventsRequest { resource: "certificates/".into(), ..alice() },
        pb::ListAuditEventsRequest { start_time: Some(pbjson_types::Timestamp { seconds: 1, nanos: 0 }), ..alice() },
    ] {
        assert_invalid(s.list(pb::ListAuditEventsRequest { page_token: token.clone(), ..other }).await, "page_token");
    }
    for garbage in ["garbage!", "eyJ4IjoxfQ", &token[..token.len() - 2]] {
        assert_invalid(
            s.list(pb::ListAuditEventsRequest { page_token: garbage.into(), ..alice() }).await,
            "page_token",
        );
    }
    assert_invalid(s.list(pb::ListAuditEventsRequest { page_size: -1, ..list() }).await, "page_size");
    for order_by in ["event_time", "sequence descending", "actor desc"] {
        assert_invalid(s.list(pb::ListAuditEventsRequest { order_by: order_by.into(), ..list() }).await, "order_by");
    }
    let t = |seconds: i64, nanos: i32| Some(pbjson_types::Timestamp { seconds, nanos });
    assert_invalid(
        s.list(pb::ListAuditEventsRequest { start_time: t(10, 0), end_time: t(5, 0), ..list() }).await,
        "end_time",
    );
    assert_invalid(
        s.list(pb::ListAuditEventsRequest { start_time: t(0, 1_000_000_000), ..list() }).await,
        "start_time",
    );
    assert_invalid(s.list(pb::ListAuditEventsRequest { end_time: t(i64::MIN, 0), ..list() }).await, "end_time");
    assert_invalid(s.list(pb::ListAuditEventsRequest { resource: "x".repeat(2000), ..list() }).await, "resource");
    s.shutdown().await;
}
