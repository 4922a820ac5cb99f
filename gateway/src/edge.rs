//! What the gateway stamps on every call before it reaches a service.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use rand::Rng;

pub const ACTOR_HEADER: &str = "x-certctl-actor";
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Until authentication lands every caller is the same anonymous principal;
/// whatever the client put in the actor header is replaced, never trusted.
const ANONYMOUS: &str = "anonymous";

/// Sets the actor, keeps a sane client request id or makes one, and echoes the
/// request id on the response so a caller can quote it.
pub async fn identify_caller(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    headers.insert(ACTOR_HEADER, HeaderValue::from_static(ANONYMOUS));
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .filter(|v| is_sane_request_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id);
    headers.insert(REQUEST_ID_HEADER, request_id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID_HEADER, request_id);
    response
}

fn is_sane_request_id(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn new_request_id() -> HeaderValue {
    let id: u128 = rand::rng().random();
    HeaderValue::from_str(&format!("{id:032x}")).expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(is_sane_request_id(b"3f2a-01:retry.2"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"has space"));
        assert!(!is_sane_request_id(&[b'a'; 129]));
        assert_eq!(new_request_id().len(), 32);
    }
}
