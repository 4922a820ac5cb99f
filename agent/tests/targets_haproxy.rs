//! The haproxy target against a private HAProxy on a loopback port, with
//! the key inside the certificate file and as a `.key` sidecar.
mod targets_support;

use std::fs;
use targets_support::conformance;
use targets_support::haproxy::Haproxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_with_a_combined_pem_deploys_verifies_and_rolls_back() {
    let haproxy = Haproxy::start("site.pem", None);
    conformance(&haproxy).await;
    let combined = fs::read_to_string(&haproxy.certificate).unwrap();
    assert!(combined.contains("-----BEGIN CERTIFICATE-----") && combined.contains("-----BEGIN PRIVATE KEY-----"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_with_a_key_sidecar_deploys_verifies_and_rolls_back() {
    let haproxy = Haproxy::start("site.pem", Some("site.pem.key"));
    conformance(&haproxy).await;
    let certificate = fs::read_to_string(&haproxy.certificate).unwrap();
    assert!(!certificate.contains("PRIVATE KEY"), "the key was written into the certificate file");
}
