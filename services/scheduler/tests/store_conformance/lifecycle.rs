//! Waiting for agents, cancelling, retrying, and the audit outbox.

use certctl_domain::DomainError;
use certctl_domain::job::{Job, JobState};
use certctl_scheduler::store::{LeaseRef, Resume, Store};
use certctl_scheduler::{LeaseLoss, SchedulerError};

use crate::support::{Backend, T0, TestDb, enqueue, event};

fn lease(job: &Job) -> LeaseRef {
    LeaseRef::of(job).expect("a claimed job has a lease")
}

fn assert_precondition<T: std::fmt::Debug>(result: Result<T, SchedulerError>, message: &str) {
    match result {
        Err(SchedulerError::Domain(DomainError::FailedPrecondition(m))) => assert!(m.contains(message), "{m}"),
        other => panic!("expected FAILED_PRECONDITION ({message}), got {other:?}"),
    }
}

async fn claimed(store: &impl Store, key: &str) -> Job {
    enqueue(store, key).await;
    store.claim("w1", 1, 60).await.expect("claim").remove(0)
}

async fn awaiting_an_agent_releases_the_lease_until_resumed<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let job = claimed(store, "k").await;
    let waiting = store.await_agent(&lease(&job), "waiting for the CSR", None).await.expect("await");
    assert_eq!((waiting.state, waiting.lease.as_ref()), (JobState::AwaitingAgent, None));
    assert!(store.claim("w2", 1, 60).await.expect("claim").is_empty(), "a waiting job is nobody's to claim");
    assert_eq!(store.next_run_at().await.expect("next"), None);
    let stale = store.succeed(&lease(&job), serde_json::json!(0)).await;
    assert!(matches!(
        stale,
        Err(SchedulerError::LeaseLost { loss: LeaseLoss::Released { state: JobState::AwaitingAgent }, .. })
    ));
    // The agent answers: due again with its answer, on the same attempt.
    let csr = serde_json::json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----"});
    let resumed = store.resume(&job.id, Some(csr.clone()), Resume::Pending).await.expect("resume");
    assert_eq!((resumed.state, resumed.payload.clone()), (JobState::Pending, csr));
    let again = store.claim("w2", 1, 60).await.expect("claim").remove(0);
    assert_eq!(again.attempts, 1, "the agent's round trip does not use an attempt");
    assert_precondition(store.resume(&job.id, None, Resume::Pending).await, "not awaiting an agent");
    // Resuming straight to Running leases the job to the caller.
    store.await_agent(&lease(&again), "deploying", None).await.expect("await");
    let to = Resume::Running { worker: "hub-1".into(), lease_secs: 30 };
    let running = store.resume(&job.id, None, to).await.expect("resume running");
    assert_eq!(running.lease.as_ref().map(|l| (l.owner.as_str(), l.expires_at)), Some(("hub-1", T0 + 30)));
    assert_eq!(store.succeed(&lease(&running), serde_json::json!({})).await.expect("done").state, JobState::Succeeded);
}

async fn an_agent_that_never_answers_times_out_into_a_new_attempt<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let job = claimed(store, "k").await;
    store.await_agent(&lease(&job), "CSR", Some(T0 + 300)).await.expect("await");
    assert_eq!(store.next_run_at().await.expect("next"), Some(T0 + 300));
    db.clock.set(T0 + 299);
    assert!(store.claim("w2", 1, 60).await.expect("claim").is_empty());
    db.clock.set(T0 + 300);
    let again = store.claim("w2", 1, 60).await.expect("claim").remove(0);
    assert_eq!((again.state, again.attempts), (JobState::Running, 2));
    let timeline = store.timeline(&job.id, None, 100).await.expect("timeline");
    assert_eq!(timeline.last().map(|t| t.message.as_str()), Some("claimed by w2: the wait for the agent timed out"));
}

async fn cancel_stops_a_job_in_any_live_state<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let running = claimed(store, "running").await;
    let waiting = claimed(store, "waiting").await;
    let pending = enqueue(store, "pending").await;
    store.await_agent(&lease(&waiting), "CSR", None).await.expect("await");
    for job in [&running, &waiting, &pending] {
        let done = store.cancel(&job.id, "not needed", event("CancelJob", &job.name())).await.expect("cancel");
        assert_eq!((done.state, done.lease.as_ref()), (JobState::Cancelled, None));
        assert_eq!(
            done.error.as_ref().map(|e| (e.code.as_str(), e.message.as_str())),
            Some(("CANCELLED", "not needed"))
        );
    }
    // The running job's worker learns at its next renewal or report.
    let gone = LeaseLoss::Released { state: JobState::Cancelled };
    assert!(
        matches!(store.extend_lease(&lease(&running), 60).await, Err(SchedulerError::LeaseLost { loss, .. }) if loss == gone)
    );
    assert!(
        matches!(store.succeed(&lease(&running), serde_json::json!(1)).await, Err(SchedulerError::LeaseLost { loss, .. }) if loss == gone)
    );
    assert_precondition(store.cancel(&pending.id, "again", event("CancelJob", "x")).await, "already cancelled");
    let done = claimed(store, "done").await;
    store.succeed(&lease(&done), serde_json::json!(1)).await.expect("succeed");
    assert_precondition(store.cancel(&done.id, "late", event("CancelJob", "x")).await, "cannot become cancelled");
    assert!(store.claim("w", 10, 60).await.expect("claim").is_empty(), "cancelled jobs are not claimed");
    // Three cancels, three audit events; the refusals left none.
    let outbox = store.outbox_batch(100).await.expect("outbox");
    let resources: Vec<&str> = outbox.iter().map(|e| e.event.resource.as_str()).collect();
    assert_eq!(resources, [running.name(), waiting.name(), pending.name()]);
    assert!(outbox.iter().all(|e| e.event.action == "scheduler.CancelJob" && e.event.source == "scheduler"));
    let messages: Vec<String> =
        store.timeline(&running.id, None, 10).await.expect("timeline").into_iter().map(|t| t.message).collect();
    assert_eq!(messages.last().map(String::as_str), Some("cancelled (it was leased to w1): not needed"));
}

async fn retry_runs_a_failed_or_cancelled_job_from_scratch<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let job = claimed(store, "k").await;
    store
        .report_one(&lease(&job), certctl_scheduler::JobOutcome::Fail(certctl_domain::job::JobError::new("X", "y")))
        .await
        .expect("fail");
    db.clock.advance(500);
    let mut wake = store.wakeups();
    let retried = store.retry(&job.id, event("RetryJob", &job.name())).await.expect("retry");
    assert_eq!(
        (retried.state, retried.attempts, retried.run_at, retried.error),
        (JobState::Pending, 0, T0 + 500, None)
    );
    tokio::time::timeout(std::time::Duration::from_secs(5), wake.changed()).await.expect("a retry wakes workers");
    assert_eq!(store.claim("w", 1, 60).await.expect("claim")[0].attempts, 1);
    assert_precondition(store.retry(&job.id, event("RetryJob", "x")).await, "only a failed or cancelled job");
    store.cancel(&job.id, "stop", event("CancelJob", &job.name())).await.expect("cancel");
    assert_eq!(store.retry(&job.id, event("RetryJob", &job.name())).await.expect("retry").state, JobState::Pending);
    let outbox = store.outbox_batch(100).await.expect("outbox");
    let actions: Vec<&str> = outbox.iter().map(|e| e.event.action.as_str()).collect();
    // A job that failed for good is audited too (notifications follow it).
    assert_eq!(actions, ["scheduler.JobFailed", "scheduler.RetryJob", "scheduler.CancelJob", "scheduler.RetryJob"]);
    assert_eq!(outbox[0].event.resource, job.name());
    assert_eq!(outbox[0].event.details["error_code"], "X");
    // The relay acknowledges what it delivered.
    store.outbox_ack(&[outbox[0].id, outbox[1].id, outbox[2].id]).await.expect("ack");
    let left: Vec<i64> = store.outbox_batch(100).await.expect("outbox").into_iter().map(|e| e.id).collect();
    assert_eq!(left, [outbox[3].id]);
}

async fn the_timeline_tells_a_jobs_story<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let job = claimed(store, "k").await;
    db.clock.advance(5);
    store.await_agent(&lease(&job), "CSR from agents/web-1", None).await.expect("await");
    db.clock.advance(5);
    store.resume(&job.id, None, Resume::Pending).await.expect("resume");
    let again = store.claim("w2", 1, 60).await.expect("claim").remove(0);
    store.succeed(&lease(&again), serde_json::json!({})).await.expect("succeed");
    let timeline = store.timeline(&job.id, None, 100).await.expect("timeline");
    let story: Vec<(Option<JobState>, JobState, i32, i64, &str)> =
        timeline.iter().map(|t| (t.from, t.to, t.attempt, t.time - T0, t.message.as_str())).collect();
    use JobState::*;
    assert_eq!(
        story,
        [
            (None, Pending, 0, 0, "enqueued"),
            (Some(Pending), Running, 1, 0, "claimed by w1"),
            (Some(Running), AwaitingAgent, 1, 5, "waiting for an agent: CSR from agents/web-1"),
            (Some(AwaitingAgent), Pending, 0, 10, "the agent answered; due again"),
            (Some(Pending), Running, 1, 10, "claimed by w2"),
            (Some(Running), Succeeded, 1, 10, "attempt 1 of 5 succeeded"),
        ]
    );
    assert!(timeline.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.timeline(&job.id, None, 2).await.expect("limited").len(), 2);
}

on_both!(
    awaiting_an_agent_releases_the_lease_until_resumed,
    an_agent_that_never_answers_times_out_into_a_new_attempt,
    cancel_stops_a_job_in_any_live_state,
    retry_runs_a_failed_or_cancelled_job_from_scratch,
    the_timeline_tells_a_jobs_story,
);
