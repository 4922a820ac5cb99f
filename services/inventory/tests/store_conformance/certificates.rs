//! Certificates, their versions, references and the outbox they write.

use std::sync::Arc;

use certctl_domain::inventory::{CertificateState, CertificateVersion, CurrentVersion, KeyAlgorithm, RenewalPolicy};
use certctl_domain::name::version_name;
use certctl_inventory::store::{CertificateQuery, ReferenceColumn, Store};

use crate::{
    DAY, NOW, action, assert_already_exists, assert_not_found, certificate, event, listed_ids, outbox, outbox_actions,
    parsed, pem, query,
};

fn with_state(state: CertificateState) -> CertificateQuery {
    CertificateQuery { state: Some(state), ..query() }
}

pub(crate) async fn add_version<S: Store>(
    store: &S,
    id: &str,
    serial: &str,
    not_after: i64,
    now: i64,
) -> CertificateVersion {
    let parsed = parsed(serial, not_after - 90 * DAY, not_after);
    store
        .add_version(id, &pem(serial), &parsed, now, |v| event("CreateCertificateVersion", &version_name(id, v)))
        .await
        .expect("add_version")
}

async fn create_get_update_delete<S: Store>(store: Arc<S>) {
    let mut c = certificate("web");
    c.owner = "owners/alice".into();
    c.team = "teams/edge".into();
    c.environment = "prod".into();
    c.issuer = "issuers/acme".into();
    c.profile = "profiles/tls-server".into();
    c.renewal_policy = "renewalPolicies/short".into();
    c.targets = vec!["targets/nginx-1".into(), "targets/haproxy-2".into()];
    c.labels = [("tier".to_owned(), "front".to_owned())].into();
    c.metadata = [("imported_from".to_owned(), "/etc/ssl/web.pem".to_owned())].into();
    c.server_keyed = true;
    c.key_algorithm = Some(KeyAlgorithm::Rsa3072);

    let created = store.create_certificate(&c, None, event("CreateCertificate", "certificates/web")).await.unwrap();
    assert_eq!(c.renew_time, None, "the service leaves it to the store");
    c.renew_time = c.next_issue_time(&RenewalPolicy::default());
    assert_eq!(created, c);
    assert_eq!(store.get_certificate("web").await.unwrap(), c);

    let mut changed = c.clone();
    changed.display_name = "Web, renamed".into();
    changed.owner = "owners/bob".into();
    changed.subject_alt_names = vec!["web.example.org".into()];
    changed.targets = Vec::new();
    changed.labels = [("tier".to_owned(), "back".to_owned()), ("zone".to_owned(), "b".to_owned())].into();
    changed.metadata.clear();
    changed.server_keyed = false;
    changed.key_algorithm = Some(KeyAlgorithm::Ed25519);
    // The store takes the alert lead from the policy, as it stands then.
    changed.renewal_policy = crate::policy_with_lead(store.as_ref(), "lead7", 7).await;
    changed.alert_lead_secs = 7 * DAY;
    changed.update_time = NOW + 60;
    // create_time is not the caller's to change.
    let attempt = certctl_domain::inventory::Certificate { create_time: 1, ..changed.clone() };
    store.update_certificate(&attempt, event("UpdateCertificate", "certificates/web")).await.unwrap();
    assert_eq!(store.get_certificate("web").await.unwrap(), changed);
    assert_eq!(
        store.list_certificates(&query()).await.unwrap(),
        std::slice::from_ref(&changed),
        "listings carry every field"
    );
    // Back to the profile's key type.
    let unspecified = certctl_domain::inventory::Certificate { key_algorithm: None, ..changed.clone() };
    store.update_certificate(&unspecified, event("UpdateCertificate", "certificates/web")).await.unwrap();
    assert_eq!(store.get_certificate("web").await.unwrap(), unspecified);
    store.update_certificate(&changed, event("UpdateCertificate", "certificates/web")).await.unwrap();
    // The search text follows the SANs.
    let search = |s: &str| CertificateQuery { search: Some(s.into()), ..query() };
    assert_eq!(listed_ids(store.as_ref(), &search("example.org")).await, ["web"]);
    assert!(listed_ids(store.as_ref(), &search("www.web")).await.is_empty());

    store.delete_certificate("web", event("DeleteCertificate", "certificates/web")).await.unwrap();
    assert_not_found(store.get_certificate("web").await, "certificates/web");
    assert!(listed_ids(store.as_ref(), &query()).await.is_empty());

    assert_eq!(
        outbox_actions(store.as_ref()).await,
        [
            action("CreateCertificate", "certificates/web"),
            action("CreateRenewalPolicy", "renewalPolicies/lead7"),
            action("UpdateCertificate", "certificates/web"),
            action("UpdateCertificate", "certificates/web"),
            action("UpdateCertificate", "certificates/web"),
            action("DeleteCertificate", "certificates/web"),
        ]
    );
}

async fn unknown_certificates_are_not_found<S: Store>(store: Arc<S>) {
    assert_not_found(store.get_certificate("nope").await, "certificates/nope");
    let ghost = certificate("nope");
    assert_not_found(
        store.update_certificate(&ghost, event("UpdateCertificate", "certificates/nope")).await,
        "certificates/nope",
    );
    assert_not_found(
        store.delete_certificate("nope", event("DeleteCertificate", "certificates/nope")).await,
        "certificates/nope",
    );
    assert_not_found(store.get_version("nope", 1).await, "certificates/nope/versions/1");
    let (v, chain) = (parsed("01", NOW, NOW + DAY), pem("01"));
    let added =
        store.add_version("nope", &chain, &v, NOW, |n| event("CreateCertificateVersion", &version_name("nope", n)));
    assert_not_found(added.await, "certificates/nope");
    assert!(store.list_versions("nope", None, 10).await.unwrap().is_empty());
    assert!(outbox(store.as_ref()).await.is_empty(), "refused mutations leave no audit event");
}

async fn duplicate_ids_are_refused_without_a_trace<S: Store>(store: Arc<S>) {
    let original = certificate("a");
    store.create_certificate(&original, None, event("CreateCertificate", "certificates/a")).await.unwrap();

    let mut again = certificate("a");
    again.common_name = "other.example.com".into();
    again.owner = "owners/mallory".into();
    let refused = store.create_certificate(&again, Some("retry-1"), event("CreateCertificate", "certificates/a")).await;
    assert_already_exists(refused, "certificates/a");
    assert_eq!(store.get_certificate("a").await.unwrap(), original);
    assert_eq!(outbox(store.as_ref()).await.len(), 1);

    // The refused create did not keep its request id: a new create may use it.
    let b = certificate("b");
    let created = store.create_certificate(&b, Some("retry-1"), event("CreateCertificate", "certificates/b")).await;
    assert_eq!(created.unwrap(), b);
    assert_eq!(
        outbox_actions(store.as_ref()).await,
        [action("CreateCertificate", "certificates/a"), action("CreateCertificate", "certificates/b")]
    );
}

async fn request_ids_replay_the_first_result<S: Store>(store: Arc<S>) {
    let first = certificate("first");
    let created =
        store.create_certificate(&first, Some("req-1"), event("CreateCertificate", "certificates/first")).await;
    assert_eq!(created.unwrap(), first);

    // A retry, even with a different body, returns what the first call created.
    let retry = certificate("second");
    let replayed =
        store.create_certificate(&retry, Some("req-1"), event("CreateCertificate", "certificates/second")).await;
    assert_eq!(replayed.unwrap(), first);
    assert_not_found(store.get_certificate("second").await, "certificates/second");
    assert_eq!(outbox(store.as_ref()).await.len(), 1, "a replay is not a mutation");

    // A different request for an existing id is still a duplicate.
    let refused =
        store.create_certificate(&first, Some("req-2"), event("CreateCertificate", "certificates/first")).await;
    assert_already_exists(refused, "certificates/first");
    assert_eq!(listed_ids(store.as_ref(), &query()).await, ["first"]);
    assert_eq!(outbox(store.as_ref()).await.len(), 1);
}

async fn versions_are_numbered_and_become_current<S: Store>(store: Arc<S>) {
    store.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    let mut added = Vec::new();
    for (n, serial) in [(1, "0A"), (2, "0B"), (3, "0C")] {
        let not_after = NOW + n * 10 * DAY;
        let v = add_version(store.as_ref(), "web", serial, not_after, NOW + n).await;
        assert_eq!(v.version, n);
        assert_eq!(v.certificate_id, "web");
        assert_eq!(v.pem_chain, pem(serial));
        assert_eq!(v.parsed, parsed(serial, not_after - 90 * DAY, not_after));
        assert_eq!(v.create_time, NOW + n);
        assert_eq!(v.revocation, None);
        let c = store.get_certificate("web").await.unwrap();
        let expected = CurrentVersion {
            version: n,
            serial_number: serial.into(),
            sha256_fingerprint: v.parsed.sha256_fingerprint.clone(),
            not_before: not_after - 90 * DAY,
            not_after,
        };
        assert_eq!(c.current, Some(expected));
        assert_eq!(c.update_time, NOW + n);
        assert_eq!(c.create_time, NOW);
        added.push(v);
    }
    assert_eq!(store.get_version("web", 2).await.unwrap(), added[1]);
    assert_not_found(store.get_version("web", 4).await, "certificates/web/versions/4");

    // Newest first, with a keyset on the version number.
    let newest_first: Vec<_> = added.iter().rev().cloned().collect();
    assert_eq!(store.list_versions("web", None, 10).await.unwrap(), newest_first);
    assert_eq!(store.list_versions("web", None, 2).await.unwrap(), newest_first[..2]);
    assert_eq!(store.list_versions("web", Some(2), 2).await.unwrap(), newest_first[2..]);
    assert!(store.list_versions("web", Some(1), 2).await.unwrap().is_empty());

    // Another certificate counts its own versions.
    store.create_certificate(&certificate("api"), None, event("CreateCertificate", "certificates/api")).await.unwrap();
    let api = add_version(store.as_ref(), "api", "AA", NOW + 5 * DAY, NOW).await;
    assert_eq!(api.version, 1);
    assert_eq!(store.list_versions("api", None, 10).await.unwrap(), [api]);
    assert_eq!(store.list_versions("web", None, 10).await.unwrap().len(), 3);

    let mut expected_outbox = vec![action("CreateCertificate", "certificates/web")];
    expected_outbox
        .extend((1..=3).map(|n| action("CreateCertificateVersion", &format!("certificates/web/versions/{n}"))));
    expected_outbox.push(action("CreateCertificate", "certificates/api"));
    expected_outbox.push(action("CreateCertificateVersion", "certificates/api/versions/1"));
    assert_eq!(outbox_actions(store.as_ref()).await, expected_outbox);
}

async fn updates_keep_the_current_version_and_recompute_the_lead<S: Store>(store: Arc<S>) {
    let c = certificate("web");
    store.create_certificate(&c, None, event("CreateCertificate", "certificates/web")).await.unwrap();
    add_version(store.as_ref(), "web", "01", NOW + 20 * DAY, NOW).await;
    let current = store.get_certificate("web").await.unwrap().current;
    assert_eq!(listed_ids(store.as_ref(), &with_state(CertificateState::Expiring)).await, ["web"]);

    // A 7-day lead on a certificate 20 days from expiry: active again.
    let lead7 = crate::policy_with_lead(store.as_ref(), "lead7", 7).await;
    let shorter = certctl_domain::inventory::Certificate { renewal_policy: lead7, display_name: "Web".into(), ..c };
    store.update_certificate(&shorter, event("UpdateCertificate", "certificates/web")).await.unwrap();
    let after = store.get_certificate("web").await.unwrap();
    assert_eq!(after.current, current, "an update does not touch the versions");
    assert_eq!(after.display_name, "Web");
    assert_eq!(listed_ids(store.as_ref(), &with_state(CertificateState::Active)).await, ["web"]);
    assert!(listed_ids(store.as_ref(), &with_state(CertificateState::Expiring)).await.is_empty());
}

async fn deleting_a_certificate_deletes_its_versions<S: Store>(store: Arc<S>) {
    store.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    add_version(store.as_ref(), "web", "01", NOW + DAY, NOW).await;
    add_version(store.as_ref(), "web", "02", NOW + 2 * DAY, NOW).await;
    store.delete_certificate("web", event("DeleteCertificate", "certificates/web")).await.unwrap();
    assert_not_found(store.get_version("web", 1).await, "certificates/web/versions/1");
    assert!(store.list_versions("web", None, 10).await.unwrap().is_empty());

    // A certificate created again under the same id starts over.
    store.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    assert_eq!(store.get_certificate("web").await.unwrap().current, None);
    let v = add_version(store.as_ref(), "web", "03", NOW + 3 * DAY, NOW).await;
    assert_eq!(v.version, 1);
    assert_eq!(store.list_versions("web", None, 10).await.unwrap(), [v]);
}

async fn the_outbox_is_oldest_first_until_acknowledged<S: Store>(store: Arc<S>) {
    let create_a = event("CreateCertificate", "certificates/a");
    store.create_certificate(&certificate("a"), None, create_a.clone()).await.unwrap();
    store.create_certificate(&certificate("b"), None, event("CreateCertificate", "certificates/b")).await.unwrap();
    add_version(store.as_ref(), "a", "01", NOW + DAY, NOW).await;
    store.update_certificate(&certificate("b"), event("UpdateCertificate", "certificates/b")).await.unwrap();
    store.delete_certificate("a", event("DeleteCertificate", "certificates/a")).await.unwrap();

    let all = outbox(store.as_ref()).await;
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "ids grow with commit order: {all:?}");
    assert_eq!(all[0].event, create_a, "the event round-trips unchanged");
    assert_eq!(
        all.iter().map(|e| (e.event.action.clone(), e.event.resource.clone())).collect::<Vec<_>>(),
        [
            action("CreateCertificate", "certificates/a"),
            action("CreateCertificate", "certificates/b"),
            action("CreateCertificateVersion", "certificates/a/versions/1"),
            action("UpdateCertificate", "certificates/b"),
            action("DeleteCertificate", "certificates/a"),
        ]
    );
    assert_eq!(store.outbox_batch(2).await.unwrap(), all[..2]);

    store.outbox_ack(&[all[0].id, all[1].id]).await.unwrap();
    assert_eq!(outbox(store.as_ref()).await, all[2..]);
    // Acknowledging nothing, or something already gone, changes nothing.
    store.outbox_ack(&[]).await.unwrap();
    store.outbox_ack(&[all[0].id]).await.unwrap();
    assert_eq!(outbox(store.as_ref()).await, all[2..]);
    // Acknowledging out of order removes exactly the ones named.
    store.outbox_ack(&[all[4].id, all[2].id]).await.unwrap();
    assert_eq!(outbox(store.as_ref()).await, all[3..4]);
    store.outbox_ack(&[all[3].id]).await.unwrap();
    assert!(outbox(store.as_ref()).await.is_empty());

    store.create_certificate(&certificate("c"), None, event("CreateCertificate", "certificates/c")).await.unwrap();
    let next = outbox(store.as_ref()).await;
    assert_eq!(next.len(), 1);
    assert!(next[0].id > all[4].id, "ids are never reused");
}

async fn references_and_alert_leads<S: Store>(store: Arc<S>) {
    let mut one = certificate("one");
    one.owner = "owners/alice".into();
    one.team = "teams/edge".into();
    one.renewal_policy = "renewalPolicies/short".into();
    let mut two = certificate("two");
    two.owner = "owners/bob".into();
    two.renewal_policy = "renewalPolicies/long".into();
    let mut pending = certificate("pending");
    pending.renewal_policy = "renewalPolicies/short".into();
    for c in [&one, &two, &pending] {
        store.create_certificate(c, None, event("CreateCertificate", &c.name())).await.unwrap();
    }
    add_version(store.as_ref(), "one", "01", NOW + 20 * DAY, NOW).await;
    add_version(store.as_ref(), "two", "02", NOW + 20 * DAY, NOW).await;

    let refs = |column, name: &'static str| {
        let store = store.clone();
        async move { store.certificate_references(column, name).await.unwrap() }
    };
    assert!(refs(ReferenceColumn::Owner, "owners/alice").await);
    assert!(refs(ReferenceColumn::Owner, "owners/bob").await);
    assert!(!refs(ReferenceColumn::Owner, "owners/carol").await);
    assert!(refs(ReferenceColumn::Team, "teams/edge").await);
    assert!(!refs(ReferenceColumn::Team, "teams/core").await);
    assert!(!refs(ReferenceColumn::Team, "owners/alice").await, "each column is matched on its own");
    assert!(refs(ReferenceColumn::RenewalPolicy, "renewalPolicies/short").await);
    assert!(!refs(ReferenceColumn::RenewalPolicy, "renewalPolicies/other").await);

    one.owner = "owners/carol".into();
    store.update_certificate(&one, event("UpdateCertificate", "certificates/one")).await.unwrap();
    assert!(!refs(ReferenceColumn::Owner, "owners/alice").await);
    assert!(refs(ReferenceColumn::Owner, "owners/carol").await);
    store.delete_certificate("two", event("DeleteCertificate", "certificates/two")).await.unwrap();
    assert!(!refs(ReferenceColumn::Owner, "owners/bob").await);
    assert!(!refs(ReferenceColumn::RenewalPolicy, "renewalPolicies/long").await);

    // Both on a 30-day lead, 20 days from expiry: expiring. Shortening the
    // policy's lead moves every certificate on it, pending ones stay pending.
    store.create_certificate(&two, None, event("CreateCertificate", "certificates/two")).await.unwrap();
    add_version(store.as_ref(), "two", "03", NOW + 20 * DAY, NOW).await;
    assert_eq!(listed_ids(store.as_ref(), &with_state(CertificateState::Expiring)).await, ["one", "two"]);
    let mut short = RenewalPolicy { id: "short".into(), ..RenewalPolicy::default() };
    store.create_document(&short, event("CreateRenewalPolicy", "renewalPolicies/short")).await.unwrap();
    let events_before = outbox(store.as_ref()).await.len();
    short.alert_threshold_days = vec![7, 1];
    store.update_renewal_policy(&short, event("UpdateRenewalPolicy", "renewalPolicies/short")).await.unwrap();
    assert_eq!(store.get_certificate("one").await.unwrap().alert_lead_secs, 7 * DAY);
    assert_eq!(store.get_certificate("pending").await.unwrap().alert_lead_secs, 7 * DAY);
    assert_eq!(store.get_certificate("two").await.unwrap().alert_lead_secs, 30 * DAY);
    assert_eq!(listed_ids(store.as_ref(), &with_state(CertificateState::Active)).await, ["one"]);
    assert_eq!(listed_ids(store.as_ref(), &with_state(CertificateState::Expiring)).await, ["two"]);
    assert_eq!(listed_ids(store.as_ref(), &with_state(CertificateState::Pending)).await, ["pending"]);
    assert_eq!(outbox(store.as_ref()).await.len(), events_before + 1, "the policy update carries its audit event");
    assert_eq!(store.get_document::<RenewalPolicy>("short").await.unwrap().alert_threshold_days, [7, 1]);
    let ghost = RenewalPolicy { id: "ghost".into(), ..RenewalPolicy::default() };
    assert_not_found(
        store.update_renewal_policy(&ghost, event("UpdateRenewalPolicy", "renewalPolicies/ghost")).await,
        "renewalPolicies/ghost",
    );
    assert_eq!(outbox(store.as_ref()).await.len(), events_before + 1, "a refused update leaves no event");
}

conformance!(
    create_get_update_delete,
    unknown_certificates_are_not_found,
    duplicate_ids_are_refused_without_a_trace,
    request_ids_replay_the_first_result,
    versions_are_numbered_and_become_current,
    updates_keep_the_current_version_and_recompute_the_lead,
    deleting_a_certificate_deletes_its_versions,
    the_outbox_is_oldest_first_until_acknowledged,
    references_and_alert_leads,
);
