//! Revocations recorded on versions, and what they do to the certificate.

use std::sync::Arc;

use certctl_domain::inventory::{Certificate, CertificateState, Revocation};
use certctl_inventory::store::{CertificateQuery, RevocationRecord, Store, Summary};

use crate::certificates::add_version;
use crate::{DAY, NOW, action, assert_not_found, certificate, event, listed_ids, outbox, outbox_actions, query};

fn revocation(revoke_time: i64, reason: &str) -> Revocation {
    Revocation { revoke_time, reason: reason.to_owned() }
}

async fn revoke<S: Store>(store: &S, id: &str, version: i64, r: &Revocation, now: i64) -> RevocationRecord {
    let name = format!("certificates/{id}/versions/{version}");
    store.record_revocation(id, version, r, now, event("RecordRevocation", &name)).await.expect("record_revocation")
}

fn recorded(record: RevocationRecord) -> Certificate {
    match record {
        RevocationRecord::Recorded(c) => c,
        other => panic!("expected the revocation to be recorded, got {other:?}"),
    }
}

fn in_state(state: CertificateState) -> CertificateQuery {
    CertificateQuery { state: Some(state), ..query() }
}

/// Two versions, the second current, 60 days from expiry: active.
async fn web_with_two_versions<S: Store>(store: &S) -> Certificate {
    store.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    add_version(store, "web", "01", NOW + 30 * DAY, NOW).await;
    add_version(store, "web", "02", NOW + 60 * DAY, NOW).await;
    store.get_certificate("web").await.unwrap()
}

async fn revoking_the_current_version_revokes_the_certificate<S: Store>(store: Arc<S>) {
    let before = web_with_two_versions(store.as_ref()).await;
    let compromised = revocation(NOW + 5, "keyCompromise");

    let after = recorded(revoke(store.as_ref(), "web", 2, &compromised, NOW + 10).await);
    assert!(after.revoked);
    assert_eq!(after.state(NOW + 10), CertificateState::Revoked);
    assert_eq!(after.update_time, NOW + 10);
    assert_eq!(after, Certificate { revoked: true, update_time: NOW + 10, ..before.clone() }, "only the flag moves");
    assert_eq!(store.get_certificate("web").await.unwrap(), after);
    assert_eq!(store.get_version("web", 2).await.unwrap().revocation, Some(compromised.clone()));
    assert_eq!(store.get_version("web", 1).await.unwrap().revocation, None);
    let listed = store.list_versions("web", None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|v| v.revocation.clone()).collect::<Vec<_>>(), [Some(compromised.clone()), None]);
    assert_eq!(listed_ids(store.as_ref(), &in_state(CertificateState::Revoked)).await, ["web"]);
    assert!(listed_ids(store.as_ref(), &in_state(CertificateState::Active)).await.is_empty());
    let summary = store.summarize(NOW).await.unwrap();
    assert_eq!(summary, Summary { total: 1, revoked: 1, ..Summary::default() });
    let actions = outbox_actions(store.as_ref()).await;
    assert_eq!(actions.last(), Some(&action("RecordRevocation", "certificates/web/versions/2")));

    // The same revocation again: nothing written, the certificate as it is.
    let events = outbox(store.as_ref()).await.len();
    match revoke(store.as_ref(), "web", 2, &compromised, NOW + 20).await {
        RevocationRecord::AlreadyRevoked { existing, certificate } => {
            assert_eq!(existing, compromised);
            assert_eq!(certificate, after);
        }
        other => panic!("expected AlreadyRevoked, got {other:?}"),
    }
    // A different one keeps the first.
    match revoke(store.as_ref(), "web", 2, &revocation(NOW + 7, "superseded"), NOW + 30).await {
        RevocationRecord::AlreadyRevoked { existing, .. } => assert_eq!(existing, compromised),
        other => panic!("expected AlreadyRevoked, got {other:?}"),
    }
    assert_eq!(store.get_certificate("web").await.unwrap(), after);
    assert_eq!(store.get_version("web", 2).await.unwrap().revocation, Some(compromised.clone()));
    assert_eq!(outbox(store.as_ref()).await.len(), events, "a repeat leaves no audit event");

    // The next version is a fresh start; the revoked one stays revoked.
    add_version(store.as_ref(), "web", "03", NOW + 90 * DAY, NOW + 40).await;
    let renewed = store.get_certificate("web").await.unwrap();
    assert!(!renewed.revoked);
    assert_eq!(renewed.state(NOW + 40), CertificateState::Active);
    assert_eq!(listed_ids(store.as_ref(), &in_state(CertificateState::Active)).await, ["web"]);
    assert_eq!(store.summarize(NOW).await.unwrap(), Summary { total: 1, active: 1, ..Summary::default() });
    assert_eq!(store.get_version("web", 2).await.unwrap().revocation, Some(compromised));
    assert_eq!(store.get_version("web", 3).await.unwrap().revocation, None);
}

async fn revoking_an_old_version_leaves_the_certificate<S: Store>(store: Arc<S>) {
    let before = web_with_two_versions(store.as_ref()).await;
    let superseded = revocation(NOW + 5, "superseded");

    let after = recorded(revoke(store.as_ref(), "web", 1, &superseded, NOW + 10).await);
    assert_eq!(after, before, "neither the flag nor update_time moves");
    assert_eq!(store.get_certificate("web").await.unwrap(), before);
    assert_eq!(store.get_version("web", 1).await.unwrap().revocation, Some(superseded));
    assert_eq!(store.get_version("web", 2).await.unwrap().revocation, None);
    assert_eq!(listed_ids(store.as_ref(), &in_state(CertificateState::Active)).await, ["web"]);
    assert!(listed_ids(store.as_ref(), &in_state(CertificateState::Revoked)).await.is_empty());
    assert_eq!(store.summarize(NOW).await.unwrap().revoked, 0);
    assert_eq!(
        outbox_actions(store.as_ref()).await.last(),
        Some(&action("RecordRevocation", "certificates/web/versions/1")),
        "the revocation is audited even though the certificate did not change"
    );
}

async fn unknown_versions_are_not_found<S: Store>(store: Arc<S>) {
    web_with_two_versions(store.as_ref()).await;
    store
        .create_certificate(&certificate("pending"), None, event("CreateCertificate", "certificates/pending"))
        .await
        .unwrap();
    let events = outbox(store.as_ref()).await.len();
    let r = revocation(NOW, "keyCompromise");
    for (id, version) in [("web", 3), ("nope", 1), ("pending", 1)] {
        let name = format!("certificates/{id}/versions/{version}");
        let refused = store.record_revocation(id, version, &r, NOW, event("RecordRevocation", &name)).await;
        assert_not_found(refused, &name);
    }
    assert!(!store.get_certificate("web").await.unwrap().revoked);
    assert!(!store.get_certificate("pending").await.unwrap().revoked);
    assert_eq!(outbox(store.as_ref()).await.len(), events, "refused revocations leave no audit event");
}

conformance!(
    revoking_the_current_version_revokes_the_certificate,
    revoking_an_old_version_leaves_the_certificate,
    unknown_versions_are_not_found,
);
