//! The notification service's storage: the `Store` trait and one SQL text
//! (`sql.rs`) expanded for SQLite and for PostgreSQL. The two backends
//! differ only in how a write transaction starts (`sqlite.rs`,
//! `postgres.rs`); one conformance suite (`tests/store_conformance.rs`) runs
//! against both.
//!
//! Coordination between replicas lives in the rows themselves, so it is the
//! same on both backends: a notification's unique `dedup_key` records each
//! event once whoever sees it first; a delivery is claimed by moving its due
//! time past a lease and stamping a claim token that only the claimer can
//! finish with; leadership of the scan loops is a lease row.

mod postgres;
mod sql;
mod sqlite;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;

pub(crate) use certctl_outbox::Outbox;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use crate::channels::ChannelConfig;
use crate::model::{Delivery, EventType, InboxGroup, InboxItem, Notification, RoutingRule};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A channel as stored: its settings without secrets, and the secrets
/// sealed under the master key.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChannel {
    pub id: String,
    pub display_name: String,
    pub config: ChannelConfig,
    pub sealed_secret: Option<String>,
    pub disabled: bool,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl StoredChannel {
    pub fn name(&self) -> String {
        format!("channels/{}", self.id)
    }
}

/// A delivery leased to one worker, with what it needs to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub delivery: Delivery,
    pub token: String,
    pub notification: Notification,
    /// `None` when the channel was deleted since.
    pub channel: Option<StoredChannel>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status: i32,
        excerpt: String,
    },
    /// Pending again, due at `next_attempt_at`.
    Retry {
        next_attempt_at: UnixTime,
        error: String,
        status: i32,
        excerpt: String,
    },
    Failed {
        error: String,
        status: i32,
        excerpt: String,
    },
}

/// Filters of a notification listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotificationFilter {
    pub event_type: Option<EventType>,
    pub certificate: Option<String>,
}

/// Filters of a delivery listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub notification_id: Option<String>,
    pub state: Option<crate::model::DeliveryState>,
    pub channel_id: Option<String>,
}

/// Filters of an inbox listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    pub recipient: String,
    pub unread_only: bool,
    pub certificate: Option<String>,
}

/// The position after the last row of a newest-first page.
pub type Before = Option<(UnixTime, String)>;

#[async_trait]
/// The store's audit outbox is the shared relay's `Outbox`.
pub trait Store: Outbox + Send + Sync + 'static {
    /// Creates a channel and commits `event`. With a `request_id` already
    /// used, returns the channel that request created and changes nothing.
    async fn insert_channel(
        &self,
        channel: &StoredChannel,
        request_id: &str,
        event: NewAuditEvent,
    ) -> Result<StoredChannel>;
    async fn get_channel(&self, id: &str) -> Result<Option<StoredChannel>>;
    /// Channels in id order after `after_id`, of one kind if given.
    async fn list_channels(&self, kind: Option<&str>, after_id: Option<&str>, limit: i64)
    -> Result<Vec<StoredChannel>>;
    /// Replaces a channel's settings, secrets and flags (NOT_FOUND if gone).
    async fn update_channel(&self, channel: &StoredChannel, event: NewAuditEvent) -> Result<()>;
    /// Deletes a channel (NOT_FOUND if gone); its deliveries then fail.
    async fn delete_channel(&self, id: &str, event: NewAuditEvent) -> Result<()>;

    async fn insert_rule(&self, rule: &RoutingRule, request_id: &str, event: NewAuditEvent) -> Result<RoutingRule>;
    async fn get_rule(&self, id: &str) -> Result<Option<RoutingRule>>;
    async fn list_rules(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<RoutingRule>>;
    async fn update_rule(&self, rule: &RoutingRule, event: NewAuditEvent) -> Result<()>;
    async fn delete_rule(&self, id: &str, event: NewAuditEvent) -> Result<()>;

    /// Records a notification with its deliveries and inbox entries (one per
    /// recipient) in one transaction. False, and nothing written, when a
    /// notification with the same dedup key exists: the event was recorded.
    async fn record(&self, notification: &Notification, deliveries: &[Delivery], inbox: &[String]) -> Result<bool>;
    async fn get_notification(&self, id: &str) -> Result<Option<Notification>>;
    /// Newest first.
    async fn list_notifications(
        &self,
        filter: &NotificationFilter,
        before: Before,
        limit: i64,
    ) -> Result<Vec<Notification>>;
    /// Unresolved notifications that have an alert key.
    async fn open_alerts(&self) -> Result<Vec<Notification>>;
    /// Marks a notification resolved at `now`. Its pending triggers fail
    /// ("resolved before delivery"); each channel of a kind in `resolvers`
    /// that delivered the trigger gets a resolve delivery. Returns how many.
    async fn resolve(&self, id: &str, now: UnixTime, resolvers: &[&str], max_attempts: i32) -> Result<usize>;

    /// Leases up to `limit` due pending deliveries for `lease_secs`, oldest
    /// due first, counting an attempt each. Concurrent callers never get the
    /// same delivery; a worker that dies leaves its deliveries due again
    /// when the lease ends.
    async fn claim_deliveries(&self, now: UnixTime, lease_secs: i64, limit: i64) -> Result<Vec<Claimed>>;
    /// Records an attempt's outcome; false when the claim is no longer the
    /// delivery's (its lease ended and someone else claimed it).
    async fn finish_delivery(&self, id: &str, token: &str, outcome: &Outcome, now: UnixTime) -> Result<bool>;
    /// The earliest due time of a pending delivery.
    async fn next_due(&self) -> Result<Option<UnixTime>>;
    async fn get_delivery(&self, notification_id: &str, id: &str) -> Result<Option<Delivery>>;
    /// Newest first.
    async fn list_deliveries(&self, filter: &DeliveryFilter, before: Before, limit: i64) -> Result<Vec<Delivery>>;
    /// Queues a failed delivery again, due now with its attempts reset.
    /// FAILED_PRECONDITION unless it failed; commits `event`.
    async fn retry_delivery(
        &self,
        notification_id: &str,
        id: &str,
        now: UnixTime,
        event: NewAuditEvent,
    ) -> Result<Delivery>;

    /// Newest first.
    async fn list_inbox(&self, filter: &InboxFilter, before: Before, limit: i64) -> Result<Vec<InboxItem>>;
    /// One group per certificate, most recent activity first, from `offset`.
    async fn inbox_groups(&self, recipient: &str, offset: i64, limit: i64) -> Result<Vec<InboxGroup>>;
    async fn set_read(&self, recipient: &str, id: &str, read: bool) -> Result<Option<InboxItem>>;

    async fn cursor(&self, name: &str) -> Result<Option<String>>;
    async fn set_cursor(&self, name: &str, value: &str) -> Result<()>;
    /// Takes or renews the lease on `name` until `now + ttl_secs`: true when
    /// `holder` holds it, false when another holder's lease has not ended.
    async fn try_lead(&self, name: &str, holder: &str, now: UnixTime, ttl_secs: i64) -> Result<bool>;
    /// Gives a lease back early (on shutdown).
    async fn release(&self, name: &str, holder: &str) -> Result<()>;
}
