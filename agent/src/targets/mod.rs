//! Deployment targets: one file per target type, one registry.
//!
//! A target installs a [`Bundle`] (leaf, chain, private key) where a consumer
//! reads it, checks that the consumer accepts it, and makes the consumer load
//! it. Every deploy is all or nothing: when a write, the check or the reload
//! fails, the previous files are put back byte for byte and the error says
//! which step failed and what the command printed. A target also removes what
//! it wrote, unless the consumer's configuration still needs it.
//!
//! **Architecture Invariant:** targets never log or return private key
//! material; errors carry paths and command output only.

mod apache;
mod caddy;
mod command;
mod dovecot;
mod file;
mod files;
mod haproxy;
mod lighttpd;
mod nginx;
mod postfix;
mod web;

use std::fmt;
use std::path::PathBuf;

use certctl_domain::inventory::TargetConfig;

/// What a deploy installs.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The certificate version, such as `certificates/web/versions/3`.
    pub version: String,
    /// The leaf certificate alone, PEM.
    pub leaf_pem: String,
    /// The intermediates (the root may or may not be included), PEM; may be empty.
    pub chain_pem: String,
    /// The PKCS#8 private key, PEM (`PRIVATE KEY`).
    pub key_pem: String,
    /// Lowercase hex SHA-256 of the leaf's DER.
    pub fingerprint: String,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bundle")
            .field("version", &self.version)
            .field("fingerprint", &self.fingerprint)
            .field("chain_pem_len", &self.chain_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Bundle {
    /// The leaf followed by the chain, each ending in a newline.
    pub(crate) fn fullchain(&self) -> String {
        let mut out = with_newline(&self.leaf_pem);
        out.push_str(&with_newline(&self.chain_pem));
        out
    }

    pub(crate) fn chain(&self) -> String {
        with_newline(&self.chain_pem)
    }

    pub(crate) fn leaf(&self) -> String {
        with_newline(&self.leaf_pem)
    }

    pub(crate) fn key(&self) -> String {
        with_newline(&self.key_pem)
    }

    /// Refuses a bundle that would install something other than what it
    /// claims: no leaf, no key, or a leaf whose fingerprint is not `fingerprint`.
    pub(crate) fn check(&self) -> Result<(), TargetError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let leaf = CertificateDer::from_pem_slice(self.leaf_pem.as_bytes()).map_err(|e| {
            TargetError::Config(format!("bundle {}: the leaf is not a PEM certificate: {e}", self.version))
        })?;
        let actual = crate::verify::fingerprint(&leaf);
        if !actual.eq_ignore_ascii_case(&self.fingerprint) {
            return Err(TargetError::Config(format!(
                "bundle {}: its leaf has fingerprint {actual}, not the announced {}",
                self.version, self.fingerprint
            )));
        }
        // Checked by label only: the key's bytes are never echoed in an error.
        if !self.key_pem.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(TargetError::Config(format!(
                "bundle {}: the key is not a PEM PKCS#8 private key",
                self.version
            )));
        }
        Ok(())
    }
}

/// Empty stays empty; anything else ends in exactly one newline.
fn with_newline(pem: &str) -> String {
    let trimmed = pem.trim_end();
    if trimmed.is_empty() { String::new() } else { format!("{trimmed}\n") }
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployed {
    /// The files were written, checked and loaded.
    Installed,
    /// The files already held exactly this bundle: nothing was written, nothing run.
    Unchanged,
}

/// What a removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// The files were deleted and the consumer's configuration still checks.
    Removed,
    /// None of the files existed: nothing was deleted, nothing run.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A bad or unsupported configuration, a missing binary or directory: an
    /// operator must fix it before a deploy can succeed.
    #[error("target configuration: {0}")]
    Config(String),
    /// The validate command refused the new files (or, for a removal, their
    /// absence). They were replaced by the previous ones; the server was never
    /// reloaded, so it still serves the previous certificate.
    #[error("validation failed, previous files restored: {output}")]
    Validation { output: String },
    /// The reload (or post-deploy) command failed. The previous files were put
    /// back and the command run again so the server keeps the previous certificate.
    #[error("reload failed, previous files restored: {output}")]
    Reload { output: String },
    /// Reading or writing the files failed; what had been written was undone.
    #[error("cannot install the files: {0}")]
    Io(String),
}

impl TargetError {
    /// A stable machine-readable code for reports and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Validation { .. } => "validation",
            Self::Reload { .. } => "reload",
            Self::Io(_) => "io",
        }
    }
}

/// Where a target's live certificate can be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The SNI to send; `None` sends the host when it is a DNS name.
    pub server_name: Option<String>,
    /// What is spoken before the TLS handshake.
    pub protocol: Protocol,
}

/// How a check reaches the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TLS from the first byte: HTTPS, SMTPS on 465, IMAPS on 993.
    Tls,
    /// SMTP, then `EHLO` and `STARTTLS` (RFC 3207).
    SmtpStartTls,
    /// IMAP, then `a STARTTLS` (RFC 9051 section 6.2.1).
    ImapStartTls,
}

#[async_trait::async_trait]
pub trait Target: Send + Sync {
    fn kind(&self) -> &'static str;

    /// Installs the bundle atomically: write, validate, reload. On any failure
    /// the previous files are restored (and the server reloaded again if it
    /// had been reloaded) before the error is returned. Deploys to one target
    /// value are serialised.
    async fn deploy(&self, bundle: &Bundle) -> Result<Deployed, TargetError>;

    /// Where the live certificate can be checked, if anywhere.
    fn endpoint(&self) -> Option<Endpoint>;

    /// Makes the consumer load the files it has now (checking them first).
    /// For files that already hold a bundle while the endpoint serves another:
    /// a deploy that was interrupted between writing and reloading.
    async fn reload(&self) -> Result<(), TargetError> {
        Ok(())
    }

    /// Deletes the files this target writes, then runs the validate command:
    /// if the consumer's configuration still names them, it fails, the files
    /// are put back byte for byte and the error is a `validation` error. The
    /// consumer is not reloaded: what it has loaded stays in memory until the
    /// operator's next reload.
    async fn remove(&self) -> Result<Removed, TargetError>;
}

/// Runs a target's validate and reload commands, as `reload` does.
pub(crate) async fn rerun(validate: Option<&str>, reload: Option<&str>) -> Result<(), TargetError> {
    if let Some(validate) = validate {
        command::run(validate).await.map_err(|output| TargetError::Validation { output })?;
    }
    if let Some(reload) = reload {
        command::run(reload).await.map_err(|output| TargetError::Reload { output })?;
    }
    Ok(())
}

type Builder = fn(&TargetConfig) -> Result<Box<dyn Target>, TargetError>;

/// The registry: one line per target type.
const REGISTRY: &[(&str, Builder)] = &[
    ("file", file::build),
    ("nginx", nginx::build),
    ("apache", apache::build),
    ("haproxy", haproxy::build),
    ("caddy", caddy::build),
    ("lighttpd", lighttpd::build),
    ("postfix", postfix::build),
    ("dovecot", dovecot::build),
];

const KINDS: [&str; REGISTRY.len()] = {
    let mut kinds = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        kinds[i] = REGISTRY[i].0;
        i += 1;
    }
    kinds
};

/// Builds a target from its configuration, checking now what can be checked
/// (absolute paths, existing parent directories, the default commands'
/// binaries on `PATH`, the mode, owner and group) so that a bad target is
/// refused when it is configured rather than at its first renewal.
pub fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    let kind = config.type_name();
    let (_, builder) = REGISTRY
        .iter()
        .find(|(k, _)| *k == kind)
        .ok_or_else(|| TargetError::Config(format!("target type `{kind}` is not supported by this agent")))?;
    builder(config)
}

/// The target types this agent supports, in registry order.
pub fn kinds() -> &'static [&'static str] {
    &KINDS
}

/// The deploy transaction every target shares: write `specs` (unless they
/// are already in place), run `validate`, run `reload`; on a failure put the
/// previous files back, and after a failed reload run it again so the
/// consumer loads the previous files.
pub(crate) async fn install(
    specs: Vec<files::FileSpec>,
    validate: Option<&str>,
    reload: Option<&str>,
) -> Result<Deployed, TargetError> {
    let installed = blocking(move || {
        if files::is_current(&specs)? {
            return Ok(None);
        }
        files::install(&specs).map(Some)
    })
    .await?;
    let Some(installed) = installed.map(std::sync::Arc::new) else { return Ok(Deployed::Unchanged) };
    let restore = || {
        let installed = installed.clone();
        async move { blocking(move || Ok(installed.restore())).await.unwrap_or_else(|e| Err(e.to_string())) }
    };

    if let Some(validate) = validate
        && let Err(mut output) = command::run(validate).await
    {
        // The server has not been told about the new files: restoring them is enough.
        if let Err(e) = restore().await {
            output.push_str(&format!("; and restoring the previous files failed: {e}"));
        }
        return Err(TargetError::Validation { output });
    }
    if let Some(reload) = reload
        && let Err(mut output) = command::run(reload).await
    {
        match restore().await {
            Err(e) => output.push_str(&format!("; and restoring the previous files failed: {e}")),
            Ok(()) => {
                if let Err(again) = command::run(reload).await {
                    output.push_str(&format!("; reloading the previous files failed too: {again}"));
                }
            }
        }
        return Err(TargetError::Reload { output });
    }
    Ok(Deployed::Installed)
}

/// The removal every target shares: delete `paths` (those that exist), run
/// `validate`; if it fails, put the files back.
pub(crate) async fn uninstall(paths: Vec<PathBuf>, validate: Option<&str>) -> Result<Removed, TargetError> {
    let Some(removed) = blocking(move || files::remove(&paths)).await? else { return Ok(Removed::Absent) };
    if let Some(validate) = validate
        && let Err(mut output) = command::run(validate).await
    {
        let restored = blocking(move || Ok(removed.restore())).await.unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = restored {
            output.push_str(&format!("; and restoring the files failed: {e}"));
        }
        return Err(TargetError::Validation {
            output: format!("the configuration still needs the files, so they were not removed: {output}"),
        });
    }
    Ok(Removed::Removed)
}

/// File IO off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TargetError> + Send + 'static,
) -> Result<T, TargetError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| TargetError::Io(format!("file task failed: {e}")))?
}

/// A bundle for `name`: a leaf signed by a fresh test CA, with the CA as its chain.
#[cfg(test)]
pub(crate) fn test_bundle(name: &str) -> Bundle {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    Bundle {
        version: format!("certificates/{name}/versions/1"),
        leaf_pem: leaf.pem(),
        chain_pem: ca.pem(),
        key_pem: key.serialize_pem(),
        fingerprint: crate::verify::fingerprint(leaf.der()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_registry() {
        assert_eq!(kinds(), ["file", "nginx", "apache", "haproxy", "caddy", "lighttpd", "postfix", "dovecot"]);
    }

    #[test]
    fn fullchain_joins_with_single_newlines() {
        let b = Bundle {
            version: "v".into(),
            leaf_pem: "LEAF\n\n".into(),
            chain_pem: "CHAIN".into(),
            key_pem: "KEY".into(),
            fingerprint: String::new(),
        };
        assert_eq!(b.fullchain(), "LEAF\nCHAIN\n");
        let no_chain = Bundle { chain_pem: String::new(), ..b };
        assert_eq!(no_chain.fullchain(), "LEAF\n");
        assert_eq!(no_chain.chain(), "");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let b = Bundle {
            version: "v".into(),
            leaf_pem: String::new(),
            chain_pem: String::new(),
            key_pem: "-----BEGIN PRIVATE KEY-----SECRET".into(),
            fingerprint: "ab".into(),
        };
        assert!(!format!("{b:?}").contains("SECRET"));
    }
}
