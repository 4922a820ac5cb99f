//! Live verification: what a TLS endpoint serves.
