//! certctl-agent: the process that runs on a host serving certificates.
//!
//! It enrols once with a join token, then holds one mTLS stream to a
//! gateway's agent hub. Private keys are generated here and never leave the
//! host: the server only ever sees CSRs. Certificates arrive as deploy
//! commands, are installed on targets (one file per target type, one
//! registry in `targets`), and are checked by a live TLS handshake.

pub mod discovery;
pub mod targets;
pub mod verify;
