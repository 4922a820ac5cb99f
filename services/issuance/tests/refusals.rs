//! Bad input gets a precise error and changes nothing: no certificate
//! signed, no version written, no audit event.

mod support;

use certctl_pki::KeyType;
use certctl_proto::inventory as inv;
use certctl_proto::issuance as pb;
use support::{Backend, Platform, csr, openssl};
use tonic::Code;

async fn issued_count(p: &mut Platform) -> usize {
    p.issuance
        .list_issued_certificates(pb::ListIssuedCertificatesRequest {
            parent: "issuers/local".into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .issued_certificates
        .len()
}

async fn sign(p: &mut Platform, request: pb::SignCertificateRequest) -> Result<pb::IssuedCertificate, tonic::Status> {
    p.issuance.sign_certificate(request).await.map(|r| r.into_inner().issued_certificate.unwrap())
}

fn request(csr_pem: &str) -> pb::SignCertificateRequest {
    pb::SignCertificateRequest { issuer: "issuers/local".into(), csr_pem: csr_pem.to_owned(), ..Default::default() }
}

fn expect(result: Result<pb::IssuedCertificate, tonic::Status>, code: Code, words: &str) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(status.message().contains(words), "`{}` does not mention `{words}`", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_precisely_and_sign_nothing() {
    let mut p = Platform::start(Backend::Sqlite).await;
    // A restrictive profile to test names and lifetimes against.
    p.issuance
        .create_profile(pb::CreateProfileRequest {
            profile_id: "corp".into(),
            profile: Some(pb::Profile {
                allowed_dns_patterns: vec!["**.corp.example".into()],
                max_lifetime: Some(pbjson_types::Duration { seconds: 7 * 86_400, nanos: 0 }),
                allowed_key_algorithms: vec![certctl_proto::types::KeyAlgorithm::EcdsaP256 as i32],
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (_, good) = csr(KeyType::EcdsaP256, &["api.corp.example"]);

    expect(sign(&mut p, request("")).await, Code::InvalidArgument, "csr_pem");
    expect(
        sign(&mut p, request("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")).await,
        Code::InvalidArgument,
        "csr_pem",
    );
    expect(sign(&mut p, request("hello")).await, Code::InvalidArgument, "csr_pem");

    // A CSR whose signature does not verify: flip a byte inside the signature.
    let der = pem_body(&good);
    let mut tampered = der.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x55;
    let tampered_pem = pem("CERTIFICATE REQUEST", &tampered);
    expect(sign(&mut p, request(&tampered_pem)).await, Code::InvalidArgument, "signature");

    let mut corp = request(&good);
    corp.profile = "profiles/corp".into();
    let (_, outside) = csr(KeyType::EcdsaP256, &["api.corp.example", "evil.example"]);
    let mut r = request(&outside);
    r.profile = "profiles/corp".into();
    expect(sign(&mut p, r).await, Code::InvalidArgument, "`evil.example` is outside profiles/corp");

    let mut long = corp.clone();
    long.lifetime = Some(pbjson_types::Duration { seconds: 8 * 86_400, nanos: 0 });
    expect(sign(&mut p, long).await, Code::InvalidArgument, "exceeds the maximum of profiles/corp");

    let (_, rsa) = csr(KeyType::Rsa2048, &["api.corp.example"]);
    let mut r = request(&rsa);
    r.profile = "profiles/corp".into();
    expect(sign(&mut p, r).await, Code::InvalidArgument, "not allowed by profiles/corp");

    // A weak key, made by OpenSSL.
    let (ok, out) = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "weak.key",
            "-subj",
            "/CN=weak.corp.example",
            "-out",
            "weak.csr",
        ],
        p.dir.path(),
    );
    assert!(ok, "{out}");
    let weak = std::fs::read_to_string(p.path("weak.csr")).unwrap();
    expect(sign(&mut p, request(&weak)).await, Code::InvalidArgument, "1024");

    expect(
        sign(&mut p, pb::SignCertificateRequest { issuer: "issuers/nope".into(), ..request(&good) }).await,
        Code::NotFound,
        "issuers/nope",
    );
    expect(
        sign(&mut p, pb::SignCertificateRequest { profile: "profiles/nope".into(), ..request(&good) }).await,
        Code::NotFound,
        "profiles/nope",
    );
    expect(
        sign(&mut p, pb::SignCertificateRequest { issuer: "local".into(), ..request(&good) }).await,
        Code::InvalidArgument,
        "issuer",
    );

    assert_eq!(issued_count(&mut p).await, 0, "nothing was signed");

    // And the good request goes through, once per request id.
    let first = sign(&mut p, pb::SignCertificateRequest { request_id: "r-1".into(), ..corp.clone() }).await.unwrap();
    let again = sign(&mut p, pb::SignCertificateRequest { request_id: "r-1".into(), ..corp.clone() }).await.unwrap();
    assert_eq!(first.serial_number, again.serial_number, "a repeated request id signs nothing new");
    assert_eq!(issued_count(&mut p).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_certificates_get_only_their_declared_names() {
    let mut p = Platform::start(Backend::Sqlite).await;
    p.inventory
        .create_certificate(inv::CreateCertificateRequest {
            certificate: Some(inv::Certificate {
                common_name: "shop.example.com".into(),
                subject_alt_names: vec!["shop.example.com".into()],
                ..Default::default()
            }),
            certificate_id: "shop".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let issue = |csr_pem: String| pb::IssueCertificateRequest {
        certificate: "certificates/shop".into(),
        csr_pem,
        lifetime: None,
        request_id: String::new(),
    };
    let (_, extra) = csr(KeyType::EcdsaP256, &["shop.example.com", "admin.example.com"]);
    let refused = p.issuance.issue_certificate(issue(extra)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("admin.example.com which certificates/shop does not declare"),
        "{}",
        refused.message()
    );

    let no_csr = p.issuance.issue_certificate(issue(String::new())).await.unwrap_err();
    assert_eq!(no_csr.code(), Code::InvalidArgument);
    assert!(no_csr.message().contains("server_keyed"), "{}", no_csr.message());
    assert_eq!(issued_count(&mut p).await, 0);

    let missing = p
        .issuance
        .issue_certificate(pb::IssueCertificateRequest {
            certificate: "certificates/none".into(),
            ..issue(String::new())
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // A CSR with no names at all gets the declared ones.
    let (_, bare) = csr(KeyType::EcdsaP384, &["shop.example.com"]);
    let issued = p.issuance.issue_certificate(issue(bare)).await.unwrap().into_inner().issued_certificate.unwrap();
    assert_eq!(issued.subject_alt_names, ["shop.example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_refuses_to_start_and_keeps_the_ca() {
    let p = Platform::start(Backend::Sqlite).await;
    let mut p = p;
    let before = p
        .issuance
        .list_authorities(pb::ListAuthoritiesRequest { parent: "issuers/local".into() })
        .await
        .unwrap()
        .into_inner()
        .authorities;
    let key = p.master_key.clone();
    let (dir, database, _) = p.stop().await;
    let (dir, message) =
        match Platform::try_boot(dir, database.clone(), certctl_common::secret::MasterKey::generate()).await {
            Ok(_) => panic!("started with the wrong master key"),
            Err(refused) => refused,
        };
    assert!(message.contains("is not the one this issuance database was created with"), "{message}");
    let mut p = Platform::boot(dir, database, key).await;
    let after = p
        .issuance
        .list_authorities(pb::ListAuthoritiesRequest { parent: "issuers/local".into() })
        .await
        .unwrap()
        .into_inner()
        .authorities;
    let pems = |a: &[pb::Authority]| a.iter().map(|a| (a.name.clone(), a.certificate_pem.clone())).collect::<Vec<_>>();
    assert_eq!(pems(&before), pems(&after), "the CA is untouched");
    let (_, good) = csr(KeyType::EcdsaP256, &["after.example.com"]);
    sign(&mut p, request(&good)).await.expect("the original key still signs");
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}
