//! The one HTTP client of the HTTP channels: hyper over rustls (ring,
//! webpki roots), HTTP/1.1, a timeout on every request, and one mapping from
//! an answer to "delivered", "try again" or "refused for good".

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::channels::{Receipt, SendError};

/// How much of an answer is kept for the delivery record.
pub const EXCERPT_CHARS: usize = 512;
/// Larger answers are cut here when read.
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// What an endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// `Retry-After` in seconds, when given as a number.
    pub retry_after: Option<i64>,
}

impl Answer {
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }

    /// The default reading: 2xx delivered; 408, 425, 429 and 5xx worth
    /// another attempt; any other status refused for good.
    pub fn into_result(self) -> Result<Receipt, SendError> {
        match self.status {
            200..=299 => Ok(Receipt { status: self.status, excerpt: self.excerpt() }),
            408 | 425 | 429 | 500..=599 => Err(self.error(true, "the endpoint is unavailable")),
            _ => Err(self.error(false, "the endpoint refused the message")),
        }
    }

    /// An error carrying this answer.
    pub fn error(&self, retryable: bool, what: &str) -> SendError {
        let excerpt = self.excerpt();
        SendError {
            retryable,
            status: self.status,
            message: format!("{what}: HTTP {} {}", self.status, excerpt),
            excerpt,
            retry_after: self.retry_after,
        }
    }
}

/// The first `EXCERPT_CHARS` characters of `text`.
pub fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// A cheap-to-clone client shared by every HTTP channel.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// `timeout` bounds each request from connect to the last byte.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let tls =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() })
                .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Self { client: Client::builder(TokioExecutor::new()).build(connector), timeout }
    }

    /// POSTs a JSON body with extra headers and reads the answer.
    pub async fn post_json(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Result<Answer, SendError> {
        let mut request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("certctl/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::permanent(format!("cannot build the request to the channel's URL: {e}")))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| {
                    SendError::retryable(format!("cannot reach the endpoint: {}", describe_transport(&e)))
                })?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok());
            let body = match Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect().await {
                Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
                // An answer larger than we read still has a status.
                Err(_) => String::new(),
            };
            Ok(Answer { status, body, retry_after })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(SendError::retryable(format!("the endpoint did not answer within {:?}", self.timeout))),
        }
    }
}

fn describe_transport(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_delivered_retry_or_refused() {
        let answer = |status| Answer { status, body: "x".into(), retry_after: None };
        assert!(answer(202).into_result().is_ok());
        for status in [408, 429, 500, 503] {
            assert!(answer(status).into_result().unwrap_err().retryable, "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!answer(status).into_result().unwrap_err().retryable, "{status}");
        }
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(&"é".repeat(2000)).chars().count(), EXCERPT_CHARS);
    }
}
