//! The PKI's public HTTP endpoints, at the stable paths the Local CA writes
//! into every certificate it signs (CRL distribution point, AIA):
//!
//! - `GET /pki/{issuer}/{authority}.crl`: the current DER CRL;
//! - `GET /pki/{issuer}/{authority}.crt`: the authority's DER certificate;
//! - `POST /pki/{issuer}/{authority}/ocsp` with an `application/ocsp-request`
//!   body, and `GET /pki/{issuer}/{authority}/ocsp/{base64 request}`
//!   (RFC 6960 appendix A).
//!
//! These are plain HTTP by design: relying parties fetch them without
//! credentials, and the content is signed by the CA itself.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use certctl_proto::issuance::{AnswerOcspRequest, GetCrlRequest, ListAuthoritiesRequest};
use http::{HeaderValue, StatusCode, header};
use tonic::transport::Channel;

const TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 6960 requests are small; anything bigger is not one.
const MAX_OCSP_REQUEST: usize = 64 << 10;

pub fn routes(issuance: Channel) -> Router {
    Router::new()
        .route("/pki/{issuer}/{file}", get(file))
        .route("/pki/{issuer}/{authority}/ocsp", axum::routing::post(ocsp_post))
        .route("/pki/{issuer}/{authority}/ocsp/{*request}", get(ocsp_get))
        .with_state(IssuanceServiceClient::new(issuance))
}

fn authority_name(issuer: &str, authority: &str) -> String {
    format!("issuers/{issuer}/authorities/{authority}")
}

async fn file(
    State(client): State<IssuanceServiceClient<Channel>>,
    Path((issuer, file)): Path<(String, String)>,
) -> Response {
    if let Some(authority) = file.strip_suffix(".crl") {
        let mut request = tonic::Request::new(GetCrlRequest { authority: authority_name(&issuer, authority) });
        request.set_timeout(TIMEOUT);
        return match client.clone().get_crl(request).await {
            Ok(answer) => {
                let answer = answer.into_inner();
                let max_age = answer.next_update.map(|next| (next.seconds - certctl_now()).clamp(0, 3600)).unwrap_or(0);
                der(answer.crl_der, "application/pkix-crl", max_age)
            }
            Err(status) => failure(&status),
        };
    }
    if let Some(authority) = file.strip_suffix(".crt") {
        let wanted = authority_name(&issuer, authority);
        let mut request = tonic::Request::new(ListAuthoritiesRequest { parent: format!("issuers/{issuer}") });
        request.set_timeout(TIMEOUT);
        return match client.clone().list_authorities(request).await {
            Ok(answer) => match answer.into_inner().authorities.into_iter().find(|a| a.name == wanted) {
                Some(found) => match pem_to_der(&found.certificate_pem) {
                    Some(bytes) => der(bytes, "application/pkix-cert", 3600),
                    None => (StatusCode::INTERNAL_SERVER_ERROR, "authority certificate is not PEM\n").into_response(),
                },
                None => (StatusCode::NOT_FOUND, format!("{wanted} does not exist\n")).into_response(),
            },
            Err(status) => failure(&status),
        };
    }
    (StatusCode::NOT_FOUND, "expected {authority}.crl or {authority}.crt\n").into_response()
}

async fn ocsp_post(
    State(client): State<IssuanceServiceClient<Channel>>,
    Path((issuer, authority)): Path<(String, String)>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.eq_ignore_ascii_case("application/ocsp-request") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "an OCSP request is sent as application/ocsp-request\n")
            .into_response();
    }
    if body.len() > MAX_OCSP_REQUEST {
        return (StatusCode::PAYLOAD_TOO_LARGE, "OCSP requests are at most 64 KiB\n").into_response();
    }
    answer(client, authority_name(&issuer, &authority), body.to_vec()).await
}

async fn ocsp_get(
    State(client): State<IssuanceServiceClient<Channel>>,
    Path((issuer, authority, encoded)): Path<(String, String, String)>,
) -> Response {
    // The path segment is base64 of the DER request, URL-encoded; axum has
    // already percent-decoded it. Some clients use the URL-safe alphabet.
    let encoded = encoded.trim_matches('/');
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(encoded))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded));
    match decoded {
        Ok(request) if request.len() <= MAX_OCSP_REQUEST => {
            answer(client, authority_name(&issuer, &authority), request).await
        }
        _ => ocsp_bytes(malformed_request()),
    }
}

async fn answer(client: IssuanceServiceClient<Channel>, authority: String, request_der: Vec<u8>) -> Response {
    let mut request = tonic::Request::new(AnswerOcspRequest { authority, request_der });
    request.set_timeout(TIMEOUT);
    match client.clone().answer_ocsp(request).await {
        Ok(answer) => ocsp_bytes(answer.into_inner().response_der),
        Err(status) if status.code() == tonic::Code::NotFound => failure(&status),
        // RFC 6960 §2.3: a responder that cannot answer now says tryLater.
        Err(status) => {
            tracing::warn!(code = ?status.code(), message = status.message(), "OCSP responder unavailable");
            ocsp_bytes(try_later())
        }
    }
}

/// `OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED }` without bytes.
fn malformed_request() -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, 0x01]
}

fn try_later() -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, 0x03]
}

fn ocsp_bytes(bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/ocsp-response"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn der(bytes: Vec<u8>, content_type: &'static str, max_age: i64) -> Response {
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
}

fn failure(status: &tonic::Status) -> Response {
    let code = match status.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    };
    (code, format!("{}\n", status.message())).into_response()
}

fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn certctl_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
