//! X.509 work shared by server and agent.
//!
//! Architecture invariant: no IO and no async; callers hand in bytes and get
//! domain types back. Never logs or returns private key material.

pub mod generate;
pub mod parse;

pub use parse::{ParseError, parse_pem_chain};
