//! Enqueueing (idempotent, in bulk), reading and listing jobs.

use std::time::Instant;

use certctl_domain::DomainError;
use certctl_domain::job::{JobKind, JobState, NewJob};
use certctl_scheduler::SchedulerError;
use certctl_scheduler::listing::ListJobs;
use certctl_scheduler::store::JobFilter;

use crate::support::{Backend, T0, TestDb, enqueue, new_job};

async fn enqueued_jobs_start_pending_with_the_policy_defaults<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let new = NewJob { certificate: Some("certificates/web".into()), ..new_job("renewal:web:1") };
    let done = store.enqueue(new).await.expect("enqueue");
    assert!(done.created);
    let job = done.job;
    assert_eq!(job.id.len(), 32, "128 random bits in hex: {}", job.id);
    assert!(job.name().starts_with("jobs/"));
    assert_eq!((job.kind, job.state, job.attempts, job.max_attempts), (JobKind::Renewal, JobState::Pending, 0, 5));
    assert_eq!((job.run_at, job.create_time, job.update_time), (T0, T0, T0));
    assert_eq!(job.certificate.as_deref(), Some("certificates/web"));
    assert_eq!(job.payload, serde_json::json!({"key": "renewal:web:1"}));
    assert_eq!(job.lease, None);
    assert_eq!(store.get(&job.id).await.expect("get"), job, "what was returned is what is stored");
    assert_eq!(store.find_by_idempotency_key("renewal:web:1").await.expect("find"), Some(job.clone()));
    assert_eq!(store.find_by_idempotency_key("nope").await.expect("find"), None);
    let timeline = store.timeline(&job.id, None, 100).await.expect("timeline");
    assert_eq!(timeline.len(), 1);
    assert_eq!((timeline[0].from, timeline[0].to, timeline[0].message.as_str()), (None, JobState::Pending, "enqueued"));
}

async fn an_idempotency_key_names_one_job<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let first = store.enqueue(new_job("k")).await.expect("first");
    // A retry with another payload still gets the first job.
    let again = NewJob { payload: serde_json::json!({"other": true}), ..new_job("k") };
    let second = store.enqueue(again).await.expect("second");
    assert!(first.created && !second.created);
    assert_eq!(second.job, first.job);
    assert_eq!(store.count_by_state().await.expect("count").get(&JobState::Pending), Some(&1));
}

async fn bulk_enqueue_reports_which_jobs_are_new<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let old = enqueue(store, "old").await;
    let done =
        store.enqueue_many(vec![new_job("a"), new_job("old"), new_job("b"), new_job("a")]).await.expect("enqueue_many");
    let summary: Vec<(&str, bool)> = done.iter().map(|e| (e.job.idempotency_key.as_str(), e.created)).collect();
    assert_eq!(summary, [("a", true), ("old", false), ("b", true), ("a", false)], "input order, first mention creates");
    assert_eq!(done[1].job, old);
    assert_eq!(done[0].job.id, done[3].job.id, "a repeated key is one job");
    assert_eq!(store.count_by_state().await.expect("count").get(&JobState::Pending), Some(&3));
    assert!(store.enqueue_many(Vec::new()).await.expect("nothing").is_empty());
}

async fn invalid_jobs_are_refused_whole<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let bad = NewJob { certificate: Some("owners/x".into()), ..new_job("b") };
    match store.enqueue_many(vec![new_job("a"), bad, new_job("")]).await {
        Err(SchedulerError::Domain(DomainError::InvalidArgument(v))) => {
            let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["jobs[1].certificate", "jobs[2].idempotency_key"]);
        }
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    match store.enqueue(new_job("")).await {
        Err(SchedulerError::Domain(DomainError::InvalidArgument(v))) => assert_eq!(v[0].field, "job.idempotency_key"),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
    assert!(store.count_by_state().await.expect("count").is_empty(), "nothing was stored");
}

async fn racing_enqueues_of_one_key_create_one_job<S: Backend>(db: TestDb<S>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let replica = db.replica().await;
        tasks.push(tokio::spawn(async move { replica.enqueue(new_job("race")).await }));
    }
    let mut ids = Vec::new();
    let mut created = 0;
    for task in tasks {
        let done = task.await.expect("no panic").expect("every racer succeeds");
        created += usize::from(done.created);
        ids.push(done.job.id);
    }
    assert_eq!(created, 1, "exactly one racer created the job");
    assert!(ids.iter().all(|id| *id == ids[0]), "every racer sees the same job: {ids:?}");
}

async fn a_hundred_thousand_jobs_go_in_at_once<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let jobs: Vec<NewJob> = (0..100_000)
        .map(|i| NewJob {
            certificate: Some(format!("certificates/c{i}")),
            run_at: Some(T0 + i % 3600),
            ..NewJob::new(JobKind::Renewal, format!("renewal:certificates/c{i}/versions/1"))
        })
        .collect();
    let started = Instant::now();
    let done = store.enqueue_many(jobs.clone()).await.expect("bulk enqueue");
    let took = started.elapsed();
    assert_eq!(done.iter().filter(|e| e.created).count(), 100_000);
    eprintln!("{}: 100k jobs enqueued in {took:?}", S::NAME);
    // Generous for a debug build on a shared machine; the release figures are in the report.
    assert!(took.as_secs_f64() < 20.0, "100k jobs took {took:?}");
    // A re-scan enqueues nothing new.
    let again = store.enqueue_many(jobs).await.expect("bulk again");
    assert!(again.iter().all(|e| !e.created));
    assert_eq!(store.count_by_state().await.expect("count").get(&JobState::Pending), Some(&100_000));
    assert_eq!(store.next_run_at().await.expect("next"), Some(T0));
}

async fn unknown_jobs_are_not_found<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let missing = "0123456789abcdef0123456789abcdef";
    for result in [store.get(missing).await.map(|_| ()), store.timeline(missing, None, 10).await.map(|_| ())] {
        match result {
            Err(SchedulerError::Domain(DomainError::NotFound { resource })) => {
                assert_eq!(resource, format!("jobs/{missing}"))
            }
            other => panic!("expected NOT_FOUND, got {other:?}"),
        }
    }
}

async fn listings_filter_and_page_in_creation_order<S: Backend>(db: TestDb<S>) {
    let store = db.store.as_ref();
    let mut made = Vec::new();
    for i in 0..7 {
        db.clock.advance(1);
        let kind = if i % 2 == 0 { JobKind::Renewal } else { JobKind::Deployment };
        let certificate = Some(format!("certificates/c{}", i % 3));
        let job = NewJob { kind, certificate, ..NewJob::new(kind, format!("k{i}")) };
        made.push(store.enqueue(job).await.expect("enqueue").job);
    }
    // Page through 3 at a time, oldest first.
    let mut request = ListJobs { page_size: 3, ..Default::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = request.run(store).await.expect("page");
        pages += 1;
        seen.extend(page.jobs.into_iter().map(|j| j.idempotency_key));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("k{i}")).collect::<Vec<_>>());
    // Newest first.
    let newest = ListJobs { newest_first: true, page_size: 2, ..Default::default() };
    let page = newest.run(store).await.expect("newest");
    assert_eq!(page.jobs.iter().map(|j| j.idempotency_key.as_str()).collect::<Vec<_>>(), ["k6", "k5"]);
    let next = ListJobs { page_token: page.next_page_token.clone(), ..newest.clone() }.run(store).await.expect("next");
    assert_eq!(next.jobs.iter().map(|j| j.idempotency_key.as_str()).collect::<Vec<_>>(), ["k4", "k3"]);
    // Filters.
    let keys = |filter: JobFilter| async move {
        let page = ListJobs { filter, ..Default::default() }.run(store).await.expect("filtered");
        page.jobs.into_iter().map(|j| j.idempotency_key).collect::<Vec<_>>()
    };
    assert_eq!(keys(JobFilter { kind: Some(JobKind::Deployment), ..Default::default() }).await, ["k1", "k3", "k5"]);
    assert_eq!(
        keys(JobFilter { certificate: Some("certificates/c1".into()), ..Default::default() }).await,
        ["k1", "k4"]
    );
    let claimed = store.claim("w", 1, 60).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let running = JobFilter { state: Some(JobState::Running), ..Default::default() };
    assert_eq!(keys(running).await, [claimed[0].idempotency_key.clone()]);
    let both = JobFilter { kind: Some(JobKind::Renewal), certificate: Some("certificates/c0".into()), state: None };
    assert_eq!(keys(both).await, ["k0", "k6"]);
    // A token belongs to its query.
    let other = ListJobs { page_token: page.next_page_token, ..Default::default() };
    assert!(matches!(other.run(store).await, Err(SchedulerError::Domain(DomainError::InvalidArgument(_)))));
    let negative = ListJobs { page_size: -1, ..Default::default() };
    assert!(matches!(negative.run(store).await, Err(SchedulerError::Domain(DomainError::InvalidArgument(_)))));
    let _ = made;
}

on_both!(
    enqueued_jobs_start_pending_with_the_policy_defaults,
    an_idempotency_key_names_one_job,
    bulk_enqueue_reports_which_jobs_are_new,
    invalid_jobs_are_refused_whole,
    racing_enqueues_of_one_key_create_one_job,
    a_hundred_thousand_jobs_go_in_at_once,
    unknown_jobs_are_not_found,
    listings_filter_and_page_in_creation_order,
);
