//! Jobs: the unit of work the scheduler leases to workers, their state
//! machine and the retry policy.
//!
//! Every rule here is pure: the store persists what these functions decide,
//! after checking the caller's lease. "Now" and the jitter are arguments so
//! the rules can be tested from tables.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Violations;
use crate::name::{self, Collection};
use crate::{DomainError, UnixTime};

/// What a job does. The scheduler only routes on it; the payload says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum JobKind {
    Issuance,
    Renewal,
    Deployment,
    Validation,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [Self::Issuance, Self::Renewal, Self::Deployment, Self::Validation];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issuance => "issuance",
            Self::Renewal => "renewal",
            Self::Deployment => "deployment",
            Self::Validation => "validation",
        }
    }
}

impl FromStr for JobKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::invalid("job.kind", format!("`{s}` is not a job kind")))
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job is in its life.
///
/// ```text
///            claim              succeed
///  Pending ─────────► Running ─────────► Succeeded
///    ▲  ▲               │ │ ▲ fail, no attempts left
///    │  └── retry later ┘ │ └─(lease expired: claimed again)
///    │                    ├────────────► Failed ──┐
///    │    await agent     ▼                       │ operator retry
///    ├───────────── AwaitingAgent                 │
///    └────────────────────────────────────────────┘ (also from Cancelled)
///  Pending, Running, AwaitingAgent ──cancel──► Cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting for `run_at`.
    Pending,
    /// Leased to a worker until the lease expires.
    Running,
    /// Waiting for an agent (a CSR, a deployment report); holds no lease.
    AwaitingAgent,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] =
        [Self::Pending, Self::Running, Self::AwaitingAgent, Self::Succeeded, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::AwaitingAgent => "awaiting_agent",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// No worker moves a terminal job any further; only an operator's retry
    /// (from Failed or Cancelled) brings it back.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The transition table: the one place that says which moves exist.
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Pending, Running | Cancelled)
                // Running → Running: a lease expired and another worker claimed the job.
                // Running → Pending: the attempt failed and a retry waits for its backoff.
                | (Running, Running | Pending | AwaitingAgent | Succeeded | Failed | Cancelled)
                // Running: the agent's wait timed out and a worker claimed the job again.
                | (AwaitingAgent, Pending | Running | Failed | Cancelled)
                | (Failed | Cancelled, Pending)
        )
    }

    /// `can_become` as a precise error for callers.
    pub fn check_transition(self, next: JobState, job: &str) -> Result<(), DomainError> {
        if self.can_become(next) {
            Ok(())
        } else if self == next {
            Err(DomainError::FailedPrecondition(format!("{job} is already {self}")))
        } else {
            Err(DomainError::FailedPrecondition(format!("{job} is {self}; a {self} job cannot become {next}")))
        }
    }
}

impl FromStr for JobState {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DomainError::invalid("job.state", format!("`{s}` is not a job state")))
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt or a job failed: a stable code a program can act on and a
/// message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// UPPER_SNAKE, e.g. `ACME_RATE_LIMITED`, `LEASE_EXPIRED`, `CANCELLED`.
    pub code: String,
    pub message: String,
}

impl JobError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A worker's claim on a running job. The token changes with every claim, so
/// a worker whose lease expired cannot act for the worker that holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub token: String,
    pub expires_at: UnixTime,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// 32 lower-case hex digits (128 random bits).
    pub id: String,
    pub kind: JobKind,
    pub state: JobState,
    /// `certificates/{id}` the job is about, if any.
    pub certificate: Option<String>,
    /// Unique across jobs: enqueueing the same key again returns this job.
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    /// Set when the job succeeded.
    pub result: Option<serde_json::Value>,
    /// The last attempt's failure, or why the job was cancelled.
    pub error: Option<JobError>,
    /// Claims so far, counting the one running now.
    pub attempts: i32,
    pub max_attempts: i32,
    /// When the job is due (Pending) or last became due.
    pub run_at: UnixTime,
    /// Present exactly while the job is Running.
    pub lease: Option<Lease>,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl Job {
    /// `jobs/{id}`.
    pub fn name(&self) -> String {
        job_name(&self.id)
    }
}

pub fn job_name(id: &str) -> String {
    Collection::Jobs.name(id)
}

/// Parses `jobs/{id}` and returns the id.
pub fn parse_job_name<'a>(field: &str, name: &'a str) -> Result<&'a str, DomainError> {
    name::parse(field, Collection::Jobs, name)
}

/// The longest idempotency key accepted: room for a resource name and a suffix.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;
/// A cap on payloads so one job cannot bloat every claim batch.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
pub const MAX_ATTEMPTS_LIMIT: i32 = 100;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: JobKind,
    pub certificate: Option<String>,
    pub idempotency_key: String,
    pub payload: serde_json::Value,
    /// `None`: the retry policy's `max_attempts`.
    pub max_attempts: Option<i32>,
    /// `None`: now.
    pub run_at: Option<UnixTime>,
}

impl NewJob {
    pub fn new(kind: JobKind, idempotency_key: impl Into<String>) -> Self {
        Self {
            kind,
            certificate: None,
            idempotency_key: idempotency_key.into(),
            payload: serde_json::Value::Object(Default::default()),
            max_attempts: None,
            run_at: None,
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        let key = &self.idempotency_key;
        v.check(!key.is_empty(), "job.idempotency_key", "required");
        v.check(
            key.len() <= MAX_IDEMPOTENCY_KEY_LEN,
            "job.idempotency_key",
            &format!("at most {MAX_IDEMPOTENCY_KEY_LEN} bytes"),
        );
        v.check(!key.chars().any(char::is_control), "job.idempotency_key", "must not contain control characters");
        if let Some(certificate) = &self.certificate {
            v.merge(name::parse("job.certificate", Collection::Certificates, certificate).map(|_| ()));
        }
        if let Some(n) = self.max_attempts {
            v.check(
                (1..=MAX_ATTEMPTS_LIMIT).contains(&n),
                "job.max_attempts",
                &format!("between 1 and {MAX_ATTEMPTS_LIMIT}"),
            );
        }
        let payload_len = serde_json::to_vec(&self.payload).map_or(usize::MAX, |b| b.len());
        v.check(payload_len <= MAX_PAYLOAD_BYTES, "job.payload", &format!("at most {MAX_PAYLOAD_BYTES} bytes of JSON"));
        v.into_result()
    }

    /// The job as first stored: Pending, no attempts yet.
    pub fn into_job(self, id: String, policy: &RetryPolicy, now: UnixTime) -> Job {
        Job {
            id,
            kind: self.kind,
            state: JobState::Pending,
            certificate: self.certificate,
            idempotency_key: self.idempotency_key,
            payload: self.payload,
            result: None,
            error: None,
            attempts: 0,
            max_attempts: self.max_attempts.unwrap_or(policy.max_attempts),
            run_at: self.run_at.unwrap_or(now),
            lease: None,
            create_time: now,
            update_time: now,
        }
    }
}

/// One entry of a job's timeline, for the job's detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTransition {
    /// Increases along a job's timeline.
    pub seq: i64,
    pub time: UnixTime,
    /// `None` for the entry that created the job.
    pub from: Option<JobState>,
    pub to: JobState,
    /// The job's attempt count after the transition.
    pub attempt: i32,
    pub message: String,
}

/// How often and how patiently a failing job is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: i32,
    /// The backoff ceiling after the first failed attempt; it doubles with each.
    pub base_delay_secs: i64,
    pub max_delay_secs: i64,
}

impl Default for RetryPolicy {
    /// Five attempts over about eight minutes at worst (30 s, 1, 2, 4 min ceilings):
    /// long enough to ride out a CA hiccup, short enough that an operator
    /// hears of a real outage the same hour.
    fn default() -> Self {
        Self { max_attempts: 5, base_delay_secs: 30, max_delay_secs: 3600 }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.check((1..=MAX_ATTEMPTS_LIMIT).contains(&self.max_attempts), "retry.max_attempts", "between 1 and 100");
        v.check(self.base_delay_secs >= 1, "retry.base_delay", "at least one second");
        v.check(self.max_delay_secs >= self.base_delay_secs, "retry.max_delay", "at least the base delay");
        v.into_result()
    }

    /// The backoff ceiling after `attempt` failed attempts:
    /// `min(max_delay, base × 2^(attempt-1))`.
    pub fn ceiling_secs(&self, attempt: i32) -> i64 {
        let doublings = u32::try_from(attempt.max(1) - 1).unwrap_or(0).min(62);
        let base = self.base_delay_secs.max(1);
        base.checked_mul(1_i64 << doublings).map_or(self.max_delay_secs, |d| d.min(self.max_delay_secs)).max(1)
    }

    /// When to run again after `attempt` attempts (1 after the first) failed,
    /// or `None` when none are left.
    ///
    /// Full jitter: the delay is uniform over `1..=ceiling`, drawn from
    /// `jitter` (any random word). Spreading retries over the whole window,
    /// rather than adding a little noise to a fixed delay, is what keeps a
    /// thousand jobs failing together on a CA outage from returning together.
    /// The one-second floor keeps a failing job from spinning.
    pub fn next_attempt_at(&self, attempt: i32, now: UnixTime, jitter: u64) -> Option<UnixTime> {
        if attempt >= self.max_attempts {
            return None;
        }
        let ceiling = self.ceiling_secs(attempt) as u64;
        Some(now.saturating_add(1 + (jitter % ceiling) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        for k in JobKind::ALL {
            assert_eq!(k.as_str().parse::<JobKind>().unwrap(), k);
        }
        assert!("Pending".parse::<JobState>().is_err(), "lower-case snake only");
        assert!("awaitingAgent".parse::<JobState>().is_err());
        assert!("".parse::<JobKind>().is_err());
        assert_eq!(AwaitingAgent.as_str(), "awaiting_agent");
    }

    #[test]
    fn transition_table() {
        // Every pair, so a change to the table fails here until this list agrees.
        let allowed = [
            (Pending, Running),
            (Pending, Cancelled),
            (Running, Running),
            (Running, Pending),
            (Running, AwaitingAgent),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Cancelled),
            (AwaitingAgent, Pending),
            (AwaitingAgent, Running),
            (AwaitingAgent, Failed),
            (AwaitingAgent, Cancelled),
            (Failed, Pending),
            (Cancelled, Pending),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                let check = |expected: bool| assert_eq!(from.can_become(to), expected, "{from} -> {to}");
                check(allowed.contains(&(from, to)));
            }
        }
    }

    #[test]
    fn terminal_states_are_left_only_by_retry() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in JobState::ALL {
                if from.can_become(to) {
                    assert_eq!(to, Pending, "{from} -> {to}");
                }
            }
        }
        assert!(!Succeeded.can_become(Pending), "a success is final");
        assert_eq!(JobState::ALL.iter().filter(|s| s.is_terminal()).count(), 3);
    }

    #[test]
    fn refused_transitions_say_why() {
        let err = Succeeded.check_transition(Cancelled, "jobs/abc").unwrap_err();
        assert_eq!(
            err,
            DomainError::FailedPrecondition(
                "jobs/abc is succeeded; a succeeded job cannot become cancelled".to_owned()
            )
        );
        let err = Cancelled.check_transition(Cancelled, "jobs/abc").unwrap_err();
        assert_eq!(err, DomainError::FailedPrecondition("jobs/abc is already cancelled".to_owned()));
        assert!(Pending.check_transition(Running, "jobs/abc").is_ok());
    }

    #[test]
    fn backoff() {
        let policy = RetryPolicy { max_attempts: 5, base_delay_secs: 30, max_delay_secs: 100 };
        let now = 1_000;
        // (attempt, jitter, expected)
        let check = |attempt: i32, jitter: u64, expected: Option<UnixTime>| {
            assert_eq!(policy.next_attempt_at(attempt, now, jitter), expected, "attempt {attempt} jitter {jitter}");
        };
        check(1, 0, Some(now + 1)); // the floor: never immediately
        check(1, 29, Some(now + 30)); // the top of the first window
        check(1, 30, Some(now + 1)); // jitter wraps inside the window
        check(2, 59, Some(now + 60)); // the window doubles
        check(3, 99, Some(now + 100)); // 120 capped at 100
        check(4, u64::MAX, Some(now + 1 + (u64::MAX % 100) as i64));
        check(5, 0, None); // five attempts made: none left
        check(9, 0, None);
        check(0, 0, Some(now + 1)); // nonsense attempt counts behave like the first
    }

    #[test]
    fn backoff_ceilings_double_up_to_the_cap_without_overflow() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<i64> = (1..=9).map(|a| policy.ceiling_secs(a)).collect();
        assert_eq!(ceilings, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let huge = RetryPolicy { max_attempts: 100, base_delay_secs: i64::MAX / 2, max_delay_secs: i64::MAX };
        assert_eq!(huge.ceiling_secs(99), i64::MAX);
        assert!(huge.next_attempt_at(98, i64::MAX - 5, 7).is_some(), "saturates instead of overflowing");
    }

    #[test]
    fn full_jitter_covers_the_window() {
        let policy = RetryPolicy { max_attempts: 10, base_delay_secs: 10, max_delay_secs: 3600 };
        let delays: std::collections::BTreeSet<i64> = (0..1000_u64)
            .map(|j| policy.next_attempt_at(1, 0, j.wrapping_mul(0x9e37_79b9_7f4a_7c15)).unwrap())
            .collect();
        assert_eq!(delays, (1..=10).collect(), "every delay in 1..=10 s occurs");
    }

    #[test]
    fn retry_policy_validation() {
        assert!(RetryPolicy::default().validate().is_ok());
        let bad = RetryPolicy { max_attempts: 0, base_delay_secs: 0, max_delay_secs: -1 };
        let DomainError::InvalidArgument(v) = bad.validate().unwrap_err() else { panic!("invalid argument") };
        assert_eq!(v.len(), 3, "{v:?}");
    }

    #[test]
    fn new_job_validation() {
        let check = |job: NewJob, field: Option<&str>| match (job.validate(), field) {
            (Ok(()), None) => {}
            (Err(DomainError::InvalidArgument(v)), Some(f)) => {
                assert!(v.iter().any(|v| v.field == f), "expected {f}, got {v:?}")
            }
            (other, _) => panic!("expected {field:?}, got {other:?}"),
        };
        let ok = NewJob::new(JobKind::Renewal, "renew:certificates/web/versions/1");
        check(ok.clone(), None);
        check(NewJob { certificate: Some("certificates/web".into()), ..ok.clone() }, None);
        check(NewJob { certificate: Some("owners/web".into()), ..ok.clone() }, Some("job.certificate"));
        check(NewJob::new(JobKind::Renewal, ""), Some("job.idempotency_key"));
        check(NewJob::new(JobKind::Renewal, "a\nb"), Some("job.idempotency_key"));
        check(NewJob::new(JobKind::Renewal, "k".repeat(257)), Some("job.idempotency_key"));
        check(NewJob { max_attempts: Some(0), ..ok.clone() }, Some("job.max_attempts"));
        check(NewJob { max_attempts: Some(101), ..ok.clone() }, Some("job.max_attempts"));
        let big = serde_json::json!({ "blob": "x".repeat(MAX_PAYLOAD_BYTES) });
        check(NewJob { payload: big, ..ok }, Some("job.payload"));
    }

    #[test]
    fn new_jobs_start_pending_with_the_policy_defaults() {
        let policy = RetryPolicy::default();
        let job = NewJob::new(JobKind::Issuance, "k").into_job("ab".into(), &policy, 500);
        assert_eq!((job.state, job.attempts, job.max_attempts, job.run_at), (Pending, 0, 5, 500));
        assert_eq!(job.name(), "jobs/ab");
        let later = NewJob { run_at: Some(900), max_attempts: Some(2), ..NewJob::new(JobKind::Issuance, "k") };
        let job = later.into_job("ab".into(), &policy, 500);
        assert_eq!((job.run_at, job.max_attempts), (900, 2));
        assert_eq!(parse_job_name("name", "jobs/ab").unwrap(), "ab");
        assert!(parse_job_name("name", "certificates/ab").is_err());
    }
}
