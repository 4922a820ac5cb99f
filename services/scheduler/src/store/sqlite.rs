//! The SQLite store: one process owns the database file, so the single
//! writer lock (`BEGIN IMMEDIATE`) is all the coordination claiming needs,
//! wake-ups stay in-process, and leadership is an in-process lock.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sqlx::sqlite::SqlitePool;
use tokio::sync::watch;

use super::sql::sql_store;
use crate::clock::{Clock, SystemClock};
use crate::wakeup::WakeHub;

/// The scheduler store on SQLite. Clones share the pool, the clock and the
/// wake-ups; open one store per database file per process.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    wake: Arc<WakeHub>,
}

/// Leaderships held in this process, by database file and name.
static HELD: Mutex<BTreeSet<(PathBuf, String)>> = Mutex::new(BTreeSet::new());

impl SqliteStore {
    /// A store on the wall clock with the default retry policy.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool, clock: Arc::new(SystemClock), retry: RetryPolicy::default(), wake: Arc::new(WakeHub::new()) }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        // Take the write lock up front: writers then queue on busy_timeout
        // instead of failing to upgrade a read lock halfway through.
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn notify(_tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>) -> Result<()> {
        // Every worker of this database lives in this process: `wake` after
        // the commit reaches them all.
        Ok(())
    }

    fn subscribe(&self) -> Wakeups {
        self.wake.subscribe()
    }

    async fn notify_agents(_tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>, _agents: &[&str]) -> Result<()> {
        Ok(())
    }

    /// After the commit: every hub watching this database is in this process.
    fn announce_agents(&self, agents: &[&str]) {
        for agent in agents {
            self.wake.agent_work(agent);
        }
    }

    fn subscribe_agents(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.wake.agent_notices()
    }

    async fn lead(&self, name: &str) -> Result<Option<Leadership>> {
        let key = (self.pool.connect_options().get_filename().to_path_buf(), name.to_owned());
        let mut held = HELD.lock().map_err(|_| StoreError::Internal("the leadership registry is poisoned".into()))?;
        if !held.insert(key.clone()) {
            return Ok(None);
        }
        let (never_lost, lost) = watch::channel(false);
        Ok(Some(Leadership::new(
            name,
            lost,
            Box::new(move || {
                drop(never_lost);
                if let Ok(mut held) = HELD.lock() {
                    held.remove(&key);
                }
            }),
        )))
    }

    /// Claims in two statements under the write lock: nobody else can claim
    /// between them.
    async fn claim_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
        now: i64,
        limit: usize,
        worker: &str,
        expires_at: i64,
    ) -> Result<Vec<(JobState, Option<String>, Job)>> {
        let picked = sqlx::query(
            "SELECT id, state, lease_owner FROM jobs WHERE due_at IS NOT NULL AND due_at <= $1 ORDER BY due_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut **tx)
        .await?;
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let mut before = HashMap::with_capacity(picked.len());
        for row in &picked {
            let state = parse_state(&row.try_get::<String, _>("state")?)?;
            before.insert(row.try_get::<String, _>("id")?, (state, row.try_get::<Option<String>, _>("lease_owner")?));
        }
        let mut claimed = Vec::with_capacity(picked.len());
        let ids: Vec<&String> = before.keys().collect();
        for chunk in ids.chunks(CHUNK) {
            let mut qb =
                QueryBuilder::<sqlx::Sqlite>::new("UPDATE jobs SET state = 'running', attempts = attempts + 1, ");
            qb.push("lease_owner = ").push_bind(worker.to_owned());
            qb.push(", lease_token = lower(hex(randomblob(16))), lease_expires_at = ").push_bind(expires_at);
            qb.push(", due_at = ").push_bind(expires_at).push(", update_time = ").push_bind(now);
            qb.push(" WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind((*id).clone());
            }
            qb.push(") RETURNING ").push(JOB_COLUMNS);
            for row in qb.build().fetch_all(&mut **tx).await? {
                let job = Self::job_from_row(&row)?;
                let (from, owner) = before.get(&job.id).cloned().unwrap_or((JobState::Pending, None));
                claimed.push((from, owner, job));
            }
        }
        Ok(claimed)
    }
}

sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "");
