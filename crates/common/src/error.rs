//! One mapping from certctl errors to canonical gRPC codes with
//! `google.rpc` details; the REST layer maps those codes to HTTP statuses.

use certctl_domain::DomainError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The error domain reported in `google.rpc.ErrorInfo`.
pub const ERROR_DOMAIN: &str = "certctl.dev";

/// Storage failures, independent of the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{resource} not found")]
    NotFound { resource: String },
    #[error("{resource} already exists")]
    AlreadyExists { resource: String },
    #[error("{0}")]
    FailedPrecondition(String),
    /// The database cannot be reached right now; callers may retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A bug or a corrupted row: logged in full, reported to callers without internals.
    #[error("storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// True when the error is a unique-constraint violation.
    pub fn from_sqlx(err: sqlx::Error, resource: impl FnOnce() -> String) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::AlreadyExists { resource: resource() },
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::FailedPrecondition(format!("{} is still referenced", resource()))
            }
            sqlx::Error::RowNotFound => Self::NotFound { resource: resource() },
            _ => Self::from(err),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(e) => Self::Unavailable(e.to_string()),
            sqlx::Error::Tls(e) => Self::Unavailable(e.to_string()),
            sqlx::Error::PoolTimedOut => Self::Unavailable("timed out waiting for a database connection".into()),
            sqlx::Error::PoolClosed => Self::Unavailable("the connection pool is closed".into()),
            sqlx::Error::Database(db) => {
                // PostgreSQL's class 08 (connection exception), 57P0x (shutdown) and
                // SQLite's BUSY/LOCKED are transient.
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                if code.starts_with("08") || code.starts_with("57P") || code == "5" || code == "6" {
                    Self::Unavailable(db.to_string())
                } else {
                    Self::Internal(db.to_string())
                }
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

fn with_reason(code: Code, message: String, reason: &str, details: ErrorDetails) -> Status {
    let mut details = details;
    details.set_error_info(reason, ERROR_DOMAIN, []);
    Status::with_error_details(code, message, details)
}

/// Maps a domain error to a status whose details name the offending fields.
pub fn status_from_domain(err: DomainError) -> Status {
    match err {
        DomainError::InvalidArgument(violations) => {
            let message = err_message(&violations);
            let mut details = ErrorDetails::new();
            for v in &violations {
                details.add_bad_request_violation(v.field.clone(), v.description.clone());
            }
            with_reason(Code::InvalidArgument, message, "INVALID_ARGUMENT", details)
        }
        DomainError::NotFound { resource } => {
            let mut details = ErrorDetails::new();
            details.set_resource_info("", resource.clone(), "", "");
            with_reason(Code::NotFound, format!("{resource} not found"), "NOT_FOUND", details)
        }
        DomainError::AlreadyExists { resource } => {
            let mut details = ErrorDetails::new();
            details.set_resource_info("", resource.clone(), "", "");
            with_reason(Code::AlreadyExists, format!("{resource} already exists"), "ALREADY_EXISTS", details)
        }
        DomainError::FailedPrecondition(message) => {
            with_reason(Code::FailedPrecondition, message, "FAILED_PRECONDITION", ErrorDetails::new())
        }
        DomainError::Unauthenticated(message) => {
            with_reason(Code::Unauthenticated, message, "UNAUTHENTICATED", ErrorDetails::new())
        }
    }
}

fn err_message(violations: &[certctl_domain::FieldViolation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { resource } => status_from_domain(DomainError::NotFound { resource }),
            StoreError::AlreadyExists { resource } => status_from_domain(DomainError::AlreadyExists { resource }),
            StoreError::FailedPrecondition(m) => status_from_domain(DomainError::FailedPrecondition(m)),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(std::time::Duration::from_secs(1)));
                with_reason(
                    Code::Unavailable,
                    "the database is unavailable; retry shortly".into(),
                    "DATABASE_UNAVAILABLE",
                    details,
                )
            }
            StoreError::Internal(reason) => {
                tracing::error!(%reason, "storage error");
                with_reason(
                    Code::Internal,
                    "internal storage error; see the server log".into(),
                    "STORAGE",
                    ErrorDetails::new(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_names_the_field() {
        let status = status_from_domain(DomainError::invalid("certificate.owner", "bad"));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "certificate.owner");
        assert_eq!(details.error_info().unwrap().reason, "INVALID_ARGUMENT");
    }

    #[test]
    fn unauthenticated_keeps_its_message() {
        let status = status_from_domain(DomainError::Unauthenticated("join token is not valid".into()));
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "join token is not valid");
        assert_eq!(status.get_error_details().error_info().unwrap().reason, "UNAUTHENTICATED");
    }

    #[test]
    fn unavailable_is_retryable() {
        let status = Status::from(StoreError::Unavailable("connection refused".into()));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("refused"), "internals stay in the log");
    }
}
