//! Secrets at rest: AES-256-GCM envelope encryption under the master key.
//!
//! Each secret gets its own random data key; the data key is sealed under
//! the master key and stored beside the ciphertext. Rotating the master key
//! therefore re-wraps small data keys, never the secrets themselves. Both
//! layers bind the context the secret belongs to (for example
//! `issuance/authority/local/issuing-1`) as associated data, so a sealed
//! value copied into another row does not open.
//!
//! The master key is 32 random bytes, given base64-encoded in a file or in
//! `CERTCTL_MASTER_KEY`. Its identifier (the first 8 bytes of SHA-256 of
//! the key, hex) is stored with every sealed value, so a wrong key is named as
//! such instead of failing as "corrupt data".

use std::path::Path;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const KEY_LEN: usize = 32;
const FORMAT: &str = "certctl-seal-v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error(
        "the master key must be 32 random bytes, base64-encoded (got {0}); make one with `certctl admin new-master-key`"
    )]
    BadMasterKey(String),
    #[error("cannot read the master key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "this secret was sealed with master key {sealed_with}, but the configured master key is {configured}; \
         start with the master key the data was created with"
    )]
    WrongMasterKey { sealed_with: String, configured: String },
    #[error("the sealed secret for {context} is damaged or belongs to another record")]
    Corrupt { context: String },
}

/// The key every secret at rest is sealed under.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; KEY_LEN],
    id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    /// Parses the base64 text of a key (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SecretError::BadMasterKey("text that is not base64".to_owned()))?;
        let key: [u8; KEY_LEN] =
            bytes.as_slice().try_into().map_err(|_| SecretError::BadMasterKey(format!("{} bytes", bytes.len())))?;
        if key.iter().all(|b| *b == key[0]) {
            return Err(SecretError::BadMasterKey("a key of one repeated byte".to_owned()));
        }
        Ok(Self::from_bytes(key))
    }

    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SecretError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        Self::from_base64(&text)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut key).expect("the system random source works");
        Self::from_bytes(key)
    }

    fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(key);
        Self { key, id: hex::encode(&digest[..8]) }
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// Identifies the key without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext` for `context`. The result is printable text.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut data_key = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut data_key).expect("the system random source works");
        let wrapped = encrypt(&self.key, context, &data_key);
        let body = encrypt(&data_key, context, plaintext);
        let b64 = base64::engine::general_purpose::STANDARD;
        format!("{FORMAT}:{}:{}:{}", self.id, b64.encode(wrapped), b64.encode(body))
    }

    /// Opens what [`seal`](Self::seal) produced for the same context.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let corrupt = || SecretError::Corrupt { context: context.to_owned() };
        let mut parts = sealed.split(':');
        let (Some(FORMAT), Some(key_id), Some(wrapped), Some(body), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt());
        };
        if key_id != self.id {
            return Err(SecretError::WrongMasterKey { sealed_with: key_id.to_owned(), configured: self.id.clone() });
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let wrapped = b64.decode(wrapped).map_err(|_| corrupt())?;
        let body = b64.decode(body).map_err(|_| corrupt())?;
        let data_key: [u8; KEY_LEN] =
            decrypt(&self.key, context, &wrapped).and_then(|k| k.try_into().ok()).ok_or_else(corrupt)?;
        decrypt(&data_key, context, &body).ok_or_else(corrupt)
    }

    /// The id of the master key a sealed value was made with.
    pub fn sealed_with(sealed: &str) -> Option<&str> {
        let mut parts = sealed.split(':');
        (parts.next() == Some(FORMAT)).then(|| parts.next()).flatten()
    }
}

/// nonce ‖ ciphertext ‖ tag.
fn encrypt(key: &[u8; KEY_LEN], context: &str, plaintext: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("32 bytes is an AES-256 key"));
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut nonce).expect("the system random source works");
    let mut out = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut out)
        .expect("AES-GCM sealing of an in-memory buffer cannot fail");
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&out);
    sealed
}

fn decrypt(key: &[u8; KEY_LEN], context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = body.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer).ok()?;
    Some(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal("issuance/authority/a", b"secret key bytes");
        assert!(!sealed.contains("secret"));
        assert_eq!(key.open("issuance/authority/a", &sealed).unwrap(), b"secret key bytes");
        assert_eq!(MasterKey::sealed_with(&sealed), Some(key.id()));

        assert_eq!(
            key.open("issuance/authority/b", &sealed),
            Err(SecretError::Corrupt { context: "issuance/authority/b".to_owned() }),
            "a value moved to another record does not open"
        );
        let other = MasterKey::generate();
        assert!(matches!(other.open("issuance/authority/a", &sealed), Err(SecretError::WrongMasterKey { .. })));

        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(matches!(key.open("issuance/authority/a", &tampered), Err(SecretError::Corrupt { .. })));
        assert!(matches!(key.open("issuance/authority/a", "nonsense"), Err(SecretError::Corrupt { .. })));
    }

    #[test]
    fn each_seal_is_fresh() {
        let key = MasterKey::generate();
        assert_ne!(key.seal("c", b"x"), key.seal("c", b"x"));
    }

    #[test]
    fn master_keys_round_trip_and_bad_ones_are_explained() {
        let key = MasterKey::generate();
        let again = MasterKey::from_base64(&format!("  {}\n", key.to_base64())).unwrap();
        assert_eq!(again.id(), key.id());
        assert_eq!(again.open("c", &key.seal("c", b"v")).unwrap(), b"v");

        let short = MasterKey::from_base64("c2hvcnQ=").unwrap_err();
        assert_eq!(short, SecretError::BadMasterKey("5 bytes".to_owned()));
        assert!(short.to_string().contains("certctl admin new-master-key"));
        assert!(matches!(MasterKey::from_base64("not base64!"), Err(SecretError::BadMasterKey(_))));
        let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert!(matches!(MasterKey::from_base64(&zeros), Err(SecretError::BadMasterKey(_))));

        let dir = tempfile::tempdir().unwrap();
        let missing = MasterKey::from_file(&dir.path().join("none")).unwrap_err();
        assert!(matches!(missing, SecretError::Unreadable { .. }), "{missing}");
    }
}
