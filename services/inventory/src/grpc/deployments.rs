//! Proto ⇄ domain for deployments.

use certctl_domain::deployment::{Deployment, DeploymentState, NewDeployment};
use certctl_proto::inventory as pb;
use tonic::Status;

use super::{invalid, ts};

pub fn deployment_state_to_pb(s: DeploymentState) -> pb::DeploymentState {
    match s {
        DeploymentState::Pending => pb::DeploymentState::Pending,
        DeploymentState::Deployed => pb::DeploymentState::Deployed,
        DeploymentState::Verified => pb::DeploymentState::Verified,
        DeploymentState::Mismatch => pb::DeploymentState::Mismatch,
        DeploymentState::Failed => pb::DeploymentState::Failed,
    }
}

/// Unspecified is `None`: no filter in a listing, and missing in a report.
pub fn deployment_state_from_pb(field: &str, value: i32) -> Result<Option<DeploymentState>, Status> {
    Ok(match pb::DeploymentState::try_from(value) {
        Ok(pb::DeploymentState::Unspecified) => None,
        Ok(pb::DeploymentState::Pending) => Some(DeploymentState::Pending),
        Ok(pb::DeploymentState::Deployed) => Some(DeploymentState::Deployed),
        Ok(pb::DeploymentState::Verified) => Some(DeploymentState::Verified),
        Ok(pb::DeploymentState::Mismatch) => Some(DeploymentState::Mismatch),
        Ok(pb::DeploymentState::Failed) => Some(DeploymentState::Failed),
        Err(_) => return Err(invalid(field, &format!("{value} is not a deployment state"))),
    })
}

pub fn deployment_to_pb(d: Deployment) -> pb::Deployment {
    pb::Deployment {
        name: d.name(),
        version: d.version_name(),
        target: d.target_name(),
        state: deployment_state_to_pb(d.state) as i32,
        served_fingerprint: d.served_fingerprint,
        message: d.message,
        deploy_time: d.deploy_time.and_then(certctl_proto::timestamp),
        verify_time: d.verify_time.and_then(certctl_proto::timestamp),
        update_time: certctl_proto::timestamp(d.update_time),
        job: d.job,
    }
}

/// The `i`th deployment of a RecordDeployments request.
pub fn new_deployment_from_pb(i: usize, d: pb::Deployment) -> Result<NewDeployment, Status> {
    Ok(NewDeployment {
        name: d.name,
        version: d.version,
        target: d.target,
        state: deployment_state_from_pb(&format!("deployments[{i}].state"), d.state)?,
        served_fingerprint: d.served_fingerprint,
        message: d.message,
        deploy_time: ts(d.deploy_time),
        verify_time: ts(d.verify_time),
        job: d.job,
    })
}
