//! Proto ⇄ domain for agents, their sessions and join tokens.

use certctl_domain::UnixTime;
use certctl_domain::agents::{AgentSession, AgentStatus, JoinToken};
use certctl_domain::inventory as domain;
use certctl_domain::name::Collection;
use certctl_proto::inventory as pb;
use tonic::Status;

use super::{invalid, ts};

pub fn agent_status_to_pb(s: AgentStatus) -> pb::AgentStatus {
    match s {
        AgentStatus::Online => pb::AgentStatus::Online,
        AgentStatus::Stale => pb::AgentStatus::Stale,
        AgentStatus::Offline => pb::AgentStatus::Offline,
        AgentStatus::Retired => pb::AgentStatus::Retired,
    }
}

/// Unspecified is no filter.
pub fn agent_status_from_pb(value: i32) -> Result<Option<AgentStatus>, Status> {
    Ok(match pb::AgentStatus::try_from(value) {
        Ok(pb::AgentStatus::Unspecified) => None,
        Ok(pb::AgentStatus::Online) => Some(AgentStatus::Online),
        Ok(pb::AgentStatus::Stale) => Some(AgentStatus::Stale),
        Ok(pb::AgentStatus::Offline) => Some(AgentStatus::Offline),
        Ok(pb::AgentStatus::Retired) => Some(AgentStatus::Retired),
        Err(_) => return Err(invalid("status", &format!("{value} is not an agent status"))),
    })
}

pub fn agent_to_pb(a: domain::Agent, status: AgentStatus) -> pb::Agent {
    pb::Agent {
        name: Collection::Agents.name(&a.id),
        display_name: a.display_name,
        hostname: a.hostname,
        labels: a.labels.into_iter().collect(),
        create_time: certctl_proto::timestamp(a.create_time),
        update_time: certctl_proto::timestamp(a.update_time),
        version: a.version,
        capabilities: a.capabilities,
        status: agent_status_to_pb(status) as i32,
        last_seen_time: a.last_seen_time.and_then(certctl_proto::timestamp),
        hub: a.hub,
        identity_serial: a.identity_serial,
        identity_expire_time: a.identity_expire_time.and_then(certctl_proto::timestamp),
        retire_time: a.retire_time.and_then(certctl_proto::timestamp),
    }
}

/// The fields a caller may set; the session state is output only.
pub fn agent_from_pb(a: pb::Agent, id: String) -> domain::Agent {
    domain::Agent {
        id,
        display_name: a.display_name,
        hostname: a.hostname,
        labels: a.labels.into_iter().collect(),
        ..Default::default()
    }
}

pub fn session_from_pb(s: pb::AgentSession) -> AgentSession {
    AgentSession { agent: s.agent, hub: s.hub, version: s.version, capabilities: s.capabilities }
}

pub fn join_token_to_pb(t: JoinToken) -> pb::JoinToken {
    pb::JoinToken {
        name: t.name(),
        display_name: t.display_name,
        labels: t.labels.into_iter().collect(),
        agent_id: t.agent_id,
        expire_time: certctl_proto::timestamp(t.expire_time),
        ttl: None,
        create_time: certctl_proto::timestamp(t.create_time),
        redeem_time: t.redeem_time.and_then(certctl_proto::timestamp),
        agent: t.agent,
    }
}

/// The token a caller asks for, its expire_time and its ttl in seconds
/// (a fraction of a second rounds up).
pub fn join_token_from_pb(t: pb::JoinToken, id: String) -> (JoinToken, Option<UnixTime>, Option<i64>) {
    let ttl = t.ttl.map(|d| if d.nanos > 0 { d.seconds.saturating_add(1) } else { d.seconds });
    let token = JoinToken {
        id,
        display_name: t.display_name,
        labels: t.labels.into_iter().collect(),
        agent_id: t.agent_id,
        ..Default::default()
    };
    (token, ts(t.expire_time), ttl)
}
