//! The worker loop: claims batches of due jobs, runs a handler on each while
//! renewing its lease, and reports outcomes in batches.
//!
//! An idle worker sleeps until the store's `next_run_at` or a wake-up,
//! whichever is first, so due work starts on time without polling. A job
//! whose lease is lost (expired, taken over, cancelled) has its handler
//! dropped at the next renewal: the new owner, or nobody, does the rest.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use certctl_common::shutdown::Shutdown;
use certctl_domain::job::{Job, JobError};
use futures::FutureExt as _;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::error::SchedulerError;
use crate::store::{JobOutcome, LeaseRef, Report, Store};

/// Does the work of one kind (or several) of job.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt. The future is dropped if the lease is lost, so it
    /// must not leave half-done state that a second attempt cannot redo.
    async fn run(&self, job: &Job) -> JobOutcome;
}

/// How a worker claims and leases.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The lease owner recorded on claimed jobs; unique per worker.
    pub name: String,
    /// Jobs claimed per claim, and the most run at once.
    pub batch: usize,
    /// Lease length, at least `MIN_LEASE_SECS`; renewed each third of it.
    pub lease_secs: i64,
    /// Outcomes written per transaction.
    pub report_batch: usize,
    /// On shutdown, how long running handlers may finish before they are
    /// dropped (their leases then expire and another replica runs them).
    pub drain_timeout: Duration,
    /// A poll in case a wake-up was missed (a listener reconnecting).
    pub idle_poll: Duration,
}

/// A lease shorter than this cannot be renewed a third of the way through
/// at one-second resolution.
pub const MIN_LEASE_SECS: i64 = 3;

impl WorkerConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch: 128,
            lease_secs: 60,
            report_batch: 500,
            drain_timeout: Duration::from_secs(30),
            idle_poll: Duration::from_secs(30),
        }
    }
}

/// A worker over `store` running `handler`.
pub struct Worker<S: Store, H: JobHandler> {
    store: Arc<S>,
    handler: Arc<H>,
    config: WorkerConfig,
}

impl<S: Store, H: JobHandler> Worker<S, H> {
    pub fn new(store: Arc<S>, handler: Arc<H>, mut config: WorkerConfig) -> Self {
        config.batch = config.batch.max(1);
        config.report_batch = config.report_batch.max(1);
        config.lease_secs = config.lease_secs.max(MIN_LEASE_SECS);
        Self { store, handler, config }
    }

    /// Runs until `shutdown`, then drains (see `WorkerConfig::drain_timeout`).
    pub async fn run(self, shutdown: Shutdown) {
        let Self { store, handler, config } = self;
        let clock = store.clock();
        let mut wakeups = store.wakeups();
        let (reports, queued) = mpsc::channel::<Report>(config.batch * 2);
        let reporter = tokio::spawn(report_loop(store.clone(), queued, config.report_batch));
        let mut running: JoinSet<()> = JoinSet::new();
        while !shutdown.is_triggered() {
            let free = config.batch - running.len();
            // Refill only once half the batch is free: topping up one slot at
            // a time would turn every completion into a claim transaction.
            let hungry = |free: usize| free > 0 && free * 2 >= config.batch;
            if hungry(free) {
                wakeups.mark_seen();
                match store.claim(&config.name, free, config.lease_secs).await {
                    Ok(jobs) => {
                        let full = jobs.len() == free;
                        for job in jobs {
                            let task = run_one(store.clone(), handler.clone(), clock.clone(), job, &config, &reports);
                            running.spawn(task);
                        }
                        if full {
                            // There may be more due work: claim again as soon as slots free.
                            continue;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(worker = %config.name, error = %e, "claiming jobs failed");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = shutdown.clone().wait() => break,
                        }
                        continue;
                    }
                }
            }
            let idle = hungry(config.batch - running.len());
            let next = if idle { store.next_run_at().await.unwrap_or(None) } else { None };
            let now = clock.now();
            tokio::select! {
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = wakeups.changed(), if idle => {}
                // A due job we did not get is locked by a claim in flight elsewhere: look again shortly.
                _ = tokio::time::sleep(Duration::from_millis(50)), if next.is_some_and(|t| t <= now) => {}
                _ = clock.sleep_until(next.unwrap_or(i64::MAX)), if next.is_some_and(|t| t > now) => {}
                _ = tokio::time::sleep(config.idle_poll) => {}
                _ = shutdown.clone().wait() => break,
            }
        }
        let drained =
            tokio::time::timeout(config.drain_timeout, async { while running.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(worker = %config.name, left = running.len(), "handlers still running at shutdown; dropping them");
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
        drop(reports);
        let _ = reporter.await;
    }
}

/// Runs one handler, renewing the lease a third of the way through each
/// lease, and queues the outcome for the reporter.
fn run_one<S: Store, H: JobHandler>(
    store: Arc<S>,
    handler: Arc<H>,
    clock: Arc<dyn Clock>,
    job: Job,
    config: &WorkerConfig,
    reports: &mpsc::Sender<Report>,
) -> impl Future<Output = ()> + Send + 'static {
    let lease_secs = config.lease_secs;
    let worker = config.name.clone();
    let reports = reports.clone();
    async move {
        let (Some(lease), Some(mut expires_at)) = (LeaseRef::of(&job), job.lease.as_ref().map(|l| l.expires_at)) else {
            return;
        };
        let work = AssertUnwindSafe(handler.run(&job)).catch_unwind();
        tokio::pin!(work);
        let mut renew_at = expires_at - lease_secs + lease_secs / 3;
        loop {
            tokio::select! {
                outcome = &mut work => {
                    let outcome = outcome.unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        tracing::error!(job = %job.name(), %what, "job handler panicked");
                        JobOutcome::Retry(JobError::new("HANDLER_PANICKED", format!("the handler panicked: {what}")))
                    });
                    let _ = reports.send(Report { lease, outcome }).await;
                    return;
                }
                _ = clock.sleep_until(renew_at) => match store.extend_lease(&lease, lease_secs).await {
                    Ok(new_expiry) => {
                        expires_at = new_expiry;
                        renew_at = expires_at - lease_secs + lease_secs / 3;
                    }
                    Err(e @ SchedulerError::LeaseLost { .. }) => {
                        tracing::info!(%worker, error = %e, "dropping the job's handler");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(%worker, job = %job.name(), error = %e, "renewing a lease failed; retrying");
                        // Try again in a second; once the lease has run out the store says so.
                        renew_at = clock.now() + 1;
                    }
                },
            }
        }
    }
}

/// Writes queued outcomes, as many per transaction as are waiting.
async fn report_loop<S: Store>(store: Arc<S>, mut queued: mpsc::Receiver<Report>, max: usize) {
    let mut batch = Vec::with_capacity(max);
    while queued.recv_many(&mut batch, max).await > 0 {
        let mut backoff = Duration::from_millis(100);
        for attempt in 1.. {
            match store.report(batch.clone()).await {
                Ok(results) => {
                    for (report, result) in batch.iter().zip(results) {
                        if let Err(e) = result {
                            tracing::info!(job = %report.lease.job_id, error = %e, "outcome refused");
                        }
                    }
                    break;
                }
                // The leases expire meanwhile and the jobs run again elsewhere:
                // at-least-once, never lost.
                Err(e) if attempt >= 10 => {
                    tracing::error!(error = %e, jobs = batch.len(), "giving up reporting outcomes");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "reporting outcomes failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        batch.clear();
    }
}
