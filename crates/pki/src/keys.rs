//! Key types, key generation, loading PKCS#8 keys, and describing public keys.
//!
//! Every key ends up as an [`rcgen::KeyPair`] backed by ring, which does all
//! the signing. ring cannot *generate* RSA keys, so RSA generation alone goes
//! through the RustCrypto `rsa` crate (with only its `encoding` feature, fed by
//! ring's system RNG); the result is exported as PKCS#8 and loaded into ring.

use std::fmt;
use std::str::FromStr;

use certctl_domain::inventory::KeyAlgorithm;
use rcgen::{KeyPair, PublicKeyData};
use x509_parser::oid_registry;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::der::Reader;

/// Why a key could not be generated, loaded or described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key type `{0}`: expected one of {list}", list = KeyType::spellings())]
    UnknownKeyType(String),
    #[error("not a usable PKCS#8 private key: {0}")]
    Malformed(String),
    #[error("unsupported key: {0}; supported keys are ECDSA P-256 and P-384, RSA 2048 to 8192 bits, and Ed25519")]
    Unsupported(String),
    #[error("key generation failed: {0}")]
    Generation(String),
}

/// The key types certctl can generate and sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    Ed25519,
}

impl KeyType {
    pub const ALL: [KeyType; 6] =
        [Self::EcdsaP256, Self::EcdsaP384, Self::Rsa2048, Self::Rsa3072, Self::Rsa4096, Self::Ed25519];

    /// The configuration and CLI spelling (`ecdsa-p256`, `rsa-2048`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Ed25519 => "ed25519",
        }
    }

    fn spellings() -> String {
        Self::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
    }

    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            Self::EcdsaP256 => KeyAlgorithm::EcdsaP256,
            Self::EcdsaP384 => KeyAlgorithm::EcdsaP384,
            Self::Rsa2048 => KeyAlgorithm::Rsa2048,
            Self::Rsa3072 => KeyAlgorithm::Rsa3072,
            Self::Rsa4096 => KeyAlgorithm::Rsa4096,
            Self::Ed25519 => KeyAlgorithm::Ed25519,
        }
    }

    /// The inverse of [`KeyType::algorithm`]; `None` for `KeyAlgorithm::Other`.
    pub fn from_algorithm(algorithm: KeyAlgorithm) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.algorithm() == algorithm)
    }

    /// Key size as `parse.rs` reports it for certificates: the curve size for
    /// ECDSA, the modulus size for RSA, and 256 for Ed25519.
    pub fn bits(self) -> u32 {
        match self {
            Self::EcdsaP256 | Self::Ed25519 => 256,
            Self::EcdsaP384 => 384,
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }

    /// The signature algorithm a key of this type signs with. RSA signs
    /// PKCS#1 v1.5 with SHA-256, the one every relying party accepts.
    pub fn signature_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            Self::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// Generates a fresh key.
    ///
    /// RSA generation is slow and its time varies with the luck of the prime
    /// search: measured here (dev profile, dependencies at opt-level 1) from
    /// tens of milliseconds to a quarter second for 2048 bits and up to
    /// several seconds for 4096. Callers on an async runtime must run it in
    /// `tokio::task::spawn_blocking`.
    pub fn generate(self) -> Result<KeyPair, KeyError> {
        let rsa_bits = match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => self.bits() as usize,
            Self::Ed25519 => {
                // ring writes Ed25519 keys as PKCS#8 v2, which OpenSSL 3.0
                // cannot read; the keys we hand out must load everywhere.
                let key =
                    KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| KeyError::Generation(e.to_string()))?;
                return key_pair_from_pkcs8_der(key.serialized_der());
            }
            _ => {
                return KeyPair::generate_for(self.signature_algorithm())
                    .map_err(|e| KeyError::Generation(e.to_string()));
            }
        };
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::PrivateKey::new(&mut RingRng(ring::rand::SystemRandom::new()), rsa_bits)
            .map_err(|e| KeyError::Generation(format!("RSA-{rsa_bits}: {e}")))?;
        let pkcs8 = key.to_pkcs8_der().map_err(|e| KeyError::Generation(format!("RSA PKCS#8 encoding: {e}")))?;
        KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8.as_bytes().into(), &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| KeyError::Generation(format!("loading the RSA key into ring: {e}")))
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| KeyError::UnknownKeyType(s.to_owned()))
    }
}

/// What a public key is, in the inventory's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKeyInfo {
    /// `Other` for keys outside the named set (RSA-2560, P-521, DSA, ...).
    pub algorithm: KeyAlgorithm,
    /// The modulus or curve size; 256 for Ed25519; 0 when unknown.
    pub bits: u32,
}

impl PublicKeyInfo {
    pub fn key_type(&self) -> Option<KeyType> {
        KeyType::from_algorithm(self.algorithm)
    }
}

/// Describes a DER `SubjectPublicKeyInfo`. Keys certctl cannot sign with are
/// still described (as `KeyAlgorithm::Other`); only malformed input fails.
pub fn describe_spki(spki_der: &[u8]) -> Result<PublicKeyInfo, KeyError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| KeyError::Malformed(format!("not a SubjectPublicKeyInfo: {e}")))?;
    if !rest.is_empty() {
        return Err(KeyError::Malformed("trailing bytes after the SubjectPublicKeyInfo".into()));
    }
    Ok(describe_parsed_spki(&spki))
}

pub(crate) fn describe_parsed_spki(spki: &SubjectPublicKeyInfo<'_>) -> PublicKeyInfo {
    let (algorithm, bits) = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size() as u32;
            let algorithm = match bits {
                2048 => KeyAlgorithm::Rsa2048,
                3072 => KeyAlgorithm::Rsa3072,
                4096 => KeyAlgorithm::Rsa4096,
                _ => KeyAlgorithm::Other,
            };
            (algorithm, bits)
        }
        Ok(PublicKey::EC(_)) => match spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()) {
            Some(oid) if oid == oid_registry::OID_EC_P256 => (KeyAlgorithm::EcdsaP256, 256),
            Some(oid) if oid == oid_registry::OID_NIST_EC_P384 => (KeyAlgorithm::EcdsaP384, 384),
            Some(oid) if oid == oid_registry::OID_NIST_EC_P521 => (KeyAlgorithm::Other, 521),
            _ => (KeyAlgorithm::Other, 0),
        },
        _ if spki.algorithm.algorithm == oid_registry::OID_SIG_ED25519 => (KeyAlgorithm::Ed25519, 256),
        _ => (KeyAlgorithm::Other, 0),
    };
    PublicKeyInfo { algorithm, bits }
}

/// Describes a loaded key pair (for example a CA key read from disk).
/// `None` for RSA moduli outside 2048/3072/4096.
pub fn key_type_of(key: &KeyPair) -> Option<KeyType> {
    describe_spki(&key.subject_public_key_info()).ok()?.key_type()
}

const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Loads an unencrypted PKCS#8 private key, choosing the signature algorithm
/// from the key: ECDSA with the curve's own hash, Ed25519, or RSA PKCS#1 v1.5
/// with SHA-256. A v2 key is loaded as v1 (see [`pkcs8_v1`]), so the loaded
/// key's `serialize_der()` is v1.
pub fn key_pair_from_pkcs8_der(der: &[u8]) -> Result<KeyPair, KeyError> {
    let der: &[u8] = &pkcs8_v1(der)?;
    let malformed = |e: crate::der::DerError| KeyError::Malformed(e.to_string());
    // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, ... }
    let mut info = Reader::top_sequence(der, "PrivateKeyInfo").map_err(malformed)?;
    info.unsigned_integer("PrivateKeyInfo version").map_err(malformed)?;
    let mut algorithm = info.sequence("privateKeyAlgorithm").map_err(malformed)?;
    let oid = algorithm.oid("privateKeyAlgorithm").map_err(malformed)?;
    let alg = match oid.as_str() {
        OID_RSA_ENCRYPTION => &rcgen::PKCS_RSA_SHA256,
        OID_ED25519 => &rcgen::PKCS_ED25519,
        OID_EC_PUBLIC_KEY => match algorithm.oid("EC curve").map_err(malformed)?.as_str() {
            OID_P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            OID_P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            "1.3.132.0.35" => return Err(KeyError::Unsupported("ECDSA P-521 (ring cannot sign with it)".into())),
            other => return Err(KeyError::Unsupported(format!("ECDSA on curve {other}"))),
        },
        "1.2.840.113549.1.1.10" => return Err(KeyError::Unsupported("RSA-PSS-only key (id-RSASSA-PSS)".into())),
        "1.3.101.113" => return Err(KeyError::Unsupported("Ed448".into())),
        "1.2.840.10040.4.1" => return Err(KeyError::Unsupported("DSA".into())),
        other => return Err(KeyError::Unsupported(format!("key algorithm {other}"))),
    };
    KeyPair::from_pkcs8_der_and_sign_algo(&der.into(), alg).map_err(|e| KeyError::Malformed(e.to_string()))
}

/// Rewrites a PKCS#8 v2 key (RFC 5958 `OneAsymmetricKey`) as v1 by dropping
/// its optional copy of the public key; v1 input is returned unchanged.
/// ring writes v2 for Ed25519, but OpenSSL 3.0 reads only v1, and ring's
/// ECDSA loader only v1.
pub fn pkcs8_v1(der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let malformed = |e: crate::der::DerError| KeyError::Malformed(e.to_string());
    let mut info = Reader::top_sequence(der, "PrivateKeyInfo").map_err(malformed)?;
    match info.unsigned_integer("PrivateKeyInfo version").map_err(malformed)?.as_slice() {
        [0] => return Ok(der.to_vec()),
        [1] => {}
        other => return Err(KeyError::Malformed(format!("unknown PKCS#8 version {}", hex::encode(other)))),
    }
    let (_, algorithm) = info.any("privateKeyAlgorithm").map_err(malformed)?;
    let (_, private_key) = info.any("privateKey").map_err(malformed)?;
    let attributes = info.tagged(0).map_err(malformed)?;
    info.tagged(1).map_err(malformed)?; // publicKey: derivable from the private key
    info.end("PrivateKeyInfo").map_err(malformed)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_der(algorithm);
            w.next().write_der(private_key);
            if let Some((_, raw)) = attributes {
                w.next().write_der(raw);
            }
        })
    }))
}

/// ring's system RNG as the `rand_core` RNG the `rsa` crate wants, so the
/// process has one source of randomness and `rsa` needs no `getrandom`.
struct RingRng(ring::rand::SystemRandom);

#[derive(Debug)]
struct RngFailed;

impl fmt::Display for RngFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the system random number generator failed")
    }
}

impl std::error::Error for RngFailed {}

impl rsa::rand_core::TryRng for RingRng {
    type Error = RngFailed;

    fn try_next_u32(&mut self) -> Result<u32, RngFailed> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngFailed> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngFailed> {
        ring::rand::SecureRandom::fill(&self.0, dst).map_err(|_| RngFailed)
    }
}

impl rsa::rand_core::TryCryptoRng for RingRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_unknown_ones_list_the_choices() {
        for kind in KeyType::ALL {
            assert_eq!(kind.to_string().parse::<KeyType>().unwrap(), kind);
            assert_eq!(KeyType::from_algorithm(kind.algorithm()), Some(kind));
        }
        let err = "rsa-1024".parse::<KeyType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown key type `rsa-1024`: expected one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519"
        );
        assert_eq!(KeyType::from_algorithm(KeyAlgorithm::Other), None);
    }

    #[test]
    fn generated_keys_describe_themselves_and_reload_from_pkcs8() {
        // RSA-3072/4096 are exercised by the same code path; 2048 keeps the test quick.
        for kind in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048, KeyType::Ed25519] {
            let key = kind.generate().unwrap();
            assert_eq!(key_type_of(&key), Some(kind), "{kind}");
            let info = describe_spki(&key.subject_public_key_info()).unwrap();
            assert_eq!(info, PublicKeyInfo { algorithm: kind.algorithm(), bits: kind.bits() });
            // Version 0: what OpenSSL 3.0 and ring's ECDSA loader accept.
            // (pkcs8_v1 returns v1 input unchanged.)
            assert_eq!(pkcs8_v1(&key.serialize_der()).unwrap(), key.serialize_der(), "{kind}");
            let reloaded = key_pair_from_pkcs8_der(&key.serialize_der()).unwrap();
            assert_eq!(reloaded.subject_public_key_info(), key.subject_public_key_info(), "{kind}");
            assert_eq!(reloaded.algorithm(), kind.signature_algorithm(), "{kind}");
        }
    }

    #[test]
    fn pkcs8_v2_keys_are_rewritten_as_v1() {
        // ring's own Ed25519 output is v2, with the public key in [1].
        let v2 = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap().serialize_der();
        assert_eq!(v2[4], 1, "ring writes v2");
        let v1 = pkcs8_v1(&v2).unwrap();
        assert_eq!(v1[4], 0);
        assert_eq!(v1.len(), 48, "SEQUENCE {{ 0, {{ Ed25519 }}, OCTET STRING {{ OCTET STRING seed }} }}");
        assert_eq!(pkcs8_v1(&v1).unwrap(), v1);
        let (a, b) = (key_pair_from_pkcs8_der(&v2).unwrap(), key_pair_from_pkcs8_der(&v1).unwrap());
        assert_eq!(a.subject_public_key_info(), b.subject_public_key_info());
        assert_eq!(a.serialize_der(), v1);
    }

    #[test]
    fn loading_refuses_garbage_precisely() {
        assert!(matches!(key_pair_from_pkcs8_der(b"nope"), Err(KeyError::Malformed(_))));
        assert!(matches!(key_pair_from_pkcs8_der(&[]), Err(KeyError::Malformed(_))));
        let mut der = KeyType::EcdsaP256.generate().unwrap().serialize_der();
        der.push(0);
        let err = key_pair_from_pkcs8_der(&der).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
        assert!(matches!(describe_spki(b"\x30\x00"), Err(KeyError::Malformed(_))));
    }
}
