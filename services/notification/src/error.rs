//! The notification service's errors and their one mapping to gRPC.

use certctl_common::StoreError;
use certctl_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// A bad argument, an unknown resource, a refused state change.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sealed channel secret does not open (wrong master key, corrupt row).
    #[error("the secrets of {channel} cannot be opened: {reason}")]
    Secret { channel: String, reason: String },
}

pub type Result<T, E = NotificationError> = std::result::Result<T, E>;

impl From<NotificationError> for tonic::Status {
    fn from(err: NotificationError) -> Self {
        match err {
            NotificationError::Domain(e) => certctl_common::status_from_domain(e),
            NotificationError::Store(e) => e.into(),
            secret @ NotificationError::Secret { .. } => {
                tracing::error!(error = %secret, "a channel secret does not open");
                certctl_common::status_from_domain(DomainError::FailedPrecondition(secret.to_string()))
            }
        }
    }
}
