//! Live verification: what a TLS endpoint serves.
//!
//! A check is a real TLS handshake, completed, whose served leaf is compared
//! by SHA-256 with the certificate that was deployed. The chain is not judged
//! (the point is to see *what* is served, even from a private CA), but the
//! server's handshake signature is: the endpoint must hold the served leaf's key.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::targets::Endpoint;

/// The whole check (resolve, connect, handshake) gives up after this long.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The endpoint serves the expected leaf.
    Verified,
    /// It serves another leaf, whose fingerprint this is.
    Mismatch { served: String },
    /// No handshake could be completed; why.
    Unreachable(String),
}

/// Lowercase hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Handshakes with `endpoint` (SNI: its server name, else its host when that
/// is a DNS name) and compares the served leaf with `expected_fingerprint`.
pub async fn check(endpoint: &Endpoint, expected_fingerprint: &str) -> Verification {
    match tokio::time::timeout(CHECK_TIMEOUT, served_leaf(endpoint)).await {
        Err(_) => Verification::Unreachable(format!(
            "{}: no TLS handshake within {} s",
            address(endpoint),
            CHECK_TIMEOUT.as_secs()
        )),
        Ok(Err(reason)) => Verification::Unreachable(reason),
        Ok(Ok(served)) if served.eq_ignore_ascii_case(expected_fingerprint.trim()) => Verification::Verified,
        Ok(Ok(served)) => Verification::Mismatch { served },
    }
}

/// Checks up to `attempts` times, `interval` apart, until the endpoint
/// serves the expected leaf: servers reload asynchronously, so right after
/// a deploy the previous certificate may still answer for a moment.
/// Returns the last result.
pub async fn check_settled(
    endpoint: &Endpoint,
    expected_fingerprint: &str,
    attempts: u32,
    interval: Duration,
) -> Verification {
    let mut last = check(endpoint, expected_fingerprint).await;
    for _ in 1..attempts.max(1) {
        if last == Verification::Verified {
            break;
        }
        tokio::time::sleep(interval).await;
        last = check(endpoint, expected_fingerprint).await;
    }
    last
}

fn address(endpoint: &Endpoint) -> String {
    if endpoint.host.contains(':') && !endpoint.host.starts_with('[') {
        format!("[{}]:{}", endpoint.host, endpoint.port)
    } else {
        format!("{}:{}", endpoint.host, endpoint.port)
    }
}

async fn served_leaf(endpoint: &Endpoint) -> Result<String, String> {
    let address = address(endpoint);
    let host = endpoint.host.trim_start_matches('[').trim_end_matches(']');
    let server_name = server_name(host, endpoint.server_name.as_deref()).map_err(|e| {
        format!("{address}: `{}` is not a usable server name: {e}", endpoint.server_name.as_deref().unwrap_or(host))
    })?;
    let tcp = TcpStream::connect((host, endpoint.port)).await.map_err(|e| format!("{address}: cannot connect: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(client_config());
    let mut tls =
        connector.connect(server_name, tcp).await.map_err(|e| format!("{address}: TLS handshake failed: {e}"))?;
    let (_, connection) = tls.get_ref();
    let leaf = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| format!("{address}: the server sent no certificate"))?;
    let served = fingerprint(leaf);
    // Polite close; the answer is already known.
    let _ = tls.shutdown().await;
    Ok(served)
}

/// The name to send: the configured server name, else the host. An IP
/// address is a valid `ServerName` for which rustls sends no SNI.
fn server_name(host: &str, configured: Option<&str>) -> Result<ServerName<'static>, String> {
    let name = configured.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(host);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyCertificate { algorithms: provider.signature_verification_algorithms });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// Accepts whatever chain is served, yet checks the handshake signatures
/// against the served leaf, so the handshake is a real one.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};
    use rustls::pki_types::PrivateKeyDer;
    use tokio::net::TcpListener;

    use super::*;

    /// A TLS server on 127.0.0.1 serving a fresh self-signed certificate for
    /// `localhost`; returns its port and the leaf's fingerprint. It records
    /// the SNI of each handshake.
    async fn server() -> (u16, String, tokio::sync::mpsc::UnboundedReceiver<Option<String>>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
        let fingerprint = fingerprint(cert.der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::try_from(key.serialize_der()).unwrap())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sni_tx, sni_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let sni_tx = sni_tx.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = sni_tx.send(tls.get_ref().1.server_name().map(str::to_owned));
                    }
                });
            }
        });
        (port, fingerprint, sni_rx)
    }

    fn endpoint(host: &str, port: u16, server_name: Option<&str>) -> Endpoint {
        Endpoint { host: host.into(), port, server_name: server_name.map(str::to_owned) }
    }

    #[test]
    fn fingerprint_is_lowercase_hex_sha256() {
        assert_eq!(fingerprint(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[tokio::test]
    async fn verified_when_the_expected_leaf_is_served() {
        let (port, served, mut sni) = server().await;
        assert_eq!(check(&endpoint("127.0.0.1", port, None), &served).await, Verification::Verified);
        assert_eq!(sni.recv().await.unwrap(), None, "an IP address is not sent as SNI");
        assert_eq!(
            check(&endpoint("127.0.0.1", port, Some("www.example.test")), &served.to_uppercase()).await,
            Verification::Verified
        );
        assert_eq!(sni.recv().await.unwrap().as_deref(), Some("www.example.test"));
        assert_eq!(check(&endpoint("localhost", port, None), &served).await, Verification::Verified);
        assert_eq!(sni.recv().await.unwrap().as_deref(), Some("localhost"));
    }

    #[tokio::test]
    async fn mismatch_reports_what_is_served() {
        let (port, served, _) = server().await;
        let expected = "00".repeat(32);
        assert_eq!(check(&endpoint("127.0.0.1", port, None), &expected).await, Verification::Mismatch { served });
    }

    #[tokio::test]
    async fn unreachable_on_a_closed_port() {
        // Bound then dropped: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        match check(&endpoint("127.0.0.1", port, None), "00").await {
            Verification::Unreachable(reason) => assert!(reason.contains("cannot connect"), "{reason}"),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unreachable_when_the_peer_does_not_speak_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let _ = tcp.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").await;
            }
        });
        match check(&endpoint("127.0.0.1", port, None), "00").await {
            Verification::Unreachable(reason) => assert!(reason.contains("TLS handshake failed"), "{reason}"),
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn check_settled_stops_at_the_first_success() {
        let (port, served, mut sni) = server().await;
        let result = check_settled(&endpoint("127.0.0.1", port, None), &served, 5, Duration::from_millis(10)).await;
        assert_eq!(result, Verification::Verified);
        sni.recv().await.unwrap();
        assert!(sni.try_recv().is_err(), "checked again after success");
    }
}
