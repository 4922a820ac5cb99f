//! Agents beyond their registration: join tokens and enrolment, identity,
//! heartbeats and retirement.

use certctl_common::StoreError;
use certctl_domain::agents::{
    self, AgentSession, AgentStatus, Enrolment, JOIN_TOKEN_SECRET_BYTES, JoinToken, join_token_secret,
    join_token_secret_hash,
};
use certctl_domain::error::Violations;
use certctl_domain::inventory::Agent;
use certctl_domain::name::{self, Collection};
use certctl_domain::{DomainError, UnixTime, page};
use rand::TryRngCore;

use super::{Caller, Inventory, Page, Result, rfc3339};
use crate::store::{AgentQuery, Redemption, Store};

/// The one answer to a secret no token has: nothing about why.
const NOT_VALID: &str = "join token is not valid";

fn string_cursor(page_token: &str, fingerprint: &str) -> Result<Option<String>> {
    Ok(page::decode_token(page_token, fingerprint)?
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| DomainError::invalid("page_token", "not a page token issued by this server"))
        })
        .transpose()?)
}

/// Cuts `items` to `limit` and returns the token for the rest (empty at the end).
fn next_token<T>(items: &mut Vec<T>, limit: i64, fingerprint: &str, id: impl Fn(&T) -> String) -> String {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        page::encode_token(fingerprint, serde_json::json!(id(items.last().expect("limit is at least 1"))))
    } else {
        String::new()
    }
}

impl<S: Store> Inventory<S> {
    /// The agent with its session state.
    pub async fn get_agent(&self, name: &str) -> Result<Agent> {
        let id = name::parse("name", Collection::Agents, name)?;
        Ok(self.store.get_agent(id).await?)
    }

    pub async fn list_agents(
        &self,
        status: Option<AgentStatus>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<Agent>> {
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["agents", &format!("{status:?}")]);
        let after = string_cursor(page_token, &fingerprint)?;
        let query = AgentQuery { status, after, limit: limit + 1, now: self.now() };
        let mut items = self.store.list_agents(&query).await?;
        let next_page_token = next_token(&mut items, limit, &fingerprint, |a| a.id.clone());
        Ok(Page { items, next_page_token })
    }

    pub fn agent_status(&self, agent: &Agent) -> AgentStatus {
        agent.status(self.now())
    }

    /// Retires an agent; a retired one is returned as it is.
    pub async fn retire_agent(&self, caller: &Caller, name: &str) -> Result<Agent> {
        let id = name::parse("name", Collection::Agents, name)?;
        let (agent, retired) = self
            .store
            .retire_agent(id, self.now(), |agent| {
                self.event(
                    caller,
                    "RetireAgent",
                    name,
                    serde_json::json!({
                        "hostname": agent.hostname,
                        "identity_serial": agent.identity_serial,
                    }),
                )
            })
            .await?;
        if retired {
            self.committed();
        }
        Ok(agent)
    }

    pub async fn record_agent_identity(
        &self,
        caller: &Caller,
        name: &str,
        serial: &str,
        expire_time: Option<UnixTime>,
    ) -> Result<Agent> {
        let mut v = Violations::new();
        let id = name::parse("agent", Collection::Agents, name).map_err(|e| v.merge(Err(e))).ok();
        let serial = agents::identity_serial("identity_serial", serial).map_err(|e| v.merge(Err(e))).ok();
        v.check(expire_time.is_some(), "identity_expire_time", "required");
        v.into_result()?;
        let (id, serial, expire_time) = (id.expect("checked"), serial.expect("checked"), expire_time.expect("checked"));
        let event = self.event(
            caller,
            "RecordAgentIdentity",
            name,
            serde_json::json!({"identity_serial": serial, "identity_expire_time": expire_time}),
        );
        let agent = self.store.record_agent_identity(id, &serial, expire_time, self.now(), event).await?;
        self.committed();
        Ok(agent)
    }

    /// The heartbeat path: no audit event, unknown and retired agents skipped.
    /// Returns the names of those skipped: their hubs must drop them.
    pub async fn record_agent_sessions(&self, sessions: Vec<AgentSession>) -> Result<Vec<String>> {
        let heartbeats = agents::heartbeats(sessions)?;
        let seen: std::collections::HashSet<String> =
            self.store.record_heartbeats(&heartbeats, self.now()).await?.into_iter().collect();
        Ok(heartbeats
            .iter()
            .filter(|h| !seen.contains(&h.agent_id))
            .map(|h| certctl_domain::name::Collection::Agents.name(&h.agent_id))
            .collect())
    }

    // ---- join tokens ------------------------------------------------------------

    /// Creates a token and returns it with its secret, which is shown only here.
    pub async fn create_join_token(
        &self,
        caller: &Caller,
        mut token: JoinToken,
        expire_time: Option<UnixTime>,
        ttl_secs: Option<i64>,
    ) -> Result<(JoinToken, String)> {
        let now = self.now();
        if token.id.is_empty() {
            token.id = format!("{:016x}", rand::random::<u64>());
        }
        let mut v = Violations::new();
        v.merge(token.validate());
        match agents::join_token_expire_time(now, expire_time, ttl_secs) {
            Ok(at) => token.expire_time = at,
            Err(e) => v.merge(Err(e)),
        }
        v.into_result()?;
        if !token.agent_id.is_empty() {
            match self.store.get_agent(&token.agent_id).await {
                Ok(_) => {
                    return Err(DomainError::invalid(
                        "join_token.agent_id",
                        format!("agents/{} already exists; choose another id, or leave it empty", token.agent_id),
                    )
                    .into());
                }
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        token.create_time = now;
        token.redeem_time = None;
        token.agent = String::new();
        let mut random = [0u8; JOIN_TOKEN_SECRET_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut random)
            .map_err(|e| StoreError::Internal(format!("the operating system's random generator failed: {e}")))?;
        let secret = join_token_secret(&random);
        let hash = join_token_secret_hash(&secret).expect("a fresh secret is well formed");
        // The secret never goes into the trail, nor its hash.
        let event = self.event(
            caller,
            "CreateJoinToken",
            &token.name(),
            serde_json::json!({"agent_id": token.agent_id, "expire_time": token.expire_time}),
        );
        self.store.create_join_token(&token, &hash, event).await?;
        self.committed();
        Ok((token, secret))
    }

    pub async fn get_join_token(&self, name: &str) -> Result<JoinToken> {
        let id = name::parse("name", Collection::JoinTokens, name)?;
        Ok(self.store.get_join_token(id).await?)
    }

    pub async fn list_join_tokens(&self, page_size: i32, page_token: &str) -> Result<Page<JoinToken>> {
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["join_tokens"]);
        let after = string_cursor(page_token, &fingerprint)?;
        let mut items = self.store.list_join_tokens(after.as_deref(), limit + 1).await?;
        let next_page_token = next_token(&mut items, limit, &fingerprint, |t| t.id.clone());
        Ok(Page { items, next_page_token })
    }

    /// Revokes an unused token; for a used one, removes the record.
    pub async fn delete_join_token(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::JoinTokens, name)?;
        let event = self.event(caller, "DeleteJoinToken", name, serde_json::Value::Null);
        self.store.delete_join_token(id, event).await?;
        self.committed();
        Ok(())
    }

    /// Spends a token's secret on a new agent. UNAUTHENTICATED unless the
    /// secret belongs to an unexpired, unused token.
    pub async fn redeem_join_token(&self, caller: &Caller, secret: &str, enrolment: Enrolment) -> Result<Agent> {
        let Some(hash) = join_token_secret_hash(secret) else {
            return Err(DomainError::Unauthenticated(NOT_VALID.to_owned()).into());
        };
        enrolment.validate()?;
        let redemption = self
            .store
            .redeem_join_token(&hash, &enrolment, self.now(), |token, agent| {
                vec![
                    self.event(
                        caller,
                        "RedeemJoinToken",
                        &token.name(),
                        serde_json::json!({"agent": agent.name(), "hostname": agent.hostname}),
                    ),
                    self.event(
                        caller,
                        "CreateAgent",
                        &agent.name(),
                        serde_json::json!({
                            "join_token": token.name(),
                            "hostname": agent.hostname,
                            "version": agent.version,
                            "capabilities": agent.capabilities,
                        }),
                    ),
                ]
            })
            .await?;
        match redemption {
            Redemption::Redeemed { agent, .. } => {
                self.committed();
                Ok(*agent)
            }
            Redemption::Unknown => Err(DomainError::Unauthenticated(NOT_VALID.to_owned()).into()),
            Redemption::Expired(token) => Err(DomainError::Unauthenticated(format!(
                "join token {} expired at {}",
                token.name(),
                rfc3339(token.expire_time)
            ))
            .into()),
            Redemption::AlreadyUsed(token) => Err(DomainError::Unauthenticated(format!(
                "join token {} was already used at {} by {}",
                token.name(),
                rfc3339(token.redeem_time.unwrap_or_default()),
                token.agent
            ))
            .into()),
        }
    }
}
