//! Claiming and leases: who may report on a job, and what happens when a
//! worker's lease runs out.

use certctl_domain::DomainError;
use certctl_domain::job::{JobError, JobState, NewJob};
use certctl_scheduler::clock::Clock;
use certctl_scheduler::store::{JobOutcome, LeaseRef, Report};
use certctl_scheduler::{LeaseLoss, SchedulerError};

use crate::support::{Backend, T0, TestDb, enqueue, new_job};

fn lease(job: &certctl_domain::job::Job) -> LeaseRef {
    LeaseRef::of(job).expect("a claimed job has a lease")
}

fn assert_lost<T: std::fmt::Debug>(result: Result<T, SchedulerError>, expected: LeaseLoss) {
    match result {
        Err(SchedulerError::LeaseLost { loss, .. }) => assert_eq!(loss, expected),
        other => panic!("expected the lease to be lost ({expected:?}), got {other:?}"),
    }
}

async fn claims_lease_due_jobs_soonest_first<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let later = store.enqueue(NewJob { run_at: Some(T0 + 100), ..new_job("later") }).await.expect("later").job;
    let second = store.enqueue(NewJob { run_at: Some(T0 - 5), ..new_job("second") }).await.expect("second").job;
    let first = store.enqueue(NewJob { run_at: Some(T0 - 10), ..new_job("first") }).await.expect("first").job;
    let claimed = store.claim("w1", 1, 60).await.expect("claim");
    assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), [first.id.as_str()], "soonest due first");
    let job = &claimed[0];
    assert_eq!((job.state, job.attempts), (JobState::Running, 1));
    let held = job.lease.as_ref().expect("a lease");
    assert_eq!((held.owner.as_str(), held.expires_at), ("w1", T0 + 60));
    assert!(held.token.len() >= 32, "a random token: {}", held.token);
    assert_eq!(store.get(&job.id).await.expect("get"), *job);
    let rest = store.claim("w2", 10, 60).await.expect("claim the rest");
    assert_eq!(rest.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), [second.id.as_str()], "not the future job");
    assert_ne!(rest[0].lease.as_ref().map(|l| &l.token), Some(&held.token), "every claim gets its own token");
    assert!(store.claim("w3", 10, 60).await.expect("nothing due").is_empty());
    // Next due: the first lease to expire (T0 + 60), before the later job (T0 + 100).
    assert_eq!(store.next_run_at().await.expect("next"), Some(T0 + 60));
    store.succeed(&lease(job), serde_json::json!(1)).await.expect("succeed");
    store.succeed(&lease(&rest[0]), serde_json::json!(2)).await.expect("succeed");
    assert_eq!(store.next_run_at().await.expect("next"), Some(later.run_at));
    db.clock.set(T0 + 100);
    assert_eq!(store.claim("w1", 10, 60).await.expect("now due").len(), 1);
    assert!(matches!(store.claim("w1", 1, 0).await, Err(SchedulerError::Domain(DomainError::InvalidArgument(_)))));
    assert!(store.claim("w1", 0, 60).await.expect("a claim of none").is_empty());
}

async fn leases_extend_until_they_expire<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    enqueue(store, "k").await;
    let job = store.claim("w1", 1, 30).await.expect("claim").remove(0);
    db.clock.advance(20);
    assert_eq!(store.extend_lease(&lease(&job), 30).await.expect("extend"), T0 + 50);
    assert_eq!(store.get(&job.id).await.expect("get").lease.map(|l| l.expires_at), Some(T0 + 50));
    assert!(store.claim("w2", 1, 30).await.expect("claim").is_empty(), "an extended lease is not claimable");
    db.clock.advance(30);
    assert_lost(store.extend_lease(&lease(&job), 30).await, LeaseLoss::Expired { expired_at: T0 + 50 });
    let forged = LeaseRef { token: "forged".into(), ..lease(&job) };
    assert_lost(store.extend_lease(&forged, 30).await, LeaseLoss::Reclaimed { owner: "w1".into(), attempt: 1 });
}

async fn an_expired_lease_passes_to_another_worker_and_the_stale_one_is_refused<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    enqueue(store, "k").await;
    let stale = store.claim("w1", 1, 30).await.expect("claim").remove(0);
    db.clock.advance(31);
    let fresh = store.claim("w2", 1, 30).await.expect("reclaim").remove(0);
    assert_eq!((fresh.id.as_str(), fresh.attempts), (stale.id.as_str(), 2));
    assert_eq!(fresh.lease.as_ref().map(|l| l.owner.as_str()), Some("w2"));
    let taken = LeaseLoss::Reclaimed { owner: "w2".into(), attempt: 2 };
    assert_lost(store.succeed(&lease(&stale), serde_json::json!("late")).await, taken.clone());
    assert_lost(store.extend_lease(&lease(&stale), 30).await, taken.clone());
    assert_lost(store.fail(&lease(&stale), JobError::new("X", "y")).await, taken);
    let done = store.succeed(&lease(&fresh), serde_json::json!("w2's")).await.expect("the owner succeeds");
    assert_eq!((done.state, done.result), (JobState::Succeeded, Some(serde_json::json!("w2's"))));
    let messages: Vec<String> =
        store.timeline(&done.id, None, 100).await.expect("timeline").into_iter().map(|t| t.message).collect();
    assert_eq!(
        messages,
        ["enqueued", "claimed by w1", "claimed by w2: the lease of w1 expired", "attempt 2 of 5 succeeded"]
    );
    // Reporting twice on one lease is refused too.
    assert_lost(
        store.succeed(&lease(&fresh), serde_json::json!(0)).await,
        LeaseLoss::Released { state: JobState::Succeeded },
    );
}

async fn a_late_report_counts_while_nobody_else_holds_the_job<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    enqueue(store, "k").await;
    let job = store.claim("w1", 1, 30).await.expect("claim").remove(0);
    db.clock.advance(120);
    let done = store.succeed(&lease(&job), serde_json::json!({})).await.expect("accepted");
    assert_eq!(done.state, JobState::Succeeded);
}

async fn failed_attempts_back_off_then_fail<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let policy = store.retry_policy();
    let job = store.enqueue(NewJob { max_attempts: Some(3), ..new_job("k") }).await.expect("enqueue").job;
    for attempt in 1..=3 {
        let claimed = store.claim("w", 1, 60).await.expect("claim").remove(0);
        assert_eq!(claimed.attempts, attempt);
        let now = db.clock.now();
        let after = store.fail(&lease(&claimed), JobError::new("CA_DOWN", "refused")).await.expect("fail");
        assert_eq!(after.error, Some(JobError::new("CA_DOWN", "refused")));
        if attempt < 3 {
            let ceiling = policy.ceiling_secs(attempt);
            assert_eq!(after.state, JobState::Pending);
            assert!(
                (now + 1..=now + ceiling).contains(&after.run_at),
                "run_at {} not in (now, now + {ceiling}]",
                after.run_at
            );
            assert_eq!(store.next_run_at().await.expect("next"), Some(after.run_at));
            if after.run_at > now + 1 {
                db.clock.set(after.run_at - 1);
                assert!(store.claim("w", 1, 60).await.expect("claim").is_empty(), "not before its backoff");
            }
            db.clock.set(after.run_at);
        } else {
            assert_eq!(after.state, JobState::Failed, "no attempts left");
            assert_eq!(store.next_run_at().await.expect("next"), None);
        }
    }
    assert!(store.claim("w", 1, 60).await.expect("claim").is_empty());
    let timeline = store.timeline(&job.id, None, 100).await.expect("timeline");
    let states: Vec<JobState> = timeline.iter().map(|t| t.to).collect();
    use JobState::*;
    assert_eq!(states, [Pending, Running, Pending, Running, Pending, Running, Failed]);
    assert!(timeline[6].message.contains("no attempts left"), "{}", timeline[6].message);
    // Paging the timeline.
    let rest = store.timeline(&job.id, Some(timeline[4].seq), 100).await.expect("rest");
    assert_eq!(rest.iter().map(|t| t.seq).collect::<Vec<_>>(), [timeline[5].seq, timeline[6].seq]);
}

async fn a_permanent_failure_ends_the_job_at_once<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    enqueue(store, "k").await;
    let job = store.claim("w", 1, 60).await.expect("claim").remove(0);
    let error = JobError::new("POLICY_REFUSED", "the profile forbids this name");
    let done = store.report_one(&lease(&job), JobOutcome::Fail(error.clone())).await.expect("fail");
    assert_eq!((done.state, done.attempts, done.error), (JobState::Failed, 1, Some(error)));
}

async fn a_worker_dying_on_the_last_attempt_fails_the_job<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let job = store.enqueue(NewJob { max_attempts: Some(2), ..new_job("k") }).await.expect("enqueue").job;
    for expected in [1, 2] {
        assert_eq!(store.claim("w", 1, 10).await.expect("claim")[0].attempts, expected);
        db.clock.advance(11);
    }
    assert!(store.claim("w", 1, 10).await.expect("claim").is_empty(), "the exhausted job is not handed out");
    let failed = store.get(&job.id).await.expect("get");
    assert_eq!((failed.state, failed.attempts, failed.lease), (JobState::Failed, 2, None));
    assert_eq!(failed.error.map(|e| e.code), Some("LEASE_EXPIRED".to_owned()));
    assert_eq!(store.next_run_at().await.expect("next"), None);
}

async fn a_batch_of_reports_accepts_and_refuses_each_on_its_own<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    for key in ["a", "b", "c"] {
        enqueue(store, key).await;
    }
    let jobs = store.claim("w", 3, 60).await.expect("claim");
    let ok = |job| Report { lease: lease(job), outcome: JobOutcome::Succeeded(serde_json::json!(1)) };
    let forged = Report {
        lease: LeaseRef { token: "nope".into(), ..lease(&jobs[1]) },
        outcome: JobOutcome::Succeeded(serde_json::json!(2)),
    };
    let unknown = Report {
        lease: LeaseRef { job_id: "ffffffffffffffffffffffffffffffff".into(), token: "t".into() },
        outcome: JobOutcome::Succeeded(serde_json::json!(3)),
    };
    let retry = Report { lease: lease(&jobs[2]), outcome: JobOutcome::Retry(JobError::new("X", "y")) };
    let results = store.report(vec![ok(&jobs[0]), forged, unknown, retry, ok(&jobs[0])]).await.expect("report");
    assert_eq!(results.len(), 5);
    assert_eq!(results[0].as_ref().map(|j| j.state).ok(), Some(JobState::Succeeded));
    assert!(matches!(&results[1], Err(SchedulerError::LeaseLost { loss: LeaseLoss::Reclaimed { .. }, .. })));
    assert!(matches!(&results[2], Err(SchedulerError::Domain(DomainError::NotFound { .. }))));
    assert_eq!(results[3].as_ref().map(|j| j.state).ok(), Some(JobState::Pending));
    assert!(
        matches!(
            &results[4],
            Err(SchedulerError::LeaseLost { loss: LeaseLoss::Released { state: JobState::Succeeded }, .. })
        ),
        "the second report on one lease sees the first: {:?}",
        results[4]
    );
    assert_eq!(
        store.get(&jobs[1].id).await.expect("get").state,
        JobState::Running,
        "the forged report changed nothing"
    );
    assert!(store.report(Vec::new()).await.expect("empty").is_empty());
}

on_both!(
    claims_lease_due_jobs_soonest_first,
    leases_extend_until_they_expire,
    an_expired_lease_passes_to_another_worker_and_the_stale_one_is_refused,
    a_late_report_counts_while_nobody_else_holds_the_job,
    failed_attempts_back_off_then_fail,
    a_permanent_failure_ends_the_job_at_once,
    a_worker_dying_on_the_last_attempt_fails_the_job,
    a_batch_of_reports_accepts_and_refuses_each_on_its_own,
);
