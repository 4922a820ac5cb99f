//! Liveness, readiness and grpc.health.v1, all derived from the upstream
//! services' own grpc.health.v1 answers.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use certctl_common::shutdown::Shutdown;
use tonic::transport::Channel;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::server::HealthReporter;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
const REPORT_EVERY: Duration = Duration::from_secs(5);

const INVENTORY: &str = "certctl.inventory.v1.InventoryService";
const AUDIT: &str = "certctl.audit.v1.AuditService";

#[derive(Clone)]
struct Upstreams {
    inventory: Channel,
    audit: Channel,
}

impl Upstreams {
    /// Each upstream's name and whether it answers SERVING.
    async fn check(&self) -> [(&'static str, bool); 2] {
        let (inventory, audit) = tokio::join!(serving(&self.inventory, INVENTORY), serving(&self.audit, AUDIT));
        [("inventory", inventory), ("audit", audit)]
    }
}

async fn serving(channel: &Channel, service: &str) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest { service: service.to_owned() });
    request.set_timeout(CHECK_TIMEOUT);
    let answer = tokio::time::timeout(CHECK_TIMEOUT, HealthClient::new(channel.clone()).check(request)).await;
    matches!(answer, Ok(Ok(r)) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
}

pub fn routes(inventory: Channel, audit: Channel) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(Upstreams { inventory, audit })
}

/// 200 when every upstream answers SERVING, 503 naming the ones that do not.
async fn readyz(State(upstreams): State<Upstreams>) -> impl IntoResponse {
    let checks = upstreams.check().await;
    let ready = checks.iter().all(|(_, ok)| *ok);
    let services: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, ok)| ((*name).to_owned(), serde_json::Value::from(if *ok { "serving" } else { "unavailable" })))
        .collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "services": services })))
}

/// Keeps the gateway's own grpc.health.v1 in step with its upstreams.
pub async fn report_upstreams(reporter: HealthReporter, inventory: Channel, audit: Channel, shutdown: Shutdown) {
    let upstreams = Upstreams { inventory, audit };
    loop {
        let checks = upstreams.check().await;
        let all = checks.iter().all(|(_, ok)| *ok);
        for ((_, ok), service) in checks.iter().zip([INVENTORY, AUDIT]) {
            reporter.set_service_status(service, status(*ok)).await;
        }
        reporter.set_service_status("", status(all)).await;
        tokio::select! {
            _ = tokio::time::sleep(REPORT_EVERY) => {}
            _ = shutdown.clone().wait() => return,
        }
    }
}

fn status(ok: bool) -> ServingStatus {
    if ok { ServingStatus::Serving } else { ServingStatus::NotServing }
}
