//! The scheduler's API core over domain types: listing, cancel, retry,
//! manual renewal and watching jobs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_domain::DomainError;
use certctl_domain::job::{Job, JobTransition};
use certctl_domain::name::{self, Collection};
use certctl_domain::page;
use futures::Stream;

use crate::agent_work::{Answer, Continuation};
use crate::error::{Result, SchedulerError};
use crate::listing::{JobPage, ListJobs};
use crate::renewal_loop::next_version_job;
use crate::store::{JobOutcome, LeaseRef, Resume, Store};
use crate::upstream::{CallError, Upstreams};

/// How often a watch re-reads jobs that other replicas may have changed.
const WATCH_POLL: Duration = Duration::from_millis(500);
pub const MAX_BATCH: usize = 1000;
/// Certificates a bulk renewal reads from the inventory at once.
const RENEW_LOOKUPS: usize = 32;

pub struct Scheduler<S: Store + ?Sized> {
    pub store: Arc<S>,
    pub upstreams: Upstreams,
}

impl<S: Store + ?Sized> Clone for Scheduler<S> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone(), upstreams: self.upstreams.clone() }
    }
}

fn job_id(field: &str, name: &str) -> Result<String> {
    Ok(name::parse(field, Collection::Jobs, name)?.to_owned())
}

fn refused(e: CallError) -> SchedulerError {
    match e {
        CallError::Refused { code, message } if code == "NOT_FOUND" => {
            DomainError::NotFound { resource: message }.into()
        }
        CallError::Refused { message, .. } => DomainError::FailedPrecondition(message).into(),
        CallError::Unavailable(reason) => {
            certctl_common::StoreError::Unavailable(format!("the inventory is unavailable: {reason}")).into()
        }
    }
}

impl<S: Store + ?Sized> Scheduler<S> {
    pub async fn get(&self, name: &str) -> Result<Job> {
        self.store.get(&job_id("name", name)?).await
    }

    pub async fn list(&self, request: ListJobs) -> Result<JobPage> {
        request.run(self.store.as_ref()).await
    }

    pub async fn events(&self, parent: &str, page_size: i32, page_token: &str) -> Result<(Vec<JobTransition>, String)> {
        let id = job_id("parent", parent)?;
        self.store.get(&id).await?;
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["job-events", &id]);
        let after = page::decode_token(page_token, &fingerprint)?.and_then(|v| v.as_i64());
        let mut events = self.store.timeline(&id, after, limit + 1).await?;
        let more = events.len() as i64 > limit;
        events.truncate(limit as usize);
        let token = match events.last() {
            Some(last) if more => page::encode_token(&fingerprint, serde_json::json!(last.seq)),
            _ => String::new(),
        };
        Ok((events, token))
    }

    pub async fn cancel(&self, caller: &Caller, name: &str, reason: &str) -> Result<Job> {
        let id = job_id("name", name)?;
        let reason = if reason.is_empty() { format!("cancelled by {}", actor(caller)) } else { reason.to_owned() };
        let event = crate::audit_event(
            &caller.actor,
            &caller.request_id,
            "CancelJob",
            name,
            serde_json::json!({ "reason": reason }),
        );
        self.store.cancel(&id, &reason, event).await
    }

    pub async fn retry(&self, caller: &Caller, name: &str) -> Result<Job> {
        let id = job_id("name", name)?;
        let event = crate::audit_event(&caller.actor, &caller.request_id, "RetryJob", name, serde_json::json!({}));
        self.store.retry(&id, event).await
    }

    /// One job per certificate for its next version. An open job for the
    /// same version is returned as is; a failed or cancelled one runs again.
    pub async fn renew(&self, caller: &Caller, certificates: &[String], csr_pem: &str) -> Result<Vec<Job>> {
        if certificates.is_empty() || certificates.len() > MAX_BATCH {
            return Err(DomainError::invalid("certificates", format!("name 1 to {MAX_BATCH} certificates")).into());
        }
        if !csr_pem.is_empty() && certificates.len() > 1 {
            return Err(
                DomainError::invalid("csr_pem", "a CSR belongs to one certificate; renew the others apart").into()
            );
        }
        for (i, name) in certificates.iter().enumerate() {
            name::parse(&format!("certificates[{i}]"), Collection::Certificates, name)?;
        }
        // Read the certificates concurrently, in input order: one at a time,
        // a bulk renewal of 1000 waits for 1000 round trips in a row.
        use futures::StreamExt as _;
        let lookups = certificates.iter().cloned().map(|name| {
            let upstreams = self.upstreams.clone();
            async move { upstreams.certificate(&name).await }
        });
        let found: Vec<_> = futures::stream::iter(lookups).buffered(RENEW_LOOKUPS).collect().await;
        let mut new_jobs = Vec::with_capacity(certificates.len());
        for (name, certificate) in certificates.iter().zip(found) {
            let certificate = certificate.map_err(refused)?;
            if certificate.issuer.is_empty() {
                return Err(DomainError::FailedPrecondition(format!(
                    "{name} has no issuer, so certctl does not issue it (it was imported); set its issuer first"
                ))
                .into());
            }
            // Due now, whatever the renewal time says; keyed like the loop's job.
            let mut job = next_version_job(&certificate).ok_or_else(|| {
                DomainError::FailedPrecondition(format!("{name} is revoked; create a new certificate instead"))
            })?;
            job.payload["requested_by"] = serde_json::json!(actor(caller));
            if !csr_pem.is_empty() {
                // A job of its own per CSR: the version's job may have failed
                // for want of one, and a stored job's payload never changes.
                use sha2::Digest as _;
                let digest = sha2::Sha256::digest(csr_pem.trim().as_bytes());
                job.idempotency_key = format!("{}:csr:{}", job.idempotency_key, hex_prefix(&digest));
                job.payload["csr_pem"] = serde_json::json!(csr_pem);
            }
            new_jobs.push(job);
        }
        // One transaction for all of them; a job that already failed or was
        // cancelled for this version runs again.
        let mut jobs = Vec::with_capacity(new_jobs.len());
        for enqueued in self.store.enqueue_many(new_jobs).await? {
            let job = if !enqueued.created && enqueued.job.state.is_terminal() && enqueued.job.error.is_some() {
                let event = crate::audit_event(
                    &caller.actor,
                    &caller.request_id,
                    "RetryJob",
                    &enqueued.job.name(),
                    serde_json::json!({ "via": "RenewCertificates" }),
                );
                self.store.retry(&enqueued.job.id, event).await?
            } else {
                enqueued.job
            };
            jobs.push(job);
        }
        Ok(jobs)
    }

    /// Jobs waiting for `agent`, oldest first, with their commands.
    pub async fn agent_work(&self, agent: &str, page_size: i32, page_token: &str) -> Result<(Vec<Job>, String)> {
        name::parse("agent", Collection::Agents, agent)?;
        let limit = page::page_size(page_size)?;
        let after = (!page_token.is_empty()).then_some(page_token);
        if let Some(after) = after
            && !(after.len() == 32 && after.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(DomainError::invalid("page_token", "not a token this listing returned").into());
        }
        let jobs = self.store.agent_work(agent, after, limit + 1).await?;
        Ok(page_of(jobs, limit))
    }

    /// An agent's answer to the command a job waits on: the job runs on with
    /// it, or fails when the agent refused the command.
    pub async fn complete_agent_work(&self, job: &str, agent: &str, answer: Answer) -> Result<Job> {
        let id = job_id("job", job)?;
        name::parse("agent", Collection::Agents, agent)?;
        let current = self.store.get(&id).await?;
        match crate::agent_work::answer(&current, agent, answer)? {
            Continuation::Resume(payload) => self.store.resume(&id, Some(payload), Resume::Pending).await,
            Continuation::Fail(error) => {
                let running = self
                    .store
                    .resume(&id, None, Resume::Running { worker: format!("hub:{agent}"), lease_secs: 60 })
                    .await?;
                let lease = LeaseRef::of(&running)
                    .ok_or_else(|| certctl_common::StoreError::Internal("a resumed job has no lease".into()))?;
                self.store.report_one(&lease, JobOutcome::Fail(error)).await
            }
        }
    }

    /// The named jobs now, then each again whenever it changes, until all
    /// are finished.
    pub async fn watch(&self, names: &[String]) -> Result<impl Stream<Item = Result<Job>> + use<S>> {
        if names.is_empty() || names.len() > MAX_BATCH {
            return Err(DomainError::invalid("names", format!("name 1 to {MAX_BATCH} jobs")).into());
        }
        let mut current = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            current.push(self.store.get(&job_id(&format!("names[{i}]"), name)?).await?);
        }
        let store = self.store.clone();
        let mut wakeups = store.wakeups();
        Ok(async_stream(move |tx| async move {
            let mut seen: HashMap<String, (i64, String)> = HashMap::new();
            let mut open: Vec<String> = Vec::new();
            for job in current {
                seen.insert(job.id.clone(), (job.update_time, job.state.as_str().to_owned()));
                if !job.state.is_terminal() {
                    open.push(job.id.clone());
                }
                if tx.send(Ok(job)).await.is_err() {
                    return;
                }
            }
            while !open.is_empty() {
                tokio::select! {
                    _ = wakeups.changed() => {}
                    _ = tokio::time::sleep(WATCH_POLL) => {}
                }
                let mut still_open = Vec::new();
                for id in open {
                    let job = match store.get(&id).await {
                        Ok(job) => job,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let stamp = (job.update_time, job.state.as_str().to_owned());
                    let changed = seen.get(&id) != Some(&stamp);
                    seen.insert(id.clone(), stamp);
                    if !job.state.is_terminal() {
                        still_open.push(id);
                    }
                    if changed && tx.send(Ok(job)).await.is_err() {
                        return;
                    }
                }
                open = still_open;
            }
        }))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn actor(caller: &Caller) -> &str {
    if caller.actor.is_empty() { "anonymous" } else { &caller.actor }
}

/// A stream fed by a task through a bounded channel; the task stops when the
/// receiver is dropped.
fn async_stream<T, F, Fut>(body: F) -> impl Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A page of `limit` from `limit + 1` fetched, and the token after it.
fn page_of(mut jobs: Vec<Job>, limit: i64) -> (Vec<Job>, String) {
    let more = jobs.len() as i64 > limit;
    jobs.truncate(limit as usize);
    let next = if more { jobs.last().map(|j| j.id.clone()).unwrap_or_default() } else { String::new() };
    (jobs, next)
}
