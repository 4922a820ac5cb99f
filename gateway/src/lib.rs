//! The gateway: certctl's one public port. Native gRPC, gRPC-web (for the
//! GUI) and REST+JSON under `/api/v1` reach the owning services through
//! generated gRPC forwarders; `/healthz`, `/readyz`, the OpenAPI document and
//! the web GUI are served beside them.
//!
//! Architecture invariant: the gateway holds no domain state and no database.
//! Every API call leaves through a gRPC client to the service that owns it,
//! and the caller's identity is set here, never taken from the caller.

mod edge;
mod health;
pub mod hub;
mod pki;
mod rest;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use certctl_common::shutdown::Shutdown;
use certctl_proto::audit::audit_service_server::AuditServiceServer;
use certctl_proto::audit::forward::AuditServiceForwarder;
use certctl_proto::inventory::forward::InventoryServiceForwarder;
use certctl_proto::inventory::inventory_service_server::InventoryServiceServer;
use certctl_proto::issuance::forward::IssuanceServiceForwarder;
use certctl_proto::issuance::issuance_service_server::IssuanceServiceServer;
use certctl_proto::notification::forward::NotificationServiceForwarder;
use certctl_proto::notification::notification_service_server::NotificationServiceServer;
use certctl_proto::scheduler::forward::SchedulerServiceForwarder;
use certctl_proto::scheduler::scheduler_service_server::SchedulerServiceServer;
use http::HeaderValue;
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest gRPC message or REST body the gateway accepts.
const MAX_MESSAGE_BYTES: usize = 32 << 20;

/// What the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Channels to the services the gateway fronts.
    pub inventory: Channel,
    pub audit: Channel,
    pub issuance: Channel,
    pub scheduler: Channel,
    pub notification: Channel,
    /// The built GUI (`web/dist`); served at `/` when it holds an `index.html`.
    pub web_dir: Option<PathBuf>,
    /// Origins allowed to call the API from a browser on another origin.
    pub cors_allowed_origins: Vec<String>,
}

/// The gateway's whole HTTP surface as one router.
pub fn router(config: &GatewayConfig, shutdown: Shutdown) -> Result<Router, GatewayError> {
    let inventory = InventoryServiceForwarder::new(config.inventory.clone());
    let audit = AuditServiceForwarder::new(config.audit.clone());
    let issuance = IssuanceServiceForwarder::new(config.issuance.clone());
    let scheduler = SchedulerServiceForwarder::new(config.scheduler.clone());
    let notification = NotificationServiceForwarder::new(config.notification.clone());

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(certctl_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Advertise what this port serves; the internal ingest API is not here.
        .with_service_name("certctl.inventory.v1.InventoryService")
        .with_service_name("certctl.audit.v1.AuditService")
        .with_service_name("certctl.issuance.v1.IssuanceService")
        .with_service_name("certctl.scheduler.v1.SchedulerService")
        .with_service_name("certctl.notification.v1.NotificationService")
        .with_service_name("grpc.health.v1.Health")
        .build_v1()
        .map_err(|e| GatewayError::Reflection(e.to_string()))?;
    let upstreams = health::Upstreams::new(config);
    tokio::spawn(health::report_upstreams(health_reporter, upstreams.clone(), shutdown));

    let grpc = tonic::service::Routes::new(
        InventoryServiceServer::new(inventory.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(
        AuditServiceServer::new(audit.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(
        IssuanceServiceServer::new(issuance.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(
        SchedulerServiceServer::new(scheduler.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(
        NotificationServiceServer::new(notification.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
    .add_service(health_service)
    .add_service(reflection)
    .prepare()
    .into_axum_router()
    .layer(tonic_web::GrpcWebLayer::new())
    .layer(axum::middleware::from_fn(edge::refuse_internal));

    let app = Router::new()
        .merge(health::routes(upstreams))
        .merge(pki::routes(config.issuance.clone()))
        .merge(rest::routes(rest::Upstreams { inventory, audit, issuance, scheduler, notification }, MAX_MESSAGE_BYTES))
        .merge(grpc);
    let app = web::mount(app, config.web_dir.as_deref()).layer(axum::middleware::from_fn(edge::identify_caller));
    Ok(match cors(&config.cors_allowed_origins)? {
        Some(cors) => app.layer(cors),
        None => app,
    })
}

/// Browsers on the GUI's own origin need no CORS; other origins must be listed.
fn cors(origins: &[String]) -> Result<Option<CorsLayer>, GatewayError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| GatewayError::BadOrigin(o.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(tower_http::cors::Any)
            .allow_headers(tower_http::cors::Any)
            .expose_headers([
                http::HeaderName::from_static("grpc-status"),
                http::HeaderName::from_static("grpc-message"),
                http::HeaderName::from_static("grpc-status-details-bin"),
                http::HeaderName::from_static("x-request-id"),
            ]),
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot build the gRPC reflection service: {0}")]
    Reflection(String),
    #[error("`{0}` is not a valid CORS origin (expected e.g. https://certs.example.com)")]
    BadOrigin(String),
    #[error("agent hub: {0}")]
    Hub(String),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

/// Serves the gateway on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, config: GatewayConfig, shutdown: Shutdown) -> std::io::Result<()> {
    let app = router(&config, shutdown.clone()).map_err(std::io::Error::other)?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "gateway listening (gRPC, gRPC-web, REST at /api/v1, GUI at /)");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.wait())
        .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt;

    use super::*;

    fn config(origins: &[&str]) -> GatewayConfig {
        let unused = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
        GatewayConfig {
            inventory: unused.clone(),
            audit: unused.clone(),
            issuance: unused.clone(),
            scheduler: unused.clone(),
            notification: unused,
            web_dir: None,
            cors_allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        }
    }

    async fn preflight(app: Router, origin: &str) -> Option<String> {
        let request = Request::options("/api/v1/certificates")
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn cors_allows_only_listed_origins() {
        let (_trigger, shutdown) = certctl_common::shutdown::channel();
        let app = router(&config(&["https://gui.example.com"]), shutdown.clone()).unwrap();
        assert_eq!(preflight(app.clone(), "https://gui.example.com").await.as_deref(), Some("https://gui.example.com"));
        assert_eq!(preflight(app, "https://evil.example.net").await, None);
        let same_origin_only = router(&config(&[]), shutdown).unwrap();
        assert_eq!(preflight(same_origin_only, "https://gui.example.com").await, None);
    }

    #[tokio::test]
    async fn a_malformed_origin_is_a_configuration_error() {
        let (_trigger, shutdown) = certctl_common::shutdown::channel();
        let err = router(&config(&["https://bad\norigin"]), shutdown).unwrap_err();
        assert!(err.to_string().contains("not a valid CORS origin"), "{err}");
    }

    #[tokio::test]
    async fn unknown_paths_say_the_gui_is_not_built_and_grpc_gets_unimplemented() {
        let (_trigger, shutdown) = certctl_common::shutdown::channel();
        let app = router(&config(&[]), shutdown).unwrap();
        let page = app.clone().oneshot(Request::get("/certificates/web").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(page.status(), http::StatusCode::NOT_FOUND);
        let grpc = Request::post("/certctl.billing.v1.Billing/Pay")
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(grpc).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "12");
    }
}
