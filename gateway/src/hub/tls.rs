//! The agent port's TLS: a server certificate from the platform CA, and
//! client certificates verified against the platform CA's root. A client
//! certificate is optional at the handshake (an enrolling agent has none
//! yet); every RPC but Enroll demands one.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::GatewayError;

/// Who is on the other end of an agent connection; in each request's
/// extensions as tonic's `ConnectInfo`.
#[derive(Debug, Clone)]
pub struct Peer {
    pub address: SocketAddr,
    /// The verified client certificate (leaf), if the agent sent one.
    pub certificate: Option<CertificateDer<'static>>,
}

/// A TLS connection on the agent port.
pub struct AgentConnection {
    stream: TlsStream<TcpStream>,
    peer: Peer,
}

impl AgentConnection {
    pub fn new(stream: TlsStream<TcpStream>, address: SocketAddr) -> Self {
        let certificate =
            stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.clone().into_owned());
        Self { stream, peer: Peer { address, certificate } }
    }
}

impl tonic::transport::server::Connected for AgentConnection {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for AgentConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for AgentConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

pub fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| GatewayError::Hub(format!("bad certificate PEM from the platform CA: {e}")))?;
    if certs.is_empty() {
        return Err(GatewayError::Hub("the platform CA returned no certificate".to_owned()));
    }
    Ok(certs)
}

/// The agent port's server configuration.
pub fn server_config(root_pem: &str, chain_pem: &str, key_der: Vec<u8>) -> Result<rustls::ServerConfig, GatewayError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for root in certificates(root_pem)? {
        roots
            .add(root)
            .map_err(|e| GatewayError::Hub(format!("the platform root is not a usable trust anchor: {e}")))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| GatewayError::Hub(format!("client verifier: {e}")))?;
    let key = PrivateKeyDer::try_from(key_der).map_err(|e| GatewayError::Hub(format!("hub key: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Hub(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certificates(chain_pem)?, key)
        .map_err(|e| GatewayError::Hub(format!("hub certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
