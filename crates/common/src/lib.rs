//! Plumbing shared by every certctl service: error ⇄ status mapping, database
//! connections and migrations, graceful shutdown, logging.
//!
//! Architecture invariant: no business rules and no proto types beyond
//! `tonic::Status`; nothing here knows which service it serves.

pub mod caller;
pub mod db;
pub mod error;
pub mod secret;
pub mod shutdown;
pub mod telemetry;

pub use error::{StoreError, status_from_domain};
