//! Helpers for the tests that use the `openssl` CLI as an independent checker.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

use certctl_pki::keys::KeyType;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};

/// A scratch directory, or `None` (with a message) when `openssl` is absent.
/// CI has openssl, so there these tests always run.
pub fn openssl_workdir() -> Option<tempfile::TempDir> {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => Some(tempfile::tempdir().expect("a temp dir")),
        _ => {
            eprintln!("skipping: the `openssl` CLI is not installed");
            None
        }
    }
}

/// The result of one openssl run.
pub struct Run {
    pub ok: bool,
    /// stdout and stderr together: openssl splits its verdicts between them.
    pub output: String,
}

pub fn openssl(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Run { ok: out.status.success(), output }
}

/// Like [`openssl`], but the run must succeed.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let run = openssl(dir, args);
    assert!(run.ok, "openssl {} failed:\n{}", args.join(" "), run.output);
    run.output
}

pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a test file");
    path
}

/// A CA whose key the test keeps, to sign OCSP responses with.
pub struct TestCa {
    pub issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
    pub pem: String,
}

impl TestCa {
    pub fn new(name: &str, kind: KeyType) -> Self {
        let key = kind.generate().expect("a CA key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).expect("a CA certificate");
        Self { der: cert.der().to_vec(), pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    pub fn key(&self) -> &KeyPair {
        self.issuer.key()
    }

    /// A leaf for a fresh key of `kind`: its DER and the key.
    pub fn leaf_with_key(&self, common_name: &str, kind: KeyType) -> (Vec<u8>, KeyPair) {
        let key = kind.generate().expect("a leaf key");
        let params = CertificateParams::new(vec![common_name.to_owned()]).expect("a leaf name");
        let cert = params.signed_by(&key, &self.issuer).expect("a leaf certificate");
        (cert.der().to_vec(), key)
    }

    /// A leaf with this serial (big-endian); returns its PEM.
    pub fn leaf(&self, common_name: &str, serial: &[u8]) -> String {
        let key = KeyType::EcdsaP256.generate().expect("a leaf key");
        let mut params = CertificateParams::new(vec![common_name.to_owned()]).expect("a leaf name");
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.signed_by(&key, &self.issuer).expect("a leaf certificate").pem()
    }
}

/// The DER of every PEM block labelled `label` in `text`.
pub fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(text.as_bytes())
        .map(|block| block.expect("valid PEM"))
        .filter(|block| block.label == label)
        .map(|block| block.contents)
        .collect()
}
