//! Live verification: what a TLS endpoint serves.
//!
//! A check is a real TLS handshake, completed, whose served leaf is compared
//! by SHA-256 with the certificate that was deployed. The chain is not judged
//! (the point is to see *what* is served, even from a private CA), but the
//! server's handshake signature is: the endpoint must hold the served leaf's key.
//! Mail servers are reached the way their clients reach them: SMTP's
//! `EHLO` and `STARTTLS`, or IMAP's `a STARTTLS`, then the handshake.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::targets::{Endpoint, Protocol};

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
    let mut tcp =
        TcpStream::connect((host, endpoint.port)).await.map_err(|e| format!("{address}: cannot connect: {e}"))?;
    match endpoint.protocol {
        Protocol::Tls => {}
        Protocol::SmtpStartTls => {
            let helo = match tcp.local_addr() {
                Ok(std::net::SocketAddr::V4(a)) => format!("[{}]", a.ip()),
                Ok(std::net::SocketAddr::V6(a)) => format!("[IPv6:{}]", a.ip()),
                Err(e) => return Err(format!("{address}: {e}")),
            };
            smtp_starttls(&mut tcp, &helo).await.map_err(|e| format!("{address}: SMTP: {e}"))?;
        }
        Protocol::ImapStartTls => imap_starttls(&mut tcp).await.map_err(|e| format!("{address}: IMAP: {e}"))?,
    }
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
    let goodbye: &[u8] = match endpoint.protocol {
        Protocol::Tls => b"",
        Protocol::SmtpStartTls => b"QUIT\r\n",
        Protocol::ImapStartTls => b"b LOGOUT\r\n",
    };
    if !goodbye.is_empty() {
        let _ = tls.write_all(goodbye).await;
    }
    let _ = tls.shutdown().await;
    Ok(served)
}

/// The longest line read from a server before TLS (SMTP allows 512 bytes,
/// an IMAP greeting with capabilities is longer), and the most lines.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 64;

/// One line, without its CRLF. Read a byte at a time so that nothing past
/// the line is consumed: after the STARTTLS answer the stream is TLS's.
async fn read_line<S: AsyncRead + Unpin>(stream: &mut S) -> Result<String, String> {
    let mut line = Vec::new();
    loop {
        let byte = stream.read_u8().await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_owned(),
            _ => format!("cannot read: {e}"),
        })?;
        if byte == b'\n' {
            break;
        }
        if line.len() == MAX_LINE {
            return Err(format!("the server sent a line longer than {MAX_LINE} bytes"));
        }
        line.push(byte);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, command: &str) -> Result<(), String> {
    stream.write_all(command.as_bytes()).await.map_err(|e| format!("cannot send {}: {e}", command.trim_end()))
}

/// An SMTP reply: its code and the text of each line.
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// A reply of one or more lines (`250-...` continues, `250 ...` ends it).
async fn smtp_reply<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Reply, String> {
    let mut lines = Vec::new();
    let mut code = None;
    while lines.len() < MAX_LINES {
        let line = read_line(stream).await?;
        let this = line.get(..3).and_then(|c| c.parse::<u16>().ok()).filter(|c| (200..600).contains(c));
        let Some(this) = this.filter(|c| code.is_none_or(|first| first == *c)) else {
            return Err(format!("not an SMTP reply: {:?}", truncated(&line)));
        };
        code = Some(this);
        let last = match line.as_bytes().get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Err(format!("not an SMTP reply: {:?}", truncated(&line))),
        };
        lines.push(line.get(4..).unwrap_or_default().to_owned());
        if last {
            return Ok(Reply { code: this, lines });
        }
    }
    Err(format!("the reply runs over {MAX_LINES} lines"))
}

/// The greeting, `EHLO`, `STARTTLS` (RFC 3207); afterwards the stream
/// carries the TLS handshake.
async fn smtp_starttls<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, helo: &str) -> Result<(), String> {
    let greeting = smtp_reply(stream).await?;
    if greeting.code != 220 {
        return Err(format!("the server greeted with {greeting}"));
    }
    send(stream, &format!("EHLO {helo}\r\n")).await?;
    let ehlo = smtp_reply(stream).await?;
    if ehlo.code != 250 {
        return Err(format!("EHLO was answered {ehlo}"));
    }
    let offers_starttls = ehlo
        .lines
        .iter()
        .skip(1)
        .any(|l| l.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS")));
    if !offers_starttls {
        return Err(format!("the server does not offer STARTTLS (EHLO answered {ehlo})"));
    }
    send(stream, "STARTTLS\r\n").await?;
    let ready = smtp_reply(stream).await?;
    if ready.code != 220 {
        return Err(format!("STARTTLS was answered {ready}"));
    }
    Ok(())
}

/// The greeting and `a STARTTLS` (RFC 9051 section 6.2.1); afterwards the
/// stream carries the TLS handshake.
async fn imap_starttls<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<(), String> {
    let greeting = read_line(stream).await?;
    if !starts_with_ignore_case(&greeting, "* OK") {
        return Err(format!("the server greeted with {:?}", truncated(&greeting)));
    }
    send(stream, "a STARTTLS\r\n").await?;
    for _ in 0..MAX_LINES {
        let line = read_line(stream).await?;
        if line.starts_with("* ") {
            continue;
        }
        if starts_with_ignore_case(&line, "a OK") {
            return Ok(());
        }
        return Err(format!("STARTTLS was answered {:?}", truncated(&line)));
    }
    Err(format!("no answer to STARTTLS within {MAX_LINES} lines"))
}

fn starts_with_ignore_case(line: &str, prefix: &str) -> bool {
    line.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
        && line[prefix.len()..].chars().next().is_none_or(|c| c == ' ')
}

/// At most 200 characters of what a server said, for an error.
fn truncated(line: &str) -> String {
    line.chars().take(200).collect()
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
        let (acceptor, fingerprint) = acceptor();
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

    /// A TLS acceptor for a fresh self-signed `localhost` certificate, and its fingerprint.
    fn acceptor() -> (tokio_rustls::TlsAcceptor, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
        let fingerprint = fingerprint(cert.der());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::try_from(key.serialize_der()).unwrap())
            .unwrap();
        (tokio_rustls::TlsAcceptor::from(Arc::new(config)), fingerprint)
    }

    /// A server that speaks `dialogue` in plain text: each `S:` line is
    /// sent, each `C:` line must be what the client sends next (a trailing
    /// `*` matches any rest of the line). Then it handshakes, if the
    /// dialogue got that far. Returns its port, the leaf's fingerprint, and
    /// each connection's lines received that did not match.
    async fn starttls_server(
        dialogue: &'static [&'static str],
    ) -> (u16, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let (acceptor, fingerprint) = acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mismatch_tx, mismatch_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let mismatch_tx = mismatch_tx.clone();
                tokio::spawn(async move {
                    for step in dialogue {
                        if let Some(line) = step.strip_prefix("S: ") {
                            tcp.write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
                        } else if let Some(expected) = step.strip_prefix("C: ") {
                            let Ok(got) = read_line(&mut tcp).await else { return };
                            let matches = match expected.strip_suffix('*') {
                                Some(prefix) => got.starts_with(prefix),
                                None => got == expected,
                            };
                            if !matches {
                                let _ = mismatch_tx.send(got);
                                return;
                            }
                        }
                    }
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        // Read the goodbye so the client's close is clean.
                        let mut rest = Vec::new();
                        let _ = tls.read_to_end(&mut rest).await;
                    }
                });
            }
        });
        (port, fingerprint, mismatch_rx)
    }

    fn endpoint(host: &str, port: u16, server_name: Option<&str>) -> Endpoint {
        Endpoint { host: host.into(), port, server_name: server_name.map(str::to_owned), protocol: Protocol::Tls }
    }

    fn mail(port: u16, protocol: Protocol) -> Endpoint {
        Endpoint { protocol, ..endpoint("127.0.0.1", port, Some("localhost")) }
    }

    fn unreachable(v: Verification) -> String {
        match v {
            Verification::Unreachable(reason) => reason,
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    const SMTP: &[&str] = &[
        "S: 220 mail.example.test ESMTP",
        "C: EHLO [127.0.0.1]",
        "S: 250-mail.example.test",
        "S: 250-PIPELINING",
        "S: 250-STARTTLS",
        "S: 250 8BITMIME",
        "C: STARTTLS",
        "S: 220 2.0.0 Ready to start TLS",
    ];

    #[tokio::test]
    async fn smtp_starttls_reaches_the_handshake() {
        let (port, served, mut mismatches) = starttls_server(SMTP).await;
        assert_eq!(check(&mail(port, Protocol::SmtpStartTls), &served).await, Verification::Verified);
        let other = "00".repeat(32);
        assert_eq!(check(&mail(port, Protocol::SmtpStartTls), &other).await, Verification::Mismatch { served });
        assert!(mismatches.try_recv().is_err(), "the client said something unexpected");
    }

    #[tokio::test]
    async fn smtp_without_starttls_is_unreachable() {
        const NO_STARTTLS: &[&str] =
            &["S: 220 mail.example.test ESMTP", "C: EHLO *", "S: 250-mail.example.test", "S: 250 8BITMIME"];
        let (port, _, _) = starttls_server(NO_STARTTLS).await;
        let reason = unreachable(check(&mail(port, Protocol::SmtpStartTls), "00").await);
        assert!(reason.contains("SMTP: the server does not offer STARTTLS"), "{reason}");

        const REFUSED: &[&str] = &[
            "S: 220 mail.example.test ESMTP",
            "C: EHLO *",
            "S: 250-mail.example.test",
            "S: 250 STARTTLS",
            "C: STARTTLS",
            "S: 454 4.7.0 TLS not available due to local problem",
        ];
        let (port, _, _) = starttls_server(REFUSED).await;
        let reason = unreachable(check(&mail(port, Protocol::SmtpStartTls), "00").await);
        assert!(reason.contains("STARTTLS was answered 454 4.7.0 TLS not available"), "{reason}");

        const BUSY: &[&str] = &["S: 554 5.3.2 busy"];
        let (port, _, _) = starttls_server(BUSY).await;
        let reason = unreachable(check(&mail(port, Protocol::SmtpStartTls), "00").await);
        assert!(reason.contains("greeted with 554"), "{reason}");
    }

    #[tokio::test]
    async fn imap_starttls_reaches_the_handshake() {
        const IMAP: &[&str] = &[
            "S: * OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready",
            "C: a STARTTLS",
            "S: * NOTE an untagged line first",
            "S: a OK Begin TLS negotiation now",
        ];
        let (port, served, mut mismatches) = starttls_server(IMAP).await;
        assert_eq!(check(&mail(port, Protocol::ImapStartTls), &served).await, Verification::Verified);
        assert!(mismatches.try_recv().is_err(), "the client said something unexpected");
    }

    #[tokio::test]
    async fn imap_refusing_starttls_is_unreachable() {
        const REFUSED: &[&str] = &["S: * OK ready", "C: a STARTTLS", "S: a BAD unknown command"];
        let (port, _, _) = starttls_server(REFUSED).await;
        let reason = unreachable(check(&mail(port, Protocol::ImapStartTls), "00").await);
        assert!(reason.contains("IMAP: STARTTLS was answered \"a BAD unknown command\""), "{reason}");

        const BYE: &[&str] = &["S: * BYE too many connections"];
        let (port, _, _) = starttls_server(BYE).await;
        let reason = unreachable(check(&mail(port, Protocol::ImapStartTls), "00").await);
        assert!(reason.contains("greeted with \"* BYE"), "{reason}");
    }

    #[tokio::test]
    async fn a_starttls_answer_is_not_taken_for_a_longer_word() {
        // `a OKAY` is not `a OK`; `* OKish` is not a greeting.
        assert!(starts_with_ignore_case("a ok go", "a OK"));
        assert!(starts_with_ignore_case("a OK", "a OK"));
        assert!(!starts_with_ignore_case("a OKAY", "a OK"));
        assert!(!starts_with_ignore_case("* OKish", "* OK"));
        let mut long = std::io::Cursor::new(vec![b'x'; MAX_LINE + 10]);
        assert!(read_line(&mut long).await.unwrap_err().contains("longer than"));
        let mut crlf = std::io::Cursor::new(b"250 ok\r\nrest".to_vec());
        assert_eq!(read_line(&mut crlf).await.unwrap(), "250 ok");
        assert_eq!(crlf.position(), 8, "read past the line");
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
