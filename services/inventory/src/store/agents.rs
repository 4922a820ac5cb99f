//! What the store keeps about agents beyond their registration document:
//! the session state their hubs report, their identity, retirement, and the
//! join tokens they enrol with.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::agents::{AgentStatus, Enrolment, Heartbeat, JoinToken};
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::Agent;

/// An agent listing: ordered by id, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentQuery {
    pub status: Option<AgentStatus>,
    pub after: Option<String>,
    pub limit: i64,
    /// "Now" for the status filter.
    pub now: UnixTime,
}

/// What `AgentStore::redeem_join_token` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The token is spent and its agent created, with their audit events.
    Redeemed { token: JoinToken, agent: Box<Agent> },
    /// No token has this secret.
    Unknown,
    /// Nothing was written.
    Expired(JoinToken),
    /// Nothing was written.
    AlreadyUsed(JoinToken),
}

/// The agents' side of the store. Agents themselves are documents
/// (`Store::create_document` and friends write their registration); these
/// methods read and write the rest.
#[async_trait]
pub trait AgentStore: Send + Sync + 'static {
    /// The agent with its session state.
    async fn get_agent(&self, id: &str) -> Result<Agent, StoreError>;
    async fn list_agents(&self, query: &AgentQuery) -> Result<Vec<Agent>, StoreError>;
    /// Marks each agent seen at `now`, and records its hub, version and
    /// capabilities where the heartbeat has them. Unknown and retired agents
    /// are skipped. Returns how many agents were updated.
    /// Returns the ids it marked seen: the others are unknown or retired.
    async fn record_heartbeats(&self, heartbeats: &[Heartbeat], now: UnixTime) -> Result<Vec<String>, StoreError>;
    /// FAILED_PRECONDITION for a retired agent.
    async fn record_agent_identity(
        &self,
        id: &str,
        serial: &str,
        expire_time: UnixTime,
        now: UnixTime,
        event: NewAuditEvent,
    ) -> Result<Agent, StoreError>;
    /// Sets the agent's retire time unless it has one; returns the agent and
    /// whether this call retired it (only then is `event` committed).
    async fn retire_agent(
        &self,
        id: &str,
        now: UnixTime,
        event: impl for<'a> FnOnce(&'a Agent) -> NewAuditEvent + Send,
    ) -> Result<(Agent, bool), StoreError>
    where
        Self: Sized;

    /// Stores a new token under the hash of its secret.
    async fn create_join_token(
        &self,
        token: &JoinToken,
        secret_hash: &str,
        event: NewAuditEvent,
    ) -> Result<(), StoreError>;
    async fn get_join_token(&self, id: &str) -> Result<JoinToken, StoreError>;
    /// Ordered by id, after `after_id`.
    async fn list_join_tokens(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<JoinToken>, StoreError>;
    async fn delete_join_token(&self, id: &str, event: NewAuditEvent) -> Result<(), StoreError>;
    /// In one transaction: finds the unexpired, unused token with this
    /// secret hash, marks it redeemed at `now`, creates its agent (the
    /// token's agent id, or the first free one derived from the host name)
    /// and commits `events(token, agent)`. Exactly one of any number of
    /// concurrent redemptions of a token succeeds.
    async fn redeem_join_token(
        &self,
        secret_hash: &str,
        enrolment: &Enrolment,
        now: UnixTime,
        events: impl for<'a> FnOnce(&'a JoinToken, &'a Agent) -> Vec<NewAuditEvent> + Send,
    ) -> Result<Redemption, StoreError>
    where
        Self: Sized;
}
