//! X.509 work shared by the server and the agent.
//!
//! - [`keys`]: key types, generation (RSA included), loading PKCS#8 keys,
//!   describing public keys.
//! - [`csr`]: verifying certificate signing requests and building them.
//! - [`parse`]: PEM chains into the inventory's `ParsedCertificate`.
//! - [`ocsp`]: an RFC 6960 codec: requests in, signed responses out.
//! - [`pkcs12`]: PKCS#12 bundles that OpenSSL 3 reads without its legacy provider.
//! - [`generate`]: a CA and leaves for the demo seed and test fixtures.
//!
//! Architecture invariant: no IO and no async; callers hand in bytes and get
//! domain types back. Nothing here logs. Private key material leaves only
//! through the outputs whose purpose it is (generated keys, PKCS#12 bundles).

pub mod csr;
mod der;
pub mod generate;
pub mod keys;
pub mod ocsp;
pub mod parse;
pub mod pkcs12;

pub use csr::{CsrError, VerifiedCsr, build_csr, verify_csr};
pub use keys::{KeyError, KeyType, PublicKeyInfo};
pub use parse::{ParseError, parse_pem_chain};
