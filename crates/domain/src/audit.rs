//! Audit events and the hash chain that makes the trail tamper-evident.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash the first event links to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as a service records it, before the audit service places it in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEvent {
    pub actor: String,
    pub action: String,
    pub resource: String,
    /// Microseconds since the Unix epoch.
    pub event_time_micros: i64,
    pub request_id: String,
    pub details: serde_json::Value,
    /// The producing service (`inventory`, ...) and its id for the event, which
    /// together make appending idempotent.
    pub source: String,
    pub source_id: String,
}

/// An event in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub sequence: i64,
    pub event: NewAuditEvent,
    pub previous_hash: String,
    pub hash: String,
}

/// The canonical encoding that is hashed: a JSON array in fixed field order.
/// serde_json sorts object keys (no `preserve_order`), so `details` encodes the
/// same way however it was built.
pub fn canonical_encoding(sequence: i64, event: &NewAuditEvent) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        sequence,
        event.actor,
        event.action,
        event.resource,
        event.event_time_micros,
        event.request_id,
        event.details,
        event.source,
        event.source_id,
    ]))
    .expect("JSON values always serialise")
}

pub fn chain_hash(previous_hash: &str, sequence: i64, event: &NewAuditEvent) -> String {
    let mut hasher = Sha256::new();
    hasher.update(previous_hash.as_bytes());
    hasher.update(canonical_encoding(sequence, event));
    hex::encode(hasher.finalize())
}

impl AuditEvent {
    /// Places `event` after the event with `previous_hash` at `sequence`.
    pub fn link(sequence: i64, previous_hash: &str, event: NewAuditEvent) -> Self {
        let hash = chain_hash(previous_hash, sequence, &event);
        Self { sequence, event, previous_hash: previous_hash.to_owned(), hash }
    }
}

impl AuditEvent {
    /// The event's resource name, `auditEvents/{sequence}`.
    pub fn name(&self) -> String {
        event_name(self.sequence)
    }
}

/// `auditEvents/{sequence}`.
pub fn event_name(sequence: i64) -> String {
    crate::name::Collection::AuditEvents.name(&sequence.to_string())
}

/// Parses `auditEvents/{sequence}`. Only the canonical spelling is accepted
/// (no sign, no leading zeros), so every event has exactly one name.
pub fn parse_event_name(field: &str, name: &str) -> Result<i64, crate::DomainError> {
    let bad = || {
        crate::DomainError::invalid(
            field,
            if name.is_empty() {
                "required: expected `auditEvents/{sequence}`".to_owned()
            } else {
                format!(
                    "`{name}` is not an audit event name: expected `auditEvents/{{sequence}}` with a sequence from 1"
                )
            },
        )
    };
    let digits = name.strip_prefix("auditEvents/").ok_or_else(bad)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(bad());
    }
    digits.parse().map_err(|_| bad())
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub events_checked: i64,
    /// The first event that does not verify and why.
    pub broken: Option<(i64, String)>,
}

/// Checks events in sequence order, continuing from `previous` (the last
/// verified event's sequence and hash). Returns the first broken link.
pub fn verify_links(previous: (i64, &str), events: &[AuditEvent]) -> Result<(i64, String), (i64, String)> {
    let (mut sequence, mut hash) = (previous.0, previous.1.to_owned());
    for e in events {
        if e.sequence != sequence + 1 {
            return Err((sequence + 1, format!("event {} is missing from the chain", sequence + 1)));
        }
        if e.previous_hash != hash {
            return Err((e.sequence, format!("event {} does not link to event {}'s hash", e.sequence, sequence)));
        }
        let expected = chain_hash(&hash, e.sequence, &e.event);
        if e.hash != expected {
            return Err((e.sequence, format!("event {}'s content does not match its hash", e.sequence)));
        }
        sequence = e.sequence;
        hash = e.hash.clone();
    }
    Ok((sequence, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> NewAuditEvent {
        NewAuditEvent {
            actor: "users/alice".into(),
            action: action.into(),
            resource: "certificates/web".into(),
            event_time_micros: 1_700_000_000_000_000,
            request_id: "r1".into(),
            details: serde_json::json!({"b": 1, "a": [1, 2]}),
            source: "inventory".into(),
            source_id: action.into(),
        }
    }

    fn chain(n: i64) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 1..=n {
            let prev = out.last().map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            out.push(AuditEvent::link(i, &prev, event(&format!("a{i}"))));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        let events = chain(5);
        assert_eq!(verify_links((0, GENESIS_HASH), &events).unwrap().0, 5);
    }

    #[test]
    fn tampering_is_found_at_the_right_event() {
        let mut events = chain(5);
        events[2].event.actor = "users/mallory".into();
        assert_eq!(verify_links((0, GENESIS_HASH), &events).unwrap_err().0, 3);

        let mut events = chain(5);
        events.remove(1);
        assert_eq!(verify_links((0, GENESIS_HASH), &events).unwrap_err().0, 2);

        let mut events = chain(5);
        let forged = AuditEvent::link(4, &events[2].hash, event("forged"));
        events[3] = forged;
        assert_eq!(verify_links((0, GENESIS_HASH), &events).unwrap_err().0, 5);
    }

    #[test]
    fn event_names() {
        assert_eq!(event_name(42), "auditEvents/42");
        assert_eq!(parse_event_name("name", "auditEvents/42").unwrap(), 42);
        assert_eq!(chain(1)[0].name(), "auditEvents/1");
        for bad in [
            "",
            "auditEvents/",
            "auditEvents/0",
            "auditEvents/007",
            "auditEvents/+1",
            "auditEvents/-1",
            "auditEvents/1/x",
            "certificates/1",
            "auditEvents/99999999999999999999",
        ] {
            let err = parse_event_name("name", bad).unwrap_err();
            assert!(matches!(&err, crate::DomainError::InvalidArgument(v) if v[0].field == "name"), "{bad}: {err}");
        }
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let mut a = event("x");
        let mut b = event("x");
        a.details = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        b.details = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(chain_hash(GENESIS_HASH, 1, &a), chain_hash(GENESIS_HASH, 1, &b));
    }
}
