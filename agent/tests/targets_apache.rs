//! The apache target against a private Apache httpd on a loopback port.
mod targets_support;

use targets_support::apache::Apache;
use targets_support::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_deploys_verifies_and_rolls_back() {
    let apache = Apache::start();
    conformance(&apache).await;
}
