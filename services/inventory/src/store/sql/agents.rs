//! The SQL of `AgentStore`, expanded for both backends like `sql.rs`.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::agents::{AgentStatus, Enrolment, Heartbeat, JoinToken, ONLINE_WITHIN_SECS, STALE_WITHIN_SECS};
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::Agent;
use sqlx::Row;

use super::{PostgresStore, SqliteStore, from_json, json};
use crate::store::agents::{AgentQuery, AgentStore, Redemption};

/// The registration document and the columns beside it.
const AGENT_COLUMNS: &str = "id, body, update_time, version, capabilities, hub, last_seen_time, identity_serial, \
    identity_expire_time, retire_time";
const TOKEN_COLUMNS: &str = "id, display_name, labels, agent_id, expire_time, create_time, redeem_time, agent";

/// Heartbeats per statement, four parameters each. Small on purpose: SQLite
/// keeps `$N` parameters in a list that it searches linearly when preparing
/// and again for every bind, so a statement's cost grows with the square of
/// its parameters. At 2,000 heartbeats a statement, recording 10,000 idle
/// agents' heartbeats took a third of the server's CPU.
const HEARTBEAT_BATCH: usize = 100;

/// Ids derived from one host name (`web`, `web-2`, ...) tried before a
/// redemption gives up.
const MAX_DERIVED_IDS: u32 = 1000;

/// The condition selecting agents in `status` as of `now`, and the values of
/// its placeholders from `$3`: the same thresholds as
/// `certctl_domain::agents::agent_status`.
fn status_condition(status: AgentStatus, now: UnixTime) -> (&'static str, Vec<i64>) {
    let online_since = now - ONLINE_WITHIN_SECS;
    let stale_since = now - STALE_WITHIN_SECS;
    match status {
        AgentStatus::Online => (" AND retire_time IS NULL AND last_seen_time >= $3", vec![online_since]),
        AgentStatus::Stale => (
            " AND retire_time IS NULL AND last_seen_time < $3 AND last_seen_time >= $4",
            vec![online_since, stale_since],
        ),
        AgentStatus::Offline => {
            (" AND retire_time IS NULL AND (last_seen_time IS NULL OR last_seen_time < $3)", vec![stale_since])
        }
        AgentStatus::Retired => (" AND retire_time IS NOT NULL", vec![]),
    }
}

/// A capability list as its column holds it; '' in a heartbeat keeps the stored one.
fn capabilities_column(capabilities: &[String]) -> String {
    if capabilities.is_empty() { String::new() } else { json(&capabilities) }
}

macro_rules! agent_store {
    ($store:ident, $db:ty, $row:ty) => {
        impl $store {
            fn agent_from_row(row: &$row) -> Result<Agent, StoreError> {
                let mut agent: Agent = from_json("agents.body", &row.try_get::<String, _>("body")?)?;
                // Identity and retirement move the row's update time, not the document's.
                agent.update_time = row.try_get("update_time")?;
                agent.version = row.try_get("version")?;
                agent.capabilities = from_json("agents.capabilities", &row.try_get::<String, _>("capabilities")?)?;
                agent.hub = row.try_get("hub")?;
                agent.last_seen_time = row.try_get("last_seen_time")?;
                agent.identity_serial = row.try_get("identity_serial")?;
                agent.identity_expire_time = row.try_get("identity_expire_time")?;
                agent.retire_time = row.try_get("retire_time")?;
                Ok(agent)
            }

            fn join_token_from_row(row: &$row) -> Result<JoinToken, StoreError> {
                Ok(JoinToken {
                    id: row.try_get("id")?,
                    display_name: row.try_get("display_name")?,
                    labels: from_json("join_tokens.labels", &row.try_get::<String, _>("labels")?)?,
                    agent_id: row.try_get("agent_id")?,
                    expire_time: row.try_get("expire_time")?,
                    create_time: row.try_get("create_time")?,
                    redeem_time: row.try_get("redeem_time")?,
                    agent: row.try_get("agent")?,
                })
            }
        }

        #[async_trait]
        impl AgentStore for $store {
            async fn get_agent(&self, id: &str) -> Result<Agent, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound { resource: format!("agents/{id}") })?;
                Self::agent_from_row(&row)
            }

            async fn list_agents(&self, query: &AgentQuery) -> Result<Vec<Agent>, StoreError> {
                let (condition, cutoffs) = match query.status {
                    Some(status) => status_condition(status, query.now),
                    None => ("", vec![]),
                };
                let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id > $1{condition} ORDER BY id LIMIT $2");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(query.after.as_deref().unwrap_or("")).bind(query.limit);
                for cutoff in cutoffs {
                    q = q.bind(cutoff);
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter().map(Self::agent_from_row).collect()
            }

            async fn record_heartbeats(&self, heartbeats: &[Heartbeat], now: UnixTime) -> Result<Vec<String>, StoreError> {
                if heartbeats.is_empty() {
                    return Ok(Vec::new());
                }
                let mut tx = self.begin().await?;
                let mut updated = Vec::with_capacity(heartbeats.len());
                for chunk in heartbeats.chunks(HEARTBEAT_BATCH) {
                    let tuples: Vec<String> = (0..chunk.len())
                        .map(|i| {
                            let n = 4 * i + 1;
                            format!(
                                "(CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT), CAST(${} AS TEXT))",
                                n + 1,
                                n + 2,
                                n + 3,
                                n + 4
                            )
                        })
                        .collect();
                    // VALUES columns are column1.. in both dialects.
                    let sql = format!(
                        "UPDATE agents SET last_seen_time = $1, \
                         hub = CASE WHEN s.column2 = '' THEN agents.hub ELSE s.column2 END, \
                         version = CASE WHEN s.column3 = '' THEN agents.version ELSE s.column3 END, \
                         capabilities = CASE WHEN s.column4 = '' THEN agents.capabilities ELSE s.column4 END \
                         FROM (VALUES {}) AS s WHERE agents.id = s.column1 AND agents.retire_time IS NULL \
                         RETURNING agents.id",
                        tuples.join(", ")
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
                    for h in chunk {
                        q = q
                            .bind(h.agent_id.as_str())
                            .bind(h.hub.as_str())
                            .bind(h.version.as_str())
                            .bind(capabilities_column(&h.capabilities));
                    }
                    for row in q.fetch_all(&mut *tx).await? {
                        updated.push(row.try_get::<String, _>(0)?);
                    }
                }
                tx.commit().await?;
                Ok(updated)
            }

            async fn record_agent_identity(
                &self,
                id: &str,
                serial: &str,
                expire_time: UnixTime,
                now: UnixTime,
                event: NewAuditEvent,
            ) -> Result<Agent, StoreError> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE agents SET identity_serial = $2, identity_expire_time = $3, update_time = $4 \
                     WHERE id = $1 AND retire_time IS NULL RETURNING {AGENT_COLUMNS}"
                )))
                .bind(id)
                .bind(serial)
                .bind(expire_time)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    let agent = self.get_agent(id).await?;
                    return Err(StoreError::FailedPrecondition(match agent.retire_time {
                        Some(at) => format!(
                            "agents/{id} was retired at {}; a retired agent gets no identity",
                            certctl_domain::rfc3339(at)
                        ),
                        None => format!("agents/{id} changed while its identity was recorded; try again"),
                    }));
                };
                let agent = Self::agent_from_row(&row)?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(agent)
            }

            async fn retire_agent(
                &self,
                id: &str,
                now: UnixTime,
                event: impl for<'a> FnOnce(&'a Agent) -> NewAuditEvent + Send,
            ) -> Result<(Agent, bool), StoreError> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE agents SET retire_time = $2, update_time = $2 \
                     WHERE id = $1 AND retire_time IS NULL RETURNING {AGENT_COLUMNS}"
                )))
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok((self.get_agent(id).await?, false));
                };
                let agent = Self::agent_from_row(&row)?;
                Self::outbox(&mut tx, &event(&agent)).await?;
                tx.commit().await?;
                Ok((agent, true))
            }

            async fn create_join_token(
                &self,
                token: &JoinToken,
                secret_hash: &str,
                event: NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO join_tokens (id, display_name, labels, agent_id, secret_hash, expire_time, create_time) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&token.id)
                .bind(&token.display_name)
                .bind(json(&token.labels))
                .bind(&token.agent_id)
                .bind(secret_hash)
                .bind(token.expire_time)
                .bind(token.create_time)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, || token.name()))?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_join_token(&self, id: &str) -> Result<JoinToken, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {TOKEN_COLUMNS} FROM join_tokens WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound { resource: format!("joinTokens/{id}") })?;
                Self::join_token_from_row(&row)
            }

            async fn list_join_tokens(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<JoinToken>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {TOKEN_COLUMNS} FROM join_tokens WHERE id > $1 ORDER BY id LIMIT $2"
                )))
                .bind(after_id.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::join_token_from_row).collect()
            }

            async fn delete_join_token(&self, id: &str, event: NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("DELETE FROM join_tokens WHERE id = $1").bind(id).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: format!("joinTokens/{id}") });
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn redeem_join_token(
                &self,
                secret_hash: &str,
                enrolment: &Enrolment,
                now: UnixTime,
                events: impl for<'a> FnOnce(&'a JoinToken, &'a Agent) -> Vec<NewAuditEvent> + Send,
            ) -> Result<Redemption, StoreError> {
                let mut tx = self.begin().await?;
                // Claiming the token is the first write: a concurrent
                // redemption waits on the row and then finds it used.
                let claimed = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE join_tokens SET redeem_time = $2 \
                     WHERE secret_hash = $1 AND redeem_time IS NULL AND expire_time > $2 RETURNING {TOKEN_COLUMNS}"
                )))
                .bind(secret_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = claimed else {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {TOKEN_COLUMNS} FROM join_tokens WHERE secret_hash = $1"
                    )))
                    .bind(secret_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return Ok(match row {
                        None => Redemption::Unknown,
                        Some(row) => {
                            let token = Self::join_token_from_row(&row)?;
                            if token.redeem_time.is_some() {
                                Redemption::AlreadyUsed(token)
                            } else {
                                Redemption::Expired(token)
                            }
                        }
                    });
                };
                let mut token = Self::join_token_from_row(&row)?;
                let mut agent = enrolment.agent(&token, now);
                let named = !token.agent_id.is_empty();
                for n in 1.. {
                    if !named {
                        agent.id = certctl_domain::agents::derived_agent_id(&enrolment.hostname, n);
                    }
                    let inserted = sqlx::query(
                        "INSERT INTO agents (id, body, create_time, update_time, version, capabilities) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&agent.id)
                    .bind(json(&agent))
                    .bind(agent.create_time)
                    .bind(agent.update_time)
                    .bind(&agent.version)
                    .bind(json(&agent.capabilities))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if inserted {
                        break;
                    }
                    if named {
                        return Err(StoreError::AlreadyExists { resource: agent.name() });
                    }
                    if n == MAX_DERIVED_IDS {
                        return Err(StoreError::FailedPrecondition(format!(
                            "{MAX_DERIVED_IDS} agents already have ids derived from {}; name the agent in the join token",
                            enrolment.hostname
                        )));
                    }
                }
                token.agent = agent.name();
                sqlx::query("UPDATE join_tokens SET agent = $2 WHERE id = $1")
                    .bind(&token.id)
                    .bind(&token.agent)
                    .execute(&mut *tx)
                    .await?;
                for event in events(&token, &agent) {
                    Self::outbox(&mut tx, &event).await?;
                }
                tx.commit().await?;
                Ok(Redemption::Redeemed { token, agent: Box::new(agent) })
            }
        }
    };
}

agent_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
agent_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
