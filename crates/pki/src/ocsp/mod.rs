//! An RFC 6960 OCSP codec: parse requests, match them to an issuer, and sign
//! responses as the issuing CA itself (no delegated responder certificate).
//!
//! Hand-written over the DER crates already in the tree (asn1-rs to read,
//! yasna to write) because the OCSP crates on crates.io bring their own DER
//! stacks. Only what a responder needs is modelled; the rest of a request
//! (requestor name, signature, per-certificate extensions) is skipped.

mod request;
mod response;

pub use request::{MAX_REQUEST_BYTES, MAX_REQUESTS, parse_request};
pub use response::{error_response, sign_response};

use ring::digest;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// Why an OCSP request could not be answered, or a response not produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    #[error("the request's CertID uses hash algorithm {0}; supported are SHA-1, SHA-256, SHA-384 and SHA-512")]
    UnsupportedHash(String),
    #[error("not an issuer certificate: {0}")]
    BadIssuer(String),
    #[error(
        "cannot sign OCSP responses with this key: {0}; supported are ECDSA P-256/P-384, RSA PKCS#1 v1.5 and Ed25519"
    )]
    UnsupportedSigner(String),
    #[error("the OCSP signing key does not belong to the signer certificate")]
    SignerMismatch,
    #[error("cannot build the OCSP response: {0}")]
    InvalidInput(String),
    #[error("signing the OCSP response failed: {0}")]
    Signing(String),
}

impl OcspError {
    /// The status to answer with when this error stops a request.
    pub fn response_status(&self) -> OcspResponseStatus {
        match self {
            Self::Malformed(_) | Self::UnsupportedHash(_) => OcspResponseStatus::MalformedRequest,
            _ => OcspResponseStatus::InternalError,
        }
    }
}

/// The unsuccessful `OCSPResponseStatus` values (RFC 6960 §4.2.1). A
/// successful response always carries a signed body: see [`sign_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspResponseStatus {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// A CertID hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl OcspHash {
    pub const ALL: [OcspHash; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    pub fn oid(self) -> &'static str {
        match self {
            Self::Sha1 => "1.3.14.3.2.26",
            Self::Sha256 => "2.16.840.1.101.3.4.2.1",
            Self::Sha384 => "2.16.840.1.101.3.4.2.2",
            Self::Sha512 => "2.16.840.1.101.3.4.2.3",
        }
    }

    fn from_oid(oid: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.oid() == oid)
    }

    fn ring(self) -> &'static digest::Algorithm {
        match self {
            // SHA-1 is what almost every OCSP client sends; collisions do not
            // matter here because the CA answers only for its own names.
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.ring(), data).as_ref().to_vec()
    }

    pub fn output_len(self) -> usize {
        self.ring().output_len()
    }
}

/// One certificate asked about. `PartialEq` compares the encoding too, so two
/// CertIDs that differ only in how the hash parameters were written differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    pub hash: OcspHash,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    /// Big-endian magnitude without leading zero bytes.
    pub serial: Vec<u8>,
    /// The CertID as received, echoed verbatim in the response: clients
    /// compare the response's CertID with theirs, parameters included.
    der: Vec<u8>,
}

impl CertId {
    /// A CertID for `serial` (a big-endian magnitude) under `issuer`, encoded
    /// the way OpenSSL does (hash parameters NULL).
    pub fn new(hash: OcspHash, issuer: &IssuerHashes, serial: &[u8]) -> Self {
        let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len().saturating_sub(1));
        let serial = serial.get(start..).unwrap_or_default().to_vec();
        let (name, key) = (issuer.name_hash(hash), issuer.key_hash(hash));
        let der = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&response::oid(hash.oid()));
                    w.next().write_null();
                });
                w.next().write_bytes(&name);
                w.next().write_bytes(&key);
                w.next().write_bigint_bytes(if serial.is_empty() { &[0] } else { &serial }, true);
            })
        });
        Self { hash, issuer_name_hash: name, issuer_key_hash: key, serial, der }
    }

    /// The CertID's DER encoding (as received, for a parsed request).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The serial in the inventory's form (`ParsedCertificate::serial_number`):
    /// upper-case hex of the DER INTEGER's content, so with a leading `00`
    /// when the top bit is set.
    pub fn serial_hex(&self) -> String {
        match self.serial.first() {
            Some(b) if b & 0x80 != 0 => format!("00{}", hex::encode_upper(&self.serial)),
            _ => hex::encode_upper(&self.serial),
        }
    }
}

/// What a certificate's revocation status is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// `reason` is an RFC 5280 CRLReason code (0–10, not 7).
    Revoked {
        revoked_at: i64,
        reason: Option<u8>,
    },
    /// Not a certificate this responder knows.
    Unknown,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    pub ids: Vec<CertId>,
    /// The id-pkix-ocsp-nonce extension's value exactly as received (for
    /// RFC 6960 clients, a DER OCTET STRING holding the nonce). Pass it to
    /// [`sign_response`] unchanged: clients compare it byte for byte.
    pub nonce: Option<Vec<u8>>,
}

/// The hashes by which requests name one issuer, for every supported hash.
#[derive(Debug, Clone)]
pub struct IssuerHashes {
    // (name hash, key hash) in `OcspHash::ALL` order.
    hashes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    /// From the issuing CA's certificate (DER): the name hash covers its
    /// subject DN, the key hash its subjectPublicKey bits (RFC 6960 §4.1.1).
    pub fn new(ca_cert_der: &[u8]) -> Result<Self, OcspError> {
        let (rest, cert) =
            X509Certificate::from_der(ca_cert_der).map_err(|e| OcspError::BadIssuer(format!("not X.509 DER ({e})")))?;
        if !rest.is_empty() {
            return Err(OcspError::BadIssuer("trailing bytes after the certificate".into()));
        }
        let name = cert.subject().as_raw();
        let key = &cert.public_key().subject_public_key.data;
        Ok(Self { hashes: OcspHash::ALL.iter().map(|h| (h.digest(name), h.digest(key))).collect() })
    }

    fn index(hash: OcspHash) -> usize {
        OcspHash::ALL.iter().position(|h| *h == hash).unwrap_or(0)
    }

    pub fn name_hash(&self, hash: OcspHash) -> Vec<u8> {
        self.hashes.get(Self::index(hash)).map(|(n, _)| n.clone()).unwrap_or_default()
    }

    pub fn key_hash(&self, hash: OcspHash) -> Vec<u8> {
        self.hashes.get(Self::index(hash)).map(|(_, k)| k.clone()).unwrap_or_default()
    }

    /// Whether `id` names a certificate of this issuer. Both hashes must
    /// match: CAs may share a name across key rollovers. A request none of a
    /// responder's issuers matches is answered `unauthorized` (RFC 6960 §2.3).
    pub fn matches(&self, id: &CertId) -> bool {
        self.hashes
            .get(Self::index(id.hash))
            .is_some_and(|(name, key)| *name == id.issuer_name_hash && *key == id.issuer_key_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::CertificateAuthority;
    use crate::keys::KeyType;

    fn ca_der(name: &str) -> Vec<u8> {
        let ca = CertificateAuthority::new(name, KeyType::EcdsaP256).unwrap();
        x509_parser::pem::parse_x509_pem(ca.certificate_pem.as_bytes()).unwrap().1.contents
    }

    #[test]
    fn issuer_hashes_have_the_right_lengths_and_match_only_their_issuer() {
        let (a, b) = (IssuerHashes::new(&ca_der("A")).unwrap(), IssuerHashes::new(&ca_der("A")).unwrap());
        for hash in OcspHash::ALL {
            assert_eq!(a.name_hash(hash).len(), hash.output_len());
            assert_eq!(a.key_hash(hash).len(), hash.output_len());
            let id = CertId::new(hash, &a, &[0, 0x85, 1]);
            assert_eq!(id.serial, vec![0x85, 1]);
            assert_eq!(id.serial_hex(), "008501");
            assert!(a.matches(&id));
            // Same name, different key: a rollover must not answer for the old key.
            assert_eq!(a.name_hash(hash), b.name_hash(hash));
            assert!(!b.matches(&id));
        }
        assert!(matches!(IssuerHashes::new(b"junk"), Err(OcspError::BadIssuer(_))));
    }

    #[test]
    fn errors_map_to_response_statuses() {
        assert_eq!(OcspError::Malformed("x".into()).response_status(), OcspResponseStatus::MalformedRequest);
        assert_eq!(OcspError::UnsupportedHash("1.2".into()).response_status(), OcspResponseStatus::MalformedRequest);
        assert_eq!(OcspError::SignerMismatch.response_status(), OcspResponseStatus::InternalError);
    }
}
