//! The audit trail's storage: one trait, a SQLite and a PostgreSQL
//! implementation generated from the same SQL (`sql.rs`), and one
//! conformance suite (`tests/store_conformance.rs`) that runs against both.
//!
//! The trait has no way to change or remove an event: the trail is
//! append-only at every layer, down to triggers in the schema.

mod sql;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::audit::{AuditEvent, NewAuditEvent};

pub use sql::{PostgresStore, SqliteStore};

/// How the resource filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceFilter {
    Exact(String),
    /// Every resource starting with this text, which ends in `/`.
    Prefix(String),
}

/// A filtered, keyset-paginated read of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventQuery {
    /// Inclusive lower bound on the event time, in microseconds.
    pub start_time_micros: Option<i64>,
    /// Exclusive upper bound on the event time, in microseconds.
    pub end_time_micros: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub resource: Option<ResourceFilter>,
    /// Newest first when true.
    pub descending: bool,
    /// Only events strictly after this sequence in the chosen direction.
    pub after_sequence: Option<i64>,
    /// Only events up to and including this sequence: a snapshot of the
    /// chain as it stood, for walks that must not chase new appends.
    pub through_sequence: Option<i64>,
    pub limit: i64,
}

impl EventQuery {
    /// The whole chain in order, from just after `after_sequence`.
    pub fn chain(after_sequence: i64, limit: i64) -> Self {
        Self { after_sequence: Some(after_sequence), limit, ..Self::default() }
    }
}

/// The last event of the chain as the store recorded it; sequence 0 and the
/// genesis hash while the chain is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub sequence: i64,
    pub hash: String,
}

/// The audit trail's persistence.
///
/// Object safe, so a server can hold an `Arc<dyn Store>` whichever backend it
/// opened.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Links `events` onto the chain in the given order, in one transaction,
    /// serialised against every other appender (other connections and other
    /// replicas included). An event whose (source, source_id) is already in
    /// the chain, or earlier in the same batch, is skipped. Returns how many
    /// events were appended.
    async fn append(&self, events: &[NewAuditEvent]) -> Result<u64, StoreError>;

    async fn get(&self, sequence: i64) -> Result<AuditEvent, StoreError>;

    /// At most `query.limit` events matching the query, in sequence order.
    async fn list(&self, query: &EventQuery) -> Result<Vec<AuditEvent>, StoreError>;

    async fn head(&self) -> Result<ChainHead, StoreError>;
}
