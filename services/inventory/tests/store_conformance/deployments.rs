//! Deployments: one row per (certificate, target) holding the latest report,
//! listings with filters and pages, and references that must exist.

use std::sync::Arc;

use certctl_common::StoreError;
use certctl_domain::deployment::{Deployment, DeploymentState};
use certctl_domain::inventory::{Target, TargetConfig};
use certctl_domain::name::version_name;
use certctl_inventory::store::{DeploymentQuery, Store};

use crate::{DAY, NOW, action, assert_not_found, certificate, event, outbox, outbox_actions, parsed, pem};

/// Certificate `id` with `versions` versions.
async fn certificate_with_versions<S: Store>(store: &S, id: &str, versions: usize) {
    store
        .create_certificate(&certificate(id), None, event("CreateCertificate", &format!("certificates/{id}")))
        .await
        .unwrap();
    for n in 1..=versions {
        let serial = format!("{id}{n}");
        store
            .add_version(id, &pem(&serial), &parsed(&serial, NOW, NOW + 90 * DAY), NOW, |v| {
                event("CreateCertificateVersion", &version_name(id, v))
            })
            .await
            .unwrap();
    }
}

async fn target<S: Store>(store: &S, id: &str) {
    let target = Target {
        id: id.into(),
        display_name: String::new(),
        agent: String::new(),
        labels: Default::default(),
        config: TargetConfig::File {
            directory: "/srv/certs".into(),
            mode: String::new(),
            owner: String::new(),
            group: String::new(),
            post_deploy_command: String::new(),
        },
        create_time: NOW,
        update_time: NOW,
    };
    store.create_document(&target, event("CreateTarget", &format!("targets/{id}"))).await.unwrap();
}

fn deployment(certificate: &str, version: i64, target: &str, state: DeploymentState) -> Deployment {
    Deployment {
        certificate_id: certificate.into(),
        target_id: target.into(),
        version,
        state,
        served_fingerprint: String::new(),
        message: String::new(),
        deploy_time: Some(NOW),
        verify_time: None,
        update_time: NOW,
        job: "jobs/deploy-1".into(),
    }
}

async fn record<S: Store>(store: &S, deployments: &[Deployment]) -> Result<(), StoreError> {
    let events = deployments.iter().map(|d| event("RecordDeployment", &d.name())).collect();
    store.record_deployments(deployments, events).await
}

fn query() -> DeploymentQuery {
    DeploymentQuery { limit: 100, ..Default::default() }
}

async fn listed<S: Store>(store: &S, query: DeploymentQuery) -> Vec<String> {
    store.list_deployments(&query).await.unwrap().iter().map(Deployment::name).collect()
}

async fn one_row_per_certificate_and_target_holds_the_latest<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    certificate_with_versions(s, "web", 2).await;
    target(s, "edge-1").await;
    target(s, "edge-2").await;
    let before = outbox(s).await.len();

    let first = [
        deployment("web", 1, "edge-1", DeploymentState::Verified),
        deployment("web", 1, "edge-2", DeploymentState::Deployed),
    ];
    record(s, &first).await.unwrap();
    assert_eq!(s.list_deployments(&query()).await.unwrap(), first);

    // The next version replaces the row; every field is the new report's.
    let second = Deployment {
        served_fingerprint: "ab".repeat(32),
        message: "endpoint serves the previous certificate".into(),
        deploy_time: Some(NOW + 60),
        verify_time: Some(NOW + 61),
        update_time: NOW + 62,
        job: "jobs/deploy-2".into(),
        ..deployment("web", 2, "edge-1", DeploymentState::Mismatch)
    };
    record(s, std::slice::from_ref(&second)).await.unwrap();
    let rows = s.list_deployments(&query()).await.unwrap();
    assert_eq!(rows, [second.clone(), first[1].clone()]);
    let failed = Deployment { deploy_time: None, ..deployment("web", 2, "edge-1", DeploymentState::Failed) };
    record(s, std::slice::from_ref(&failed)).await.unwrap();
    assert_eq!(s.list_deployments(&query()).await.unwrap()[0], failed, "no field of the earlier report survives");

    assert_eq!(
        outbox_actions(s).await[before..],
        [
            action("RecordDeployment", "certificates/web/deployments/edge-1"),
            action("RecordDeployment", "certificates/web/deployments/edge-2"),
            action("RecordDeployment", "certificates/web/deployments/edge-1"),
            action("RecordDeployment", "certificates/web/deployments/edge-1"),
        ]
    );
}

async fn listings_filter_and_page<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    for id in ["api", "db", "web"] {
        certificate_with_versions(s, id, 1).await;
    }
    for id in ["t1", "t2", "t3"] {
        target(s, id).await;
    }
    let mut all = Vec::new();
    for (c, certificate) in ["web", "api", "db"].into_iter().enumerate() {
        for (t, target) in ["t3", "t1", "t2"].into_iter().enumerate() {
            let state = if (c + t) % 2 == 0 { DeploymentState::Verified } else { DeploymentState::Failed };
            all.push(deployment(certificate, 1, target, state));
        }
    }
    record(s, &all).await.unwrap();

    let everything = listed(s, query()).await;
    let expected: Vec<String> = ["api", "db", "web"]
        .iter()
        .flat_map(|c| ["t1", "t2", "t3"].map(|t| format!("certificates/{c}/deployments/{t}")))
        .collect();
    assert_eq!(everything, expected, "by certificate, then target");
    assert_eq!(
        listed(s, DeploymentQuery { certificate_id: Some("db".into()), ..query() }).await,
        ["certificates/db/deployments/t1", "certificates/db/deployments/t2", "certificates/db/deployments/t3"]
    );
    assert_eq!(
        listed(s, DeploymentQuery { target_id: Some("t2".into()), ..query() }).await,
        ["certificates/api/deployments/t2", "certificates/db/deployments/t2", "certificates/web/deployments/t2"]
    );
    let failed = listed(s, DeploymentQuery { state: Some(DeploymentState::Failed), ..query() }).await;
    let expected_failed: Vec<String> = all
        .iter()
        .filter(|d| d.state == DeploymentState::Failed)
        .map(Deployment::name)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(failed, expected_failed);
    assert_eq!(
        listed(
            s,
            DeploymentQuery {
                certificate_id: Some("web".into()),
                target_id: Some("t3".into()),
                state: Some(DeploymentState::Verified),
                ..query()
            }
        )
        .await,
        ["certificates/web/deployments/t3"]
    );

    // Pages of 4 walk everything once, in order.
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_deployments(&DeploymentQuery { after: after.clone(), limit: 4, ..query() }).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.certificate_id.clone(), last.target_id.clone()));
        walked.extend(page.iter().map(Deployment::name));
    }
    assert_eq!(walked, expected);
    let after_db = DeploymentQuery { after: Some(("db".into(), "t3".into())), target_id: Some("t1".into()), ..query() };
    assert_eq!(listed(s, after_db).await, ["certificates/web/deployments/t1"]);
}

async fn recording_needs_the_certificate_version_and_target<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    certificate_with_versions(s, "web", 1).await;
    target(s, "edge").await;
    let before = outbox(s).await.len();
    let good = deployment("web", 1, "edge", DeploymentState::Deployed);
    let cases = [
        (deployment("ghost", 1, "edge", DeploymentState::Deployed), "certificates/ghost"),
        (deployment("web", 2, "edge", DeploymentState::Deployed), "certificates/web/versions/2"),
        (deployment("web", 1, "nowhere", DeploymentState::Deployed), "targets/nowhere"),
    ];
    for (bad, resource) in cases {
        // The good row comes first: it must not survive its batch's failure.
        assert_not_found(record(s, &[good.clone(), bad]).await, resource);
    }
    assert!(s.list_deployments(&query()).await.unwrap().is_empty(), "nothing half-written");
    assert_eq!(outbox(s).await.len(), before, "no events for refused batches");
}

async fn deleting_a_certificate_or_target_deletes_its_deployments<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    certificate_with_versions(s, "web", 1).await;
    certificate_with_versions(s, "api", 1).await;
    target(s, "t1").await;
    target(s, "t2").await;
    let rows = [
        deployment("web", 1, "t1", DeploymentState::Verified),
        deployment("web", 1, "t2", DeploymentState::Verified),
        deployment("api", 1, "t1", DeploymentState::Verified),
        deployment("api", 1, "t2", DeploymentState::Verified),
    ];
    record(s, &rows).await.unwrap();
    s.delete_certificate("web", event("DeleteCertificate", "certificates/web")).await.unwrap();
    assert_eq!(listed(s, query()).await, ["certificates/api/deployments/t1", "certificates/api/deployments/t2"]);
    s.delete_document::<Target>("t1", event("DeleteTarget", "targets/t1")).await.unwrap();
    assert_eq!(listed(s, query()).await, ["certificates/api/deployments/t2"]);
    // A certificate created again under the same id starts with none.
    certificate_with_versions(s, "web", 1).await;
    assert!(listed(s, DeploymentQuery { certificate_id: Some("web".into()), ..query() }).await.is_empty());
}

conformance!(
    one_row_per_certificate_and_target_holds_the_latest,
    listings_filter_and_page,
    recording_needs_the_certificate_version_and_target,
    deleting_a_certificate_or_target_deletes_its_deployments,
);
