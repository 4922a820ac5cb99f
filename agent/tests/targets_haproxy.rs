//! The haproxy target against a private HAProxy on a loopback port, with
//! the key inside the certificate file and as a `.key` sidecar.
mod targets_support;

use std::fs;
use targets_support::haproxy::Haproxy;
use targets_support::{Pki, Server, conformance};

/// Deploys one bundle and returns what the certificate file holds (the
/// scenario ends by removing the files).
async fn certificate_file_after_a_deploy(haproxy: &Haproxy) -> String {
    let target = certctl_agent::targets::build(&haproxy.target()).unwrap();
    target.deploy(&Pki::new().bundle("first")).await.unwrap();
    fs::read_to_string(&haproxy.certificate).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_with_a_combined_pem_deploys_verifies_and_rolls_back() {
    let haproxy = Haproxy::start("site.pem", None);
    let combined = certificate_file_after_a_deploy(&haproxy).await;
    assert!(combined.contains("-----BEGIN CERTIFICATE-----") && combined.contains("-----BEGIN PRIVATE KEY-----"));
    conformance(&haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_with_a_key_sidecar_deploys_verifies_and_rolls_back() {
    let haproxy = Haproxy::start("site.pem", Some("site.pem.key"));
    let certificate = certificate_file_after_a_deploy(&haproxy).await;
    assert!(!certificate.contains("PRIVATE KEY"), "the key was written into the certificate file");
    conformance(&haproxy).await;
}
