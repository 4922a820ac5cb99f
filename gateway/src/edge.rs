//! What the gateway stamps on every call before it reaches a service.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::HeaderValue;
use rand::Rng;

pub use certctl_common::caller::{ACTOR_HEADER, REQUEST_ID_HEADER};

/// Until authentication lands every caller is the same anonymous principal;
/// whatever the client put in the actor header is replaced, never trusted.
const ANONYMOUS: &str = "anonymous";

/// Service-to-service RPCs that share a public service's definition. The
/// forwarder would pass them on like any other call, so the edge refuses them
/// (the services call each other directly, never through the gateway).
pub const INTERNAL_METHODS: &[&str] = &[
    "/certctl.inventory.v1.InventoryService/RecordRevocation",
    // The agent hub's calls: agents reach them only through the hub, which
    // authenticates them first.
    "/certctl.inventory.v1.InventoryService/RedeemJoinToken",
    "/certctl.inventory.v1.InventoryService/RecordAgentIdentity",
    "/certctl.inventory.v1.InventoryService/RecordAgentSessions",
    "/certctl.inventory.v1.InventoryService/RecordDeployments",
    "/certctl.inventory.v1.InventoryService/ReportDiscoveries",
    "/certctl.scheduler.v1.SchedulerService/WatchAgentWork",
    "/certctl.scheduler.v1.SchedulerService/ListAgentWork",
    "/certctl.scheduler.v1.SchedulerService/CompleteAgentWork",
];

/// Refuses [`INTERNAL_METHODS`] on the public port with gRPC PERMISSION_DENIED.
pub async fn refuse_internal(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if INTERNAL_METHODS.contains(&path) {
        let status = tonic::Status::permission_denied(format!("{path} is internal to the platform"));
        return status.into_http::<axum::body::Body>().map(axum::body::Body::new);
    }
    next.run(request).await
}

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

#[cfg(test)]
mod stamping {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::{HeaderMap, Request};
    use tower::ServiceExt;

    use super::*;

    async fn echo(headers: HeaderMap) -> String {
        let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        format!("{}|{}", get(ACTOR_HEADER), get(REQUEST_ID_HEADER))
    }

    async fn call(request: Request<Body>) -> (String, String) {
        let app = Router::new().route("/", get(echo)).layer(axum::middleware::from_fn(identify_caller));
        let response = app.oneshot(request).await.unwrap();
        let echoed_id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap().to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        (String::from_utf8(body.to_vec()).unwrap(), echoed_id)
    }

    #[tokio::test]
    async fn a_forged_actor_is_replaced_and_a_sane_request_id_kept() {
        let request = Request::get("/")
            .header(ACTOR_HEADER, "users/admin")
            .header(REQUEST_ID_HEADER, "retry-7")
            .body(Body::empty())
            .unwrap();
        let (seen, echoed) = call(request).await;
        assert_eq!(seen, "anonymous|retry-7");
        assert_eq!(echoed, "retry-7");
    }

    #[tokio::test]
    async fn internal_methods_are_refused_at_the_edge() {
        let app = Router::new()
            .route(
                "/certctl.inventory.v1.InventoryService/RecordRevocation",
                axum::routing::post(|| async { "reached" }),
            )
            .route("/certctl.inventory.v1.InventoryService/GetCertificate", axum::routing::post(|| async { "reached" }))
            .layer(axum::middleware::from_fn(refuse_internal));
        let post =
            |path: &str| Request::post(path).header("content-type", "application/grpc").body(Body::empty()).unwrap();
        let refused =
            app.clone().oneshot(post("/certctl.inventory.v1.InventoryService/RecordRevocation")).await.unwrap();
        assert_eq!(refused.headers()["grpc-status"], "7", "PERMISSION_DENIED");
        let allowed = app.oneshot(post("/certctl.inventory.v1.InventoryService/GetCertificate")).await.unwrap();
        let body = axum::body::to_bytes(allowed.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"reached");
    }

    #[tokio::test]
    async fn a_bad_request_id_is_replaced() {
        let request = Request::get("/").header(REQUEST_ID_HEADER, "two words").body(Body::empty()).unwrap();
        let (seen, echoed) = call(request).await;
        let id = seen.split_once('|').unwrap().1;
        assert_eq!(id.len(), 32);
        assert_eq!(id, echoed);
    }
}
