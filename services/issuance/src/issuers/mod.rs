//! The issuer registry: one trait every connector implements, one file per
//! connector, and one line per connector in [`connect`].

pub mod local_ca;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use certctl_common::secret::MasterKey;
use certctl_domain::UnixTime;
use certctl_domain::issuance::ExtendedKeyUsage;
use certctl_pki::csr::CsrPublicKey;

use crate::store::{AuthorityRecord, IssuerRecord};

/// What every issuer is asked to sign: names and a key already checked
/// against the profile and policy.
#[derive(Debug, Clone)]
pub struct LeafRequest {
    pub public_key: CsrPublicKey,
    pub key_is_rsa: bool,
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// 16 random bytes, chosen by the service so a retry can be recognised.
    pub serial: [u8; 16],
}

/// A signed certificate.
#[derive(Debug, Clone)]
pub struct SignedLeaf {
    /// Id of the authority that signed it.
    pub authority_id: String,
    /// The leaf followed by the chain up to the root.
    pub pem_chain: String,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The request cannot be signed as asked; the caller must change it.
    #[error("{0}")]
    Refused(String),
    /// The issuer's own state is wrong (expired CA, missing key): an operator must act.
    #[error("{0}")]
    Misconfigured(String),
    /// The CA could not be reached or failed; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
}

/// The context connectors are built in.
#[derive(Debug, Clone)]
pub struct IssuerContext {
    pub master_key: MasterKey,
    /// Base URL relying parties reach the gateway's `/pki` paths at.
    pub public_url: String,
}

/// One kind of CA.
#[async_trait]
pub trait Issuer: Send + Sync + 'static {
    /// The registry key, as stored in `issuers.kind`.
    fn kind(&self) -> &'static str;
    async fn sign(&self, request: LeafRequest) -> Result<SignedLeaf, IssueError>;
    /// The Local CA publishes its own CRLs and OCSP answers; other issuers
    /// revoke at their CA and return `None`.
    fn local_ca(&self) -> Option<&local_ca::LocalCa> {
        None
    }
}

/// Builds the connector for a stored issuer.
pub fn connect(
    record: &IssuerRecord,
    authorities: Vec<AuthorityRecord>,
    context: &IssuerContext,
) -> Result<Arc<dyn Issuer>, IssueError> {
    match record.kind.as_str() {
        local_ca::KIND => Ok(Arc::new(local_ca::LocalCa::load(record, authorities, context)?)),
        other => Err(IssueError::Misconfigured(format!(
            "issuers/{} has kind `{other}`, which this build of certctl does not know",
            record.id
        ))),
    }
}
