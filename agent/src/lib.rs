//! certctl-agent: the process that runs on a host serving certificates.
//!
//! It enrols once with a join token (`enroll`), then holds one mTLS stream to
//! a gateway's agent hub (`session`). Private keys are generated here and
//! never leave the host: the server only ever sees CSRs. Certificates arrive
//! as deploy commands, are installed on targets (one file per target type,
//! one registry in `targets`), and are checked by a live TLS handshake
//! (`verify`). `discovery` reports the certificates it finds on disk.

pub mod client;
pub mod discovery;
pub mod enroll;
pub mod session;
pub mod state;
pub mod targets;
pub mod verify;
