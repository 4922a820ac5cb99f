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

/// The services the gateway fronts, by short name and grpc.health.v1 name.
#[derive(Clone)]
pub struct Upstreams(Vec<(&'static str, &'static str, Channel)>);

impl Upstreams {
    pub fn new(config: &crate::GatewayConfig) -> Self {
        Self(vec![
            ("inventory", "certctl.inventory.v1.InventoryService", config.inventory.clone()),
            ("audit", "certctl.audit.v1.AuditService", config.audit.clone()),
            ("issuance", "certctl.issuance.v1.IssuanceService", config.issuance.clone()),
            ("scheduler", "certctl.scheduler.v1.SchedulerService", config.scheduler.clone()),
            ("notification", "certctl.notification.v1.NotificationService", config.notification.clone()),
        ])
    }

    /// Each upstream's short name, health service name and whether it answers SERVING.
    async fn check(&self) -> Vec<(&'static str, &'static str, bool)> {
        let checks = self
            .0
            .iter()
            .map(|(short, service, channel)| async move { (*short, *service, serving(channel, service).await) });
        futures::future::join_all(checks).await
    }
}

async fn serving(channel: &Channel, service: &str) -> bool {
    let mut request = tonic::Request::new(HealthCheckRequest { service: service.to_owned() });
    request.set_timeout(CHECK_TIMEOUT);
    let answer = tokio::time::timeout(CHECK_TIMEOUT, HealthClient::new(channel.clone()).check(request)).await;
    matches!(answer, Ok(Ok(r)) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
}

pub fn routes(upstreams: Upstreams) -> Router {
    Router::new().route("/healthz", get(|| async { "ok\n" })).route("/readyz", get(readyz)).with_state(upstreams)
}

/// 200 when every upstream answers SERVING, 503 naming the ones that do not.
async fn readyz(State(upstreams): State<Upstreams>) -> impl IntoResponse {
    let checks = upstreams.check().await;
    let ready = checks.iter().all(|(_, _, ok)| *ok);
    let services: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, _, ok)| ((*name).to_owned(), serde_json::Value::from(if *ok { "serving" } else { "unavailable" })))
        .collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "services": services })))
}

/// Keeps the gateway's own grpc.health.v1 in step with its upstreams.
pub async fn report_upstreams(reporter: HealthReporter, upstreams: Upstreams, shutdown: Shutdown) {
    loop {
        let checks = upstreams.check().await;
        let all = checks.iter().all(|(_, _, ok)| *ok);
        for (_, service, ok) in &checks {
            reporter.set_service_status(*service, status(*ok)).await;
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
