//! The nginx target against a private nginx on a loopback port.
mod targets_support;

use targets_support::conformance;
use targets_support::nginx::Nginx;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_deploys_verifies_and_rolls_back() {
    let nginx = Nginx::start();
    conformance(&nginx).await;
}
