//! The agent's state directory: its identity, the platform CA it trusts,
//! the private keys of the certificates it holds, and the answers it gave to
//! commands (so that a command sent again gets the same answer, not new
//! work). Everything secret is written 0600 in directories that are 0700.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What `enroll` learnt, kept for `run`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    /// `agents/{agent}`.
    pub agent: String,
    /// The hub's agent port, `https://host:port`.
    pub server: String,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating, 0700) the state directory.
    pub fn open(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&root)?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(self.file("agent.json")).map_err(|e| {
            anyhow::anyhow!("{} holds no enrolment ({e}): run `certctl-agent enroll` first", self.root.display())
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    pub fn save_settings(&self, settings: &Settings) -> anyhow::Result<()> {
        write_private(&self.file("agent.json"), serde_json::to_string_pretty(settings)?.as_bytes())
    }

    /// The identity: (certificate chain PEM, PKCS#8 key PEM, platform root PEM).
    pub fn identity(&self) -> anyhow::Result<(String, String, String)> {
        let read = |name: &str| {
            std::fs::read_to_string(self.file(name))
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", self.file(name).display()))
        };
        Ok((read("identity.pem")?, read("identity.key")?, read("ca.pem")?))
    }

    /// Replaces the identity; the key first, so a crash never leaves a
    /// certificate without its key.
    pub fn save_identity(&self, chain_pem: &str, key_pem: &str, ca_pem: &str) -> anyhow::Result<()> {
        write_private(&self.file("identity.key.new"), key_pem.as_bytes())?;
        write_private(&self.file("identity.pem.new"), chain_pem.as_bytes())?;
        write_private(&self.file("ca.pem"), ca_pem.as_bytes())?;
        std::fs::rename(self.file("identity.key.new"), self.file("identity.key"))?;
        std::fs::rename(self.file("identity.pem.new"), self.file("identity.pem"))?;
        Ok(())
    }

    fn key_dir(&self, certificate: &str) -> anyhow::Result<PathBuf> {
        let id = certificate.strip_prefix("certificates/").unwrap_or(certificate);
        anyhow::ensure!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "`{certificate}` is not a certificate name"
        );
        let dir = self.root.join("keys").join(id);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        Ok(dir)
    }

    /// Stores a certificate's private key under the hash of its public key.
    pub fn save_key(&self, certificate: &str, spki_sha256: &str, key_pem: &str) -> anyhow::Result<()> {
        write_private(&self.key_dir(certificate)?.join(format!("{spki_sha256}.key")), key_pem.as_bytes())
    }

    /// The private key matching a public key, if this agent made it.
    pub fn key(&self, certificate: &str, spki_sha256: &str) -> anyhow::Result<Option<String>> {
        let path = self.key_dir(certificate)?.join(format!("{spki_sha256}.key"));
        match std::fs::read_to_string(&path) {
            Ok(pem) => Ok(Some(pem)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Hex SHA-256 over what the agent holds: every `certificate/public key`
    /// it has a key for, sorted. Two agents with the same digest hold the same keys.
    pub fn holdings_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut held = Vec::new();
        if let Ok(certificates) = std::fs::read_dir(self.root.join("keys")) {
            for certificate in certificates.flatten() {
                let Ok(keys) = std::fs::read_dir(certificate.path()) else { continue };
                for key in keys.flatten() {
                    if let Some(spki) = key.file_name().to_str().and_then(|n| n.strip_suffix(".key")) {
                        held.push(format!("{}/{spki}", certificate.file_name().to_string_lossy()));
                    }
                }
            }
        }
        held.sort();
        hex::encode(Sha256::digest(held.join("\n").as_bytes()))
    }

    fn answer_path(&self, command_id: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            !command_id.is_empty() && command_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "`{command_id}` is not a command id"
        );
        let dir = self.root.join("answers");
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        Ok(dir.join(format!("{command_id}.json")))
    }

    /// The answer given to a command before, if any.
    pub fn answer<T: for<'de> Deserialize<'de>>(&self, command_id: &str) -> anyhow::Result<Option<T>> {
        match std::fs::read_to_string(self.answer_path(command_id)?) {
            Ok(text) => Ok(serde_json::from_str(&text).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub fn save_answer<T: Serialize>(&self, command_id: &str, answer: &T) -> anyhow::Result<()> {
        write_private(&self.answer_path(command_id)?, serde_json::to_string(answer)?.as_bytes())
    }
}

/// Writes a file 0600 through a temporary name, so readers see the old
/// contents or the new, never half of either.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_answers_are_private_and_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("state")).unwrap();
        state.save_key("certificates/web", "ab12", "KEY").unwrap();
        assert_eq!(state.key("certificates/web", "ab12").unwrap().as_deref(), Some("KEY"));
        assert_eq!(state.key("certificates/web", "ffff").unwrap(), None);
        let mode = std::fs::metadata(state.path().join("keys/web/ab12.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(state.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(state.key("certificates/../etc", "x").is_err(), "a name cannot leave the state directory");

        let one = state.holdings_digest();
        state.save_key("certificates/api", "cd34", "KEY").unwrap();
        assert_ne!(state.holdings_digest(), one, "the digest follows the keys held");

        state.save_answer("abc.1", &serde_json::json!({"csr": "x"})).unwrap();
        let again: Option<serde_json::Value> = state.answer("abc.1").unwrap();
        assert_eq!(again, Some(serde_json::json!({"csr": "x"})));
        assert!(state.answer::<serde_json::Value>("../x").is_err());
    }
}
