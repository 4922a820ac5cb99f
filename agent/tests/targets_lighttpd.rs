//! The lighttpd target against a private lighttpd on a loopback port, with
//! the key inside `ssl.pemfile` and in its own `ssl.privkey` file.
mod targets_support;

use std::fs;
use targets_support::conformance;
use targets_support::lighttpd::Lighttpd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighttpd_with_a_combined_pem_deploys_verifies_rolls_back_and_removes() {
    let lighttpd = Lighttpd::start("site.pem", None);
    conformance(&lighttpd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighttpd_with_ssl_privkey_deploys_verifies_rolls_back_and_removes() {
    let lighttpd = Lighttpd::start("site.crt", Some("site.key"));
    // Before the conformance scenario removes the files: the certificate
    // file holds no key once a deploy has written it.
    let pki = targets_support::Pki::new();
    let target = certctl_agent::targets::build(&targets_support::Server::target(&lighttpd)).unwrap();
    target.deploy(&pki.bundle("first")).await.unwrap();
    let certificate = fs::read_to_string(&lighttpd.certificate).unwrap();
    assert!(!certificate.contains("PRIVATE KEY"), "the key was written into ssl.pemfile");
    conformance(&lighttpd).await;
}
