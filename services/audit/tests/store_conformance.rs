//! One suite for every audit store backend: each test runs on SQLite and,
//! when `CERTCTL_TEST_DATABASE_URL` is set, on PostgreSQL.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use certctl_audit::store::{ChainHead, EventQuery, ResourceFilter};
use certctl_audit::{Audit, Store};
use certctl_common::StoreError;
use certctl_domain::audit::{GENESIS_HASH, NewAuditEvent, chain_hash};
use common::{Harness, event};

on_every_backend!(
    appends_link_from_genesis,
    appending_is_idempotent_on_source_and_source_id,
    batches_keep_their_order,
    details_round_trip_exactly,
    listing_filters,
    resource_prefixes_are_byte_wise,
    listing_pages_by_sequence,
    events_cannot_be_changed_or_removed,
    concurrent_replicas_never_fork_the_chain,
    verify_accepts_an_intact_chain_across_batches,
    verify_finds_an_edited_event,
    verify_finds_a_deleted_event,
    verify_finds_a_truncated_tail,
    verify_finds_a_rehashed_event,
    an_unreachable_database_is_unavailable,
);

async fn all(store: &dyn Store) -> Vec<certctl_domain::audit::AuditEvent> {
    store.list(&EventQuery::chain(0, 100_000)).await.unwrap()
}

async fn verify(h: &Harness) -> certctl_domain::audit::ChainReport {
    Audit::new(h.store.clone()).verify().await.unwrap()
}

async fn appends_link_from_genesis(h: &Harness) {
    assert_eq!(h.store.head().await.unwrap(), ChainHead { sequence: 0, hash: GENESIS_HASH.into() });
    assert_eq!(h.store.append(&[event("1"), event("2"), event("3")]).await.unwrap(), 3);

    let events = all(h.store.as_ref()).await;
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [1, 2, 3]);
    let mut previous = GENESIS_HASH.to_owned();
    for e in &events {
        assert_eq!(e.previous_hash, previous);
        assert_eq!(e.hash, chain_hash(&previous, e.sequence, &e.event));
        previous = e.hash.clone();
    }
    assert_eq!(h.store.head().await.unwrap(), ChainHead { sequence: 3, hash: previous });
    assert_eq!(h.store.get(2).await.unwrap(), events[1]);
    assert_eq!(h.store.get(2).await.unwrap().event, event("2"));
    match h.store.get(4).await {
        Err(StoreError::NotFound { resource }) => assert_eq!(resource, "auditEvents/4"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn appending_is_idempotent_on_source_and_source_id(h: &Harness) {
    assert_eq!(h.store.append(&[]).await.unwrap(), 0);
    assert_eq!(h.store.append(&[event("a"), event("b")]).await.unwrap(), 2);
    // A relay retrying after a lost acknowledgement, overlapping new events.
    assert_eq!(h.store.append(&[event("b"), event("c")]).await.unwrap(), 1);
    // Duplicates inside one batch count once; a changed body under a known id
    // is still a duplicate.
    let mut changed = event("a");
    changed.actor = "users/mallory".into();
    assert_eq!(h.store.append(&[event("d"), event("d"), changed]).await.unwrap(), 1);
    // The same id from another source is another event.
    let mut other_source = event("a");
    other_source.source = "issuance".into();
    assert_eq!(h.store.append(&[other_source]).await.unwrap(), 1);

    let events = all(h.store.as_ref()).await;
    let keys: Vec<_> =
        events.iter().map(|e| (e.sequence, e.event.source.as_str(), e.event.source_id.as_str())).collect();
    assert_eq!(
        keys,
        [
            (1, "inventory", "a"),
            (2, "inventory", "b"),
            (3, "inventory", "c"),
            (4, "inventory", "d"),
            (5, "issuance", "a")
        ]
    );
    assert_eq!(events[0].event.actor, "users/alice", "the first recording of an id wins");
    assert!(verify(h).await.broken.is_none());
}

async fn batches_keep_their_order(h: &Harness) {
    let ids = ["z", "m", "a", "q"];
    let batch: Vec<NewAuditEvent> = ids.iter().map(|id| event(id)).collect();
    assert_eq!(h.store.append(&batch).await.unwrap(), 4);
    let stored: Vec<String> = all(h.store.as_ref()).await.into_iter().map(|e| e.event.source_id).collect();
    assert_eq!(stored, ids);
}

async fn details_round_trip_exactly(h: &Harness) {
    let mut e = event("1");
    e.details = serde_json::json!({
        "z": 1, "a": [true, null, 1.5, -0.25, 12345678901_i64],
        "nested": {"text": "comma, \"quote\"\nnewline – ünïcödé \u{0001}", "empty": {}},
    });
    e.event_time_micros = -1; // a microsecond before the epoch
    let mut null_details = event("2");
    null_details.details = serde_json::Value::Null;
    h.store.append(&[e.clone(), null_details.clone()]).await.unwrap();
    assert_eq!(h.store.get(1).await.unwrap().event, e);
    assert_eq!(h.store.get(2).await.unwrap().event, null_details);
    assert!(verify(h).await.broken.is_none(), "the stored text rehashes to the same hash");
}

/// Ten events over three actors, two actions, nested resources and one
/// second per event.
async fn seed(h: &Harness) {
    let resources = ["certificates/web", "certificates/web/versions/1", "certificates/webx", "owners/alice"];
    let batch: Vec<NewAuditEvent> = (1..=10)
        .map(|i: i64| {
            let mut e = event(&i.to_string());
            e.actor = ["users/alice", "users/bob", "system"][(i % 3) as usize].into();
            e.action = if i % 2 == 0 { "inventory.DeleteCertificate" } else { "inventory.CreateCertificate" }.into();
            e.resource = resources[(i % 4) as usize].into();
            e.event_time_micros = 1_000_000 * i;
            e
        })
        .collect();
    assert_eq!(h.store.append(&batch).await.unwrap(), 10);
}

async fn sequences(store: &dyn Store, query: EventQuery) -> Vec<i64> {
    store.list(&query).await.unwrap().into_iter().map(|e| e.sequence).collect()
}

async fn listing_filters(h: &Harness) {
    seed(h).await;
    let s = h.store.as_ref();
    let q = || EventQuery { limit: 100, ..EventQuery::default() };
    assert_eq!(sequences(s, q()).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(sequences(s, EventQuery { descending: true, ..q() }).await, (1..=10).rev().collect::<Vec<_>>());
    // Half-open time range: [3 s, 6 s).
    let range = EventQuery { start_time_micros: Some(3_000_000), end_time_micros: Some(6_000_000), ..q() };
    assert_eq!(sequences(s, range).await, [3, 4, 5]);
    assert_eq!(sequences(s, EventQuery { start_time_micros: Some(9_000_000), ..q() }).await, [9, 10]);
    assert_eq!(sequences(s, EventQuery { end_time_micros: Some(2_000_000), ..q() }).await, [1]);
    assert_eq!(sequences(s, EventQuery { actor: Some("users/alice".into()), ..q() }).await, [3, 6, 9]);
    assert_eq!(sequences(s, EventQuery { actor: Some("users/ali".into()), ..q() }).await, Vec::<i64>::new());
    let deletes = EventQuery { action: Some("inventory.DeleteCertificate".into()), ..q() };
    assert_eq!(sequences(s, deletes).await, [2, 4, 6, 8, 10]);
    let exact = EventQuery { resource: Some(ResourceFilter::Exact("certificates/web".into())), ..q() };
    assert_eq!(sequences(s, exact).await, [4, 8]);
    let prefix = EventQuery { resource: Some(ResourceFilter::Prefix("certificates/web/".into())), ..q() };
    assert_eq!(sequences(s, prefix).await, [1, 5, 9]);
    let combined = EventQuery {
        actor: Some("users/bob".into()),
        action: Some("inventory.CreateCertificate".into()),
        resource: Some(ResourceFilter::Prefix("owners/".into())),
        start_time_micros: Some(2_000_000),
        ..q()
    };
    assert_eq!(sequences(s, combined).await, [7]);
}

async fn resource_prefixes_are_byte_wise(h: &Harness) {
    let names = [
        "certificates/web",
        "certificates/web/",
        "certificates/web/ü",
        "certificates/web/versions/1",
        "certificates/web.old/versions/1",
        "certificates/web0",
        "certificates/web_x",
        "certificates/Web/versions/1",
        "certificates/we/b",
        "certificates/web%/x",
    ];
    let batch: Vec<NewAuditEvent> = names
        .iter()
        .enumerate()
        .map(|(i, r)| NewAuditEvent { resource: (*r).into(), ..event(&i.to_string()) })
        .collect();
    h.store.append(&batch).await.unwrap();
    let matching = |prefix: &str| {
        let query =
            EventQuery { resource: Some(ResourceFilter::Prefix(prefix.into())), limit: 100, ..EventQuery::default() };
        async move { h.store.list(&query).await.unwrap().into_iter().map(|e| e.event.resource).collect::<BTreeSet<_>>() }
    };
    let expected: BTreeSet<String> =
        ["certificates/web/", "certificates/web/ü", "certificates/web/versions/1"].map(String::from).into();
    assert_eq!(matching("certificates/web/").await, expected);
    assert_eq!(matching("certificates/web%/").await, BTreeSet::from(["certificates/web%/x".to_owned()]));
    assert_eq!(matching("certificates/").await.len(), names.len());
    assert!(matching("issuers/").await.is_empty());
}

async fn listing_pages_by_sequence(h: &Harness) {
    seed(h).await;
    let s = h.store.as_ref();
    let page = |after: Option<i64>, descending: bool| EventQuery {
        after_sequence: after,
        descending,
        limit: 4,
        ..Default::default()
    };
    assert_eq!(sequences(s, page(None, true)).await, [10, 9, 8, 7]);
    assert_eq!(sequences(s, page(Some(7), true)).await, [6, 5, 4, 3]);
    assert_eq!(sequences(s, page(Some(3), true)).await, [2, 1]);
    assert_eq!(sequences(s, page(Some(4), false)).await, [5, 6, 7, 8]);
    let snapshot = EventQuery { through_sequence: Some(6), after_sequence: Some(4), limit: 100, ..Default::default() };
    assert_eq!(sequences(s, snapshot).await, [5, 6]);
    let filtered = EventQuery { actor: Some("users/bob".into()), ..page(Some(4), false) };
    assert_eq!(sequences(s, filtered).await, [7, 10]);
}

async fn events_cannot_be_changed_or_removed(h: &Harness) {
    seed(h).await;
    for sql in [
        "UPDATE audit_events SET actor = 'users/mallory' WHERE sequence = 3",
        "DELETE FROM audit_events WHERE sequence = 10",
        "DELETE FROM audit_events",
        "DELETE FROM chain_head",
        "UPDATE chain_head SET sequence = 2",
    ] {
        let err = h.exec(sql).await.expect_err(sql);
        let message = err.to_string();
        assert!(message.contains("append-only") || message.contains("chain head"), "{sql}: {message}");
    }
    if h.is_postgres() {
        assert!(h.exec("TRUNCATE audit_events").await.is_err());
        assert!(h.exec("TRUNCATE chain_head").await.is_err());
    }
    assert_eq!(all(h.store.as_ref()).await.len(), 10);
    assert_eq!(h.store.get(3).await.unwrap().event.actor, "users/alice");
    assert_eq!(h.store.head().await.unwrap().sequence, 10);
    assert!(verify(h).await.broken.is_none());
}

async fn concurrent_replicas_never_fork_the_chain(h: &Harness) {
    // Two replicas, four appenders each. Every appender relays the same 60
    // shared ids (as two relays racing over one outbox would) plus 30 of
    // its own, in batches of five.
    const APPENDERS: usize = 4;
    let replicas: [Arc<dyn Store>; 2] = [h.store.clone(), h.replica().await];
    let mut tasks = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for a in 0..APPENDERS {
            let store = replica.clone();
            tasks.push(tokio::spawn(async move {
                let ids: Vec<String> =
                    (0..60).map(|i| format!("shared-{i}")).chain((0..30).map(|i| format!("own-{r}-{a}-{i}"))).collect();
                let mut appended = 0;
                for chunk in ids.chunks(5) {
                    let batch: Vec<NewAuditEvent> = chunk.iter().map(|id| event(id)).collect();
                    appended += store.append(&batch).await.expect("an append under contention succeeds");
                }
                appended
            }));
        }
    }
    let mut appended = 0;
    for task in tasks {
        appended += task.await.unwrap();
    }
    let expected = 60 + 2 * APPENDERS as u64 * 30;
    assert_eq!(appended, expected, "each id counted exactly once across all appenders");

    let events = all(h.store.as_ref()).await;
    assert_eq!(events.len() as u64, expected);
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), (1..=expected as i64).collect::<Vec<_>>());
    let unique: BTreeSet<&str> = events.iter().map(|e| e.event.source_id.as_str()).collect();
    assert_eq!(unique.len() as u64, expected);
    let report = verify(h).await;
    assert_eq!(report.broken, None);
    assert_eq!(report.events_checked, expected as i64);
}

/// 2,500 events: more than two verification batches.
async fn long_chain(h: &Harness) {
    let ids: Vec<String> = (1..=2500).map(|i| i.to_string()).collect();
    for chunk in ids.chunks(500) {
        let batch: Vec<NewAuditEvent> = chunk.iter().map(|id| event(id)).collect();
        assert_eq!(h.store.append(&batch).await.unwrap(), 500);
    }
}

async fn verify_accepts_an_intact_chain_across_batches(h: &Harness) {
    let empty = verify(h).await;
    assert_eq!((empty.events_checked, empty.broken), (0, None));
    long_chain(h).await;
    let report = verify(h).await;
    assert_eq!((report.events_checked, report.broken), (2500, None));
}

async fn verify_finds_an_edited_event(h: &Harness) {
    long_chain(h).await;
    h.remove_append_only_guard().await;
    h.exec("UPDATE audit_events SET actor = 'users/mallory' WHERE sequence = 1500").await.unwrap();
    let report = verify(h).await;
    let (sequence, problem) = report.broken.expect("the edit is found");
    assert_eq!(sequence, 1500);
    assert!(problem.contains("1500"), "{problem}");
    assert_eq!(report.events_checked, 1499);
}

async fn verify_finds_a_deleted_event(h: &Harness) {
    long_chain(h).await;
    h.remove_append_only_guard().await;
    h.exec("DELETE FROM audit_events WHERE sequence = 1001").await.unwrap();
    let report = verify(h).await;
    let (sequence, problem) = report.broken.expect("the gap is found");
    assert_eq!(sequence, 1001, "{problem}");
    assert!(problem.contains("missing"), "{problem}");
    assert_eq!(report.events_checked, 1000);
}

async fn verify_finds_a_truncated_tail(h: &Harness) {
    seed(h).await;
    h.remove_append_only_guard().await;
    h.exec("DELETE FROM audit_events WHERE sequence >= 9").await.unwrap();
    let report = verify(h).await;
    let (sequence, problem) = report.broken.expect("the lost tail is found through the chain head");
    assert_eq!(sequence, 9, "{problem}");
    assert_eq!(report.events_checked, 8);
}

async fn verify_finds_a_rehashed_event(h: &Harness) {
    // An attacker who edits an event and recomputes its hash still breaks the
    // next event's link.
    seed(h).await;
    h.remove_append_only_guard().await;
    let mut forged = h.store.get(4).await.unwrap();
    forged.event.actor = "users/mallory".into();
    let hash = chain_hash(&forged.previous_hash, 4, &forged.event);
    h.exec(&format!("UPDATE audit_events SET actor = 'users/mallory', hash = '{hash}' WHERE sequence = 4"))
        .await
        .unwrap();
    assert_eq!(verify(h).await.broken.map(|b| b.0), Some(5));
}

async fn an_unreachable_database_is_unavailable(h: &Harness) {
    seed(h).await;
    h.close().await;
    assert!(matches!(h.store.get(1).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(h.store.append(&[event("late")]).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(h.store.list(&EventQuery::chain(0, 10)).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(h.store.head().await, Err(StoreError::Unavailable(_))));
}
