//! Connections to the hub's agent port. Before enrolment the agent trusts
//! only a pinned SHA-256 fingerprint of the platform CA's root (printed with
//! the join token); afterwards the root it saved, and it presents its
//! identity certificate.

use std::sync::Arc;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tonic::transport::{Channel, Endpoint, Uri};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in the PEM");
    Ok(certs)
}

/// How the agent trusts the hub.
pub enum Trust {
    /// A root whose SHA-256 (hex) is this, found in the hub's chain.
    Pinned(String),
    /// The saved platform root, with the agent's identity as client certificate.
    Identity { ca_pem: String, chain_pem: String, key_pem: String },
}

/// Verifies the hub's chain against the root in it whose fingerprint is pinned.
#[derive(Debug)]
struct PinnedRoot {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedRoot {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let root = intermediates
            .iter()
            .find(|c| hex::encode(Sha256::digest(c.as_ref())).eq_ignore_ascii_case(&self.fingerprint))
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the server's chain does not contain the pinned platform CA (sha256 {}): wrong server, or a wrong --ca-fingerprint",
                    self.fingerprint
                ))
            })?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(root.clone().into_owned()).map_err(|e| rustls::Error::General(e.to_string()))?;
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(trust: &Trust) -> anyhow::Result<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let mut config = match trust {
        Trust::Pinned(fingerprint) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedRoot {
                fingerprint: fingerprint.trim().to_lowercase().replace(':', ""),
                provider: provider(),
            }))
            .with_no_client_auth(),
        Trust::Identity { ca_pem, chain_pem, key_pem } => {
            let mut roots = rustls::RootCertStore::empty();
            for root in certificates(ca_pem)? {
                roots.add(root)?;
            }
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())?;
            builder.with_root_certificates(roots).with_client_auth_cert(certificates(chain_pem)?, key)?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A gRPC channel to the hub at `server` (`https://host:port`).
pub async fn channel(server: &str, trust: &Trust) -> anyhow::Result<Channel> {
    let uri: Uri = server.parse().map_err(|e| anyhow::anyhow!("`{server}` is not a URL: {e}"))?;
    anyhow::ensure!(uri.scheme_str() == Some("https"), "`{server}`: the agent port speaks TLS; use https://");
    let host =
        uri.host().ok_or_else(|| anyhow::anyhow!("`{server}` names no host"))?.trim_matches(['[', ']']).to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let name = ServerName::try_from(host.clone()).map_err(|e| anyhow::anyhow!("`{host}`: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(trust)?));
    let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))?
        .http2_keep_alive_interval(std::time::Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .connect_timeout(std::time::Duration::from_secs(10));
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let name = name.clone();
            let address = format!("{host}:{port}");
            async move {
                let tcp = tokio::net::TcpStream::connect(address).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the hub at {server}: {}", describe(&e)))?;
    Ok(channel)
}

/// The innermost cause, which is where TLS says what it refused.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
