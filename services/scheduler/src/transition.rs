//! What each scheduler call does to a job, decided without IO: the store
//! loads the job, asks these functions for the change, and persists it with
//! its timeline entry. Every change passes `JobState::check_transition`, so
//! the domain's table stays the one authority on which moves exist.

use certctl_domain::UnixTime;
use certctl_domain::job::{Job, JobError, JobState, Lease, RetryPolicy};

use crate::error::{LeaseLoss, Result, SchedulerError};
use crate::store::{JobOutcome, LeaseRef, Resume};

/// A job's new values, the state it left, when it next becomes claimable
/// (the store's `due_at`), and the timeline message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub job: Job,
    pub from: JobState,
    pub due_at: Option<UnixTime>,
    pub message: String,
}

fn change(old: &Job, job: Job, due_at: Option<UnixTime>, message: String) -> Result<Change> {
    old.state.check_transition(job.state, &old.name())?;
    Ok(Change { from: old.state, job, due_at, message })
}

/// Refuses a lease that is not the job's current one.
pub(crate) fn check_lease(job: &Job, lease: &LeaseRef) -> Result<()> {
    let lost = |loss| Err(SchedulerError::LeaseLost { job: job.name(), loss });
    match (&job.lease, job.state) {
        (Some(current), JobState::Running) if current.token == lease.token => Ok(()),
        (Some(current), JobState::Running) => {
            lost(LeaseLoss::Reclaimed { owner: current.owner.clone(), attempt: job.attempts })
        }
        (_, state) => lost(LeaseLoss::Released { state }),
    }
}

/// The change a leased worker's outcome makes.
pub(crate) fn report(
    old: &Job,
    outcome: JobOutcome,
    now: UnixTime,
    policy: &RetryPolicy,
    jitter: u64,
) -> Result<Change> {
    let mut job = Job { lease: None, update_time: now, ..old.clone() };
    let attempt = format!("attempt {} of {}", old.attempts, old.max_attempts);
    match outcome {
        JobOutcome::Succeeded(result) => {
            job.state = JobState::Succeeded;
            job.result = Some(result);
            job.error = None;
            change(old, job, None, format!("{attempt} succeeded"))
        }
        JobOutcome::Retry(error) => {
            let policy = RetryPolicy { max_attempts: old.max_attempts, ..*policy };
            match policy.next_attempt_at(old.attempts, now, jitter) {
                Some(run_at) => {
                    let message = format!("{attempt} failed: {error}; retrying in {} s", run_at - now);
                    job.state = JobState::Pending;
                    job.run_at = run_at;
                    job.error = Some(error);
                    change(old, job, Some(run_at), message)
                }
                None => {
                    let message = format!("{attempt} failed: {error}; no attempts left");
                    job.state = JobState::Failed;
                    job.error = Some(error);
                    change(old, job, None, message)
                }
            }
        }
        JobOutcome::Fail(error) => {
            let message = format!("{attempt} failed for good: {error}");
            job.state = JobState::Failed;
            job.error = Some(error);
            change(old, job, None, message)
        }
        JobOutcome::AwaitAgent { reason, timeout_at, payload } => {
            job.state = JobState::AwaitingAgent;
            if let Some(payload) = payload {
                job.payload = payload;
            }
            if let Some(t) = timeout_at {
                job.run_at = t;
            }
            let until = timeout_at.map(|t| format!(" until {t}")).unwrap_or_default();
            change(old, job, timeout_at, format!("waiting for an agent{until}: {reason}"))
        }
    }
}

/// A claim that found the job past its last attempt: its previous worker's
/// lease (or agent wait) ran out on the final attempt.
pub(crate) fn exhausted(claimed: &Job, from: JobState, now: UnixTime) -> Change {
    let error = match from {
        JobState::AwaitingAgent => JobError::new("AGENT_TIMEOUT", "the agent did not answer before the timeout"),
        _ => JobError::new("LEASE_EXPIRED", "the worker's lease expired without a report"),
    };
    let message = format!("{error} on the last of {} attempts", claimed.max_attempts);
    let job = Job {
        state: JobState::Failed,
        attempts: claimed.max_attempts,
        lease: None,
        error: Some(error),
        update_time: now,
        ..claimed.clone()
    };
    Change { from, job, due_at: None, message }
}

/// Continues an AwaitingAgent job. `token` is the fresh lease token for
/// `Resume::Running`.
pub(crate) fn resume(
    old: &Job,
    payload: Option<serde_json::Value>,
    to: &Resume,
    now: UnixTime,
    token: String,
) -> Result<Change> {
    if old.state != JobState::AwaitingAgent {
        return Err(SchedulerError::Domain(certctl_domain::DomainError::FailedPrecondition(format!(
            "{} is {}, not awaiting an agent",
            old.name(),
            old.state
        ))));
    }
    let mut job = Job { update_time: now, ..old.clone() };
    if let Some(payload) = payload {
        job.payload = payload;
    }
    match to {
        Resume::Pending => {
            job.state = JobState::Pending;
            job.run_at = now;
            // The next claim adds the attempt back: the round trip to the
            // agent continues the attempt it interrupted.
            job.attempts = old.attempts.saturating_sub(1);
            change(old, job, Some(now), "the agent answered; due again".to_owned())
        }
        Resume::Running { worker, lease_secs } => {
            let expires_at = now + lease_secs;
            job.state = JobState::Running;
            job.lease = Some(Lease { owner: worker.clone(), token, expires_at });
            change(old, job, Some(expires_at), format!("the agent answered; resumed by {worker}"))
        }
    }
}

pub(crate) fn cancel(old: &Job, reason: &str, now: UnixTime) -> Result<Change> {
    let job = Job {
        state: JobState::Cancelled,
        lease: None,
        error: Some(JobError::new("CANCELLED", reason)),
        update_time: now,
        ..old.clone()
    };
    let by = old.lease.as_ref().map(|l| format!(" (it was leased to {})", l.owner)).unwrap_or_default();
    change(old, job, None, format!("cancelled{by}: {reason}"))
}

/// An operator's retry: only from Failed or Cancelled, with attempts reset.
pub(crate) fn retry(old: &Job, now: UnixTime) -> Result<Change> {
    if !old.state.is_terminal() {
        return Err(SchedulerError::Domain(certctl_domain::DomainError::FailedPrecondition(format!(
            "{} is {}; only a failed or cancelled job can be retried",
            old.name(),
            old.state
        ))));
    }
    let job = Job {
        state: JobState::Pending,
        attempts: 0,
        run_at: now,
        result: None,
        error: None,
        lease: None,
        update_time: now,
        ..old.clone()
    };
    change(old, job, Some(now), "retried by an operator".to_owned())
}

#[cfg(test)]
mod tests {
    use certctl_domain::DomainError;
    use certctl_domain::job::{JobKind, NewJob};

    use super::*;

    const NOW: UnixTime = 1_000_000;

    fn running(attempts: i32) -> Job {
        let mut job = NewJob::new(JobKind::Renewal, "k").into_job("ab".into(), &RetryPolicy::default(), NOW - 100);
        job.state = JobState::Running;
        job.attempts = attempts;
        job.lease = Some(Lease { owner: "w1".into(), token: "t1".into(), expires_at: NOW + 30 });
        job
    }

    fn lease(token: &str) -> LeaseRef {
        LeaseRef { job_id: "ab".into(), token: token.into() }
    }

    fn err() -> JobError {
        JobError::new("CA_DOWN", "connection refused")
    }

    #[test]
    fn leases_are_checked() {
        let job = running(1);
        assert!(check_lease(&job, &lease("t1")).is_ok());
        let check = |job: &Job, expected: LeaseLoss| match check_lease(job, &lease("t1")) {
            Err(SchedulerError::LeaseLost { job: name, loss }) => {
                assert_eq!(name, "jobs/ab");
                assert_eq!(loss, expected);
            }
            other => panic!("expected {expected:?}, got {other:?}"),
        };
        let mut taken = running(2);
        taken.lease = Some(Lease { owner: "w2".into(), token: "t2".into(), expires_at: NOW + 60 });
        check(&taken, LeaseLoss::Reclaimed { owner: "w2".into(), attempt: 2 });
        let cancelled = cancel(&job, "operator", NOW).unwrap().job;
        check(&cancelled, LeaseLoss::Released { state: JobState::Cancelled });
    }

    #[test]
    fn outcomes() {
        let policy = RetryPolicy::default();
        // (attempts so far, outcome) → (state, due_at, error code)
        let check = |attempts: i32, outcome: JobOutcome, state: JobState, due: Option<UnixTime>| {
            let c = report(&running(attempts), outcome.clone(), NOW, &policy, 9).unwrap();
            assert_eq!((c.job.state, c.due_at, c.from), (state, due, JobState::Running), "{outcome:?}");
            assert_eq!(c.job.lease, None, "every outcome releases the lease");
            c
        };
        let c = check(1, JobOutcome::Succeeded(serde_json::json!({"serial": "01"})), JobState::Succeeded, None);
        assert_eq!(c.job.result, Some(serde_json::json!({"serial": "01"})));
        // Jitter 9 → 10 s into the first 30 s window.
        let c = check(1, JobOutcome::Retry(err()), JobState::Pending, Some(NOW + 10));
        assert_eq!((c.job.run_at, c.job.error.as_ref().map(|e| e.code.as_str())), (NOW + 10, Some("CA_DOWN")));
        assert_eq!(c.message, "attempt 1 of 5 failed: CA_DOWN: connection refused; retrying in 10 s");
        let c = check(5, JobOutcome::Retry(err()), JobState::Failed, None);
        assert!(c.message.ends_with("no attempts left"), "{}", c.message);
        check(1, JobOutcome::Fail(err()), JobState::Failed, None);
        let wait = JobOutcome::AwaitAgent { reason: "CSR".into(), timeout_at: Some(NOW + 600), payload: None };
        let c = check(1, wait, JobState::AwaitingAgent, Some(NOW + 600));
        assert_eq!(c.job.run_at, NOW + 600);
        check(
            1,
            JobOutcome::AwaitAgent { reason: "CSR".into(), timeout_at: None, payload: None },
            JobState::AwaitingAgent,
            None,
        );
    }

    #[test]
    fn a_jobs_own_max_attempts_bounds_its_retries() {
        let mut job = running(2);
        job.max_attempts = 2;
        let c = report(&job, JobOutcome::Retry(err()), NOW, &RetryPolicy::default(), 0).unwrap();
        assert_eq!(c.job.state, JobState::Failed);
    }

    #[test]
    fn resuming() {
        let waiting = report(
            &running(2),
            JobOutcome::AwaitAgent { reason: "CSR".into(), timeout_at: None, payload: None },
            NOW,
            &RetryPolicy::default(),
            0,
        )
        .unwrap()
        .job;
        let c = resume(&waiting, Some(serde_json::json!({"csr": "x"})), &Resume::Pending, NOW, "t9".into()).unwrap();
        assert_eq!((c.job.state, c.job.attempts, c.due_at), (JobState::Pending, 1, Some(NOW)));
        assert_eq!(c.job.payload, serde_json::json!({"csr": "x"}));
        let to = Resume::Running { worker: "hub".into(), lease_secs: 60 };
        let c = resume(&waiting, None, &to, NOW, "t9".into()).unwrap();
        assert_eq!((c.job.state, c.job.attempts, c.due_at), (JobState::Running, 2, Some(NOW + 60)));
        assert_eq!(c.job.lease.map(|l| (l.owner, l.token)), Some(("hub".into(), "t9".into())));
        assert!(matches!(
            resume(&running(1), None, &Resume::Pending, NOW, "t".into()),
            Err(SchedulerError::Domain(DomainError::FailedPrecondition(_)))
        ));
    }

    #[test]
    fn cancel_and_retry() {
        let c = cancel(&running(1), "no longer needed", NOW).unwrap();
        assert_eq!(c.job.state, JobState::Cancelled);
        assert_eq!(c.message, "cancelled (it was leased to w1): no longer needed");
        assert!(cancel(&c.job, "again", NOW).is_err(), "cancelled is terminal");
        let r = retry(&c.job, NOW + 5).unwrap();
        assert_eq!(
            (r.job.state, r.job.attempts, r.job.run_at, r.due_at),
            (JobState::Pending, 0, NOW + 5, Some(NOW + 5))
        );
        assert_eq!(r.job.error, None);
        assert!(retry(&running(1), NOW).is_err(), "a running job is not retried");
        let done = report(&running(1), JobOutcome::Succeeded(serde_json::json!(null)), NOW, &RetryPolicy::default(), 0);
        let done = done.unwrap().job;
        match retry(&done, NOW) {
            Err(SchedulerError::Domain(DomainError::FailedPrecondition(m))) => {
                assert_eq!(m, "jobs/ab is succeeded; a succeeded job cannot become pending")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exhausted_claims_fail_the_job() {
        let mut claimed = running(6);
        claimed.max_attempts = 5;
        let c = exhausted(&claimed, JobState::Running, NOW);
        assert_eq!((c.job.state, c.job.attempts), (JobState::Failed, 5));
        assert_eq!(c.job.error.map(|e| e.code), Some("LEASE_EXPIRED".into()));
        let c = exhausted(&claimed, JobState::AwaitingAgent, NOW);
        assert_eq!(c.job.error.map(|e| e.code), Some("AGENT_TIMEOUT".into()));
    }
}
