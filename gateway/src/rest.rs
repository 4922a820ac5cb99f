//! REST+JSON under `/api/v1`, transcoded from the protos' `google.api.http`
//! annotations by rest_over_grpc (see docs/adr/0001), and the OpenAPI
//! document generated from the same descriptors.
//!
//! The transcoder reports errors as `google.rpc.Status` JSON with the binary
//! details base64-encoded. Callers deserve better, so error responses are
//! rewritten once here: the details are decoded into their JSON form (so a
//! `BadRequest` names the offending field), the canonical code's name is
//! added, and the HTTP status follows certctl's mapping.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use certctl_proto::audit::__rest_over_grpc_bridge_AuditService::AuditServiceRestBridge;
use certctl_proto::audit::forward::AuditServiceForwarder;
use certctl_proto::inventory::__rest_over_grpc_bridge_InventoryService::InventoryServiceRestBridge;
use certctl_proto::inventory::forward::InventoryServiceForwarder;
use certctl_proto::issuance::__rest_over_grpc_bridge_IssuanceService::IssuanceServiceRestBridge;
use certctl_proto::issuance::forward::IssuanceServiceForwarder;
use certctl_proto::notification::__rest_over_grpc_bridge_NotificationService::NotificationServiceRestBridge;
use certctl_proto::notification::forward::NotificationServiceForwarder;
use certctl_proto::scheduler::__rest_over_grpc_bridge_SchedulerService::SchedulerServiceRestBridge;
use certctl_proto::scheduler::forward::SchedulerServiceForwarder;
use http::{HeaderValue, StatusCode, header};
use prost::Message;
use rest_over_grpc::serving::RestService;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::RpcStatusExt;

/// Error bodies are small; anything larger is passed through untouched.
const MAX_ERROR_BODY: usize = 1 << 20;

/// The forwarders the REST bridge calls.
pub struct Upstreams {
    pub inventory: InventoryServiceForwarder,
    pub audit: AuditServiceForwarder,
    pub issuance: IssuanceServiceForwarder,
    pub scheduler: SchedulerServiceForwarder,
    pub notification: NotificationServiceForwarder,
}

pub fn routes(upstreams: Upstreams, max_body: usize) -> Router {
    let Upstreams { inventory, audit, issuance, scheduler, notification } = upstreams;
    // Identity is stamped by `edge::identify_caller` on every request before
    // it reaches the bridge, and checked by the owning service.
    let transcoder = certctl_proto::rest::Transcoder::new(
        InventoryServiceRestBridge::externally_authenticated(inventory),
        AuditServiceRestBridge::externally_authenticated(audit),
        IssuanceServiceRestBridge::externally_authenticated(issuance),
        SchedulerServiceRestBridge::externally_authenticated(scheduler),
        NotificationServiceRestBridge::externally_authenticated(notification),
    );
    let rest = RestService::new(transcoder).with_max_body_bytes(max_body);
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route_service("/api/{*path}", rest)
        .layer(axum::middleware::map_request(field_masks_as_proto3_json))
        .layer(axum::middleware::map_response(explain_errors))
}

/// Proto3 JSON writes a FieldMask as one comma-separated string of
/// lowerCamelCase paths (`?updateMask=displayName,owner`), which is what the
/// OpenAPI document promises; the JSON decoder underneath only reads the
/// message form. Rewrites the first into the second.
async fn field_masks_as_proto3_json(mut request: axum::extract::Request) -> axum::extract::Request {
    let Some(query) = request.uri().query().filter(|q| q.contains("pdateMask=") || q.contains("pdate_mask=")) else {
        return request;
    };
    let rewritten = rewrite_field_masks(query);
    let mut parts = request.uri().clone().into_parts();
    let path = request.uri().path().to_owned();
    if let Ok(pq) = format!("{path}?{rewritten}").parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

fn rewrite_field_masks(query: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "updateMask" && key != "update_mask" {
            out.push(pair.to_owned());
            continue;
        }
        let value = value.replace("%2C", ",").replace("%2c", ",");
        for path in value.split(',').filter(|p| !p.is_empty()) {
            out.push(format!("updateMask.paths={}", snake_case(path)));
        }
    }
    out.join("&")
}

fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_document())
}

/// Every package's document merged into one, built on first use.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut merged: Value = json!({
            "openapi": "3.1.0",
            "info": {
                "title": "certctl",
                "version": "v1",
                "description": "certctl's REST API, transcoded from its gRPC services. Errors are \
                    google.rpc.Status objects whose details name the offending field; \
                    INVALID_ARGUMENT is 400, NOT_FOUND 404, ALREADY_EXISTS 409, \
                    FAILED_PRECONDITION 412, UNAVAILABLE 503 (with Retry-After)."
            },
            "paths": {},
            "components": { "schemas": {} },
        });
        for text in certctl_proto::OPENAPI_DOCUMENTS {
            let doc: Value = serde_json::from_str(text).expect("the build emits valid OpenAPI JSON");
            for section in ["paths", "components"] {
                let target =
                    if section == "paths" { &mut merged["paths"] } else { &mut merged["components"]["schemas"] };
                let source = if section == "paths" { &doc["paths"] } else { &doc["components"]["schemas"] };
                if let (Some(target), Some(source)) = (target.as_object_mut(), source.as_object()) {
                    target.extend(source.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        merged["components"]["schemas"]["google.rpc.Status"] = error_schema();
        if let Some(paths) = merged["paths"].as_object_mut() {
            *paths = one_template_per_route(std::mem::take(paths));
        }
        merged.to_string()
    })
}

/// The generator names path variables after request fields, so one URL shape
/// can appear under two templates (`/certificates/{name}` for Get and
/// `/certificates/{certificate.name}` for Update). OpenAPI allows one template
/// per shape: keep the first, and rename the others' variables to match.
fn one_template_per_route(paths: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let shape = |template: &str| -> String {
        let mut out = String::new();
        let mut in_var = false;
        for c in template.chars() {
            match c {
                '{' => {
                    in_var = true;
                    out.push_str("{}");
                }
                '}' => in_var = false,
                _ if !in_var => out.push(c),
                _ => {}
            }
        }
        out
    };
    let variables = |template: &str| -> Vec<String> {
        template.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(v, _)| v.to_owned())).collect()
    };
    let mut out = serde_json::Map::new();
    let mut canonical: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut keys: Vec<&String> = paths.keys().collect();
    // Shorter variable names first: `{name}` wins over `{certificate.name}`.
    keys.sort_by_key(|k| (k.len(), (*k).clone()));
    for key in keys {
        let item = paths[key].clone();
        let Some(kept) = canonical.get(&shape(key)).cloned() else {
            canonical.insert(shape(key), key.clone());
            out.insert(key.clone(), item);
            continue;
        };
        let renames: Vec<(String, String)> = variables(key).into_iter().zip(variables(&kept)).collect();
        let target = out[&kept].as_object_mut().expect("path items are objects");
        for (method, mut operation) in item.as_object().cloned().unwrap_or_default() {
            for parameter in operation["parameters"].as_array_mut().into_iter().flatten() {
                if parameter["in"] == "path"
                    && let Some((_, new)) = renames.iter().find(|(old, _)| parameter["name"] == old.as_str())
                {
                    parameter["name"] = Value::from(new.clone());
                }
            }
            target.insert(method, operation);
        }
    }
    out
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "A canonical error. `details` holds google.rpc detail messages in their JSON form, each with an `@type`.",
        "properties": {
            "code": { "type": "integer", "format": "int32" },
            "status": { "type": "string" },
            "message": { "type": "string" },
            "details": { "type": "array", "items": { "type": "object" } }
        },
        "required": ["code", "message"]
    })
}

/// certctl's HTTP status for each canonical code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::from_u16(499).expect("499 is a valid status"),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

async fn explain_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status().as_u16() < 400 || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    };
    let Some((status, retry_after, body)) = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| problem(&v))
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.status = status;
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(seconds) = retry_after {
        parts.headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Rewrites a transcoder error body; `None` leaves the response as it is.
fn problem(body: &Value) -> Option<(StatusCode, Option<u64>, Value)> {
    let code = Code::from_i32(i32::try_from(body.get("code")?.as_i64()?).ok()?);
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    let mut details = Vec::new();
    let mut retry_after = None;
    for detail in body.get("details").and_then(Value::as_array).into_iter().flatten() {
        let packed = (detail.get("kind").and_then(Value::as_str) == Some("grpc-status-details-bin"))
            .then(|| detail.get("value").and_then(Value::as_str))
            .flatten();
        let Some(packed) = packed else {
            // Metadata echoed by the transcoder says nothing a caller can act on.
            continue;
        };
        let Some(status) = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .ok()
            .and_then(|raw| tonic_types::pb::Status::decode(raw.as_slice()).ok())
        else {
            continue;
        };
        let (decoded, retry) = decode_details(&status);
        details.extend(decoded);
        retry_after = retry_after.or(retry);
    }
    let mut out = json!({ "code": code as i32, "status": code_name(code), "message": message });
    if !details.is_empty() {
        out["details"] = Value::Array(details);
    }
    if code == Code::Unavailable && retry_after.is_none() {
        retry_after = Some(1);
    }
    Some((http_status(code), retry_after, out))
}

fn decode_details(status: &tonic_types::pb::Status) -> (Vec<Value>, Option<u64>) {
    let details = status.get_error_details();
    let mut out = Vec::new();
    if let Some(info) = details.error_info() {
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }));
    }
    if let Some(bad) = details.bad_request() {
        let violations: Vec<Value> =
            bad.field_violations.iter().map(|v| json!({ "field": v.field, "description": v.description })).collect();
        out.push(json!({ "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations }));
    }
    if let Some(resource) = details.resource_info() {
        out.push(json!({
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceName": resource.resource_name,
        }));
    }
    if let Some(failure) = details.precondition_failure() {
        let violations: Vec<Value> = failure
            .violations
            .iter()
            .map(|v| json!({ "type": v.r#type, "subject": v.subject, "description": v.description }))
            .collect();
        out.push(json!({ "@type": "type.googleapis.com/google.rpc.PreconditionFailure", "violations": violations }));
    }
    let retry = details.retry_info().and_then(|r| r.retry_delay).map(|d| d.as_secs().max(1));
    if let Some(seconds) = retry {
        out.push(json!({ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s") }));
    }
    (out, retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    fn transcoded(status: tonic::Status) -> Value {
        let packed = base64::engine::general_purpose::STANDARD.encode(status.details());
        json!({
            "code": status.code() as i32,
            "message": status.message(),
            "details": [{ "kind": "grpc-status-details-bin", "encoding": "base64", "value": packed }],
        })
    }

    #[test]
    fn bad_request_names_the_field() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("page_size", "must not be negative");
        details.set_error_info("INVALID_ARGUMENT", "certctl.dev", []);
        let status =
            tonic::Status::with_error_details(Code::InvalidArgument, "page_size: must not be negative", details);
        let (http, retry, body) = problem(&transcoded(status)).unwrap();
        assert_eq!(http, StatusCode::BAD_REQUEST);
        assert_eq!(retry, None);
        assert_eq!(body["status"], "INVALID_ARGUMENT");
        let violation = &body["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["@type"].as_str().unwrap().ends_with("BadRequest"))
            .unwrap()["fieldViolations"][0];
        assert_eq!(violation["field"], "page_size");
    }

    #[test]
    fn codes_map_to_the_documented_statuses() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::FailedPrecondition, 412),
            (Code::Unavailable, 503),
            (Code::Internal, 500),
        ];
        for (code, expected) in cases {
            assert_eq!(http_status(code).as_u16(), expected, "{code:?}");
        }
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let mut details = ErrorDetails::new();
        details.set_retry_info(Some(std::time::Duration::from_secs(3)));
        let status = tonic::Status::with_error_details(Code::Unavailable, "retry", details);
        let (http, retry, _) = problem(&transcoded(status)).unwrap();
        assert_eq!((http.as_u16(), retry), (503, Some(3)));
    }

    #[test]
    fn field_masks_follow_proto3_json() {
        assert_eq!(
            rewrite_field_masks("updateMask=displayName%2CsubjectAltNames,owner&x=1"),
            "updateMask.paths=display_name&updateMask.paths=subject_alt_names&updateMask.paths=owner&x=1"
        );
        assert_eq!(rewrite_field_masks("update_mask=environment"), "updateMask.paths=environment");
        assert_eq!(rewrite_field_masks("updateMask="), "");
        assert_eq!(rewrite_field_masks("pageSize=5"), "pageSize=5");
    }

    #[test]
    fn openapi_merges_every_package() {
        let doc: Value = serde_json::from_str(openapi_document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/v1/certificates"));
        assert!(paths.contains_key("/api/v1/auditEvents"));
        assert!(doc["components"]["schemas"]["certctl.audit.v1.AuditEvent"].is_object());
        let item = &doc["paths"]["/api/v1/certificates/{name}"];
        for method in ["get", "patch", "delete"] {
            assert!(item[method].is_object(), "{method} shares the one template");
        }
        assert!(!paths.contains_key("/api/v1/certificates/{certificate.name}"));
        let patch_params = item["patch"]["parameters"].as_array().unwrap();
        assert!(patch_params.iter().any(|p| p["in"] == "path" && p["name"] == "name"));
    }
}
