//! A `certctl server` killed with SIGKILL in the middle of issuing: after a
//! restart every job completes, and every certificate is issued exactly once.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Platform, Storage};

const CERTIFICATES: usize = 12;

async fn jobs(platform: &Platform, query: &str) -> Vec<Value> {
    let (status, body) = platform.rest("GET", &format!("/api/v1/jobs?pageSize=1000{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["jobs"].as_array().cloned().unwrap_or_default()
}

async fn kill_mid_issuance_and_restart(storage: Storage) {
    // Short leases so the restarted process takes over the dead one's jobs
    // within seconds; RSA keys so issuing takes long enough to be interrupted.
    let mut platform = Platform::single(&storage, &["--renewal-scan-interval", "1", "--job-lease", "3"]).await;
    for i in 0..CERTIFICATES {
        let body = json!({
            "commonName": format!("crash-{i}.example.com"),
            "issuer": "issuers/local",
            "serverKeyed": true,
            "keyAlgorithm": "KEY_ALGORITHM_RSA_3072",
        });
        let (status, answer) =
            platform.rest("POST", &format!("/api/v1/certificates?certificateId=crash-{i}"), Some(body)).await;
        assert_eq!(status, 200, "{answer}");
    }

    // Kill the process as soon as jobs are running.
    let mut running = Vec::new();
    for _ in 0..600 {
        running = jobs(&platform, "&state=JOB_STATE_RUNNING").await;
        if !running.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!running.is_empty(), "no job ever ran; logs:\n{}", platform.logs());
    platform.processes[0].child.kill().unwrap();
    platform.processes[0].child.wait().unwrap();

    platform.restart(0);
    platform.wait_ready().await;
    let mut all = Vec::new();
    for _ in 0..1200 {
        all = jobs(&platform, "").await;
        if all.len() == CERTIFICATES && all.iter().all(|j| j["state"] == "JOB_STATE_SUCCEEDED") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(all.len(), CERTIFICATES, "one issuance job per certificate: {all:#?}");
    assert!(all.iter().all(|j| j["state"] == "JOB_STATE_SUCCEEDED"), "{all:#?}\nlogs:\n{}", platform.logs());
    // The jobs the kill interrupted ran again, as a second attempt.
    for interrupted in &running {
        let (_, job) = platform.rest("GET", &format!("/api/v1/{}", interrupted["name"].as_str().unwrap()), None).await;
        assert!(job["job"]["attempts"].as_i64().unwrap() >= 2, "{job}");
    }

    // Exactly once: one version per certificate, one signed certificate each.
    for i in 0..CERTIFICATES {
        let (_, body) = platform.rest("GET", &format!("/api/v1/certificates/crash-{i}"), None).await;
        assert_eq!(body["certificate"]["currentVersion"], format!("certificates/crash-{i}/versions/1"), "{body}");
    }
    let (status, issued) = platform.rest("GET", "/api/v1/issuers/local/issuedCertificates?pageSize=1000", None).await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["issuedCertificates"].as_array().map(Vec::len), Some(CERTIFICATES), "{issued:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_issuance_issues_each_certificate_exactly_once_after_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    kill_mid_issuance_and_restart(Storage::SqliteAt(dir.path().to_owned())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_issuance_issues_each_certificate_exactly_once_after_restart_on_postgres() {
    match Storage::from_env().await {
        Storage::Sqlite => eprintln!("skipped: CERTCTL_TEST_DATABASE_URL is not set"),
        storage => kill_mid_issuance_and_restart(storage).await,
    }
}
