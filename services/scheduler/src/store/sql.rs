//! The SQL both backends share. The statements are the same text for SQLite
//! and PostgreSQL (`UPDATE ... FROM (VALUES ...)`, `ON CONFLICT`,
//! `RETURNING`), so one macro expands them against each driver's types. What
//! differs lives in `sqlite.rs` and `postgres.rs`: how a transaction takes
//! the write lock, row locks, the claim statement, wake-ups and leadership.

macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty, $for_update:expr) => {
        use std::collections::{BTreeMap, HashMap, HashSet};

        use certctl_common::StoreError;
        use certctl_domain::audit::NewAuditEvent;
        use certctl_domain::job::{Job, JobError, JobState, JobTransition, Lease, NewJob, RetryPolicy};
        use sqlx::{QueryBuilder, Row};

        use crate::error::{Result, not_found};
        use crate::leader::Leadership;
        use crate::store::rows::{
            CHUNK, Entry, JOB_COLUMNS, check_lease_secs, claim_message, creation_entry, error_parts, json_text,
            new_job_id, parse_json, parse_state, random_id, to_i32, validate_new_jobs,
        };
        use crate::store::{Enqueued, JobQuery, LeaseRef, OutboxEntry, Report, Resume, Store};
        use crate::transition::{self, Change};
        use crate::wakeup::Wakeups;

        impl $store {
            fn job_from_row(row: &$row) -> Result<Job> {
                let lease = match row.try_get::<Option<String>, _>("lease_token")? {
                    Some(token) => Some(Lease {
                        owner: row.try_get::<Option<String>, _>("lease_owner")?.unwrap_or_default(),
                        token,
                        expires_at: row.try_get::<Option<i64>, _>("lease_expires_at")?.unwrap_or_default(),
                    }),
                    None => None,
                };
                let error = match row.try_get::<Option<String>, _>("error_code")? {
                    Some(code) => Some(JobError {
                        code,
                        message: row.try_get::<Option<String>, _>("error_message")?.unwrap_or_default(),
                    }),
                    None => None,
                };
                let kind: String = row.try_get("kind")?;
                Ok(Job {
                    id: row.try_get("id")?,
                    kind: kind.parse().map_err(|_| crate::error::corrupt("kind", &kind))?,
                    state: parse_state(&row.try_get::<String, _>("state")?)?,
                    certificate: row.try_get("certificate")?,
                    idempotency_key: row.try_get("idempotency_key")?,
                    payload: parse_json("payload", &row.try_get::<String, _>("payload")?)?,
                    result: match row.try_get::<Option<String>, _>("result")? {
                        Some(text) => Some(parse_json("result", &text)?),
                        None => None,
                    },
                    error,
                    attempts: to_i32("attempts", row.try_get("attempts")?)?,
                    max_attempts: to_i32("max_attempts", row.try_get("max_attempts")?)?,
                    run_at: row.try_get("run_at")?,
                    lease,
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                })
            }

            /// The jobs with these ids, locked until the transaction ends
            /// (PostgreSQL row locks in id order; SQLite's write lock).
            async fn lock_jobs(tx: &mut sqlx::Transaction<'static, $db>, ids: &[&str]) -> Result<HashMap<String, Job>> {
                let mut found = HashMap::with_capacity(ids.len());
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ("));
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.to_string());
                    }
                    qb.push(") ORDER BY id");
                    qb.push($for_update);
                    for row in qb.build().fetch_all(&mut **tx).await? {
                        let job = Self::job_from_row(&row)?;
                        found.insert(job.id.clone(), job);
                    }
                }
                Ok(found)
            }

            async fn write_entries(
                tx: &mut sqlx::Transaction<'static, $db>,
                entries: &[Entry],
                now: certctl_domain::UnixTime,
            ) -> Result<()> {
                for chunk in entries.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO job_events (job_id, time, from_state, to_state, attempt, message) ",
                    );
                    qb.push_values(chunk, |mut b, e| {
                        b.push_bind(e.job_id.clone())
                            .push_bind(now)
                            .push_bind(e.from.map(|s| s.as_str()))
                            .push_bind(e.to.as_str())
                            .push_bind(i64::from(e.attempt))
                            .push_bind(e.message.clone());
                    });
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Persists changes decided by `transition` and their timeline.
            async fn write_changes(
                tx: &mut sqlx::Transaction<'static, $db>,
                changes: &[Change],
                now: certctl_domain::UnixTime,
            ) -> Result<()> {
                for chunk in changes.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "UPDATE jobs SET state = v.column2, payload = v.column3, result = v.column4, \
                         error_code = v.column5, error_message = v.column6, attempts = v.column7, run_at = v.column8, \
                         due_at = v.column9, lease_owner = v.column10, lease_token = v.column11, \
                         lease_expires_at = v.column12, update_time = v.column13 FROM (",
                    );
                    qb.push_values(chunk, |mut b, c| {
                        let j = &c.job;
                        let (code, message) = error_parts(&j.error);
                        b.push_bind(j.id.clone())
                            .push_bind(j.state.as_str())
                            .push_bind(json_text(&j.payload))
                            .push_bind(j.result.as_ref().map(json_text))
                            .push_bind(code)
                            .push_bind(message)
                            .push_bind(i64::from(j.attempts))
                            .push_bind(j.run_at)
                            .push_bind(c.due_at)
                            .push_bind(j.lease.as_ref().map(|l| l.owner.clone()))
                            .push_bind(j.lease.as_ref().map(|l| l.token.clone()))
                            .push_bind(j.lease.as_ref().map(|l| l.expires_at))
                            .push_bind(j.update_time);
                    });
                    qb.push(") AS v WHERE jobs.id = v.column1");
                    qb.build().execute(&mut **tx).await?;
                }
                let entries: Vec<Entry> = changes
                    .iter()
                    .map(|c| Entry {
                        job_id: c.job.id.clone(),
                        from: Some(c.from),
                        to: c.job.state,
                        attempt: c.job.attempts,
                        message: c.message.clone(),
                    })
                    .collect();
                Self::write_entries(tx, &entries, now).await
            }

            async fn write_outbox(tx: &mut sqlx::Transaction<'static, $db>, event: &NewAuditEvent) -> Result<()> {
                let text = serde_json::to_string(event)
                    .map_err(|e| StoreError::Internal(format!("an audit event does not serialise: {e}")))?;
                sqlx::query("INSERT INTO outbox (event) VALUES ($1)").bind(text).execute(&mut **tx).await?;
                Ok(())
            }

            /// Loads one job, decides its change, persists it (with `event` in
            /// the outbox) and wakes workers if it became claimable.
            async fn change_one(
                &self,
                id: &str,
                decide: impl FnOnce(&Job, certctl_domain::UnixTime) -> Result<Change> + Send,
                event: Option<NewAuditEvent>,
            ) -> Result<Job> {
                let now = self.clock.now();
                let mut tx = self.begin().await?;
                let job = Self::lock_jobs(&mut tx, &[id]).await?.remove(id).ok_or_else(|| not_found(id))?;
                let change = decide(&job, now)?;
                Self::write_changes(&mut tx, std::slice::from_ref(&change), now).await?;
                if let Some(event) = &event {
                    Self::write_outbox(&mut tx, event).await?;
                }
                let wake = change.due_at.is_some();
                if wake {
                    Self::notify(&mut tx).await?;
                }
                tx.commit().await?;
                if wake {
                    self.wake.wake();
                }
                Ok(change.job)
            }

            async fn insert_new(tx: &mut sqlx::Transaction<'static, $db>, jobs: &[Job]) -> Result<HashSet<String>> {
                let mut created = HashSet::with_capacity(jobs.len());
                for chunk in jobs.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO jobs (id, kind, state, certificate, idempotency_key, payload, attempts, \
                         max_attempts, run_at, due_at, create_time, update_time) ",
                    );
                    qb.push_values(chunk, |mut b, j| {
                        b.push_bind(j.id.clone())
                            .push_bind(j.kind.as_str())
                            .push_bind(j.state.as_str())
                            .push_bind(j.certificate.clone())
                            .push_bind(j.idempotency_key.clone())
                            .push_bind(json_text(&j.payload))
                            .push_bind(i64::from(j.attempts))
                            .push_bind(i64::from(j.max_attempts))
                            .push_bind(j.run_at)
                            .push_bind(j.run_at)
                            .push_bind(j.create_time)
                            .push_bind(j.update_time);
                    });
                    qb.push(" ON CONFLICT (idempotency_key) DO NOTHING RETURNING id");
                    for row in qb.build().fetch_all(&mut **tx).await? {
                        created.insert(row.try_get::<String, _>("id")?);
                    }
                }
                Ok(created)
            }

            async fn jobs_by_keys(
                tx: &mut sqlx::Transaction<'static, $db>,
                keys: &[&str],
            ) -> Result<HashMap<String, Job>> {
                let mut found = HashMap::with_capacity(keys.len());
                for chunk in keys.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key IN ("
                    ));
                    let mut list = qb.separated(", ");
                    for key in chunk {
                        list.push_bind(key.to_string());
                    }
                    qb.push(")");
                    for row in qb.build().fetch_all(&mut **tx).await? {
                        let job = Self::job_from_row(&row)?;
                        found.insert(job.idempotency_key.clone(), job);
                    }
                }
                Ok(found)
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            fn clock(&self) -> std::sync::Arc<dyn crate::clock::Clock> {
                self.clock.clone()
            }

            fn retry_policy(&self) -> RetryPolicy {
                self.retry
            }

            async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
                validate_new_jobs(&jobs)?;
                let now = self.clock.now();
                // The first job of each key is the one inserted; repeats in
                // the same call resolve to whatever that key holds.
                let mut slot_of_key: HashMap<String, usize> = HashMap::with_capacity(jobs.len());
                let mut slots = Vec::with_capacity(jobs.len());
                let mut unique: Vec<Job> = Vec::with_capacity(jobs.len());
                for job in jobs {
                    let next = unique.len();
                    let slot = *slot_of_key.entry(job.idempotency_key.clone()).or_insert(next);
                    if slot == next {
                        unique.push(job.into_job(new_job_id(), &self.retry, now));
                    }
                    slots.push(slot);
                }
                let mut tx = self.begin().await?;
                let created = Self::insert_new(&mut tx, &unique).await?;
                let taken: Vec<&str> =
                    unique.iter().filter(|j| !created.contains(&j.id)).map(|j| j.idempotency_key.as_str()).collect();
                let mut existing = Self::jobs_by_keys(&mut tx, &taken).await?;
                if !created.is_empty() {
                    Self::notify(&mut tx).await?;
                }
                tx.commit().await?;
                if !created.is_empty() {
                    self.wake.wake();
                }
                let mut resolved = Vec::with_capacity(unique.len());
                for job in unique {
                    if created.contains(&job.id) {
                        resolved.push(Enqueued { job, created: true });
                    } else {
                        let stored = existing.remove(&job.idempotency_key).ok_or_else(|| {
                            StoreError::Internal(format!("idempotency key {} vanished", job.idempotency_key))
                        })?;
                        resolved.push(Enqueued { job: stored, created: false });
                    }
                }
                let mut seen = vec![false; resolved.len()];
                Ok(slots
                    .into_iter()
                    .map(|slot| {
                        let mut e = resolved[slot].clone();
                        // Only the first mention of a key created it.
                        e.created &= !std::mem::replace(&mut seen[slot], true);
                        e
                    })
                    .collect())
            }

            async fn claim(&self, worker: &str, limit: usize, lease_secs: i64) -> Result<Vec<Job>> {
                check_lease_secs(lease_secs)?;
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let now = self.clock.now();
                let mut tx = self.begin().await?;
                let claimed = self.claim_rows(&mut tx, now, limit, worker, now + lease_secs).await?;
                let mut entries = Vec::with_capacity(claimed.len());
                let mut exhausted = Vec::new();
                let mut jobs = Vec::with_capacity(claimed.len());
                for (from, previous_owner, job) in claimed {
                    if job.attempts > job.max_attempts {
                        exhausted.push(transition::exhausted(&job, from, now));
                        continue;
                    }
                    entries.push(Entry {
                        job_id: job.id.clone(),
                        from: Some(from),
                        to: JobState::Running,
                        attempt: job.attempts,
                        message: claim_message(worker, from, previous_owner.as_deref()),
                    });
                    jobs.push(job);
                }
                Self::write_entries(&mut tx, &entries, now).await?;
                Self::write_changes(&mut tx, &exhausted, now).await?;
                tx.commit().await?;
                jobs.sort_by(|a, b| (a.run_at, &a.id).cmp(&(b.run_at, &b.id)));
                Ok(jobs)
            }

            async fn extend_lease(&self, lease: &LeaseRef, lease_secs: i64) -> Result<certctl_domain::UnixTime> {
                check_lease_secs(lease_secs)?;
                let now = self.clock.now();
                let expires_at = now + lease_secs;
                let done = sqlx::query(
                    "UPDATE jobs SET lease_expires_at = $1, due_at = $1, update_time = $2 \
                     WHERE id = $3 AND lease_token = $4 AND state = 'running' AND lease_expires_at > $2",
                )
                .bind(expires_at)
                .bind(now)
                .bind(&lease.job_id)
                .bind(&lease.token)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(expires_at);
                }
                let job = self.get(&lease.job_id).await?;
                transition::check_lease(&job, lease)?;
                let expired_at = job.lease.map_or(now, |l| l.expires_at);
                Err(crate::error::SchedulerError::LeaseLost {
                    job: job_name_of(&lease.job_id),
                    loss: crate::error::LeaseLoss::Expired { expired_at },
                })
            }

            async fn report(&self, reports: Vec<Report>) -> Result<Vec<Result<Job>>> {
                if reports.is_empty() {
                    return Ok(Vec::new());
                }
                let now = self.clock.now();
                let mut tx = self.begin().await?;
                let mut ids: Vec<&str> = reports.iter().map(|r| r.lease.job_id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut current = Self::lock_jobs(&mut tx, &ids).await?;
                let mut results = Vec::with_capacity(reports.len());
                let mut changes = Vec::new();
                for Report { lease, outcome } in reports {
                    let Some(job) = current.get(&lease.job_id) else {
                        results.push(Err(not_found(&lease.job_id)));
                        continue;
                    };
                    let decided = transition::check_lease(job, &lease)
                        .and_then(|()| transition::report(job, outcome, now, &self.retry, rand::random()));
                    match decided {
                        Ok(change) => {
                            // A second report for the same lease sees the first one's result.
                            current.insert(change.job.id.clone(), change.job.clone());
                            results.push(Ok(change.job.clone()));
                            changes.push(change);
                        }
                        Err(e) => results.push(Err(e)),
                    }
                }
                Self::write_changes(&mut tx, &changes, now).await?;
                // A job that failed for good is an audit event: the trail is
                // how others (notifications) hear of it.
                for change in changes.iter().filter(|c| c.job.state == JobState::Failed) {
                    Self::write_outbox(&mut tx, &crate::job_failed_event(&change.job)).await?;
                }
                // A retry or an agent timeout may be due before an idle worker's alarm.
                let wake = changes.iter().any(|c| c.due_at.is_some());
                if wake {
                    Self::notify(&mut tx).await?;
                }
                let mut agents: Vec<&str> = changes.iter().filter_map(|c| crate::store::awaited_agent(&c.job)).collect();
                agents.sort_unstable();
                agents.dedup();
                Self::notify_agents(&mut tx, &agents).await?;
                tx.commit().await?;
                if wake {
                    self.wake.wake();
                }
                self.announce_agents(&agents);
                Ok(results)
            }

            async fn resume(&self, id: &str, payload: Option<serde_json::Value>, to: Resume) -> Result<Job> {
                if let Resume::Running { lease_secs, .. } = &to {
                    check_lease_secs(*lease_secs)?;
                }
                self.change_one(id, |job, now| transition::resume(job, payload, &to, now, random_id()), None).await
            }

            async fn cancel(&self, id: &str, reason: &str, event: NewAuditEvent) -> Result<Job> {
                self.change_one(id, |job, now| transition::cancel(job, reason, now), Some(event)).await
            }

            async fn retry(&self, id: &str, event: NewAuditEvent) -> Result<Job> {
                self.change_one(id, transition::retry, Some(event)).await
            }

            async fn get(&self, id: &str) -> Result<Job> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                Self::job_from_row(&row)
            }

            async fn find_by_idempotency_key(&self, key: &str) -> Result<Option<Job>> {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE idempotency_key = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(&self.pool).await?;
                row.as_ref().map(Self::job_from_row).transpose()
            }

            async fn list(&self, query: &JobQuery) -> Result<Vec<Job>> {
                let mut qb = QueryBuilder::<$db>::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
                if let Some(state) = query.filter.state {
                    qb.push(" AND state = ").push_bind(state.as_str());
                }
                if let Some(kind) = query.filter.kind {
                    qb.push(" AND kind = ").push_bind(kind.as_str());
                }
                if let Some(certificate) = &query.filter.certificate {
                    qb.push(" AND certificate = ").push_bind(certificate.clone());
                }
                let (cmp, dir) = if query.newest_first { ("<", "DESC") } else { (">", "ASC") };
                if let Some(after) = &query.after {
                    qb.push(format!(" AND (create_time, id) {cmp} ("))
                        .push_bind(after.create_time)
                        .push(", ")
                        .push_bind(after.id.clone())
                        .push(")");
                }
                qb.push(format!(" ORDER BY create_time {dir}, id {dir} LIMIT ")).push_bind(query.limit);
                let rows = qb.build().fetch_all(&self.pool).await?;
                rows.iter().map(Self::job_from_row).collect()
            }

            async fn count_by_state(&self) -> Result<BTreeMap<JobState, i64>> {
                let rows = sqlx::query("SELECT state, count(*) AS n FROM jobs GROUP BY state").fetch_all(&self.pool).await?;
                let mut counts = BTreeMap::new();
                for row in rows {
                    counts.insert(parse_state(&row.try_get::<String, _>("state")?)?, row.try_get::<i64, _>("n")?);
                }
                Ok(counts)
            }

            async fn timeline(&self, id: &str, after_seq: Option<i64>, limit: i64) -> Result<Vec<JobTransition>> {
                let after = after_seq.unwrap_or(-1);
                let mut timeline = Vec::new();
                if after < 0 && limit > 0 {
                    // The creation is read from the job row (seq 0); it is
                    // also how an unknown job is NOT_FOUND, not an empty timeline.
                    timeline.push(creation_entry(&self.get(id).await?));
                }
                let rows = sqlx::query(
                    "SELECT seq, time, from_state, to_state, attempt, message FROM job_events \
                     WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(id)
                .bind(after)
                .bind(limit - timeline.len() as i64)
                .fetch_all(&self.pool)
                .await?;
                if rows.is_empty() && timeline.is_empty() {
                    self.get(id).await?;
                }
                for row in &rows {
                    timeline.push(JobTransition {
                        seq: row.try_get("seq")?,
                        time: row.try_get("time")?,
                        from: row.try_get::<Option<String>, _>("from_state")?.as_deref().map(parse_state).transpose()?,
                        to: parse_state(&row.try_get::<String, _>("to_state")?)?,
                        attempt: to_i32("attempt", row.try_get("attempt")?)?,
                        message: row.try_get("message")?,
                    });
                }
                Ok(timeline)
            }

            async fn agent_work(&self, agent: &str, after_id: Option<&str>, limit: i64) -> Result<Vec<Job>> {
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'awaiting_agent' AND agent = $1 AND id > $2 \
                     ORDER BY id LIMIT $3"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(agent)
                    .bind(after_id.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::job_from_row).collect()
            }

            fn agent_notices(&self) -> tokio::sync::broadcast::Receiver<String> {
                self.subscribe_agents()
            }

            async fn next_run_at(&self) -> Result<Option<certctl_domain::UnixTime>> {
                let next: Option<i64> =
                    sqlx::query_scalar("SELECT due_at FROM jobs WHERE due_at IS NOT NULL ORDER BY due_at LIMIT 1")
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(next)
            }

            fn wakeups(&self) -> Wakeups {
                self.subscribe()
            }

            async fn try_lead(&self, name: &str) -> Result<Option<Leadership>> {
                self.lead(name).await
            }

            async fn outbox_batch(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
                let rows =
                    sqlx::query("SELECT id, event FROM outbox ORDER BY id LIMIT $1").bind(limit).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| {
                        let text: String = row.try_get("event")?;
                        let event = serde_json::from_str(&text)
                            .map_err(|e| StoreError::Internal(format!("corrupt JSON in outbox.event: {e}")))?;
                        Ok(OutboxEntry { id: row.try_get("id")?, event })
                    })
                    .collect()
            }

            async fn outbox_ack(&self, ids: &[i64]) -> Result<(), StoreError> {
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new("DELETE FROM outbox WHERE id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    qb.push(")");
                    qb.build().execute(&self.pool).await?;
                }
                Ok(())
            }
        }

        fn job_name_of(id: &str) -> String {
            certctl_domain::job::job_name(id)
        }
    };
}

pub(super) use sql_store;
