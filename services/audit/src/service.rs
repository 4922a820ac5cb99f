//! The audit trail's rules over its store, in domain types only: what an
//! acceptable event is, how listings are filtered and paginated, how the
//! chain is verified and how it is exported.

use std::collections::VecDeque;
use std::sync::Arc;

use certctl_common::StoreError;
use certctl_domain::audit::{self, AuditEvent, ChainReport, GENESIS_HASH, NewAuditEvent};
use certctl_domain::error::Violations;
use certctl_domain::{DomainError, page};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::export::{self, ExportFormat};
use crate::store::{EventQuery, ResourceFilter, Store};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuditError> for tonic::Status {
    fn from(err: AuditError) -> Self {
        match err {
            AuditError::Domain(e) => certctl_common::status_from_domain(e),
            AuditError::Store(e) => e.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, AuditError>;

/// Most events one AppendAuditEvents call may carry.
pub const MAX_BATCH: usize = 1000;
/// Longest actor, action or resource, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Longest request id, source or source id, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Largest details object, as compact JSON.
pub const MAX_DETAILS_LEN: usize = 64 * 1024;
/// The protobuf Timestamp range (years 1 to 9999), in microseconds, so every
/// stored time has an RFC 3339 spelling.
pub const MIN_TIME_MICROS: i64 = -62_135_596_800_000_000;
pub const MAX_TIME_MICROS: i64 = 253_402_300_799_999_999;
/// Events read per query while verifying.
pub const VERIFY_BATCH: i64 = 1000;
/// Events read per query while exporting, and the most lines per message.
pub const EXPORT_BATCH: i64 = 500;
/// An export message is closed once it reaches this size, so that events with
/// large details never build a message beyond what clients accept (4 MiB by
/// default).
pub const EXPORT_CHUNK_BYTES: usize = 1 << 20;

/// A page of results and the token for the next one (empty at the end).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// Filters of a listing or an export, as the caller gave them. Empty strings
/// and `None` mean "any".
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub start_time_micros: Option<i64>,
    pub end_time_micros: Option<i64>,
    pub actor: String,
    pub action: String,
    /// Exact, or a prefix when it ends in `/`.
    pub resource: String,
}

fn check_text(v: &mut Violations, field: &str, value: &str, max: usize, required: bool) {
    if value.is_empty() {
        v.check(!required, field, "required");
    } else if value.len() > max {
        v.add(field, format!("at most {max} bytes"));
    } else if value.contains('\0') {
        // PostgreSQL cannot store NUL in text, and no real name contains one.
        v.add(field, "must not contain NUL characters");
    }
}

fn time_in_range(micros: i64) -> bool {
    (MIN_TIME_MICROS..=MAX_TIME_MICROS).contains(&micros)
}

/// Checks one incoming event; `field` names it in the request
/// (`audit_events[3]`).
///
/// Every field that identifies the event is required. In particular source
/// and source_id are: ingestion is idempotent on them, and an event without
/// them would be appended again each time its producer retried a batch.
pub fn check_event(v: &mut Violations, field: &str, e: &NewAuditEvent) {
    check_text(v, &format!("{field}.actor"), &e.actor, MAX_TEXT_LEN, true);
    check_text(v, &format!("{field}.action"), &e.action, MAX_TEXT_LEN, true);
    check_text(v, &format!("{field}.resource"), &e.resource, MAX_TEXT_LEN, true);
    check_text(v, &format!("{field}.request_id"), &e.request_id, MAX_ID_LEN, false);
    check_text(v, &format!("{field}.source"), &e.source, MAX_ID_LEN, true);
    check_text(v, &format!("{field}.source_id"), &e.source_id, MAX_ID_LEN, true);
    if !time_in_range(e.event_time_micros) {
        v.add(format!("{field}.event_time"), "must be between years 1 and 9999");
    }
    let details_len = serde_json::to_vec(&e.details).map_or(usize::MAX, |b| b.len());
    if details_len > MAX_DETAILS_LEN {
        v.add(format!("{field}.details"), format!("at most {MAX_DETAILS_LEN} bytes as JSON"));
    }
}

/// Checks a whole batch, reporting every mistake at once.
pub fn check_batch(v: &mut Violations, events: &[NewAuditEvent]) {
    if events.len() > MAX_BATCH {
        v.add("audit_events", format!("at most {MAX_BATCH} events per call"));
        return;
    }
    for (i, e) in events.iter().enumerate() {
        check_event(v, &format!("audit_events[{i}]"), e);
    }
}

/// Validates filters and turns them into a query (without cursor or limit).
fn query_from(filter: &EventFilter) -> std::result::Result<EventQuery, DomainError> {
    let mut v = Violations::new();
    check_text(&mut v, "actor", &filter.actor, MAX_TEXT_LEN, false);
    check_text(&mut v, "action", &filter.action, MAX_TEXT_LEN, false);
    check_text(&mut v, "resource", &filter.resource, MAX_TEXT_LEN, false);
    if let (Some(start), Some(end)) = (filter.start_time_micros, filter.end_time_micros) {
        v.check(end > start, "end_time", "must be after start_time");
    }
    v.into_result()?;
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let resource = match filter.resource.as_str() {
        "" => None,
        r if r.ends_with('/') => Some(ResourceFilter::Prefix(r.to_owned())),
        r => Some(ResourceFilter::Exact(r.to_owned())),
    };
    Ok(EventQuery {
        start_time_micros: filter.start_time_micros,
        end_time_micros: filter.end_time_micros,
        actor: opt(&filter.actor),
        action: opt(&filter.action),
        resource,
        ..EventQuery::default()
    })
}

/// `sequence desc` (the default) or `sequence [asc]`; true when descending.
fn parse_order_by(order_by: &str) -> std::result::Result<bool, DomainError> {
    let normalised = order_by.split_whitespace().collect::<Vec<_>>().join(" ");
    match normalised.as_str() {
        "" | "sequence desc" => Ok(true),
        "sequence" | "sequence asc" => Ok(false),
        _ => Err(DomainError::invalid(
            "order_by",
            format!("`{order_by}` is not supported; use `sequence desc` (the default) or `sequence`"),
        )),
    }
}

fn fingerprint(filter: &EventFilter, descending: bool) -> String {
    let time = |t: Option<i64>| t.map_or_else(String::new, |t| t.to_string());
    page::query_fingerprint(&[
        "auditEvents",
        &time(filter.start_time_micros),
        &time(filter.end_time_micros),
        &filter.actor,
        &filter.action,
        &filter.resource,
        if descending { "desc" } else { "asc" },
    ])
}

/// The audit service's core.
pub struct Audit<S: ?Sized> {
    store: Arc<S>,
}

impl<S: ?Sized> Clone for Audit<S> {
    fn clone(&self) -> Self {
        Self { store: self.store.clone() }
    }
}

impl<S: Store + ?Sized> Audit<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Appends a batch in order; returns how many events were new.
    pub async fn append(&self, events: Vec<NewAuditEvent>) -> Result<u64> {
        let mut v = Violations::new();
        check_batch(&mut v, &events);
        v.into_result()?;
        let appended = self.store.append(&events).await?;
        tracing::debug!(received = events.len(), appended, "audit events appended");
        Ok(appended)
    }

    pub async fn get(&self, name: &str) -> Result<AuditEvent> {
        let sequence = audit::parse_event_name("name", name)?;
        Ok(self.store.get(sequence).await?)
    }

    pub async fn list(
        &self,
        filter: &EventFilter,
        order_by: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<AuditEvent>> {
        self.list_after(filter, order_by, page_size, page_token, None).await
    }

    /// `list` starting after `after_sequence` (in the listing's order) when
    /// no page token says where to continue: a follower's own cursor.
    pub async fn list_after(
        &self,
        filter: &EventFilter,
        order_by: &str,
        page_size: i32,
        page_token: &str,
        after_sequence: Option<i64>,
    ) -> Result<Page<AuditEvent>> {
        let limit = page::page_size(page_size)?;
        let descending = parse_order_by(order_by)?;
        let mut query = query_from(filter)?;
        let fingerprint = fingerprint(filter, descending);
        query.after_sequence = match page::decode_token(page_token, &fingerprint)? {
            Some(cursor) => Some(
                cursor
                    .as_i64()
                    .filter(|s| *s >= 0)
                    .ok_or_else(|| DomainError::invalid("page_token", "not a page token issued by this server"))?,
            ),
            None => after_sequence,
        };
        query.descending = descending;
        // One extra row tells whether another page exists, so the last page
        // never comes with a token that leads to an empty one.
        query.limit = limit + 1;
        let mut items = self.store.list(&query).await?;
        let next_page_token = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            let last = items.last().expect("limit is at least 1");
            page::encode_token(&fingerprint, serde_json::json!(last.sequence))
        } else {
            String::new()
        };
        Ok(Page { items, next_page_token })
    }

    /// Recomputes every link of the chain, oldest first, a batch at a time.
    ///
    /// The walk stops at the head read when it starts, so events appended
    /// meanwhile are left for the next verification instead of racing it.
    /// `events_checked` counts the events verified intact before the first
    /// break (all of them when the chain is valid).
    pub async fn verify(&self) -> Result<ChainReport> {
        let head = self.store.head().await?;
        let (mut sequence, mut hash) = (0_i64, GENESIS_HASH.to_owned());
        while sequence < head.sequence {
            let mut query = EventQuery::chain(sequence, VERIFY_BATCH);
            query.through_sequence = Some(head.sequence);
            let batch = self.store.list(&query).await?;
            if batch.is_empty() {
                break;
            }
            match audit::verify_links((sequence, &hash), &batch) {
                Ok((s, h)) => (sequence, hash) = (s, h),
                Err((broken, problem)) => {
                    return Ok(ChainReport { events_checked: broken - 1, broken: Some((broken, problem)) });
                }
            }
        }
        // The head is written with every append, so a chain that ends early
        // lost its tail, and one that ends on another hash was rewritten.
        let broken = if sequence < head.sequence {
            Some((
                sequence + 1,
                format!(
                    "event {} is missing from the chain: the last event is {sequence} but the chain head records {}",
                    sequence + 1,
                    head.sequence
                ),
            ))
        } else if hash != head.hash {
            Some((sequence, format!("event {sequence}'s hash does not match the recorded chain head")))
        } else {
            None
        };
        let events_checked = match &broken {
            Some((b, _)) => (b - 1).min(sequence),
            None => sequence,
        };
        Ok(ChainReport { events_checked, broken })
    }

    /// The events matching `filter`, oldest first, as whole-line chunks of
    /// `format`. The export covers the chain as it stood when it started and
    /// reads it in keyset batches, so memory stays flat however long it is.
    pub async fn export(
        &self,
        filter: &EventFilter,
        format: ExportFormat,
    ) -> Result<BoxStream<'static, Result<String>>> {
        let mut query = query_from(filter)?;
        query.through_sequence = Some(self.store.head().await?.sequence);
        query.after_sequence = Some(0);
        query.limit = EXPORT_BATCH;
        let state = ExportState {
            store: self.store.clone(),
            query,
            format,
            header: export::header(format),
            pending: VecDeque::new(),
            exhausted: false,
            failed: None,
        };
        Ok(futures::stream::unfold(state, ExportState::next_chunk).boxed())
    }
}

struct ExportState<S: ?Sized> {
    store: Arc<S>,
    query: EventQuery,
    format: ExportFormat,
    header: Option<String>,
    /// Read but not yet written; at most one batch.
    pending: VecDeque<AuditEvent>,
    exhausted: bool,
    /// A read failed after part of a chunk was built: that chunk goes out
    /// first, then the error.
    failed: Option<StoreError>,
}

impl<S: Store + ?Sized> ExportState<S> {
    async fn next_chunk(mut self) -> Option<(Result<String>, Self)> {
        if let Some(err) = self.failed.take() {
            self.exhausted = true;
            return Some((Err(err.into()), self));
        }
        let mut chunk = self.header.take().unwrap_or_default();
        let mut lines = 0;
        loop {
            if self.pending.is_empty() && !self.exhausted {
                match self.store.list(&self.query).await {
                    Ok(batch) => {
                        self.exhausted = (batch.len() as i64) < self.query.limit;
                        if let Some(last) = batch.last() {
                            self.query.after_sequence = Some(last.sequence);
                        }
                        self.pending.extend(batch);
                    }
                    Err(err) => {
                        self.exhausted = true;
                        if chunk.is_empty() {
                            return Some((Err(err.into()), self));
                        }
                        self.failed = Some(err);
                        return Some((Ok(chunk), self));
                    }
                }
            }
            let Some(event) = self.pending.pop_front() else {
                break;
            };
            chunk.push_str(&export::line(self.format, &event));
            lines += 1;
            if lines >= EXPORT_BATCH || chunk.len() >= EXPORT_CHUNK_BYTES {
                break;
            }
        }
        if chunk.is_empty() { None } else { Some((Ok(chunk), self)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(err: DomainError) -> Vec<String> {
        match err {
            DomainError::InvalidArgument(v) => v.into_iter().map(|f| f.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn good() -> NewAuditEvent {
        NewAuditEvent {
            actor: "users/alice".into(),
            action: "inventory.CreateCertificate".into(),
            resource: "certificates/web".into(),
            event_time_micros: 1_700_000_000_000_000,
            request_id: String::new(),
            details: serde_json::Value::Null,
            source: "inventory".into(),
            source_id: "1".into(),
        }
    }

    #[test]
    fn events_name_every_bad_field() {
        let mut bad = good();
        bad.actor.clear();
        bad.resource = "a\0b".into();
        bad.source_id.clear();
        bad.event_time_micros = MAX_TIME_MICROS + 1;
        bad.details = serde_json::json!({"x": "y".repeat(MAX_DETAILS_LEN)});
        let mut v = Violations::new();
        check_batch(&mut v, &[good(), bad]);
        assert_eq!(
            fields(v.into_result().unwrap_err()),
            [
                "audit_events[1].actor",
                "audit_events[1].resource",
                "audit_events[1].source_id",
                "audit_events[1].event_time",
                "audit_events[1].details"
            ]
        );
        let mut v = Violations::new();
        check_batch(&mut v, &[good()]);
        assert!(v.into_result().is_ok());
    }

    #[test]
    fn oversized_batches_are_refused() {
        let mut v = Violations::new();
        check_batch(&mut v, &vec![good(); MAX_BATCH + 1]);
        assert_eq!(fields(v.into_result().unwrap_err()), ["audit_events"]);
    }

    #[test]
    fn order_by() {
        for (input, expected) in [
            ("", Some(true)),
            ("sequence desc", Some(true)),
            ("  sequence   desc ", Some(true)),
            ("sequence", Some(false)),
            ("sequence asc", Some(false)),
            ("event_time", None),
            ("sequence up", None),
            ("desc", None),
        ] {
            match (parse_order_by(input), expected) {
                (Ok(got), Some(want)) => assert_eq!(got, want, "{input:?}"),
                (Err(e), None) => assert_eq!(fields(e), ["order_by"]),
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn filters() {
        let q = query_from(&EventFilter { resource: "certificates/web/".into(), ..Default::default() }).unwrap();
        assert_eq!(q.resource, Some(ResourceFilter::Prefix("certificates/web/".into())));
        let q = query_from(&EventFilter { resource: "certificates/web".into(), ..Default::default() }).unwrap();
        assert_eq!(q.resource, Some(ResourceFilter::Exact("certificates/web".into())));
        let q = query_from(&EventFilter::default()).unwrap();
        assert_eq!((q.actor, q.action, q.resource), (None, None, None));
        let backwards = EventFilter { start_time_micros: Some(10), end_time_micros: Some(10), ..Default::default() };
        assert_eq!(fields(query_from(&backwards).unwrap_err()), ["end_time"]);
        let nul = EventFilter { actor: "a\0".into(), ..Default::default() };
        assert_eq!(fields(query_from(&nul).unwrap_err()), ["actor"]);
    }

    #[test]
    fn fingerprints_differ_by_every_filter() {
        let base = EventFilter::default();
        let variants = [
            EventFilter { start_time_micros: Some(1), ..base.clone() },
            EventFilter { end_time_micros: Some(1), ..base.clone() },
            EventFilter { actor: "a".into(), ..base.clone() },
            EventFilter { action: "a".into(), ..base.clone() },
            EventFilter { resource: "a".into(), ..base.clone() },
        ];
        let mut seen = vec![fingerprint(&base, true), fingerprint(&base, false)];
        seen.extend(variants.iter().map(|f| fingerprint(f, true)));
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
    }
}
