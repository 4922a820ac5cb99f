//! The dovecot target against a private Dovecot on a loopback port,
//! verified over IMAP STARTTLS.
mod targets_support;

use targets_support::conformance;
use targets_support::dovecot::Dovecot;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_deploys_verifies_rolls_back_and_removes() {
    let dovecot = Dovecot::start();
    conformance(&dovecot).await;
}
