//! Renewal times: kept on every write that can move them, listed soonest due
//! first, recomputed when a policy changes, and backfilled for old rows.

use std::path::PathBuf;
use std::sync::Arc;

use certctl_common::db::{Database, DatabaseConfig};
use certctl_domain::inventory::{Certificate, RenewalPolicy, Revocation};
use certctl_domain::renewal::renewal_time;
use certctl_inventory::store::{CertificateOrder, CertificateQuery, Cursor, SqliteStore, Store};

use crate::certificates::add_version;
use crate::{DAY, NOW, certificate, event, listed_ids, query};

const ISSUER: &str = "issuers/local";

fn issued(id: &str) -> Certificate {
    Certificate { issuer: ISSUER.into(), ..certificate(id) }
}

fn due_by(t: i64) -> CertificateQuery {
    CertificateQuery { renew_before: Some(t), order: CertificateOrder::RenewTime, ..query() }
}

async fn renew_time<S: Store>(store: &S, id: &str) -> Option<i64> {
    store.get_certificate(id).await.unwrap().renew_time
}

/// `early` (renewal due about now), `late` (due in weeks),
/// `pending` (no version: due at once), `tracked` (no issuer: never).
async fn fleet<S: Store>(store: &S) -> (i64, i64) {
    let policy = RenewalPolicy::default();
    for c in [issued("early"), issued("late"), issued("pending"), certificate("tracked")] {
        store.create_certificate(&c, None, event("CreateCertificate", &c.name())).await.unwrap();
    }
    // add_version's versions are valid for 90 days up to not_after.
    add_version(store, "early", "01", NOW + 30 * DAY, NOW).await;
    add_version(store, "late", "02", NOW + 80 * DAY, NOW).await;
    add_version(store, "tracked", "03", NOW + DAY, NOW).await;
    let early = renewal_time(&policy, "early", 1, NOW - 60 * DAY, NOW + 30 * DAY);
    let late = renewal_time(&policy, "late", 1, NOW - 10 * DAY, NOW + 80 * DAY);
    (early, late)
}

async fn kept_with_every_write<S: Store>(store: Arc<S>) {
    let (early, late) = fleet(store.as_ref()).await;
    assert_eq!(renew_time(store.as_ref(), "pending").await, Some(NOW), "no version yet: due at once");
    assert_eq!(renew_time(store.as_ref(), "early").await, Some(early));
    assert_eq!(renew_time(store.as_ref(), "late").await, Some(late));
    assert_eq!(renew_time(store.as_ref(), "tracked").await, None, "certctl does not issue it");

    // Giving the tracked certificate an issuer makes it due by its version.
    let tracked = Certificate { issuer: ISSUER.into(), ..store.get_certificate("tracked").await.unwrap() };
    let updated = store.update_certificate(&tracked, event("UpdateCertificate", "certificates/tracked")).await.unwrap();
    let expected = renewal_time(&RenewalPolicy::default(), "tracked", 1, NOW - 89 * DAY, NOW + DAY);
    assert_eq!(updated.renew_time, Some(expected), "the update answers with the new time");
    assert_eq!(renew_time(store.as_ref(), "tracked").await, Some(expected));

    // A new version moves the time to that version's.
    add_version(store.as_ref(), "early", "04", NOW + 90 * DAY, NOW).await;
    let next = renewal_time(&RenewalPolicy::default(), "early", 2, NOW, NOW + 90 * DAY);
    assert_eq!(renew_time(store.as_ref(), "early").await, Some(next));
    assert_ne!(next, early);

    // Revoking the current version ends renewals.
    let revocation = Revocation::new(Some(NOW), "keyCompromise").unwrap();
    store.record_revocation("late", 1, &revocation, NOW, event("RecordRevocation", "x")).await.unwrap();
    assert_eq!(renew_time(store.as_ref(), "late").await, None);
    // ...until the next version.
    add_version(store.as_ref(), "late", "05", NOW + 90 * DAY, NOW).await;
    assert!(renew_time(store.as_ref(), "late").await.is_some());
}

async fn listed_soonest_due_first<S: Store>(store: Arc<S>) {
    let (early, late) = fleet(store.as_ref()).await;
    let mut due = [("pending", NOW), ("early", early)];
    due.sort_by_key(|(id, t)| (*t, *id));
    let due_ids: Vec<&str> = due.iter().map(|(id, _)| *id).collect();
    assert_eq!(listed_ids(store.as_ref(), &due_by(NOW.max(early))).await, due_ids);
    assert_eq!(listed_ids(store.as_ref(), &due_by(late)).await.len(), 3, "the bound is inclusive");
    assert!(listed_ids(store.as_ref(), &due_by(NOW - DAY)).await.is_empty());
    assert_eq!(
        listed_ids(store.as_ref(), &CertificateQuery { order: CertificateOrder::RenewTime, ..query() }).await.len(),
        3,
        "renew_time order lists only what certctl issues"
    );

    // The basic view: the same rows, what scheduling needs, no more.
    let full = store.list_certificates(&due_by(late)).await.unwrap();
    let basic = store.list_certificates(&CertificateQuery { basic: true, ..due_by(late) }).await.unwrap();
    assert_eq!(basic.len(), full.len());
    for (b, f) in basic.iter().zip(&full) {
        let validity = |c: &Certificate| c.current.as_ref().map(|v| (v.version, v.not_before, v.not_after));
        assert_eq!(
            (&b.id, &b.issuer, validity(b), b.renew_time, b.revoked),
            (&f.id, &f.issuer, validity(f), f.renew_time, f.revoked)
        );
        assert_eq!(b.alert_lead_secs, f.alert_lead_secs, "the state needs the alert lead");
        assert!(b.subject_alt_names.is_empty() && b.common_name.is_empty() && !f.subject_alt_names.is_empty());
    }

    // Pages continue after (renew_time, id).
    let first = CertificateQuery { limit: 1, ..due_by(late) };
    assert_eq!(listed_ids(store.as_ref(), &first).await, [due_ids[0]]);
    let after = Cursor { key: due[0].1, id: due_ids[0].to_owned() };
    let rest = CertificateQuery { after: Some(after), ..due_by(late) };
    assert_eq!(listed_ids(store.as_ref(), &rest).await, [due_ids[1], "late"]);
}

async fn a_policy_change_moves_its_certificates<S: Store>(store: Arc<S>) {
    let mut fast = RenewalPolicy { id: "fast".into(), ..RenewalPolicy::default() };
    store.create_document(&fast, event("CreateRenewalPolicy", "renewalPolicies/fast")).await.unwrap();
    fleet(store.as_ref()).await;
    let mut late = store.get_certificate("late").await.unwrap();
    late.renewal_policy = "renewalPolicies/fast".into();
    store.update_certificate(&late, event("UpdateCertificate", "certificates/late")).await.unwrap();
    let before = renew_time(store.as_ref(), "late").await.unwrap();
    let early_before = renew_time(store.as_ref(), "early").await;

    // Renew when 90% of the lifetime remains: clamped to the earliest
    // allowed point, well before the default's two thirds.
    fast.renew_before_lifetime_fraction = Some(0.9);
    store.update_renewal_policy(&fast, event("UpdateRenewalPolicy", "renewalPolicies/fast")).await.unwrap();
    let after = renew_time(store.as_ref(), "late").await.unwrap();
    assert_eq!(after, renewal_time(&fast, "late", 1, NOW - 10 * DAY, NOW + 80 * DAY));
    assert!(after < before, "{after} < {before}");
    assert!(listed_ids(store.as_ref(), &due_by(NOW)).await.contains(&"late".to_owned()));
    assert_eq!(renew_time(store.as_ref(), "early").await, early_before, "other policies' certificates stay");
}

async fn data_migrations_run_once<S: Store>(store: Arc<S>) {
    let (early, _) = fleet(store.as_ref()).await;
    assert_eq!(store.run_data_migrations().await.unwrap(), ["renew_time"]);
    assert_eq!(renew_time(store.as_ref(), "early").await, Some(early), "the backfill agrees with the writes");
    assert!(store.run_data_migrations().await.unwrap().is_empty(), "done once, never again");
}

conformance!(
    kept_with_every_write,
    listed_soonest_due_first,
    a_policy_change_moves_its_certificates,
    data_migrations_run_once,
);

/// A database from before renewal times had rows without one: the backfill
/// computes them under each certificate's own policy, in batches.
#[tokio::test]
async fn the_backfill_fills_rows_written_before_renewal_times() {
    let dir = tempfile::tempdir().unwrap();
    let config = DatabaseConfig::Sqlite { data_dir: PathBuf::from(dir.path()) };
    let db = Database::connect(&config, certctl_inventory::SERVICE).await.unwrap();
    certctl_inventory::migrate(&db).await.unwrap();
    let Database::Sqlite(pool) = db else { unreachable!() };
    let store = SqliteStore::new(pool.clone());
    let fast = RenewalPolicy {
        id: "fast".into(),
        renew_before_lifetime_fraction: Some(0.9),
        alert_threshold_days: vec![10, 1],
        ..Default::default()
    };
    store.create_document(&fast, event("CreateRenewalPolicy", "renewalPolicies/fast")).await.unwrap();
    let count = 2500; // more than one batch
    for i in 0..count {
        let mut c = issued(&format!("c{i:04}"));
        if i % 2 == 0 {
            c.renewal_policy = "renewalPolicies/fast".into();
        }
        store.create_certificate(&c, None, event("CreateCertificate", &c.name())).await.unwrap();
        add_version(&store, &c.id, &format!("{i:04X}"), NOW + 60 * DAY, NOW).await;
    }
    // As an older version left them: no renewal time, and (to see the lead
    // recomputed too) a wrong alert lead.
    sqlx::query("UPDATE certificates SET renew_time = NULL, alert_lead_secs = 0, expiring_at = expiry_key")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO data_migrations (name) VALUES ('renew_time') ON CONFLICT DO NOTHING")
        .execute(&pool)
        .await
        .unwrap();
    assert!(listed_ids(&store, &due_by(i64::MAX)).await.is_empty());

    assert_eq!(store.run_data_migrations().await.unwrap(), ["renew_time"]);
    for i in [0, 1, 1998, 2499] {
        let id = format!("c{i:04}");
        let policy = if i % 2 == 0 { fast.clone() } else { RenewalPolicy::default() };
        let expected = renewal_time(&policy, &id, 1, NOW - 30 * DAY, NOW + 60 * DAY);
        assert_eq!(renew_time(&store, &id).await, Some(expected), "{id}");
        let lead = if i % 2 == 0 { 10 * DAY } else { 30 * DAY };
        assert_eq!(store.get_certificate(&id).await.unwrap().alert_lead_secs, lead, "{id}");
    }
    let all = CertificateQuery { limit: 10_000, ..due_by(i64::MAX) };
    assert_eq!(listed_ids(&store, &all).await.len(), count);
    pool.close().await;
}
