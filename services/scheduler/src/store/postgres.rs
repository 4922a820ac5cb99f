//! The PostgreSQL store: any number of replicas share the database.
//! Claiming skips rows another replica has locked (`FOR UPDATE SKIP LOCKED`),
//! wake-ups travel as `NOTIFY` on commit, and leadership is an advisory lock
//! held by a dedicated connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnection, PgListener, PgPool};
use tokio::sync::{oneshot, watch};

use super::sql::sql_store;
use super::{AGENT_WORK_CHANNEL, WAKE_CHANNEL};
use crate::clock::{Clock, SystemClock};
use crate::wakeup::WakeHub;

/// How often a leader checks that its lock's connection is alive.
pub const DEFAULT_LEADER_PING: Duration = Duration::from_secs(5);

/// The scheduler store on PostgreSQL (schema `scheduler`). Clones share the
/// pool, the clock, the wake-ups and the one listener connection.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    wake: Arc<WakeHub>,
    listening: Arc<AtomicBool>,
    leader_ping: Duration,
}

impl PostgresStore {
    /// A store on the wall clock with the default retry policy.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            wake: Arc::new(WakeHub::new()),
            listening: Arc::new(AtomicBool::new(false)),
            leader_ping: DEFAULT_LEADER_PING,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How often a leader pings its lock connection, which bounds how long a
    /// lost leadership goes unnoticed.
    pub fn with_leader_ping(mut self, every: Duration) -> Self {
        self.leader_ping = every;
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Delivered to every listening replica when the transaction commits,
    /// and not at all if it rolls back.
    async fn notify(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, '')").bind(WAKE_CHANNEL).execute(&mut **tx).await?;
        Ok(())
    }

    fn subscribe(&self) -> Wakeups {
        let wakeups = self.wake.subscribe();
        self.ensure_listening();
        wakeups
    }

    /// In the transaction: delivered to every replica's listener (this one's
    /// too) on commit, which announces the agents to its hubs.
    async fn notify_agents(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>, agents: &[&str]) -> Result<()> {
        for agent in agents {
            sqlx::query("SELECT pg_notify($1, $2)").bind(AGENT_WORK_CHANNEL).bind(*agent).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The listener announces them, for this replica as for the others.
    fn announce_agents(&self, _agents: &[&str]) {}

    fn subscribe_agents(&self) -> tokio::sync::broadcast::Receiver<String> {
        let notices = self.wake.agent_notices();
        self.ensure_listening();
        notices
    }

    fn ensure_listening(&self) {
        if !self.listening.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(listen(self.pool.clone(), self.wake.sender(), self.wake.agent_sender()));
                }
                Err(_) => {
                    self.listening.store(false, Ordering::SeqCst);
                    tracing::warn!("no Tokio runtime: wake-ups from other replicas are not received");
                }
            }
        }
    }

    async fn lead(&self, name: &str) -> Result<Option<Leadership>> {
        let key = advisory_key(name);
        // Out of the pool: the lock lives exactly as long as this connection.
        let mut conn = self.pool.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut conn).await?;
        if !locked {
            conn.close().await.ok();
            return Ok(None);
        }
        let (lost_tx, lost) = watch::channel(false);
        let (release, released) = oneshot::channel::<()>();
        tokio::spawn(keep_lock(conn, key, name.to_owned(), lost_tx, released, self.leader_ping));
        Ok(Some(Leadership::new(name, lost, Box::new(move || drop(release)))))
    }

    /// One statement: the CTE locks due rows no other claimer holds, the
    /// UPDATE leases them, and RETURNING hands them back with the state and
    /// owner they had.
    async fn claim_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        now: i64,
        limit: usize,
        worker: &str,
        expires_at: i64,
    ) -> Result<Vec<(JobState, Option<String>, Job)>> {
        let returning: Vec<String> = JOB_COLUMNS.split(", ").map(|c| format!("jobs.{c}")).collect();
        let sql = format!(
            "WITH picked AS (\
                SELECT id, state AS from_state, lease_owner AS from_owner FROM jobs \
                WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET state = 'running', attempts = jobs.attempts + 1, lease_owner = $3, \
                lease_token = replace(gen_random_uuid()::text, '-', ''), lease_expires_at = $4, due_at = $4, \
                update_time = $1 \
             FROM picked WHERE jobs.id = picked.id \
             RETURNING picked.from_state, picked.from_owner, {}",
            returning.join(", ")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(worker)
            .bind(expires_at)
            .fetch_all(&mut **tx)
            .await?;
        rows.iter()
            .map(|row| {
                let from = parse_state(&row.try_get::<String, _>("from_state")?)?;
                Ok((from, row.try_get("from_owner")?, Self::job_from_row(row)?))
            })
            .collect()
    }
}

sql_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow, " FOR UPDATE");

/// Advisory locks are per database, not per schema: the key carries the
/// service's name so another service's locks cannot collide with ours.
fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("certctl.scheduler:{name}").as_bytes());
    let mut word = [0_u8; 8];
    word.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(word)
}

/// Holds the lock until the guard is dropped, and reports loss when the
/// connection stops answering.
async fn keep_lock(
    mut conn: PgConnection,
    key: i64,
    name: String,
    lost: watch::Sender<bool>,
    mut released: oneshot::Receiver<()>,
    every: Duration,
) {
    loop {
        tokio::select! {
            _ = &mut released => {
                // Give the lock back now rather than when the server notices
                // the connection is gone.
                let unlock = sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut conn);
                let _ = tokio::time::timeout(Duration::from_secs(5), unlock).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
                return;
            }
            _ = tokio::time::sleep(every) => {
                let ping = tokio::time::timeout(every.max(Duration::from_secs(1)), conn.ping()).await;
                if !matches!(ping, Ok(Ok(()))) {
                    tracing::warn!(leadership = %name, "the leader's lock connection is gone; leadership lost");
                    lost.send_replace(true);
                    return;
                }
            }
        }
    }
}

/// Forwards `NOTIFY`s from other replicas to this store's wake-ups and agent
/// notices until the store and every subscription are gone.
async fn listen(pool: PgPool, wake: Arc<watch::Sender<u64>>, agents: tokio::sync::broadcast::Sender<String>) {
    let mut backoff = Duration::from_millis(100);
    let bump = || wake.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen_all([WAKE_CHANNEL, AGENT_WORK_CHANNEL]).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            connected = connected => match connected {
                Ok(listener) => listener,
                Err(sqlx::Error::PoolClosed) => return,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot listen for job wake-ups");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = wake.closed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            },
            _ = wake.closed() => return,
        };
        backoff = Duration::from_millis(100);
        // Anything sent while we were not listening is lost: look once, and
        // tell hubs to look for every agent they hold.
        bump();
        let _ = agents.send(super::EVERY_AGENT.to_owned());
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) if notification.channel() == AGENT_WORK_CHANNEL => {
                        let _ = agents.send(notification.payload().to_owned());
                    }
                    Ok(Some(_)) => bump(),
                    // The connection dropped and was re-established.
                    Ok(None) => bump(),
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the job wake-up listener; reconnecting");
                        break;
                    }
                },
                _ = wake.closed() => return,
            }
        }
    }
}
