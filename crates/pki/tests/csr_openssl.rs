//! CSRs written by OpenSSL, the way operators make them, through `verify_csr`;
//! and CSRs from `build_csr` through `openssl req -verify`.

mod common;

use std::path::Path;

use certctl_domain::inventory::KeyAlgorithm;
use certctl_pki::csr::{CsrError, build_csr, verify_csr};
use certctl_pki::keys::{KeyType, PublicKeyInfo};
use common::{openssl_ok, openssl_workdir};

/// `openssl req -new` with a fresh key from `newkey` and extra arguments.
fn openssl_csr(d: &Path, newkey: &[&str], extra: &[&str]) -> Vec<u8> {
    let mut args =
        vec!["req", "-new", "-nodes", "-keyout", "key.pem", "-out", "csr.out", "-subj", "/CN=app.example.com"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(extra);
    openssl_ok(d, &args);
    std::fs::read(d.join("csr.out")).unwrap()
}

#[test]
fn openssl_csrs_are_accepted_with_their_names_and_unknown_extensions_ignored() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let sans =
        ["-addext", "subjectAltName=DNS:app.example.com,DNS:*.app.example.com,IP:192.0.2.1,email:ops@example.com"];
    let custom = ["-addext", "1.3.6.1.4.1.99999.1=ASN1:UTF8String:decided by the profile"];
    for (newkey, algorithm, bits) in [
        (&["-newkey", "rsa:2048"][..], KeyAlgorithm::Rsa2048, 2048),
        (&["-newkey", "rsa:3072", "-sha384"][..], KeyAlgorithm::Rsa3072, 3072),
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"][..], KeyAlgorithm::EcdsaP256, 256),
        (&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"][..], KeyAlgorithm::EcdsaP384, 384),
        (&["-newkey", "ed25519"][..], KeyAlgorithm::Ed25519, 256),
    ] {
        let pem = openssl_csr(d, newkey, &[&sans[..], &custom[..]].concat());
        let csr = verify_csr(&pem).unwrap_or_else(|e| panic!("{newkey:?}: {e}"));
        assert_eq!(csr.public_key, PublicKeyInfo { algorithm, bits }, "{newkey:?}");
        assert_eq!(csr.common_name.as_deref(), Some("app.example.com"));
        assert_eq!(csr.dns_names, vec!["app.example.com", "*.app.example.com"]);
        assert_eq!(csr.ip_addresses, vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(csr.emails, vec!["ops@example.com"]);
    }
    // DER, as `-outform DER` writes it.
    let der = openssl_csr(d, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], &["-outform", "DER"]);
    assert_eq!(der[0], 0x30);
    assert_eq!(verify_csr(&der).unwrap().der, der);
}

#[test]
fn weak_unsupported_and_sha1_csrs_are_refused_precisely() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let err = |newkey: &[&str], extra: &[&str]| verify_csr(&openssl_csr(d, newkey, extra)).unwrap_err();

    assert_eq!(err(&["-newkey", "rsa:1024"], &[]), CsrError::WeakKey { algorithm: "RSA", bits: 1024, minimum: 2048 });
    let p521 = err(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"], &[]);
    assert!(matches!(&p521, CsrError::UnsupportedKey(why) if why.contains("P-521")), "{p521}");
    let ed448 = err(&["-newkey", "ed448"], &[]);
    assert_eq!(ed448, CsrError::UnsupportedKey("Ed448".into()));
    openssl_ok(d, &["dsaparam", "-out", "dsa.pem", "2048"]);
    assert_eq!(err(&["-newkey", "dsa:dsa.pem"], &[]), CsrError::UnsupportedKey("DSA".into()));
    assert_eq!(err(&["-newkey", "rsa:2048"], &["-sha1"]), CsrError::UnsupportedSignature("RSA with SHA-1".into()));
    assert!(ed448.to_string().contains("accepted keys are ECDSA P-256 or P-384, RSA 2048 to 8192 bits, and Ed25519"));
}

#[test]
fn built_csrs_pass_openssl_req_verify() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    for kind in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048, KeyType::Ed25519] {
        let key = kind.generate().unwrap();
        let pem = build_csr(&key, "built.example.com", &["built.example.com".into(), "2001:db8::1".into()]).unwrap();
        common::write(d, "built.pem", &pem);
        let out = openssl_ok(d, &["req", "-in", "built.pem", "-verify", "-noout", "-text"]);
        assert!(out.contains("verify OK"), "{kind}: {out}");
        assert!(out.contains("Subject: CN = built.example.com"), "{kind}: {out}");
        assert!(out.contains("DNS:built.example.com, IP Address:2001:DB8:0:0:0:0:0:1"), "{kind}: {out}");
    }
}
