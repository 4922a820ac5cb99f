//! Deployments through the gRPC edge: recorded by the scheduler, listed per
//! certificate or across all of them, refused with the field or resource at fault.

mod support;

use certctl_proto::inventory as pb;
use pb::DeploymentState::{Deployed, Failed, Mismatch, Verified};
use support::{DAY, Pki, Served, T0, assert_code, expect_invalid, ts};
use tonic::Code;
use tonic_types::StatusExt;

async fn create_target(srv: &Served, id: &str) {
    let target = pb::Target {
        config: Some(pb::target::Config::File(pb::FileTargetConfig {
            directory: "/srv/certs".into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    let request = pb::CreateTargetRequest { target: Some(target), target_id: id.into() };
    srv.client.clone().create_target(request).await.expect("CreateTarget");
}

/// Certificates `web` (two versions) and `api` (one), targets t1..t3.
async fn estate(srv: &Served) {
    let pki = Pki::new("Test Root");
    for (id, versions) in [("web", 2), ("api", 1)] {
        let cn = format!("{id}.example.com");
        srv.create_certificate(id, &cn).await;
        for n in 0..versions {
            let leaf = pki.leaf(&cn, T0 - DAY + n, 90 * DAY);
            srv.add_version(&format!("certificates/{id}"), &pki.chain(&leaf)).await.expect("a version");
        }
    }
    for t in ["t1", "t2", "t3"] {
        create_target(srv, t).await;
    }
}

fn report(version: &str, target: &str, state: pb::DeploymentState) -> pb::Deployment {
    pb::Deployment { version: version.into(), target: target.into(), state: state as i32, ..Default::default() }
}

async fn record(srv: &Served, deployments: Vec<pb::Deployment>) -> Result<Vec<pb::Deployment>, tonic::Status> {
    let request = pb::RecordDeploymentsRequest { deployments };
    Ok(srv.client.clone().record_deployments(request).await?.into_inner().deployments)
}

fn list(parent: &str) -> pb::ListDeploymentsRequest {
    pb::ListDeploymentsRequest { parent: parent.into(), ..Default::default() }
}

async fn names(srv: &Served, request: pb::ListDeploymentsRequest) -> Vec<String> {
    let r = srv.client.clone().list_deployments(request).await.expect("ListDeployments").into_inner();
    r.deployments.into_iter().map(|d| d.name).collect()
}

#[tokio::test]
async fn deployments_are_recorded_and_listed() {
    let srv = Served::start().await;
    estate(&srv).await;
    let before = srv.outbox_len().await;
    srv.set_now(T0 + 100);
    let recorded = record(
        &srv,
        vec![
            pb::Deployment {
                name: "certificates/web/deployments/t1".into(),
                served_fingerprint: "AB".repeat(32),
                job: "jobs/j1".into(),
                ..report("certificates/web/versions/1", "targets/t1", Verified)
            },
            report("certificates/web/versions/1", "targets/t2", Deployed),
            report("certificates/api/versions/1", "targets/t2", Failed),
        ],
    )
    .await
    .unwrap();
    let first = &recorded[0];
    assert_eq!(first.name, "certificates/web/deployments/t1");
    assert_eq!((first.version.as_str(), first.target.as_str()), ("certificates/web/versions/1", "targets/t1"));
    assert_eq!((first.served_fingerprint.clone(), first.job.as_str()), ("ab".repeat(32), "jobs/j1"));
    assert_eq!((first.deploy_time, first.verify_time, first.update_time), (ts(T0 + 100), ts(T0 + 100), ts(T0 + 100)));
    assert_eq!((recorded[1].deploy_time, recorded[1].verify_time), (ts(T0 + 100), None));
    assert_eq!((recorded[2].deploy_time, recorded[2].verify_time), (None, None));
    assert_eq!(srv.outbox_len().await, before + 3, "one audit event per deployment");

    // The next version on t1 replaces the row.
    srv.set_now(T0 + 200);
    let mismatch = pb::Deployment {
        message: "the endpoint still serves version 1".into(),
        ..report("certificates/web/versions/2", "targets/t1", Mismatch)
    };
    record(&srv, vec![mismatch]).await.unwrap();
    let web = srv.client.clone().list_deployments(list("certificates/web")).await.unwrap().into_inner();
    let states: Vec<(&str, &str, i32)> =
        web.deployments.iter().map(|d| (d.name.as_str(), d.version.as_str(), d.state)).collect();
    assert_eq!(
        states,
        [
            ("certificates/web/deployments/t1", "certificates/web/versions/2", Mismatch as i32),
            ("certificates/web/deployments/t2", "certificates/web/versions/1", Deployed as i32),
        ]
    );
    assert_eq!(web.deployments[0].message, "the endpoint still serves version 1");

    let every = "certificates/-";
    assert_eq!(
        names(&srv, list(every)).await,
        ["certificates/api/deployments/t2", "certificates/web/deployments/t1", "certificates/web/deployments/t2"]
    );
    let on_t2 = pb::ListDeploymentsRequest { target: "targets/t2".into(), ..list(every) };
    assert_eq!(names(&srv, on_t2).await, ["certificates/api/deployments/t2", "certificates/web/deployments/t2"]);
    let failed = pb::ListDeploymentsRequest { state: Failed as i32, ..list(every) };
    assert_eq!(names(&srv, failed).await, ["certificates/api/deployments/t2"]);

    // Pages, and tokens bound to their query.
    let page = pb::ListDeploymentsRequest { page_size: 2, ..list(every) };
    let first = srv.client.clone().list_deployments(page.clone()).await.unwrap().into_inner();
    assert_eq!(first.deployments.len(), 2);
    let next = pb::ListDeploymentsRequest { page_token: first.next_page_token.clone(), ..page };
    let second = srv.client.clone().list_deployments(next).await.unwrap().into_inner();
    assert_eq!(second.deployments.len(), 1);
    assert!(second.next_page_token.is_empty());
    let replayed = pb::ListDeploymentsRequest { page_token: first.next_page_token, ..list("certificates/web") };
    expect_invalid(srv.client.clone().list_deployments(replayed).await, "page_token");

    // Deleting a certificate deletes its deployments.
    let delete = pb::DeleteCertificateRequest { name: "certificates/api".into() };
    srv.client.clone().delete_certificate(delete).await.unwrap();
    assert_eq!(names(&srv, list(every)).await, ["certificates/web/deployments/t1", "certificates/web/deployments/t2"]);
    let delete = pb::DeleteTargetRequest { name: "targets/t2".into() };
    srv.client.clone().delete_target(delete).await.unwrap();
    assert_eq!(names(&srv, list(every)).await, ["certificates/web/deployments/t1"]);
}

#[tokio::test]
async fn refusals_name_the_field_or_the_missing_resource() {
    let srv = Served::start().await;
    estate(&srv).await;
    let before = srv.outbox_len().await;
    let good = report("certificates/web/versions/1", "targets/t1", Deployed);

    for (bad, resource) in [
        (report("certificates/ghost/versions/1", "targets/t1", Deployed), "certificates/ghost"),
        (report("certificates/web/versions/3", "targets/t2", Deployed), "certificates/web/versions/3"),
        (report("certificates/web/versions/1", "targets/ghost", Deployed), "targets/ghost"),
    ] {
        let status = record(&srv, vec![good.clone(), bad]).await.expect_err(resource);
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        let info = status.get_error_details();
        assert_eq!(info.resource_info().map(|r| r.resource_name.as_str()), Some(resource), "{status:?}");
    }
    let cases = [
        (pb::Deployment { state: 0, ..good.clone() }, "deployments[1].state"),
        (pb::Deployment { state: 42, ..good.clone() }, "deployments[1].state"),
        (pb::Deployment { version: "certificates/web".into(), ..good.clone() }, "deployments[1].version"),
        (pb::Deployment { target: "t1".into(), ..good.clone() }, "deployments[1].target"),
        (pb::Deployment { served_fingerprint: "abc".into(), ..good.clone() }, "deployments[1].served_fingerprint"),
        (pb::Deployment { job: "job-1".into(), ..good.clone() }, "deployments[1].job"),
        (pb::Deployment { name: "certificates/web/deployments/t2".into(), ..good.clone() }, "deployments[1].name"),
        (good.clone(), "deployments[1]"),
    ];
    for (bad, field) in cases {
        let request = pb::RecordDeploymentsRequest { deployments: vec![good.clone(), bad] };
        expect_invalid(srv.client.clone().record_deployments(request).await, field);
    }
    expect_invalid(srv.client.clone().record_deployments(pb::RecordDeploymentsRequest::default()).await, "deployments");
    assert!(names(&srv, list("certificates/-")).await.is_empty(), "nothing half-written");
    assert_eq!(srv.outbox_len().await, before, "refused batches leave no audit events");

    let mut c = srv.client.clone();
    expect_invalid(c.list_deployments(list("")).await, "parent");
    expect_invalid(c.list_deployments(list("targets/t1")).await, "parent");
    expect_invalid(
        c.list_deployments(pb::ListDeploymentsRequest { target: "t1".into(), ..list("certificates/-") }).await,
        "target",
    );
    expect_invalid(
        c.list_deployments(pb::ListDeploymentsRequest { state: 9, ..list("certificates/-") }).await,
        "state",
    );
    assert_code(c.list_deployments(list("certificates/ghost")).await, Code::NotFound);
}
