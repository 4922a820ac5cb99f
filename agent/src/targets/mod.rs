//! Deployment targets: one file per target type, one registry.
