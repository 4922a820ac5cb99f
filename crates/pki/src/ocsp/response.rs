//! Writing `OCSPResponse` (RFC 6960 §4.2.1). The OCSP module uses EXPLICIT
//! tags except where the ASN.1 says IMPLICIT (the CertStatus choices).
//!
//! ```text
//! OCSPResponse      ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
//! ResponseBytes     ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
//! BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm AlgorithmIdentifier,
//!                                  signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ResponseData      ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, responderID ResponderID,
//!                                  producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse,
//!                                  responseExtensions [1] EXPLICIT Extensions OPTIONAL }
//! ResponderID       ::= CHOICE { byName [1] Name, byKey [2] KeyHash }
//! SingleResponse    ::= SEQUENCE { certID CertID, certStatus CertStatus, thisUpdate GeneralizedTime,
//!                                  nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL,
//!                                  singleExtensions [1] EXPLICIT Extensions OPTIONAL }
//! CertStatus        ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
//!                                unknown [2] IMPLICIT UnknownInfo }
//! RevokedInfo       ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
//! ```

use rcgen::{KeyPair, PublicKeyData, SigningKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use yasna::models::{GeneralizedTime, ObjectIdentifier};
use yasna::{DERWriter, Tag};

use super::request::OID_NONCE;
use super::{CertId, CertStatus, OcspError, OcspHash, OcspResponseStatus};

const OID_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";

/// A dotted OID for yasna. Only called with the constants of this module.
pub(super) fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(&dotted.split('.').filter_map(|c| c.parse().ok()).collect::<Vec<u64>>())
}

/// An unsuccessful `OCSPResponse`: just the status, no body, no signature.
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_enum(status as i64)))
}

/// The signature algorithm a key pair signs with, as an AlgorithmIdentifier.
/// RSA carries explicit NULL parameters (RFC 4055); ECDSA and Ed25519 none.
fn signature_algorithm(signer: &KeyPair) -> Result<(&'static str, bool), OcspError> {
    let alg = signer.algorithm();
    Ok(if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        ("1.2.840.10045.4.3.2", false)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        ("1.2.840.10045.4.3.3", false)
    } else if alg == &rcgen::PKCS_ED25519 {
        ("1.3.101.112", false)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        ("1.2.840.113549.1.1.11", true)
    } else if alg == &rcgen::PKCS_RSA_SHA384 {
        ("1.2.840.113549.1.1.12", true)
    } else if alg == &rcgen::PKCS_RSA_SHA512 {
        ("1.2.840.113549.1.1.13", true)
    } else {
        return Err(OcspError::UnsupportedSigner(format!("{alg:?}")));
    })
}

fn generalized_time(what: &str, unix: i64) -> Result<GeneralizedTime, OcspError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(GeneralizedTime::from_datetime_opt)
        .ok_or_else(|| OcspError::InvalidInput(format!("{what} ({unix}) is not a time between years 0 and 9999")))
}

/// Writes a GeneralizedTime computed (and checked) beforehand.
fn write_time(w: DERWriter<'_>, t: &GeneralizedTime) {
    w.write_generalized_time(t)
}

/// One answer, with its times converted up front so the writer cannot fail.
struct Single<'a> {
    id: &'a CertId,
    status: Status,
}

enum Status {
    Good,
    Revoked(GeneralizedTime, Option<u8>),
    Unknown,
}

/// Signs a successful `OCSPResponse` for `answers` as the issuing CA.
///
/// `signer` must be the key of `signer_cert_der`, the CA that issued the
/// certificates asked about: clients accept a CA's own signature without a
/// delegated-responder certificate. The responder is named by key (the
/// SHA-1 of the CA's subjectPublicKey), and the CA certificate rides along in
/// `certs`. `nonce` is [`super::OcspRequest::nonce`], echoed verbatim.
pub fn sign_response(
    signer: &KeyPair,
    signer_cert_der: &[u8],
    answers: &[(CertId, CertStatus)],
    produced_at: i64,
    this_update: i64,
    next_update: Option<i64>,
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    if answers.is_empty() {
        return Err(OcspError::InvalidInput("no certificates to answer for".into()));
    }
    let (sig_oid, sig_null) = signature_algorithm(signer)?;
    let (rest, cert) = X509Certificate::from_der(signer_cert_der)
        .map_err(|e| OcspError::BadIssuer(format!("the signer certificate is not X.509 DER ({e})")))?;
    if !rest.is_empty() {
        return Err(OcspError::BadIssuer("trailing bytes after the signer certificate".into()));
    }
    if cert.public_key().raw != signer.subject_public_key_info().as_slice() {
        return Err(OcspError::SignerMismatch);
    }
    let responder_key_hash = OcspHash::Sha1.digest(&cert.public_key().subject_public_key.data);

    let produced_at = generalized_time("producedAt", produced_at)?;
    let this_update = generalized_time("thisUpdate", this_update)?;
    let next_update = next_update.map(|t| generalized_time("nextUpdate", t)).transpose()?;
    let mut singles = Vec::with_capacity(answers.len());
    for (id, status) in answers {
        let status = match *status {
            CertStatus::Good => Status::Good,
            CertStatus::Unknown => Status::Unknown,
            CertStatus::Revoked { revoked_at, reason } => {
                if let Some(r) = reason
                    && (r > 10 || r == 7)
                {
                    return Err(OcspError::InvalidInput(format!("{r} is not a CRLReason code (0-10, 7 is unused)")));
                }
                Status::Revoked(generalized_time("revocationTime", revoked_at)?, reason)
            }
        };
        singles.push(Single { id, status });
    }

    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // version: DEFAULT v1, so omitted (DER).
            w.next().write_tagged(Tag::context(2), |w| w.write_bytes(&responder_key_hash));
            write_time(w.next(), &produced_at);
            w.next().write_sequence(|w| {
                for single in &singles {
                    w.next().write_sequence(|w| write_single(w, single, &this_update, next_update.as_ref()));
                }
            });
            if let Some(nonce) = nonce {
                w.next().write_tagged(Tag::context(1), |w| {
                    w.write_sequence(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(OID_NONCE));
                            w.next().write_bytes(nonce);
                        })
                    })
                });
            }
        })
    });
    let signature = signer.sign(&tbs).map_err(|e| OcspError::Signing(e.to_string()))?;

    let basic = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(sig_oid));
                if sig_null {
                    w.next().write_null();
                }
            });
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
            w.next().write_tagged(Tag::context(0), |w| w.write_sequence(|w| w.next().write_der(signer_cert_der)));
        })
    });
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_enum(0); // successful
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_oid(&oid(OID_BASIC));
                    w.next().write_bytes(&basic);
                })
            });
        })
    }))
}

fn write_single(
    w: &mut yasna::DERWriterSeq<'_>,
    single: &Single<'_>,
    this_update: &GeneralizedTime,
    next_update: Option<&GeneralizedTime>,
) {
    w.next().write_der(single.id.der());
    match &single.status {
        Status::Good => w.next().write_tagged_implicit(Tag::context(0), |w| w.write_null()),
        Status::Revoked(at, reason) => {
            w.next().write_tagged_implicit(Tag::context(1), |w| {
                w.write_sequence(|w| {
                    write_time(w.next(), at);
                    if let Some(reason) = reason {
                        w.next().write_tagged(Tag::context(0), |w| w.write_enum(i64::from(*reason)));
                    }
                })
            });
        }
        Status::Unknown => w.next().write_tagged_implicit(Tag::context(2), |w| w.write_null()),
    }
    write_time(w.next(), this_update);
    if let Some(next) = next_update {
        w.next().write_tagged(Tag::context(0), |w| write_time(w, next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyType;
    use crate::ocsp::IssuerHashes;

    fn ca(kind: KeyType) -> (KeyPair, Vec<u8>) {
        let key = kind.generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        (key, der)
    }

    #[test]
    fn bad_inputs_are_refused_before_signing() {
        let (key, cert) = ca(KeyType::EcdsaP256);
        let id = CertId::new(OcspHash::Sha1, &IssuerHashes::new(&cert).unwrap(), &[7]);
        let sign = |key: &KeyPair, status: CertStatus, t: i64| {
            sign_response(key, &cert, &[(id.clone(), status)], t, t, None, None)
        };
        assert!(sign(&key, CertStatus::Good, 1_700_000_000).is_ok());
        let (other, _) = ca(KeyType::EcdsaP256);
        assert_eq!(sign(&other, CertStatus::Good, 1_700_000_000), Err(OcspError::SignerMismatch));
        let unused = CertStatus::Revoked { revoked_at: 1, reason: Some(7) };
        assert!(
            matches!(sign(&key, unused, 1_700_000_000), Err(OcspError::InvalidInput(why)) if why.contains("7 is unused"))
        );
        assert!(matches!(sign(&key, CertStatus::Good, 400_000_000_000), Err(OcspError::InvalidInput(_))));
        assert!(matches!(
            sign_response(&key, &cert, &[], 0, 0, None, None),
            Err(OcspError::InvalidInput(why)) if why == "no certificates to answer for"
        ));
        assert!(matches!(
            sign_response(&key, b"junk", &[(id, CertStatus::Good)], 0, 0, None, None),
            Err(OcspError::BadIssuer(_))
        ));
    }

    #[test]
    fn error_responses_are_just_a_status() {
        assert_eq!(error_response(OcspResponseStatus::TryLater), vec![0x30, 0x03, 0x0a, 0x01, 0x03]);
        assert_eq!(error_response(OcspResponseStatus::Unauthorized), vec![0x30, 0x03, 0x0a, 0x01, 0x06]);
    }
}
