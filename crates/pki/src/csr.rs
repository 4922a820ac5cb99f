//! Certificate signing requests: verifying the ones clients send, building the
//! ones certctl sends (server-side keys, and later the agent).
//!
//! A CSR is read only for its key and the names it asks for. Its requested
//! extensions other than subjectAltName are ignored, not refused: the issuing
//! profile, not the requester, decides what goes into a certificate. That is
//! why this does not use rcgen's CSR parser, which refuses unknown extensions.

use std::net::IpAddr;

use certctl_domain::inventory::KeyAlgorithm;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData, SanType};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::keys::{PublicKeyInfo, describe_parsed_spki};

/// The largest CSR accepted, PEM or DER. Real ones are a few kilobytes.
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// The smallest RSA modulus accepted (CA/Browser Forum baseline).
pub const MIN_RSA_BITS: u32 = 2048;

/// The largest RSA modulus accepted: ring verifies up to 8192 bits.
pub const MAX_RSA_BITS: u32 = 8192;

/// Why a CSR was refused. Each message says what was wrong and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error(
        "not a usable certificate signing request: {0}; send exactly one PKCS#10 request, as PEM (`-----BEGIN CERTIFICATE REQUEST-----`) or DER"
    )]
    Malformed(String),
    #[error(
        "the CSR's signature does not verify with the public key it contains: the request was altered, or signed with a different key"
    )]
    BadSignature,
    #[error(
        "the CSR's key is not supported: {0}; accepted keys are ECDSA P-256 or P-384, RSA 2048 to 8192 bits, and Ed25519"
    )]
    UnsupportedKey(String),
    #[error("the CSR's {algorithm} key is {bits} bits, which is too weak; use at least {minimum} bits")]
    WeakKey { algorithm: &'static str, bits: u32, minimum: u32 },
    #[error(
        "the CSR is signed with {0}, which is not accepted; sign it with ECDSA with SHA-256/384, RSA PKCS#1 v1.5 or PSS with SHA-256/384/512, or Ed25519"
    )]
    UnsupportedSignature(String),
    #[error("cannot put `{0}` in a CSR: it is neither an IP address nor a valid DNS name")]
    BadName(String),
    #[error("could not build the CSR: {0}")]
    Build(String),
}

/// A CSR whose self-signature verified, and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCsr {
    /// The request as DER.
    pub der: Vec<u8>,
    /// The requester's SubjectPublicKeyInfo as DER, exactly as in the request.
    pub spki_der: Vec<u8>,
    pub public_key: PublicKeyInfo,
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub emails: Vec<String>,
    signing_alg: &'static rcgen::SignatureAlgorithm,
    subject_public_key: Vec<u8>,
}

impl VerifiedCsr {
    /// The requester's key in the form rcgen signs certificates for:
    /// `params.signed_by(&csr.public_key_data(), &issuer)`.
    pub fn public_key_data(&self) -> CsrPublicKey {
        CsrPublicKey { alg: self.signing_alg, subject_public_key: self.subject_public_key.clone() }
    }
}

/// A requester's public key, for [`rcgen::CertificateParams::signed_by`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrPublicKey {
    // rcgen writes a certificate's SubjectPublicKeyInfo from the key's
    // signature algorithm (which fixes the key OID and curve) and the raw key.
    alg: &'static rcgen::SignatureAlgorithm,
    subject_public_key: Vec<u8>,
}

impl PublicKeyData for CsrPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.subject_public_key
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

/// Verifies a PKCS#10 request given as PEM (`CERTIFICATE REQUEST` or
/// `NEW CERTIFICATE REQUEST`) or DER: one request, no trailing data, an
/// accepted key, and a valid self-signature (proof of possession).
pub fn verify_csr(input: &[u8]) -> Result<VerifiedCsr, CsrError> {
    if input.len() > MAX_CSR_BYTES {
        return Err(CsrError::Malformed(format!("it is larger than {MAX_CSR_BYTES} bytes")));
    }
    let der = csr_der(input)?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| CsrError::Malformed(format!("not a PKCS#10 CertificationRequest ({e})")))?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed(format!("{} bytes of trailing data after the request", rest.len())));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let (signing_alg, public_key) = accepted_key(spki)?;
    check_signature_algorithm(&csr)?;
    csr.verify_signature().map_err(|e| match e {
        X509Error::SignatureUnsupportedAlgorithm => {
            CsrError::UnsupportedSignature(format!("algorithm {}", csr.signature_algorithm.algorithm.to_id_string()))
        }
        _ => CsrError::BadSignature,
    })?;

    let common_name = match info.subject.iter_common_name().next() {
        None => None,
        Some(cn) => {
            let cn = cn
                .as_str()
                .map_err(|e| CsrError::Malformed(format!("the subject's common name is not a string ({e})")))?;
            Some(cn.to_owned())
        }
    };
    let (mut dns_names, mut ip_addresses, mut emails) = (Vec::new(), Vec::new(), Vec::new());
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                        GeneralName::RFC822Name(m) => emails.push((*m).to_owned()),
                        GeneralName::IPAddress(ip) => ip_addresses.push(ip_from_bytes(ip)?),
                        // URIs, directory names, otherNames: not something a
                        // profile can issue today, so not reported.
                        _ => {}
                    }
                }
            }
            ParsedExtension::ParseError { error } => {
                return Err(CsrError::Malformed(format!("a requested extension is malformed ({error})")));
            }
            _ => {}
        }
    }
    Ok(VerifiedCsr {
        spki_der: spki.raw.to_vec(),
        public_key,
        common_name,
        dns_names,
        ip_addresses,
        emails,
        signing_alg,
        subject_public_key: spki.subject_public_key.data.to_vec(),
        der,
    })
}

/// The DER of the one request in `input`.
fn csr_der(input: &[u8]) -> Result<Vec<u8>, CsrError> {
    // DER starts with a SEQUENCE tag; anything else is taken for PEM text.
    if input.first() == Some(&0x30) {
        return Ok(input.to_vec());
    }
    let mut blocks = Pem::iter_from_buffer(input);
    let pem = match blocks.next() {
        None => return Err(CsrError::Malformed("neither DER nor PEM (no `-----BEGIN` line found)".into())),
        Some(Err(e)) => return Err(CsrError::Malformed(format!("invalid PEM ({e})"))),
        Some(Ok(pem)) => pem,
    };
    if pem.label != "CERTIFICATE REQUEST" && pem.label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrError::Malformed(format!("the PEM block is a `{}`, not a `CERTIFICATE REQUEST`", pem.label)));
    }
    if blocks.next().is_some() {
        return Err(CsrError::Malformed("the input holds more than one PEM block".into()));
    }
    Ok(pem.contents)
}

/// Refuses keys certctl cannot issue for, and says which signature
/// algorithm rcgen must use to write the key back into a certificate.
fn accepted_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Result<(&'static rcgen::SignatureAlgorithm, PublicKeyInfo), CsrError> {
    let info = describe_parsed_spki(spki);
    let oid = spki.algorithm.algorithm.to_id_string();
    let alg = match spki.parsed() {
        Ok(PublicKey::RSA(_)) if spki.algorithm.algorithm == oid_registry::OID_PKCS1_RSAENCRYPTION => {
            if info.bits < MIN_RSA_BITS {
                return Err(CsrError::WeakKey { algorithm: "RSA", bits: info.bits, minimum: MIN_RSA_BITS });
            }
            if info.bits > MAX_RSA_BITS {
                return Err(CsrError::UnsupportedKey(format!("RSA with {} bits (the maximum is 8192)", info.bits)));
            }
            &rcgen::PKCS_RSA_SHA256
        }
        Ok(PublicKey::EC(_)) => match info.algorithm {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ if info.bits == 521 => {
                return Err(CsrError::UnsupportedKey("ECDSA P-521 (the signing library, ring, lacks it)".into()));
            }
            _ => return Err(CsrError::UnsupportedKey(format!("ECDSA on an unsupported curve ({oid})"))),
        },
        _ if info.algorithm == KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        _ => return Err(CsrError::UnsupportedKey(key_name(&oid))),
    };
    Ok((alg, info))
}

fn key_name(oid: &str) -> String {
    match oid {
        "1.2.840.10040.4.1" => "DSA".into(),
        "1.3.101.113" => "Ed448".into(),
        "1.3.101.110" | "1.3.101.111" => "X25519/X448 (key agreement keys cannot sign)".into(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS-only key (id-RSASSA-PSS); use a plain rsaEncryption key".into(),
        other => format!("key algorithm {other}"),
    }
}

/// SHA-1 self-signatures prove nothing against a chosen-prefix attacker,
/// and x509-parser would accept them, so they are refused here.
fn check_signature_algorithm(csr: &X509CertificationRequest<'_>) -> Result<(), CsrError> {
    let name = match csr.signature_algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "RSA with SHA-1",
        "1.2.840.10045.4.1" => "ECDSA with SHA-1",
        "1.2.840.113549.1.1.4" => "RSA with MD5",
        _ => return Ok(()),
    };
    Err(CsrError::UnsupportedSignature(name.into()))
}

fn ip_from_bytes(bytes: &[u8]) -> Result<IpAddr, CsrError> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Ok(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Ok(IpAddr::from(v6))
    } else {
        Err(CsrError::Malformed(format!("an IP address SAN has {} bytes (expected 4 or 16)", bytes.len())))
    }
}

/// Builds a PEM CSR signed by `key`. Each SAN that parses as an IP address
/// becomes an IP SAN, every other one a DNS SAN. An empty `common_name`
/// leaves the subject empty.
pub fn build_csr(key: &KeyPair, common_name: &str, sans: &[String]) -> Result<String, CsrError> {
    if common_name.is_empty() && sans.is_empty() {
        return Err(CsrError::Build("a CSR needs a common name or at least one subject alternative name".into()));
    }
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if !common_name.is_empty() {
        dn.push(DnType::CommonName, common_name);
    }
    params.distinguished_name = dn;
    for san in sans {
        let entry = match san.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                certctl_domain::inventory::validate_dns_name("san", san).map_err(|_| CsrError::BadName(san.clone()))?;
                SanType::DnsName(san.clone().try_into().map_err(|_| CsrError::BadName(san.clone()))?)
            }
        };
        params.subject_alt_names.push(entry);
    }
    let csr = params.serialize_request(key).map_err(|e| CsrError::Build(e.to_string()))?;
    csr.pem().map_err(|e| CsrError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyType;

    fn sans() -> Vec<String> {
        vec!["web.example.com".into(), "10.0.0.7".into(), "::1".into(), "*.example.com".into()]
    }

    #[test]
    fn built_csrs_verify_and_report_names_and_key() {
        for kind in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048, KeyType::Ed25519] {
            let key = kind.generate().unwrap();
            let pem = build_csr(&key, "web.example.com", &sans()).unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"), "{pem}");
            let csr = verify_csr(pem.as_bytes()).unwrap();
            assert_eq!(csr.common_name.as_deref(), Some("web.example.com"));
            assert_eq!(csr.dns_names, vec!["web.example.com", "*.example.com"]);
            assert_eq!(csr.ip_addresses, vec!["10.0.0.7".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
            assert!(csr.emails.is_empty());
            assert_eq!(csr.public_key, PublicKeyInfo { algorithm: kind.algorithm(), bits: kind.bits() });
            assert_eq!(csr.spki_der, key.subject_public_key_info(), "{kind}");
            // DER input gives the same result.
            assert_eq!(verify_csr(&csr.der).unwrap(), csr);
        }
    }

    #[test]
    fn the_key_signs_into_a_certificate_unchanged() {
        let issuer = rcgen::Issuer::new(CertificateParams::default(), KeyType::EcdsaP256.generate().unwrap());
        for kind in [KeyType::EcdsaP384, KeyType::Rsa2048, KeyType::Ed25519] {
            let key = kind.generate().unwrap();
            let csr = verify_csr(build_csr(&key, "k.example.com", &[]).unwrap().as_bytes()).unwrap();
            let cert = CertificateParams::default().signed_by(&csr.public_key_data(), &issuer).unwrap();
            let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert.der()).unwrap();
            assert_eq!(parsed.public_key().raw, csr.spki_der.as_slice(), "{kind}");
        }
    }

    #[test]
    fn refusals_are_precise() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let pem = build_csr(&key, "a.example.com", &[]).unwrap();
        let der = verify_csr(pem.as_bytes()).unwrap().der;

        let malformed = |input: &[u8]| match verify_csr(input) {
            Err(CsrError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        };
        assert!(malformed(b"").contains("no `-----BEGIN`"));
        assert!(malformed(b"hello").contains("no `-----BEGIN`"));
        assert!(malformed(format!("{pem}{pem}").as_bytes()).contains("more than one PEM block"));
        let cert = crate::generate::CertificateAuthority::new("X", KeyType::EcdsaP256).unwrap().certificate_pem;
        assert!(malformed(cert.as_bytes()).contains("is a `CERTIFICATE`"));
        let mut trailing = der.clone();
        trailing.extend_from_slice(&[0, 0]);
        assert!(malformed(&trailing).contains("2 bytes of trailing data"));
        assert!(malformed(&der[..der.len() - 3]).contains("not a PKCS#10"));
        assert!(malformed(&vec![b' '; MAX_CSR_BYTES + 1]).contains("larger than"));

        // The legacy label is accepted.
        let legacy = pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST");
        assert_eq!(verify_csr(legacy.as_bytes()).unwrap().der, der);

        // Flip one bit of the signature (the last bytes of the DER).
        let mut tampered = der.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(verify_csr(&tampered).unwrap_err(), CsrError::BadSignature);
        // And one bit of the subject: the signature no longer covers it.
        let at = der.windows(13).position(|w| w == b"a.example.com").unwrap();
        let mut renamed = der.clone();
        renamed[at] = b'b';
        assert_eq!(verify_csr(&renamed).unwrap_err(), CsrError::BadSignature);

        assert_eq!(build_csr(&key, "x", &["not a name!".into()]).unwrap_err(), CsrError::BadName("not a name!".into()));
        assert!(matches!(build_csr(&key, "", &[]), Err(CsrError::Build(_))));
    }

    #[test]
    fn messages_tell_the_operator_what_is_accepted() {
        let weak = CsrError::WeakKey { algorithm: "RSA", bits: 1024, minimum: 2048 };
        assert_eq!(weak.to_string(), "the CSR's RSA key is 1024 bits, which is too weak; use at least 2048 bits");
        let p521 = CsrError::UnsupportedKey("ECDSA P-521 (the signing library, ring, lacks it)".into());
        assert!(p521.to_string().contains("accepted keys are ECDSA P-256 or P-384"), "{p521}");
    }
}
