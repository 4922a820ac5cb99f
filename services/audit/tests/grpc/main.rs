//! The audit service over real gRPC: a tonic server on 127.0.0.1:0 and the
//! generated clients, on SQLite and (when configured) PostgreSQL. One test
//! binary, one module per part of the API.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod export;
mod ingest;
mod list;
mod server;
mod verify;
