//! The store conformance suite: every test is a generic async fn over a
//! `TestDb<impl Backend>`, and `on_both!` runs it once on SQLite and once on
//! PostgreSQL (when `CERTCTL_TEST_DATABASE_URL` names a server; each
//! PostgreSQL test gets a database of its own, dropped afterwards).

#[macro_use]
mod support;

#[path = "store_conformance/coordination.rs"]
mod coordination;
#[path = "store_conformance/enqueue.rs"]
mod enqueue;
#[path = "store_conformance/leases.rs"]
mod leases;
#[path = "store_conformance/lifecycle.rs"]
mod lifecycle;
