//! The OCSP codec against OpenSSL: openssl writes the requests, we answer,
//! and openssl verifies the answers.

mod common;

use certctl_pki::keys::KeyType;
use certctl_pki::ocsp::{
    CertStatus, IssuerHashes, OcspError, OcspHash, OcspResponseStatus, error_response, parse_request, sign_response,
};
use common::{TestCa, openssl, openssl_ok, openssl_workdir, write};

const SERIAL: [u8; 4] = [0x8f, 0x01, 0x02, 0x03];

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Signs an answer for every id in `request` with `status`, as the CA.
fn respond(ca: &TestCa, request: &[u8], status: CertStatus, echo_nonce: bool) -> Vec<u8> {
    let parsed = parse_request(request).unwrap();
    let answers: Vec<_> = parsed.ids.iter().map(|id| (id.clone(), status)).collect();
    let t = now();
    let nonce = if echo_nonce { parsed.nonce.as_deref() } else { None };
    sign_response(ca.key(), &ca.der, &answers, t, t - 60, Some(t + 3600), nonce).unwrap()
}

#[test]
fn openssl_verifies_good_and_revoked_answers_for_every_ca_key_type() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    // OpenSSL 3.0 verifies Ed25519-signed OCSP responses, so all four are checked.
    for (kind, sig_name) in [
        (KeyType::EcdsaP256, "ecdsa-with-SHA256"),
        (KeyType::EcdsaP384, "ecdsa-with-SHA384"),
        (KeyType::Rsa2048, "sha256WithRSAEncryption"),
        (KeyType::Ed25519, "ED25519"),
    ] {
        let ca = TestCa::new(&format!("OCSP CA {kind}"), kind);
        write(d, "ca.pem", &ca.pem);
        write(d, "leaf.pem", ca.leaf("leaf.example.com", &SERIAL));
        openssl_ok(d, &["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der"]);
        let request = std::fs::read(d.join("req.der")).unwrap();

        let parsed = parse_request(&request).unwrap();
        assert_eq!(parsed.ids.len(), 1);
        let id = &parsed.ids[0];
        assert_eq!(id.hash, OcspHash::Sha1, "openssl's default CertID hash");
        assert_eq!(id.serial, SERIAL);
        assert_eq!(id.serial_hex(), "008F010203");
        assert_eq!(id.der(), &request[request.len() - id.der().len()..], "the CertID is kept verbatim");
        assert!(IssuerHashes::new(&ca.der).unwrap().matches(id), "{kind}");
        assert_eq!(parsed.nonce, None);

        write(d, "resp.der", respond(&ca, &request, CertStatus::Good, false));
        let verify = ["ocsp", "-respin", "resp.der", "-issuer", "ca.pem", "-CAfile", "ca.pem", "-cert", "leaf.pem"];
        let out = openssl_ok(d, &verify);
        assert!(out.contains("Response verify OK"), "{kind}: {out}");
        assert!(out.contains("leaf.pem: good"), "{kind}: {out}");

        let text = openssl_ok(d, &["ocsp", "-respin", "resp.der", "-resp_text", "-noverify"]);
        assert!(text.contains(&format!("Signature Algorithm: {sig_name}")), "{kind}: {text}");
        assert!(text.contains("Response Type: Basic OCSP Response"), "{text}");
        assert!(text.contains("Responder Id: "), "{text}");
        assert!(text.contains("Serial Number: 8F010203"), "{text}");

        let revoked_at = now() - 7200;
        let revoked = CertStatus::Revoked { revoked_at, reason: Some(1) };
        write(d, "resp.der", respond(&ca, &request, revoked, false));
        let out = openssl_ok(d, &verify);
        assert!(out.contains("Response verify OK"), "{kind}: {out}");
        assert!(out.contains("leaf.pem: revoked"), "{kind}: {out}");
        assert!(out.contains("Reason: keyCompromise"), "{kind}: {out}");
    }
}

#[test]
fn revocation_without_a_reason_and_unknown_certificates() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let ca = TestCa::new("OCSP CA", KeyType::EcdsaP256);
    write(d, "ca.pem", &ca.pem);
    write(d, "leaf.pem", ca.leaf("leaf.example.com", &[0x01]));
    openssl_ok(d, &["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der"]);
    let request = std::fs::read(d.join("req.der")).unwrap();
    assert_eq!(parse_request(&request).unwrap().ids[0].serial, vec![0x01]);
    let verify = ["ocsp", "-respin", "resp.der", "-issuer", "ca.pem", "-CAfile", "ca.pem", "-cert", "leaf.pem"];

    write(d, "resp.der", respond(&ca, &request, CertStatus::Revoked { revoked_at: now() - 60, reason: None }, false));
    let out = openssl_ok(d, &verify);
    assert!(out.contains("leaf.pem: revoked") && !out.contains("Reason:"), "{out}");

    write(d, "resp.der", respond(&ca, &request, CertStatus::Unknown, false));
    let out = openssl_ok(d, &verify);
    assert!(out.contains("Response verify OK") && out.contains("leaf.pem: unknown"), "{out}");
}

#[test]
fn sha256_cert_ids_and_several_certificates_per_request() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let ca = TestCa::new("OCSP CA", KeyType::EcdsaP384);
    write(d, "ca.pem", &ca.pem);
    write(d, "a.pem", ca.leaf("a.example.com", &[0x0a]));
    write(d, "b.pem", ca.leaf("b.example.com", &[0x0b]));
    let req = ["ocsp", "-sha256", "-issuer", "ca.pem", "-cert", "a.pem", "-cert", "b.pem", "-no_nonce"];
    openssl_ok(d, &[&req[..], &["-reqout", "req.der"]].concat());
    let request = std::fs::read(d.join("req.der")).unwrap();
    let parsed = parse_request(&request).unwrap();
    let serials: Vec<_> = parsed.ids.iter().map(|id| id.serial.clone()).collect();
    assert_eq!(serials, vec![vec![0x0a], vec![0x0b]]);
    let issuer = IssuerHashes::new(&ca.der).unwrap();
    for id in &parsed.ids {
        assert_eq!(id.hash, OcspHash::Sha256);
        assert_eq!(id.issuer_name_hash.len(), 32);
        assert!(issuer.matches(id));
    }

    let t = now();
    let answers = vec![
        (parsed.ids[0].clone(), CertStatus::Good),
        (parsed.ids[1].clone(), CertStatus::Revoked { revoked_at: t - 100, reason: Some(4) }),
    ];
    write(d, "resp.der", sign_response(ca.key(), &ca.der, &answers, t, t, None, None).unwrap());
    let out = openssl_ok(
        d,
        &[
            "ocsp", "-sha256", "-respin", "resp.der", "-issuer", "ca.pem", "-CAfile", "ca.pem", "-cert", "a.pem",
            "-cert", "b.pem",
        ],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("a.pem: good"), "{out}");
    assert!(out.contains("b.pem: revoked") && out.contains("Reason: superseded"), "{out}");
}

#[test]
fn the_nonce_is_echoed_and_openssl_notices_when_it_is_not() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let ca = TestCa::new("OCSP CA", KeyType::EcdsaP256);
    write(d, "ca.pem", &ca.pem);
    write(d, "leaf.pem", ca.leaf("leaf.example.com", &SERIAL));
    openssl_ok(d, &["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-reqout", "req.der"]);
    let request = std::fs::read(d.join("req.der")).unwrap();
    let nonce = parse_request(&request).unwrap().nonce.expect("openssl sends a nonce by default");
    // An OCTET STRING around openssl's 16 random bytes.
    assert_eq!((nonce.len(), nonce[0], nonce[1]), (18, 0x04, 16));

    let check = ["ocsp", "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "ca.pem", "-resp_text"];
    write(d, "resp.der", respond(&ca, &request, CertStatus::Good, true));
    let out = openssl_ok(d, &check);
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains("OCSP Nonce"), "{out}");
    assert!(!out.contains("WARNING: no nonce"), "{out}");

    write(d, "resp.der", respond(&ca, &request, CertStatus::Good, false));
    let out = openssl_ok(d, &check);
    assert!(out.contains("WARNING: no nonce in response"), "{out}");
}

#[test]
fn a_request_for_another_ca_does_not_match() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let (ours, theirs) = (TestCa::new("Our CA", KeyType::EcdsaP256), TestCa::new("Their CA", KeyType::EcdsaP256));
    write(d, "their-ca.pem", &theirs.pem);
    write(d, "leaf.pem", theirs.leaf("x.example.com", &SERIAL));
    openssl_ok(d, &["ocsp", "-issuer", "their-ca.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der"]);
    let parsed = parse_request(&std::fs::read(d.join("req.der")).unwrap()).unwrap();
    assert!(!IssuerHashes::new(&ours.der).unwrap().matches(&parsed.ids[0]));
    assert!(IssuerHashes::new(&theirs.der).unwrap().matches(&parsed.ids[0]));
}

#[test]
fn broken_requests_are_errors_not_panics() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let ca = TestCa::new("OCSP CA", KeyType::EcdsaP256);
    write(d, "ca.pem", &ca.pem);
    write(d, "leaf.pem", ca.leaf("leaf.example.com", &SERIAL));
    openssl_ok(d, &["ocsp", "-issuer", "ca.pem", "-cert", "leaf.pem", "-reqout", "req.der"]);
    let request = std::fs::read(d.join("req.der")).unwrap();

    assert_eq!(parse_request(&[]), Err(OcspError::Malformed("the request is empty".into())));
    assert!(matches!(parse_request(b"GET / HTTP/1.1\r\n\r\n"), Err(OcspError::Malformed(_))));
    for len in 1..request.len() {
        assert!(matches!(parse_request(&request[..len]), Err(OcspError::Malformed(_))), "truncated to {len}");
    }
    let mut trailing = request.clone();
    trailing.push(0);
    let err = parse_request(&trailing).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
    // Every single-bit flip either still parses or fails cleanly.
    for i in 0..request.len() * 8 {
        let mut flipped = request.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        let _ = parse_request(&flipped);
    }
    let status = err.response_status();
    assert_eq!(status, OcspResponseStatus::MalformedRequest);
    write(d, "err.der", error_response(status));
    let out = openssl(d, &["ocsp", "-respin", "err.der", "-resp_text"]).output;
    assert!(out.contains("Responder Error: malformedrequest (1)"), "{out}");
}

#[test]
fn error_responses_parse_with_openssl() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    for (status, text) in [
        (OcspResponseStatus::MalformedRequest, "malformedrequest (1)"),
        (OcspResponseStatus::InternalError, "internalerror (2)"),
        (OcspResponseStatus::TryLater, "trylater (3)"),
        (OcspResponseStatus::SigRequired, "sigrequired (5)"),
        (OcspResponseStatus::Unauthorized, "unauthorized (6)"),
    ] {
        write(d, "err.der", error_response(status));
        // openssl parses the response, prints the status and exits non-zero.
        let run = openssl(d, &["ocsp", "-respin", "err.der", "-resp_text"]);
        assert!(run.output.contains(&format!("Responder Error: {text}")), "{status:?}: {}", run.output);
        assert!(!run.ok);
    }
}
