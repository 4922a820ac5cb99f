//! The Local CA end to end through gRPC and the gateway's /pki paths, with
//! OpenSSL as the independent judge of every certificate, CRL and OCSP
//! answer.

mod support;

use certctl_pki::KeyType;
use certctl_proto::inventory as inv;
use certctl_proto::issuance as pb;
use support::{Backend, Platform, csr, openssl, pem_blocks};
use tonic::Code;

async fn managed(platform: &mut Platform, id: &str, names: &[&str], server_keyed: bool) -> String {
    let certificate = inv::Certificate {
        common_name: names[0].to_owned(),
        subject_alt_names: names.iter().map(|s| s.to_string()).collect(),
        issuer: "issuers/local".to_owned(),
        server_keyed,
        ..Default::default()
    };
    platform
        .inventory
        .create_certificate(inv::CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: id.to_owned(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    format!("certificates/{id}")
}

async fn issue(platform: &mut Platform, certificate: &str, csr_pem: &str) -> pb::IssuedCertificate {
    platform
        .issuance
        .issue_certificate(pb::IssueCertificateRequest {
            certificate: certificate.to_owned(),
            csr_pem: csr_pem.to_owned(),
            lifetime: None,
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .issued_certificate
        .unwrap()
}

async fn authorities(platform: &mut Platform, issuer: &str) -> Vec<pb::Authority> {
    platform
        .issuance
        .list_authorities(pb::ListAuthoritiesRequest { parent: issuer.to_owned() })
        .await
        .unwrap()
        .into_inner()
        .authorities
}

async fn fetch(url: &str) -> (u16, Vec<u8>) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", url])
        .output()
        .await
        .expect("curl");
    let mut body = out.stdout;
    let split = body.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[split + 1..]).parse().unwrap();
    body.truncate(split);
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_installation_has_a_local_ca_whose_leaves_verify() {
    for backend in Backend::available() {
        let mut p = Platform::start(backend).await;
        let issuers = p.issuance.list_issuers(pb::ListIssuersRequest::default()).await.unwrap().into_inner().issuers;
        // The Local CA for certificates, and the platform's own CA for agents' and hubs' identities.
        assert_eq!(
            issuers.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            ["issuers/local", "issuers/platform"],
            "{backend:?}"
        );
        let cas = authorities(&mut p, "issuers/local").await;
        assert_eq!(cas.iter().map(|a| a.role.as_str()).collect::<Vec<_>>(), ["root", "intermediate"]);
        assert!(cas[1].issuing && !cas[0].issuing);
        p.write("root.pem", &cas[0].certificate_pem);
        p.write("int.pem", &cas[1].certificate_pem);

        let name = managed(&mut p, "web", &["web.example.com", "api.example.com"], false).await;
        let (_key, request) = csr(KeyType::EcdsaP256, &["web.example.com", "api.example.com"]);
        let issued = issue(&mut p, &name, &request).await;
        assert_eq!(issued.certificate_version, "certificates/web/versions/1");
        assert_eq!(issued.authority, "issuers/local/authorities/intermediate-1");
        let blocks = pem_blocks(&issued.pem_chain);
        assert_eq!(blocks.len(), 3, "leaf, intermediate, root");
        p.write("leaf.pem", &blocks[0]);
        let (ok, out) = openssl(&["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "leaf.pem"], p.dir.path());
        assert!(ok, "{out}");

        let (_, text) = openssl(&["x509", "-in", "leaf.pem", "-noout", "-text"], p.dir.path());
        for needle in [
            "Subject Key Identifier",
            "Authority Key Identifier",
            "TLS Web Server Authentication",
            "DNS:web.example.com, DNS:api.example.com",
            &format!("URI:{}/pki/local/intermediate-1.crl", p.gateway),
            &format!("OCSP - URI:{}/pki/local/intermediate-1/ocsp", p.gateway),
            &format!("CA Issuers - URI:{}/pki/local/intermediate-1.crt", p.gateway),
            "CA:FALSE",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        // 128 random bits: 16 bytes of magnitude (fewer only with leading zero bytes).
        let serial = hex::decode(&issued.serial_number).unwrap();
        let magnitude: Vec<u8> = serial.into_iter().skip_while(|b| *b == 0).collect();
        assert!((14..=16).contains(&magnitude.len()), "{}", issued.serial_number);

        // The CA certificate is published where the AIA says.
        let (status, der) = fetch(&format!("{}/pki/local/intermediate-1.crt", p.gateway)).await;
        assert_eq!(status, 200);
        p.write("int.der", &der);
        let (ok, subject) = openssl(&["x509", "-inform", "DER", "-in", "int.der", "-noout", "-subject"], p.dir.path());
        assert!(ok && subject.contains("Issuing CA"), "{subject}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_the_crl_ocsp_and_the_inventory() {
    for backend in Backend::available() {
        let mut p = Platform::start(backend).await;
        let cas = authorities(&mut p, "issuers/local").await;
        p.write("root.pem", &cas[0].certificate_pem);
        p.write("int.pem", &cas[1].certificate_pem);
        p.write("chain.pem", format!("{}{}", cas[1].certificate_pem, cas[0].certificate_pem));

        let bad = managed(&mut p, "bad", &["bad.example.com"], false).await;
        let good = managed(&mut p, "good", &["good.example.com"], false).await;
        let revoked = issue(&mut p, &bad, &csr(KeyType::EcdsaP256, &["bad.example.com"]).1).await;
        let kept = issue(&mut p, &good, &csr(KeyType::Rsa2048, &["good.example.com"]).1).await;
        p.write("bad.pem", &pem_blocks(&revoked.pem_chain)[0]);
        p.write("good.pem", &pem_blocks(&kept.pem_chain)[0]);

        let answer = p
            .issuance
            .revoke_certificate(pb::RevokeCertificateRequest {
                name: revoked.name.clone(),
                reason: pb::RevocationReason::KeyCompromise as i32,
            })
            .await
            .unwrap()
            .into_inner()
            .issued_certificate
            .unwrap();
        assert!(answer.revoked);

        // CRL over HTTP, checked by openssl.
        let (status, crl) = fetch(&format!("{}/pki/local/intermediate-1.crl", p.gateway)).await;
        assert_eq!(status, 200);
        p.write("crl.der", &crl);
        let (ok, out) = openssl(
            &["crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "chain.pem", "-noout", "-text"],
            p.dir.path(),
        );
        assert!(ok && out.contains("verify OK"), "{out}");
        assert!(out.contains(&revoked.serial_number.trim_start_matches("00").to_uppercase()), "{out}");
        assert!(out.contains("Key Compromise"), "{out}");
        assert!(!out.contains(&kept.serial_number.trim_start_matches("00").to_uppercase()), "{out}");
        let (_, pem_crl) = openssl(&["crl", "-inform", "DER", "-in", "crl.der", "-outform", "PEM"], p.dir.path());
        p.write("crl.pem", pem_crl);
        let (_, root_crl) = fetch(&format!("{}/pki/local/root-1.crl", p.gateway)).await;
        p.write("root-crl.der", &root_crl);
        let (_, root_crl_pem) =
            openssl(&["crl", "-inform", "DER", "-in", "root-crl.der", "-outform", "PEM"], p.dir.path());
        p.write("crls.pem", format!("{}{root_crl_pem}", std::fs::read_to_string(p.path("crl.pem")).unwrap()));

        let (ok, out) = openssl(
            &["verify", "-crl_check", "-CAfile", "root.pem", "-untrusted", "int.pem", "-CRLfile", "crl.pem", "bad.pem"],
            p.dir.path(),
        );
        assert!(!ok && out.contains("certificate revoked"), "{out}");
        let (ok, out) = openssl(
            &[
                "verify",
                "-crl_check_all",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "int.pem",
                "-CRLfile",
                "crls.pem",
                "good.pem",
            ],
            p.dir.path(),
        );
        assert!(ok, "{out}");

        // OCSP over HTTP POST, checked by openssl.
        let url = format!("{}/pki/local/intermediate-1/ocsp", p.gateway);
        let ocsp = |cert: &str| {
            openssl(
                &["ocsp", "-issuer", "int.pem", "-cert", cert, "-url", &url, "-CAfile", "chain.pem", "-resp_text"],
                p.dir.path(),
            )
        };
        let (ok, out) = ocsp("bad.pem");
        assert!(ok && out.contains("Response verify OK") && out.contains("bad.pem: revoked"), "{out}");
        assert!(out.contains("Reason: keyCompromise"), "{out}");
        let (ok, out) = ocsp("good.pem");
        assert!(ok && out.contains("good.pem: good"), "{out}");

        // A request about another CA's certificate: unauthorized, not a lie.
        let (_, other_ca) = openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "other.key",
                "-subj",
                "/CN=Other",
                "-days",
                "1",
                "-out",
                "other.pem",
            ],
            p.dir.path(),
        );
        let _ = other_ca;
        let (_, out) = openssl(&["ocsp", "-issuer", "other.pem", "-cert", "other.pem", "-url", &url], p.dir.path());
        assert!(out.contains("unauthorized"), "{out}");

        // Revoking again is refused and changes nothing.
        let again = p
            .issuance
            .revoke_certificate(pb::RevokeCertificateRequest { name: revoked.name.clone(), reason: 0 })
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
        assert!(again.message().contains("already revoked"), "{}", again.message());
        let unknown = p
            .issuance
            .revoke_certificate(pb::RevokeCertificateRequest {
                name: "issuers/local/issuedCertificates/0badc0de".into(),
                reason: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);

        // The inventory hears of it.
        let mut state = 0;
        for _ in 0..100 {
            let c = p
                .inventory
                .get_certificate(inv::GetCertificateRequest { name: bad.clone() })
                .await
                .unwrap()
                .into_inner()
                .certificate
                .unwrap();
            state = c.state;
            if state == inv::CertificateState::Revoked as i32 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(state, inv::CertificateState::Revoked as i32, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_ca_and_an_imported_subordinate_sign_verifiable_certificates() {
    let mut p = Platform::start(Backend::Sqlite).await;
    // An RSA-2048 hierarchy generated by certctl.
    let created = p
        .issuance
        .create_issuer(pb::CreateIssuerRequest {
            issuer_id: "rsa".into(),
            issuer: Some(pb::Issuer {
                display_name: "RSA CA".into(),
                config: Some(pb::issuer::Config::LocalCa(pb::LocalCaConfig {
                    source: Some(pb::local_ca_config::Source::Generate(pb::GeneratedHierarchy {
                        key_algorithm: certctl_proto::types::KeyAlgorithm::Rsa2048 as i32,
                        ..Default::default()
                    })),
                })),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .issuer
        .unwrap();
    assert_eq!(created.issuing_authority, "issuers/rsa/authorities/intermediate-1");

    // An enterprise root made by OpenSSL, and a subordinate CA under it that certctl adopts.
    let dir = p.dir.path().to_owned();
    let run = |args: &[&str]| {
        let (ok, out) = openssl(args, &dir);
        assert!(ok, "openssl {args:?}: {out}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ent.key",
        "-subj",
        "/CN=Enterprise Root",
        "-days",
        "30",
        "-out",
        "ent.pem",
    ]);
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "sub.key",
        "-subj",
        "/CN=certctl Subordinate",
        "-out",
        "sub.csr",
    ]);
    p.write(
        "ca.ext",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\n",
    );
    run(&[
        "x509",
        "-req",
        "-in",
        "sub.csr",
        "-CA",
        "ent.pem",
        "-CAkey",
        "ent.key",
        "-CAcreateserial",
        "-days",
        "20",
        "-extfile",
        "ca.ext",
        "-out",
        "sub.pem",
    ]);
    run(&["pkcs8", "-topk8", "-nocrypt", "-in", "sub.key", "-out", "sub.pk8"]);
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(p.path("sub.pem")).unwrap(),
        std::fs::read_to_string(p.path("ent.pem")).unwrap()
    );
    let import = |key: String| pb::CreateIssuerRequest {
        issuer_id: "enterprise".into(),
        issuer: Some(pb::Issuer {
            config: Some(pb::issuer::Config::LocalCa(pb::LocalCaConfig {
                source: Some(pb::local_ca_config::Source::Import(pb::ImportedAuthority {
                    certificate_chain_pem: chain.clone(),
                    private_key_pem: key,
                })),
            })),
            ..Default::default()
        }),
    };
    // The wrong key is refused, and nothing is created.
    let wrong = p
        .issuance
        .create_issuer(import(std::fs::read_to_string(p.path("ent.key")).unwrap_or_default()))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    let (_, ent_pk8) = openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", "ent.key"], &dir);
    let wrong = p.issuance.create_issuer(import(ent_pk8)).await.unwrap_err();
    assert!(wrong.message().contains("does not belong"), "{}", wrong.message());
    p.issuance.create_issuer(import(std::fs::read_to_string(p.path("sub.pk8")).unwrap())).await.unwrap();

    for issuer in ["issuers/rsa", "issuers/enterprise"] {
        let issued = p
            .issuance
            .sign_certificate(pb::SignCertificateRequest {
                issuer: issuer.into(),
                csr_pem: csr(KeyType::EcdsaP256, &["svc.example.com"]).1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .issued_certificate
            .unwrap();
        let blocks = pem_blocks(&issued.pem_chain);
        p.write("leaf.pem", &blocks[0]);
        p.write("untrusted.pem", blocks[1..blocks.len() - 1].concat());
        p.write("root.pem", blocks.last().unwrap());
        let (ok, out) = openssl(&["verify", "-CAfile", "root.pem", "-untrusted", "untrusted.pem", "leaf.pem"], &dir);
        assert!(ok, "{issuer}: {out}");
        if issuer == "issuers/enterprise" {
            assert!(out.contains("leaf.pem: OK"));
            assert_eq!(blocks.len(), 3, "leaf, subordinate, enterprise root");
        }
    }

    // The RSA CA answers OCSP over GET (RFC 6960 appendix A) as well.
    let cas = authorities(&mut p, "issuers/rsa").await;
    p.write("rsa-int.pem", &cas[1].certificate_pem);
    p.write("rsa-chain.pem", format!("{}{}", cas[1].certificate_pem, cas[0].certificate_pem));
    let issued = p
        .issuance
        .sign_certificate(pb::SignCertificateRequest {
            issuer: "issuers/rsa".into(),
            csr_pem: csr(KeyType::EcdsaP384, &["get.example.com"]).1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .issued_certificate
        .unwrap();
    p.write("get.pem", &pem_blocks(&issued.pem_chain)[0]);
    let (ok, out) =
        openssl(&["ocsp", "-issuer", "rsa-int.pem", "-cert", "get.pem", "-no_nonce", "-reqout", "req.der"], &dir);
    assert!(ok, "{out}");
    let request = std::fs::read(p.path("req.der")).unwrap();
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(&request)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let (status, answer) = fetch(&format!("{}/pki/rsa/intermediate-1/ocsp/{encoded}", p.gateway)).await;
    assert_eq!(status, 200);
    p.write("resp.der", &answer);
    let (ok, out) = openssl(
        &["ocsp", "-respin", "resp.der", "-issuer", "rsa-int.pem", "-cert", "get.pem", "-CAfile", "rsa-chain.pem"],
        &dir,
    );
    assert!(ok && out.contains("Response verify OK") && out.contains("get.pem: good"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_keyed_key_is_handed_out_once() {
    let mut p = Platform::start(Backend::Sqlite).await;
    let name = managed(&mut p, "exported", &["exported.example.com"], true).await;
    let issued = issue(&mut p, &name, "").await;
    assert!(issued.server_keyed);
    let version = issued.certificate_version.clone();
    let export = |format: pb::KeyFormat, password: &str| pb::ExportPrivateKeyRequest {
        version: version.clone(),
        format: format as i32,
        password: password.into(),
    };
    let short = p.issuance.export_private_key(export(pb::KeyFormat::Pkcs12, "short")).await.unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    let p12 =
        p.issuance.export_private_key(export(pb::KeyFormat::Pkcs12, "a long passphrase")).await.unwrap().into_inner();
    assert_eq!(p12.content_type, "application/x-pkcs12");
    p.write("out.p12", &p12.content);
    let (ok, out) = openssl(&["pkcs12", "-in", "out.p12", "-passin", "pass:a long passphrase", "-nodes"], p.dir.path());
    assert!(ok && out.contains("PRIVATE KEY") && out.contains("BEGIN CERTIFICATE"), "{out}");
    // The key matches the certificate.
    p.write("bundle.pem", &out);
    p.write("leaf.pem", &pem_blocks(&issued.pem_chain)[0]);
    let (_, from_key) = openssl(&["pkey", "-in", "bundle.pem", "-pubout"], p.dir.path());
    let (_, from_cert) = openssl(&["x509", "-in", "leaf.pem", "-noout", "-pubkey"], p.dir.path());
    assert_eq!(from_key, from_cert);

    let again = p.issuance.export_private_key(export(pb::KeyFormat::Pem, "")).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("already exported"), "{}", again.message());
}
