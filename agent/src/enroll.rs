//! Enrolment and identity renewal: the agent makes its identity key here and
//! sends only a CSR.

use certctl_pki::KeyType;
use certctl_proto::agent::agent_service_client::AgentServiceClient;
use certctl_proto::agent::{EnrollRequest, RenewIdentityRequest};

use crate::client::{self, Trust};
use crate::state::{Settings, StateDir};

/// A fresh identity key (PKCS#8 PEM) and a CSR for it. The name is only a
/// label (certificates need one): the hub knows an agent by the serial of
/// the certificate it recorded, not by its name.
fn identity_request(hostname: &str) -> anyhow::Result<(String, String)> {
    let key = KeyType::EcdsaP256.generate()?;
    let label: String = hostname
        .split('.')
        .next()
        .unwrap_or_default()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63)
        .collect();
    let label = label.trim_matches('-');
    let label = if label.is_empty() { "agent" } else { label };
    let csr = certctl_pki::build_csr(&key, label, &[format!("{label}.agent.certctl.internal")])?;
    Ok((key.serialize_pem(), csr))
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_owned())
}

/// Trades the join token for an identity and saves it in `state`.
pub async fn enroll(
    state: &StateDir,
    server: &str,
    token: &str,
    ca_fingerprint: &str,
    hostname: &str,
) -> anyhow::Result<Settings> {
    let (key_pem, csr_pem) = identity_request(hostname)?;
    let channel = client::channel(server, &Trust::Pinned(ca_fingerprint.to_owned())).await?;
    let answer = AgentServiceClient::new(channel)
        .enroll(EnrollRequest {
            join_token: token.trim().to_owned(),
            csr_pem,
            hostname: hostname.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: crate::targets::kinds().iter().map(|k| (*k).to_owned()).collect(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("enrolment refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    state.save_identity(&answer.certificate_pem, &key_pem, &answer.ca_pem)?;
    let settings = Settings { agent: answer.agent, server: server.to_owned() };
    state.save_settings(&settings)?;
    Ok(settings)
}

/// When the saved identity should be renewed: at two thirds of its
/// lifetime, clamped to leave at least a day (Unix seconds).
pub fn renewal_due(chain_pem: &str) -> anyhow::Result<i64> {
    let leaf = certctl_pki::parse_pem_chain(chain_pem)?.leaf;
    let lifetime = leaf.not_after - leaf.not_before;
    Ok((leaf.not_before + lifetime * 2 / 3).min(leaf.not_after - 86_400).max(leaf.not_before))
}

/// Renews the identity over the current one and saves the new one.
pub async fn renew(state: &StateDir, settings: &Settings) -> anyhow::Result<()> {
    let (chain_pem, key_pem, ca_pem) = state.identity()?;
    let channel = client::channel(&settings.server, &Trust::Identity { ca_pem, chain_pem, key_pem }).await?;
    let (new_key, csr_pem) = identity_request(&hostname())?;
    let answer = AgentServiceClient::new(channel)
        .renew_identity(RenewIdentityRequest { csr_pem, agent: settings.agent.clone() })
        .await
        .map_err(|s| anyhow::anyhow!("identity renewal refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    state.save_identity(&answer.certificate_pem, &new_key, &answer.ca_pem)
}
