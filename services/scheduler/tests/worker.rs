//! The worker loop on both backends: each job runs once across workers, lost
//! leases pass to another worker, retries back off, cancels stop handlers,
//! idle workers wake on time and on new work.

#[macro_use]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use certctl_common::shutdown::{self, ShutdownTrigger};
use certctl_domain::job::{Job, JobError, JobState, NewJob};
use certctl_scheduler::clock::Clock;
use certctl_scheduler::store::{JobOutcome, LeaseRef, Store};
use certctl_scheduler::worker::{JobHandler, Worker, WorkerConfig};
use certctl_scheduler::{LeaseLoss, SchedulerError};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use support::{Backend, T0, TestDb, event, eventually, new_job};

/// Records every run; what it answers is up to the test.
#[derive(Default)]
struct Recorder {
    runs: Mutex<HashMap<String, usize>>,
    /// When set, handlers wait for a permit before answering.
    gate: Option<Arc<Semaphore>>,
    outcome: Option<JobOutcome>,
    dropped: AtomicUsize,
}

struct DropFlag<'a>(&'a AtomicUsize, bool);

impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait]
impl JobHandler for Recorder {
    async fn run(&self, job: &Job) -> JobOutcome {
        *self.runs.lock().expect("runs").entry(job.id.clone()).or_default() += 1;
        let mut flag = DropFlag(&self.dropped, false);
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("open gate").forget();
        }
        flag.1 = true;
        self.outcome.clone().unwrap_or_else(|| {
            JobOutcome::Succeeded(serde_json::json!({"by": job.lease.as_ref().map(|l| l.owner.clone())}))
        })
    }
}

impl Recorder {
    fn total(&self) -> usize {
        self.runs.lock().expect("runs").values().sum()
    }
}

fn start<S: Store>(
    store: Arc<S>,
    handler: Arc<Recorder>,
    name: &str,
    lease_secs: i64,
) -> (ShutdownTrigger, JoinHandle<()>) {
    let (trigger, shutdown) = shutdown::channel();
    let config =
        WorkerConfig { batch: 8, lease_secs, drain_timeout: Duration::from_millis(200), ..WorkerConfig::new(name) };
    (trigger, tokio::spawn(Worker::new(store, handler, config).run(shutdown)))
}

async fn stop((trigger, task): (ShutdownTrigger, JoinHandle<()>)) {
    trigger.trigger();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the worker stops").expect("no panic");
}

async fn state_of<S: Store>(store: &S, id: &str) -> JobState {
    store.get(id).await.expect("get").state
}

async fn two_workers_never_run_a_job_twice<S: Backend>(db: TestDb<S>) {
    let jobs: Vec<NewJob> = (0..300).map(|i| new_job(&format!("k{i}"))).collect();
    db.store.enqueue_many(jobs).await.expect("enqueue");
    let handler = Arc::new(Recorder::default());
    let a = start(db.replica().await, handler.clone(), "a", 60);
    let b = start(db.replica().await, handler.clone(), "b", 60);
    let store = db.store.clone();
    eventually("all 300 jobs succeeded", || {
        let store = store.clone();
        async move { store.count_by_state().await.expect("count").get(&JobState::Succeeded) == Some(&300) }
    })
    .await;
    stop(a).await;
    stop(b).await;
    let runs = handler.runs.lock().expect("runs");
    assert_eq!(runs.len(), 300);
    assert!(
        runs.values().all(|n| *n == 1),
        "some job ran twice: {:?}",
        runs.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
}

async fn a_stalled_worker_loses_its_job_to_another<S: Backend>(db: TestDb<S>) {
    let store = db.store.clone();
    let job = support::enqueue(store.as_ref(), "k").await;
    // A process claims the job, then freezes (a GC pause, a partition) past its lease.
    let stale = store.claim("frozen", 1, 30).await.expect("claim").remove(0);
    let helper = Arc::new(Recorder::default());
    let b = start(db.replica().await, helper.clone(), "b", 60);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(helper.total(), 0, "b waits while the lease is valid");
    db.clock.advance(31);
    eventually("b completes the job", || {
        let store = store.clone();
        let id = job.id.clone();
        async move { state_of(store.as_ref(), &id).await == JobState::Succeeded }
    })
    .await;
    // The frozen process wakes up and reports: refused, b's result stands.
    let late = store.succeed(&LeaseRef::of(&stale).expect("lease"), serde_json::json!({"by": "frozen"})).await;
    let finished = LeaseLoss::Released { state: JobState::Succeeded };
    assert!(matches!(&late, Err(SchedulerError::LeaseLost { loss, .. }) if *loss == finished), "{late:?}");
    let done = store.get(&job.id).await.expect("get");
    assert_eq!((done.attempts, done.result), (2, Some(serde_json::json!({"by": "b"}))));
    assert_eq!(helper.total(), 1);
    stop(b).await;
}

async fn a_worker_that_misses_its_renewal_drops_the_handler<S: Backend>(db: TestDb<S>) {
    let store = db.store.clone();
    let job = support::enqueue(store.as_ref(), "k").await;
    let stalled = Arc::new(Recorder { gate: Some(Arc::new(Semaphore::new(0))), ..Default::default() });
    let a = start(store.clone(), stalled.clone(), "a", 60);
    eventually("a runs the job", || async { stalled.total() == 1 }).await;
    // Time jumps past the whole lease before the renewal a third of the way in runs.
    db.clock.advance(61);
    eventually("a dropped its handler", || async { stalled.dropped.load(Ordering::SeqCst) == 1 }).await;
    // The expired job is due again; a (alive again) claims it as attempt 2.
    eventually("the job runs again", || async { stalled.total() == 2 }).await;
    assert_eq!(store.get(&job.id).await.expect("get").attempts, 2);
    stop(a).await;
}

async fn retries_back_off_and_stop_at_max_attempts<S: Backend>(db: TestDb<S>) {
    let store = db.store.clone();
    let job = store.enqueue(NewJob { max_attempts: Some(3), ..new_job("k") }).await.expect("enqueue").job;
    let failing =
        Arc::new(Recorder { outcome: Some(JobOutcome::Retry(JobError::new("CA_DOWN", "503"))), ..Default::default() });
    let w = start(store.clone(), failing.clone(), "w", 60);
    let policy = store.retry_policy();
    for attempt in 1..=2 {
        eventually("the attempt is reported", || {
            let store = store.clone();
            let id = job.id.clone();
            async move {
                let j = store.get(&id).await.expect("get");
                j.attempts == attempt && j.state == JobState::Pending
            }
        })
        .await;
        let pending = store.get(&job.id).await.expect("get");
        let now = db.clock.now();
        assert!(
            (now + 1..=now + policy.ceiling_secs(attempt)).contains(&pending.run_at),
            "{} vs {now}",
            pending.run_at
        );
        // Nothing runs before the backoff is over.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(failing.total(), attempt as usize);
        db.clock.set(pending.run_at);
    }
    eventually("the job failed for good", || {
        let store = store.clone();
        let id = job.id.clone();
        async move { state_of(store.as_ref(), &id).await == JobState::Failed }
    })
    .await;
    assert_eq!(failing.total(), 3);
    db.clock.advance(10_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(failing.total(), 3, "no fourth attempt");
    stop(w).await;
}

async fn cancelling_a_running_job_stops_its_handler<S: Backend>(db: TestDb<S>) {
    let store = db.store.clone();
    let job = support::enqueue(store.as_ref(), "k").await;
    let stuck = Arc::new(Recorder { gate: Some(Arc::new(Semaphore::new(0))), ..Default::default() });
    let w = start(store.clone(), stuck.clone(), "w", 60);
    eventually("the job runs", || async { stuck.total() == 1 }).await;
    store.cancel(&job.id, "operator", event("CancelJob", &job.name())).await.expect("cancel");
    // The next renewal (a third into the lease) finds the job cancelled.
    db.clock.advance(21);
    eventually("the handler was dropped", || async { stuck.dropped.load(Ordering::SeqCst) == 1 }).await;
    assert_eq!(state_of(store.as_ref(), &job.id).await, JobState::Cancelled);
    stop(w).await;
}

async fn idle_workers_wake_for_new_and_due_work<S: Backend>(db: TestDb<S>) {
    let store = db.store.clone();
    let handler = Arc::new(Recorder::default());
    let w = start(db.replica().await, handler.clone(), "w", 60);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New work wakes the worker at once (well before its 30 s safety poll).
    let now = support::enqueue(store.as_ref(), "now").await;
    eventually("the new job ran", || async { handler.total() == 1 }).await;
    // Future work waits for its time, then runs without any wake-up.
    let later = store.enqueue(NewJob { run_at: Some(T0 + 3600), ..new_job("later") }).await.expect("enqueue").job;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handler.total(), 1, "not before its time");
    db.clock.set(T0 + 3600);
    eventually("the due job ran", || async { handler.total() == 2 }).await;
    let runs = handler.runs.lock().expect("runs").clone();
    assert!(runs.contains_key(&now.id) && runs.contains_key(&later.id));
    stop(w).await;
}

async fn a_panicking_handler_counts_as_a_failed_attempt<S: Backend>(db: TestDb<S>) {
    struct Panics;
    #[async_trait]
    impl JobHandler for Panics {
        async fn run(&self, _job: &Job) -> JobOutcome {
            panic!("bad certificate template");
        }
    }
    let store = db.store.clone();
    let job = support::enqueue(store.as_ref(), "k").await;
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(Worker::new(store.clone(), Arc::new(Panics), WorkerConfig::new("w")).run(shutdown));
    eventually("the attempt is reported", || {
        let store = store.clone();
        let id = job.id.clone();
        async move {
            let j = store.get(&id).await.expect("get");
            j.attempts == 1 && j.state == JobState::Pending
        }
    })
    .await;
    let error = store.get(&job.id).await.expect("get").error.expect("an error");
    assert_eq!(error.code, "HANDLER_PANICKED");
    assert!(error.message.contains("bad certificate template"), "{}", error.message);
    trigger.trigger();
    task.await.expect("the worker survives");
}

on_both!(
    two_workers_never_run_a_job_twice,
    a_stalled_worker_loses_its_job_to_another,
    a_worker_that_misses_its_renewal_drops_the_handler,
    retries_back_off_and_stop_at_max_attempts,
    cancelling_a_running_job_stops_its_handler,
    idle_workers_wake_for_new_and_due_work,
    a_panicking_handler_counts_as_a_failed_attempt,
);
