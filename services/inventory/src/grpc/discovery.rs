//! Proto ⇄ domain for discovered certificates.

use certctl_domain::discovery::{DiscoveredCertificate, DiscoveryLocation, DiscoveryState};
use certctl_proto::inventory as pb;
use tonic::Status;

use super::invalid;
use crate::service::DiscoveryReport;

pub fn discovery_state_to_pb(s: DiscoveryState) -> pb::DiscoveryState {
    match s {
        DiscoveryState::New => pb::DiscoveryState::New,
        DiscoveryState::Claimed => pb::DiscoveryState::Claimed,
        DiscoveryState::Dismissed => pb::DiscoveryState::Dismissed,
    }
}

/// Unspecified is no filter.
pub fn discovery_state_from_pb(value: i32) -> Result<Option<DiscoveryState>, Status> {
    Ok(match pb::DiscoveryState::try_from(value) {
        Ok(pb::DiscoveryState::Unspecified) => None,
        Ok(pb::DiscoveryState::New) => Some(DiscoveryState::New),
        Ok(pb::DiscoveryState::Claimed) => Some(DiscoveryState::Claimed),
        Ok(pb::DiscoveryState::Dismissed) => Some(DiscoveryState::Dismissed),
        Err(_) => return Err(invalid("state", &format!("{value} is not a discovery state"))),
    })
}

fn location_to_pb(l: DiscoveryLocation) -> pb::DiscoveryLocation {
    pb::DiscoveryLocation { agent: l.agent, path: l.path, last_seen_time: certctl_proto::timestamp(l.last_seen_time) }
}

pub fn discovered_to_pb(d: DiscoveredCertificate) -> pb::DiscoveredCertificate {
    pb::DiscoveredCertificate {
        name: d.name(),
        fingerprint: d.fingerprint,
        subject: d.subject,
        dns_names: d.dns_names,
        issuer: d.issuer,
        serial_number: d.serial_number,
        not_before: certctl_proto::timestamp(d.not_before),
        not_after: certctl_proto::timestamp(d.not_after),
        locations: d.locations.into_iter().map(location_to_pb).collect(),
        state: discovery_state_to_pb(d.state) as i32,
        certificate: d.certificate,
        first_seen_time: certctl_proto::timestamp(d.first_seen_time),
        last_seen_time: certctl_proto::timestamp(d.last_seen_time),
    }
}

pub fn report_from_pb(r: pb::DiscoveryReport) -> DiscoveryReport {
    DiscoveryReport { path: r.path, certificate_der: r.certificate_der }
}
