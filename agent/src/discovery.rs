//! Filesystem discovery of certificates the platform does not manage yet.
