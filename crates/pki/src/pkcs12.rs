//! PKCS#12 (RFC 7292) export: a key and its chain in one password-protected
//! file, for servers that want `.p12`/`.pfx` (Windows, Java, appliances).
//!
//! The format is the one OpenSSL 3 writes by default, so OpenSSL 3, Java 9+ and
//! current Windows read it without legacy algorithms:
//! - the certificates sit in an `EncryptedData` and the key in a
//!   `pkcs8ShroudedKeyBag`, both encrypted with PBES2 (PBKDF2-HMAC-SHA256,
//!   AES-256-CBC), each with its own random salt and IV;
//! - the whole is authenticated by HMAC-SHA256 keyed through the PKCS#12 KDF
//!   (RFC 7292 appendix B). PBMAC1 (RFC 9579) would be cleaner, but OpenSSL
//!   only reads it from 3.4 on.
//!
//! Dependencies: ring already provides PBKDF2, HMAC, SHA-256 and randomness;
//! it lacks AES-CBC, so that comes from RustCrypto's `aes` + `cbc` (with
//! `cipher`, `inout`, `block-padding`: five small crates, no build scripts).
//! An all-in-one crate was measured and rejected: `p12-keystore` pulls in
//! `cms`, `x509-cert`, `der`, pre-release `pkcs12`, scrypt and AES-GCM.

use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

use crate::keys::{KeyError, key_pair_from_pkcs8_der, pkcs8_v1};

/// PBKDF2 and MAC iterations. The MAC is a password oracle too, so it gets
/// as many as the encryption; 10 000 is five times OpenSSL's default.
pub const ITERATIONS: u32 = 10_000;

const SALT_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pkcs12Error {
    #[error("the chain is empty: a PKCS#12 bundle needs at least the leaf certificate")]
    EmptyChain,
    #[error("certificate {index} of the chain (1 is the leaf) is not X.509 DER: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error("the private key is not usable: {0}")]
    BadKey(KeyError),
    #[error("the private key does not belong to the leaf certificate (the first in the chain)")]
    KeyMismatch,
    #[error(
        "the PKCS#12 password is empty; give a password (tools disagree on what an empty one means, so it is refused)"
    )]
    EmptyPassword,
    #[error("the system random number generator failed")]
    Random,
}

/// Bundles `key_pkcs8_der` with `chain_der` (leaf first) under `password`.
/// `friendly_name` labels the key and leaf (Windows and Java show it).
pub fn to_pkcs12(
    chain_der: &[Vec<u8>],
    key_pkcs8_der: &[u8],
    password: &str,
    friendly_name: &str,
) -> Result<Vec<u8>, Pkcs12Error> {
    if password.is_empty() {
        return Err(Pkcs12Error::EmptyPassword);
    }
    let leaf = chain_der.first().ok_or(Pkcs12Error::EmptyChain)?;
    for (i, der) in chain_der.iter().enumerate() {
        let (rest, _) = X509Certificate::from_der(der)
            .map_err(|e| Pkcs12Error::BadCertificate { index: i + 1, reason: e.to_string() })?;
        if !rest.is_empty() {
            return Err(Pkcs12Error::BadCertificate { index: i + 1, reason: "trailing bytes".into() });
        }
    }
    let key = key_pair_from_pkcs8_der(key_pkcs8_der).map_err(Pkcs12Error::BadKey)?;
    let (_, leaf_cert) =
        X509Certificate::from_der(leaf).map_err(|e| Pkcs12Error::BadCertificate { index: 1, reason: e.to_string() })?;
    if leaf_cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        return Err(Pkcs12Error::KeyMismatch);
    }
    // OpenSSL's choice of localKeyId, pairing the key with its certificate.
    let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, leaf).as_ref().to_vec();
    let rng = SystemRandom::new();

    let cert_bags = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            for (i, der) in chain_der.iter().enumerate() {
                let attributes = (i == 0).then_some((friendly_name, local_key_id.as_slice()));
                write_bag(w.next(), OID_CERT_BAG, attributes, |w| {
                    w.write_sequence(|w| {
                        w.next().write_oid(&oid(OID_X509_CERTIFICATE));
                        w.next().write_tagged(Tag::context(0), |w| w.write_bytes(der));
                    })
                });
            }
        })
    });
    let certs = Pbes2::encrypt(&rng, password, &cert_bags)?;

    // v1, because OpenSSL 3.0 cannot read v2 (Ed25519 keys from ring are v2).
    let key_v1 = pkcs8_v1(key_pkcs8_der).map_err(Pkcs12Error::BadKey)?;
    let shrouded = Pbes2::encrypt(&rng, password, &key_v1)?;
    let key_bags = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            write_bag(w.next(), OID_SHROUDED_KEY_BAG, Some((friendly_name, &local_key_id)), |w| {
                // EncryptedPrivateKeyInfo
                w.write_sequence(|w| {
                    shrouded.write_algorithm(w.next());
                    w.next().write_bytes(&shrouded.ciphertext);
                })
            });
        })
    });

    let auth_safe = yasna::construct_der(|w| {
        w.write_sequence_of(|w| {
            // ContentInfo { id-encryptedData, EncryptedData { 0, EncryptedContentInfo } }
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(OID_ENCRYPTED_DATA));
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        w.next().write_u8(0);
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(OID_DATA));
                            certs.write_algorithm(w.next());
                            w.next().write_tagged_implicit(Tag::context(0), |w| w.write_bytes(&certs.ciphertext));
                        });
                    })
                });
            });
            write_data(w.next(), &key_bags);
        })
    });

    let mut mac_salt = [0u8; SALT_LEN];
    rng.fill(&mut mac_salt).map_err(|_| Pkcs12Error::Random)?;
    let mac_key = pkcs12_kdf_sha256(password, &mac_salt, 3, ITERATIONS);
    let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &mac_key), &auth_safe);

    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(3);
            write_data(w.next(), &auth_safe);
            w.next().write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(OID_SHA256));
                        w.next().write_null();
                    });
                    w.next().write_bytes(mac.as_ref());
                });
                w.next().write_bytes(&mac_salt);
                w.next().write_u32(ITERATIONS);
            });
        })
    }))
}

const OID_DATA: &str = "1.2.840.113549.1.7.1";
const OID_ENCRYPTED_DATA: &str = "1.2.840.113549.1.7.6";
const OID_SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const OID_CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const OID_X509_CERTIFICATE: &str = "1.2.840.113549.1.9.22.1";
const OID_FRIENDLY_NAME: &str = "1.2.840.113549.1.9.20";
const OID_LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";
const OID_PBES2: &str = "1.2.840.113549.1.5.13";
const OID_PBKDF2: &str = "1.2.840.113549.1.5.12";
const OID_HMAC_SHA256: &str = "1.2.840.113549.2.9";
const OID_AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";

fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(&dotted.split('.').filter_map(|c| c.parse().ok()).collect::<Vec<u64>>())
}

/// ContentInfo { id-data, [0] EXPLICIT OCTET STRING }.
fn write_data(w: DERWriter<'_>, content: &[u8]) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(OID_DATA));
        w.next().write_tagged(Tag::context(0), |w| w.write_bytes(content));
    })
}

/// SafeBag { bagId, [0] EXPLICIT bagValue, bagAttributes }.
fn write_bag(w: DERWriter<'_>, bag_id: &str, attributes: Option<(&str, &[u8])>, value: impl FnOnce(DERWriter<'_>)) {
    w.write_sequence(|w| {
        w.next().write_oid(&oid(bag_id));
        w.next().write_tagged(Tag::context(0), value);
        if let Some((friendly_name, local_key_id)) = attributes {
            w.next().write_set_of(|w| {
                if !friendly_name.is_empty() {
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&oid(OID_FRIENDLY_NAME));
                        w.next().write_set_of(|w| w.next().write_bmp_string(friendly_name));
                    });
                }
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(OID_LOCAL_KEY_ID));
                    w.next().write_set_of(|w| w.next().write_bytes(local_key_id));
                });
            });
        }
    })
}

/// One PBES2 encryption: its parameters and the ciphertext.
struct Pbes2 {
    salt: [u8; SALT_LEN],
    iv: [u8; 16],
    ciphertext: Vec<u8>,
}

impl Pbes2 {
    fn encrypt(rng: &SystemRandom, password: &str, plaintext: &[u8]) -> Result<Self, Pkcs12Error> {
        let (mut salt, mut iv) = ([0u8; SALT_LEN], [0u8; 16]);
        rng.fill(&mut salt).map_err(|_| Pkcs12Error::Random)?;
        rng.fill(&mut iv).map_err(|_| Pkcs12Error::Random)?;
        // PBES2 takes the password as its UTF-8 bytes (unlike the MAC's KDF).
        let mut key = [0u8; 32];
        let iterations = std::num::NonZeroU32::new(ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, password.as_bytes(), &mut key);
        let ciphertext =
            cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext);
        Ok(Self { salt, iv, ciphertext })
    }

    /// AlgorithmIdentifier { PBES2, { PBKDF2 { salt, iterations, prf }, aes256-CBC { iv } } }.
    fn write_algorithm(&self, w: DERWriter<'_>) {
        w.write_sequence(|w| {
            w.next().write_oid(&oid(OID_PBES2));
            w.next().write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(OID_PBKDF2));
                    w.next().write_sequence(|w| {
                        w.next().write_bytes(&self.salt);
                        w.next().write_u32(ITERATIONS);
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&oid(OID_HMAC_SHA256));
                            w.next().write_null();
                        });
                    });
                });
                w.next().write_sequence(|w| {
                    w.next().write_oid(&oid(OID_AES256_CBC));
                    w.next().write_bytes(&self.iv);
                });
            });
        })
    }
}

/// The PKCS#12 KDF (RFC 7292 B.2) with SHA-256, producing 32 bytes for
/// purpose `id` (3 = MAC key). The password is a NUL-terminated BMPString.
fn pkcs12_kdf_sha256(password: &str, salt: &[u8], id: u8, iterations: u32) -> [u8; 32] {
    const V: usize = 64; // SHA-256 block size
    let mut bmp: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    bmp.extend_from_slice(&[0, 0]);
    let repeat = |data: &[u8]| -> Vec<u8> {
        let len = data.len().div_ceil(V) * V;
        data.iter().copied().cycle().take(len).collect()
    };
    let mut input = repeat(salt);
    input.extend(repeat(&bmp));

    // One round yields 32 bytes, all a MAC key needs, so the "adjust I"
    // step between rounds never runs.
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(&[id; V]);
    ctx.update(&input);
    let mut a = ctx.finish();
    for _ in 1..iterations {
        a = digest::digest(&digest::SHA256, a.as_ref());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(a.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyType;

    #[test]
    fn the_mac_kdf_matches_a_known_answer() {
        // From OpenSSL, which takes the BMPString password as hex:
        // openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt salt:0123456789abcdef -kdfopt iter:2048
        //   -kdfopt id:3 -kdfopt hexpass:<UTF-16BE of "correct horse">0000 PKCS12KDF
        let key = pkcs12_kdf_sha256("correct horse", b"0123456789abcdef", 3, 2048);
        assert_eq!(hex::encode(key), "1a3e3a36c5b915da5919a7f62ee8df44faec9ebcc7ed98d46c1496745d84bb52");
    }

    #[test]
    fn refusals() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let other = KeyType::EcdsaP256.generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["p12.example.com".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap().der().to_vec();
        let one = std::slice::from_ref(&cert);
        let pkcs8 = key.serialize_der();
        assert_eq!(to_pkcs12(&[], &pkcs8, "pw", "x"), Err(Pkcs12Error::EmptyChain));
        assert_eq!(to_pkcs12(one, &pkcs8, "", "x"), Err(Pkcs12Error::EmptyPassword));
        assert_eq!(to_pkcs12(one, &other.serialize_der(), "pw", "x"), Err(Pkcs12Error::KeyMismatch));
        assert!(matches!(to_pkcs12(one, b"junk", "pw", "x"), Err(Pkcs12Error::BadKey(_))));
        assert!(matches!(
            to_pkcs12(&[cert.clone(), b"junk".to_vec()], &pkcs8, "pw", "x"),
            Err(Pkcs12Error::BadCertificate { index: 2, .. })
        ));
        // Two bundles of the same input differ: salts and IVs are fresh.
        let (a, b) = (to_pkcs12(one, &pkcs8, "pw", "x").unwrap(), to_pkcs12(one, &pkcs8, "pw", "x").unwrap());
        assert_ne!(a, b);
    }
}
