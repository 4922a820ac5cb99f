//! The scheduler's errors, and their one mapping to gRPC statuses.

use certctl_common::StoreError;
use certctl_domain::job::JobState;
use certctl_domain::{DomainError, UnixTime};

/// What a scheduler call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A bad argument, an unknown job, or a transition the state machine refuses.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller's lease on `job` is no longer valid: it must stop working on
    /// the job and must not report for it.
    #[error("{job}: {loss}")]
    LeaseLost { job: String, loss: LeaseLoss },
}

/// Why a lease stopped being valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLoss {
    /// The lease ran out before it was renewed. The job is claimable again
    /// (or already claimed), so renewing now would race the next worker.
    #[error("the lease expired at {expired_at} before it was renewed")]
    Expired { expired_at: UnixTime },
    /// Another worker claimed the job after this lease expired.
    #[error("the lease was taken over by {owner} (attempt {attempt})")]
    Reclaimed { owner: String, attempt: i32 },
    /// The job left Running (it was cancelled, or this lease already reported).
    #[error("the job is {state} and no longer leased")]
    Released { state: JobState },
}

pub type Result<T, E = SchedulerError> = std::result::Result<T, E>;

impl From<sqlx::Error> for SchedulerError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

impl From<SchedulerError> for tonic::Status {
    fn from(err: SchedulerError) -> Self {
        match err {
            SchedulerError::Domain(e) => certctl_common::status_from_domain(e),
            SchedulerError::Store(e) => e.into(),
            lost @ SchedulerError::LeaseLost { .. } => {
                certctl_common::status_from_domain(DomainError::FailedPrecondition(lost.to_string()))
            }
        }
    }
}

pub(crate) fn not_found(id: &str) -> SchedulerError {
    SchedulerError::Domain(DomainError::not_found(certctl_domain::job::job_name(id)))
}

pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> SchedulerError {
    SchedulerError::Store(StoreError::Internal(format!("corrupt value in jobs.{column}: {detail}")))
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn lost_leases_are_failed_preconditions_that_name_the_job() {
        let err = SchedulerError::LeaseLost {
            job: "jobs/ab".into(),
            loss: LeaseLoss::Reclaimed { owner: "worker-2".into(), attempt: 3 },
        };
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "jobs/ab: the lease was taken over by worker-2 (attempt 3)");
        assert_eq!(tonic::Status::from(not_found("ab")).code(), Code::NotFound);
    }
}
