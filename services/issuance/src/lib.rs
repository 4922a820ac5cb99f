//! The issuance service (`certctl.issuance.v1`).
