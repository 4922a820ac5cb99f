//! The postfix target against a private Postfix instance on a loopback
//! port, verified over SMTP STARTTLS: with the key and chain in one
//! `smtpd_tls_chain_files` file, and as `smtpd_tls_cert_file` plus
//! `smtpd_tls_key_file`.
mod targets_support;

use std::fs;
use targets_support::conformance;
use targets_support::postfix::Postfix;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_with_chain_files_deploys_verifies_rolls_back_and_removes() {
    let postfix = Postfix::start("mail.pem", None);
    let target = certctl_agent::targets::build(&targets_support::Server::target(&postfix)).unwrap();
    let endpoint = target.endpoint().unwrap();
    assert_eq!(endpoint.protocol, certctl_agent::targets::Protocol::SmtpStartTls);
    let bundle = targets_support::Pki::new().bundle("first");
    target.deploy(&bundle).await.unwrap();
    let combined = fs::read_to_string(&postfix.certificate).unwrap();
    assert!(combined.starts_with("-----BEGIN PRIVATE KEY-----"), "smtpd_tls_chain_files wants the key first");
    targets_support::wait_serving(&postfix, &endpoint, &bundle).await;
    conformance(&postfix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_with_cert_and_key_files_deploys_verifies_rolls_back_and_removes() {
    let postfix = Postfix::start("mail.crt", Some("mail.key"));
    conformance(&postfix).await;
    assert!(!postfix.certificate.exists(), "removed at the end of the scenario");
}
