//! certctl's domain: the types every service agrees on and the rules that need
//! no IO (names, validation, certificate state, renewal timing, page tokens).
//!
//! Architecture invariant: this crate does no IO and knows nothing of protobuf,
//! SQL or HTTP. Services convert at their edges.

pub mod agents;
pub mod audit;
pub mod deployment;
pub mod discovery;
pub mod error;
pub mod inventory;
pub mod issuance;
pub mod job;
pub mod name;
pub mod page;
pub mod policy;
pub mod renewal;

pub use error::{DomainError, FieldViolation};

/// Seconds since the Unix epoch, the unit every store and page token uses.
pub type UnixTime = i64;

pub fn now() -> UnixTime {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `2026-12-04T10:00:00Z`, for messages people read.
pub fn rfc3339(unix: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}
