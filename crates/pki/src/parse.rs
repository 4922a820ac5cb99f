//! Parsing PEM chains into `ParsedCertificate`s, with precise refusals.

use certctl_domain::inventory::{KeyAlgorithm, ParsedCertificate};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

/// Why a PEM input was refused. Messages are written for the operator who
/// pasted the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no PEM block found: expected one or more `-----BEGIN CERTIFICATE-----` blocks")]
    NoPem,
    #[error("PEM block {index} is not valid PEM: {reason}")]
    BadPem { index: usize, reason: String },
    #[error(
        "PEM block {index} is a private key (`{label}`), not a certificate; certctl never needs a certificate's private key here"
    )]
    PrivateKey { index: usize, label: String },
    #[error("PEM block {index} is a `{label}`, not a `CERTIFICATE`")]
    WrongLabel { index: usize, label: String },
    #[error("PEM block {index} is not a valid X.509 certificate: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error(
        "the chain is out of order: certificate {next} (subject `{next_subject}`) did not issue certificate {index} (issuer `{issuer}`); list the leaf first, then each issuer in turn"
    )]
    OutOfOrder { index: usize, issuer: String, next: usize, next_subject: String },
    #[error("PEM input is larger than {max} bytes")]
    TooLarge { max: usize },
}

pub const MAX_PEM_BYTES: usize = 1 << 20;

/// A parsed chain: the leaf first, then its issuers.
#[derive(Debug, Clone)]
pub struct ParsedChain {
    pub leaf: ParsedCertificate,
    pub length: usize,
    /// The chain re-encoded as clean PEM (no stray text between blocks).
    pub pem: String,
}

/// Parses PEM text holding a leaf optionally followed by its chain. Refuses
/// keys, other PEM types, garbage and chains whose order does not link.
pub fn parse_pem_chain(input: &str) -> Result<ParsedChain, ParseError> {
    if input.len() > MAX_PEM_BYTES {
        return Err(ParseError::TooLarge { max: MAX_PEM_BYTES });
    }
    let mut ders = Vec::new();
    for (i, block) in Pem::iter_from_buffer(input.as_bytes()).enumerate() {
        let index = i + 1;
        let pem = block.map_err(|e| ParseError::BadPem { index, reason: e.to_string() })?;
        if pem.label.contains("PRIVATE KEY") {
            return Err(ParseError::PrivateKey { index, label: pem.label });
        }
        if pem.label != "CERTIFICATE" {
            return Err(ParseError::WrongLabel { index, label: pem.label });
        }
        ders.push(pem.contents);
    }
    if ders.is_empty() {
        return Err(ParseError::NoPem);
    }
    let mut certs = Vec::with_capacity(ders.len());
    for (i, der) in ders.iter().enumerate() {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| ParseError::BadCertificate { index: i + 1, reason: e.to_string() })?;
        if !rest.is_empty() {
            return Err(ParseError::BadCertificate {
                index: i + 1,
                reason: "trailing bytes after the certificate".into(),
            });
        }
        certs.push(cert);
    }
    for i in 0..certs.len().saturating_sub(1) {
        let (child, parent) = (&certs[i], &certs[i + 1]);
        let linked = child.issuer() == parent.subject() && child.verify_signature(Some(parent.public_key())).is_ok();
        if !linked {
            return Err(ParseError::OutOfOrder {
                index: i + 1,
                issuer: child.issuer().to_string(),
                next: i + 2,
                next_subject: parent.subject().to_string(),
            });
        }
    }
    let leaf = describe(&certs[0], &ders[0]);
    let pem = ders.iter().map(|der| to_pem("CERTIFICATE", der)).collect();
    Ok(ParsedChain { leaf, length: certs.len(), pem })
}

/// PEM-encodes DER bytes with 64-column lines.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    use std::fmt::Write as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

fn describe(cert: &X509Certificate<'_>, der: &[u8]) -> ParsedCertificate {
    let common_name =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_owned();
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::RFC822Name(m) => sans.push((*m).to_owned()),
                GeneralName::IPAddress(ip) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                        sans.push(std::net::Ipv4Addr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                        sans.push(std::net::Ipv6Addr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let (key_algorithm, key_size) = key_info(cert);
    ParsedCertificate {
        serial_number: hex::encode_upper(cert.raw_serial()),
        sha256_fingerprint: hex::encode(Sha256::digest(der)),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        common_name,
        subject_alt_names: sans,
        key_algorithm,
        key_size,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    }
}

fn key_info(cert: &X509Certificate<'_>) -> (KeyAlgorithm, i32) {
    let info = crate::keys::describe_parsed_spki(cert.public_key());
    (info.algorithm, i32::try_from(info.bits).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate;
    use crate::keys::KeyType;

    #[test]
    fn parses_a_leaf_and_its_chain() {
        let ca = generate::CertificateAuthority::new("Test Root", KeyType::EcdsaP256).unwrap();
        let leaf = ca
            .issue_leaf(
                "web.example.com",
                &["web.example.com".into(), "10.1.2.3".into()],
                KeyType::EcdsaP384,
                0,
                90 * 86_400,
            )
            .unwrap();
        let chain = format!("{}{}", leaf.certificate_pem, ca.certificate_pem);
        let parsed = parse_pem_chain(&chain).unwrap();
        assert_eq!(parsed.length, 2);
        assert_eq!(parsed.leaf.common_name, "web.example.com");
        assert_eq!(parsed.leaf.subject_alt_names, vec!["web.example.com", "10.1.2.3"]);
        assert_eq!(parsed.leaf.key_algorithm, KeyAlgorithm::EcdsaP384);
        assert_eq!(parsed.leaf.not_after - parsed.leaf.not_before, 90 * 86_400);
        assert_eq!(parsed.leaf.sha256_fingerprint.len(), 64);
        assert!(parsed.leaf.issuer.contains("Test Root"));
        // Re-encoding round-trips.
        assert_eq!(parse_pem_chain(&parsed.pem).unwrap().leaf, parsed.leaf);
    }

    #[test]
    fn refuses_what_is_not_a_certificate_chain() {
        let ca = generate::CertificateAuthority::new("Test Root", KeyType::EcdsaP256).unwrap();
        let leaf = ca.issue_leaf("a.example.com", &[], KeyType::EcdsaP256, 0, 86_400).unwrap();

        assert_eq!(parse_pem_chain("hello").unwrap_err(), ParseError::NoPem);
        assert!(matches!(parse_pem_chain(&leaf.private_key_pem).unwrap_err(), ParseError::PrivateKey { index: 1, .. }));
        let out_of_order = format!("{}{}", ca.certificate_pem, leaf.certificate_pem);
        assert!(matches!(
            parse_pem_chain(&out_of_order).unwrap_err(),
            ParseError::OutOfOrder { index: 1, next: 2, .. }
        ));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(parse_pem_chain(garbage).unwrap_err(), ParseError::BadCertificate { index: 1, .. }));
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(matches!(parse_pem_chain(csr).unwrap_err(), ParseError::WrongLabel { .. }));
    }

    #[test]
    fn key_kinds_are_recognised() {
        let ca = generate::CertificateAuthority::new("Root", KeyType::EcdsaP256).unwrap();
        for (kind, alg) in [
            (KeyType::EcdsaP256, KeyAlgorithm::EcdsaP256),
            (KeyType::EcdsaP384, KeyAlgorithm::EcdsaP384),
            (KeyType::Ed25519, KeyAlgorithm::Ed25519),
            (KeyType::Rsa2048, KeyAlgorithm::Rsa2048),
        ] {
            let leaf = ca.issue_leaf("k.example.com", &[], kind, 0, 86_400).unwrap();
            let parsed = parse_pem_chain(&leaf.certificate_pem).unwrap().leaf;
            assert_eq!((parsed.key_algorithm, parsed.key_size), (alg, kind.bits() as i32));
        }
    }
}
