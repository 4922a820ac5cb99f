//! PKCS#12 bundles against OpenSSL 3: it must open them without the legacy
//! provider, recover the same key and chain, and refuse a wrong password.

mod common;

use certctl_pki::keys::KeyType;
use certctl_pki::pkcs12::to_pkcs12;
use common::{TestCa, openssl, openssl_ok, openssl_workdir, pem_blocks, write};
use rcgen::PublicKeyData;

const PASSWORD: &str = "correct horse battery";

#[test]
fn openssl_opens_the_bundle_and_recovers_key_and_chain() {
    let Some(dir) = openssl_workdir() else { return };
    let d = dir.path();
    let ca = TestCa::new("P12 CA", KeyType::EcdsaP256);
    for kind in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048, KeyType::Ed25519] {
        let (leaf, key) = ca.leaf_with_key("p12.example.com", kind);
        let p12 =
            to_pkcs12(&[leaf.clone(), ca.der.clone()], &key.serialize_der(), PASSWORD, "p12.example.com").unwrap();
        write(d, "out.p12", &p12);
        let pass = format!("pass:{PASSWORD}");

        // The algorithms are the modern ones, so no legacy provider is needed.
        let info = openssl_ok(d, &["pkcs12", "-in", "out.p12", "-passin", &pass, "-info", "-noout"]);
        assert!(info.contains("MAC: sha256, Iteration 10000"), "{kind}: {info}");
        let pbes2 = "PBES2, PBKDF2, AES-256-CBC, Iteration 10000, PRF hmacWithSHA256";
        assert!(info.contains(&format!("PKCS7 Encrypted data: {pbes2}")), "{kind}: {info}");
        assert!(info.contains(&format!("Shrouded Keybag: {pbes2}")), "{kind}: {info}");

        let dump = openssl_ok(d, &["pkcs12", "-in", "out.p12", "-passin", &pass, "-nodes"]);
        assert_eq!(pem_blocks(&dump, "CERTIFICATE"), vec![leaf.clone(), ca.der.clone()], "{kind}");
        assert!(dump.contains("friendlyName: p12.example.com"), "{kind}: {dump}");
        let keys = pem_blocks(&dump, "PRIVATE KEY");
        assert_eq!(keys.len(), 1, "{kind}: {dump}");
        // Compare through the public key: OpenSSL may re-encode the PKCS#8.
        write(d, "key.der", &keys[0]);
        openssl_ok(d, &["pkey", "-inform", "DER", "-in", "key.der", "-pubout", "-outform", "DER", "-out", "pub.der"]);
        assert_eq!(std::fs::read(d.join("pub.der")).unwrap(), key.subject_public_key_info(), "{kind}");

        let wrong = openssl(d, &["pkcs12", "-in", "out.p12", "-passin", "pass:wrong", "-nodes"]);
        assert!(!wrong.ok, "{kind}: a wrong password was accepted");
        assert!(wrong.output.contains("Mac verify error"), "{kind}: {}", wrong.output);
    }
}
