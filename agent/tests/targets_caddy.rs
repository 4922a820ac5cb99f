//! The caddy target against a private Caddy on a loopback port.
mod targets_support;

use targets_support::caddy::Caddy;
use targets_support::conformance;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_deploys_verifies_rolls_back_and_removes() {
    let caddy = Caddy::start();
    conformance(&caddy).await;
}
