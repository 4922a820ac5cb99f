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

/// The hub's own certificate, replaceable while the port serves: the hub
/// renews it before it expires without dropping a connection.
#[derive(Debug)]
pub struct HubCertificate {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl HubCertificate {
    pub fn new(chain_pem: &str, key_der: Vec<u8>) -> Result<Arc<Self>, GatewayError> {
        Ok(Arc::new(Self { current: std::sync::RwLock::new(certified(chain_pem, key_der)?) }))
    }

    /// Serves `chain_pem` and its key to every handshake from now on.
    pub fn replace(&self, chain_pem: &str, key_der: Vec<u8>) -> Result<(), GatewayError> {
        *self.current.write().expect("hub certificate") = certified(chain_pem, key_der)?;
        Ok(())
    }
}

impl rustls::server::ResolvesServerCert for HubCertificate {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current.read().expect("hub certificate").clone())
    }
}

fn certified(chain_pem: &str, key_der: Vec<u8>) -> Result<Arc<rustls::sign::CertifiedKey>, GatewayError> {
    let key = PrivateKeyDer::try_from(key_der).map_err(|e| GatewayError::Hub(format!("hub key: {e}")))?;
    let signer =
        rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| GatewayError::Hub(format!("hub key: {e}")))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(certificates(chain_pem)?, signer)))
}

/// The agent port's server configuration.
pub fn server_config(root_pem: &str, certificate: Arc<HubCertificate>) -> Result<rustls::ServerConfig, GatewayError> {
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
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GatewayError::Hub(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use certctl_pki::KeyType;
    use certctl_pki::generate::CertificateAuthority;
    use rustls::pki_types::ServerName;

    use super::*;

    /// A leaf for `localhost` from `ca`, as (chain PEM, PKCS#8 DER).
    fn leaf(ca: &CertificateAuthority) -> (String, Vec<u8>) {
        let issued =
            ca.issue_leaf("hub", &["localhost".into()], KeyType::EcdsaP256, certctl_domain::now() - 60, 3600).unwrap();
        let key = PrivateKeyDer::from_pem_slice(issued.private_key_pem.as_bytes()).unwrap();
        (format!("{}{}", issued.certificate_pem, ca.certificate_pem), key.secret_der().to_vec())
    }

    /// The leaf a fresh TLS client is served.
    async fn served(address: SocketAddr, ca: &CertificateAuthority) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificates(&ca.certificate_pem).unwrap().remove(0)).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(address).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("handshake");
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    #[tokio::test]
    async fn a_replaced_certificate_is_served_to_the_next_handshake() {
        let ca = CertificateAuthority::new("Platform", KeyType::EcdsaP256).unwrap();
        let (first_chain, first_key) = leaf(&ca);
        let certificate = HubCertificate::new(&first_chain, first_key).unwrap();
        let acceptor =
            tokio_rustls::TlsAcceptor::from(Arc::new(server_config(&ca.certificate_pem, certificate.clone()).unwrap()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
                    }
                });
            }
        });
        let first = served(address, &ca).await;
        assert_eq!(first, certificates(&first_chain).unwrap()[0].to_vec());
        let (second_chain, second_key) = leaf(&ca);
        certificate.replace(&second_chain, second_key).unwrap();
        let second = served(address, &ca).await;
        assert_eq!(second, certificates(&second_chain).unwrap()[0].to_vec());
        assert_ne!(first, second);
    }
}
