//! Reading `OCSPRequest` (RFC 6960 §4.1.1).
//!
//! ```text
//! OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
//! TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1,
//!                            requestorName [1] EXPLICIT GeneralName OPTIONAL,
//!                            requestList SEQUENCE OF Request,
//!                            requestExtensions [2] EXPLICIT Extensions OPTIONAL }
//! Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
//! CertID      ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, issuerNameHash OCTET STRING,
//!                            issuerKeyHash OCTET STRING, serialNumber CertificateSerialNumber }
//! ```

use x509_parser::asn1_rs::Tag;

use super::{CertId, OcspError, OcspHash, OcspRequest};
use crate::der::{DerError, Reader};

/// Requests larger than this are refused; real ones are a few hundred bytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// At most this many certificates per request, to bound the signing work one
/// request can cause.
pub const MAX_REQUESTS: usize = 64;

pub(super) const OID_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";

/// RFC 8954 caps nonces at 32 octets; the value is an OCTET STRING around them.
const MAX_NONCE_VALUE_BYTES: usize = 32 + 2;

impl From<DerError> for OcspError {
    fn from(e: DerError) -> Self {
        OcspError::Malformed(e.0)
    }
}

/// Parses a DER `OCSPRequest`. A signature on the request is not checked
/// (this responder answers anyone); per-certificate extensions are ignored.
pub fn parse_request(der: &[u8]) -> Result<OcspRequest, OcspError> {
    if der.is_empty() {
        return Err(OcspError::Malformed("the request is empty".into()));
    }
    if der.len() > MAX_REQUEST_BYTES {
        return Err(OcspError::Malformed(format!("the request is larger than {MAX_REQUEST_BYTES} bytes")));
    }
    let mut request = Reader::top_sequence(der, "OCSPRequest")?;
    let mut tbs = request.sequence("tbsRequest")?;
    // optionalSignature [0] may follow; nothing else may.
    request.context(0)?;
    request.end("OCSPRequest")?;

    if let Some(version) = tbs.context(0)? {
        let mut version = Reader::new(version.data);
        let v = version.unsigned_integer("version")?;
        version.end("version")?;
        if v != [0] {
            return Err(OcspError::Malformed(format!(
                "unsupported request version {} (only v1 exists)",
                hex::encode(v)
            )));
        }
    }
    tbs.context(1)?; // requestorName: not used
    let mut list = tbs.sequence("requestList")?;
    let mut ids = Vec::new();
    while !list.is_empty() {
        if ids.len() == MAX_REQUESTS {
            return Err(OcspError::Malformed(format!("more than {MAX_REQUESTS} certificates in one request")));
        }
        let mut single = list.sequence("Request")?;
        ids.push(cert_id(&mut single)?);
        single.context(0)?; // singleRequestExtensions: none are supported
        single.end("Request")?;
    }
    if ids.is_empty() {
        return Err(OcspError::Malformed("requestList is empty".into()));
    }
    let nonce = match tbs.context(2)? {
        Some(extensions) => nonce(extensions.data)?,
        None => None,
    };
    tbs.end("tbsRequest")?;
    Ok(OcspRequest { ids, nonce })
}

fn cert_id(reader: &mut Reader<'_>) -> Result<CertId, OcspError> {
    let (mut id, raw) = reader.sequence_raw("CertID")?;
    let mut algorithm = id.sequence("CertID hashAlgorithm")?;
    let oid = algorithm.oid("CertID hashAlgorithm")?;
    // Parameters are NULL or absent for every SHA-2 and SHA-1 (RFC 5754).
    if !algorithm.is_empty() {
        algorithm.expect(Tag::Null, "CertID hashAlgorithm parameters")?;
    }
    algorithm.end("CertID hashAlgorithm")?;
    let hash = OcspHash::from_oid(&oid).ok_or(OcspError::UnsupportedHash(oid))?;
    let issuer_name_hash = id.octet_string("issuerNameHash")?.to_vec();
    let issuer_key_hash = id.octet_string("issuerKeyHash")?.to_vec();
    for (what, value) in [("issuerNameHash", &issuer_name_hash), ("issuerKeyHash", &issuer_key_hash)] {
        if value.len() != hash.output_len() {
            return Err(OcspError::Malformed(format!(
                "{what} has {} bytes, but {hash:?} hashes have {}",
                value.len(),
                hash.output_len()
            )));
        }
    }
    let serial = id.unsigned_integer("serialNumber")?;
    id.end("CertID")?;
    Ok(CertId { hash, issuer_name_hash, issuer_key_hash, serial, der: raw.to_vec() })
}

/// Finds the nonce among the request extensions. Others are ignored: a
/// responder may ignore request extensions it does not recognise.
fn nonce(extensions: &[u8]) -> Result<Option<Vec<u8>>, OcspError> {
    let mut list = Reader::top_sequence(extensions, "requestExtensions")?;
    let mut found = None;
    while !list.is_empty() {
        let mut extension = list.sequence("Extension")?;
        let oid = extension.oid("extnID")?;
        let (first, _) = extension.any("extnValue")?;
        let value = if first.header.tag() == Tag::Boolean {
            extension.octet_string("extnValue")?
        } else if first.header.tag() == Tag::OctetString {
            first.data
        } else {
            return Err(OcspError::Malformed("Extension: expected critical or extnValue".into()));
        };
        extension.end("Extension")?;
        if oid != OID_NONCE {
            continue;
        }
        if found.is_some() {
            return Err(OcspError::Malformed("the nonce extension appears twice".into()));
        }
        if value.is_empty() || value.len() > MAX_NONCE_VALUE_BYTES {
            return Err(OcspError::Malformed(format!(
                "the nonce extension holds {} bytes; RFC 8954 allows 1 to 32 nonce octets",
                value.len()
            )));
        }
        found = Some(value.to_vec());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::response::oid;

    /// An OCSPRequest with one CertID per `(hash oid, hash length, serial)`.
    fn request(version: Option<i64>, ids: &[(&str, usize, &[u8])], nonce: Option<&[u8]>) -> Vec<u8> {
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    if let Some(v) = version {
                        w.next().write_tagged(yasna::Tag::context(0), |w| w.write_i64(v));
                    }
                    w.next().write_sequence(|w| {
                        for (hash, len, serial) in ids {
                            w.next().write_sequence(|w| {
                                w.next().write_sequence(|w| {
                                    w.next().write_sequence(|w| w.next().write_oid(&oid(hash)));
                                    w.next().write_bytes(&vec![1; *len]);
                                    w.next().write_bytes(&vec![2; *len]);
                                    w.next().write_bigint_bytes(serial, true);
                                })
                            });
                        }
                    });
                    if let Some(nonce) = nonce {
                        w.next().write_tagged(yasna::Tag::context(2), |w| {
                            w.write_sequence(|w| {
                                w.next().write_sequence(|w| {
                                    w.next().write_oid(&oid(OID_NONCE));
                                    w.next().write_bytes(nonce);
                                })
                            })
                        });
                    }
                })
            })
        })
    }

    fn malformed(der: &[u8]) -> String {
        match parse_request(der) {
            Err(OcspError::Malformed(why)) => why,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_request_parses_with_absent_hash_parameters() {
        let sha512 = OcspHash::Sha512.oid();
        let parsed = parse_request(&request(Some(0), &[(sha512, 64, &[0x00, 0xff])], Some(&[4, 1, 9]))).unwrap();
        assert_eq!(parsed.ids.len(), 1);
        assert_eq!((parsed.ids[0].hash, parsed.ids[0].serial.as_slice()), (OcspHash::Sha512, &[0xff][..]));
        assert_eq!(parsed.nonce.as_deref(), Some(&[4, 1, 9][..]));
    }

    #[test]
    fn refusals_name_the_problem() {
        let sha1 = OcspHash::Sha1.oid();
        assert_eq!(
            parse_request(&request(None, &[("1.2.840.113549.2.5", 16, &[1])], None)),
            Err(OcspError::UnsupportedHash("1.2.840.113549.2.5".into()))
        );
        assert!(malformed(&request(Some(1), &[(sha1, 20, &[1])], None)).contains("version 01"));
        assert_eq!(malformed(&request(None, &[], None)), "requestList is empty");
        assert!(malformed(&request(None, &[(sha1, 32, &[1])], None)).contains("issuerNameHash has 32 bytes"));
        assert!(malformed(&request(None, &[(sha1, 20, &[1])], Some(&[0; 35]))).contains("RFC 8954"));
        let many: Vec<(&str, usize, &[u8])> = vec![(sha1, 20, &[1]); MAX_REQUESTS + 1];
        assert!(malformed(&request(None, &many, None)).contains("more than 64"));
        assert!(malformed(&vec![0x30; MAX_REQUEST_BYTES + 1]).contains("larger than"));
        assert!(malformed(&[0x04, 0x00]).contains("OCSPRequest: expected a SEQUENCE, found an OCTET STRING"));
    }
}
