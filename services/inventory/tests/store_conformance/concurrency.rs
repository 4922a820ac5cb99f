//! Writers racing each other: what a client retrying a slow request, or two
//! replicas serving one inventory, do to the store.

use std::sync::Arc;

use certctl_common::StoreError;
use certctl_domain::name::version_name;
use certctl_inventory::store::Store;

use crate::{DAY, NOW, certificate, event, listed_ids, outbox, parsed, pem, query};

const RACERS: usize = 8;

async fn retries_racing_the_first_attempt_create_once<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            // Each retry carries its own body; only the first to commit counts.
            let c = certificate(&format!("web-{n}"));
            tokio::spawn(async move {
                let resource = c.name();
                store.create_certificate(&c, Some("retry-me"), event("CreateCertificate", &resource)).await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().expect("every retry succeeds").id);
    }
    let created = listed_ids(store.as_ref(), &query()).await;
    assert_eq!(created.len(), 1, "one certificate for one request id: {created:?}");
    assert!(ids.iter().all(|id| *id == created[0]), "every retry sees the first result: {ids:?}");
    assert_eq!(outbox(store.as_ref()).await.len(), 1);
}

async fn racing_creates_of_one_id_leave_one_certificate<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            let mut c = certificate("web");
            c.display_name = format!("attempt {n}");
            let request_id = format!("request-{n}");
            tokio::spawn(async move {
                store.create_certificate(&c, Some(&request_id), event("CreateCertificate", "certificates/web")).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::AlreadyExists { resource }) => assert_eq!(resource, "certificates/web"),
            Err(other) => panic!("a losing create is ALREADY_EXISTS, not {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(outbox(store.as_ref()).await.len(), 1, "losers leave no audit event");
}

async fn racing_versions_are_numbered_one_after_another<S: Store>(store: Arc<S>) {
    store.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let serial = format!("{n:02X}");
                let v = parsed(&serial, NOW, NOW + (n as i64 + 1) * DAY);
                let added = store
                    .add_version("web", &pem(&serial), &v, NOW, |k| {
                        event("CreateCertificateVersion", &version_name("web", k))
                    })
                    .await;
                added.expect("every version is added").version
            })
        })
        .collect();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=RACERS as i64).collect::<Vec<_>>());
    let current = store.get_certificate("web").await.unwrap().current.unwrap();
    assert_eq!(current.version, RACERS as i64);
    let newest = store.get_version("web", RACERS as i64).await.unwrap();
    assert_eq!(current.serial_number, newest.parsed.serial_number, "the last committed version is current");
    assert_eq!(outbox(store.as_ref()).await.len(), 1 + RACERS);
}

/// One signed chain delivered twice at once (a retried issuance job and the
/// issuer's sync after a restart) is one version.
async fn racing_deliveries_of_one_chain_record_one_version<S: Store>(store: Arc<S>) {
    store.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let v = parsed("0A", NOW, NOW + 90 * DAY);
                store
                    .add_version("web", &pem("0A"), &v, NOW, |k| {
                        event("CreateCertificateVersion", &version_name("web", k))
                    })
                    .await
            })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(v) => {
                assert_eq!(v.version, 1);
                recorded += 1;
            }
            Err(StoreError::AlreadyExists { resource }) => assert!(resource.contains("fingerprint"), "{resource}"),
            Err(other) => panic!("a repeated delivery is ALREADY_EXISTS, not {other:?}"),
        }
    }
    assert_eq!(recorded, 1);
    assert_eq!(store.get_certificate("web").await.unwrap().current.unwrap().version, 1);
    assert_eq!(outbox(store.as_ref()).await.len(), 2, "the repeats leave no audit event");
}

conformance!(
    retries_racing_the_first_attempt_create_once,
    racing_creates_of_one_id_leave_one_certificate,
    racing_versions_are_numbered_one_after_another,
    racing_deliveries_of_one_chain_record_one_version,
);
