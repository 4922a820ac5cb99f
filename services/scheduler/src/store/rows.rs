//! What the SQL of both backends shares outside the macro: column lists,
//! chunk sizes, conversions between rows and domain values, and the
//! timeline messages.

use certctl_domain::DomainError;
use certctl_domain::job::{JobError, JobState};

use crate::error::{Result, SchedulerError, corrupt};

pub(super) const JOB_COLUMNS: &str = "id, kind, state, certificate, idempotency_key, payload, result, error_code, \
    error_message, attempts, max_attempts, run_at, lease_owner, lease_token, lease_expires_at, create_time, update_time";

/// Rows per multi-row statement: 1000 rows of at most 13 parameters stay well
/// under SQLite's 32766 and PostgreSQL's 65535 bound parameters, and a full
/// chunk is one prepared statement reused for every chunk.
pub(super) const CHUNK: usize = 1000;

/// The longest lease a worker may ask for: long enough for any handler that
/// renews, short enough that a dead worker's job is not stuck for days.
pub(super) const MAX_LEASE_SECS: i64 = 24 * 3600;

pub(super) fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A new job's id: 32 hex digits, the first 12 the creation time in
/// milliseconds, the rest random. Ids that grow with time keep inserts at the
/// right edge of the primary-key index instead of splitting pages all over
/// it, which is most of what a bulk enqueue costs.
pub(super) fn new_job_id() -> String {
    let millis = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let random = rand::random::<u128>() & ((1u128 << 80) - 1);
    format!("{:012x}{random:020x}", millis & 0xffff_ffff_ffff)
}

pub(super) fn json_text(value: &serde_json::Value) -> String {
    value.to_string()
}

pub(super) fn parse_json(column: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| corrupt(column, e))
}

pub(super) fn parse_state(text: &str) -> Result<JobState> {
    text.parse().map_err(|_| corrupt("state", text))
}

pub(super) fn to_i32(column: &str, value: i64) -> Result<i32> {
    i32::try_from(value).map_err(|_| corrupt(column, value))
}

pub(super) fn error_parts(error: &Option<JobError>) -> (Option<String>, Option<String>) {
    match error {
        Some(e) => (Some(e.code.clone()), Some(e.message.clone())),
        None => (None, None),
    }
}

pub(super) fn check_lease_secs(lease_secs: i64) -> Result<()> {
    if (1..=MAX_LEASE_SECS).contains(&lease_secs) {
        Ok(())
    } else {
        Err(SchedulerError::Domain(DomainError::invalid("lease_secs", format!("between 1 and {MAX_LEASE_SECS}"))))
    }
}

/// The timeline message of a claim, by the state the job was claimed from.
pub(super) fn claim_message(worker: &str, from: JobState, previous_owner: Option<&str>) -> String {
    match from {
        JobState::Running => {
            format!("claimed by {worker}: the lease of {} expired", previous_owner.unwrap_or("another worker"))
        }
        JobState::AwaitingAgent => format!("claimed by {worker}: the wait for the agent timed out"),
        _ => format!("claimed by {worker}"),
    }
}

/// The first timeline entry, which the job row itself records.
pub(super) fn creation_entry(job: &certctl_domain::job::Job) -> certctl_domain::job::JobTransition {
    // Only what the row still knows: run_at moves with retries, so the
    // original due time is not repeated here.
    let message = "enqueued".to_owned();
    certctl_domain::job::JobTransition {
        seq: 0,
        time: job.create_time,
        from: None,
        to: JobState::Pending,
        attempt: 0,
        message,
    }
}

/// Validates a bulk enqueue, naming fields `jobs[i].…` when there are several.
pub(super) fn validate_new_jobs(jobs: &[certctl_domain::job::NewJob]) -> Result<()> {
    let mut all = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Err(DomainError::InvalidArgument(violations)) = job.validate() {
            for mut v in violations {
                if jobs.len() > 1 {
                    v.field = v.field.replacen("job.", &format!("jobs[{i}]."), 1);
                }
                all.push(v);
            }
        }
    }
    if all.is_empty() { Ok(()) } else { Err(SchedulerError::Domain(DomainError::InvalidArgument(all))) }
}

/// One timeline row to insert.
pub(super) struct Entry {
    pub job_id: String,
    pub from: Option<JobState>,
    pub to: JobState,
    pub attempt: i32,
    pub message: String,
}
