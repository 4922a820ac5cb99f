//! Export formats: CSV (RFC 4180) and JSON lines. Each event becomes exactly
//! one line of output (CSV fields that contain line breaks are quoted, JSON
//! escapes them), so an export can be cut into whole-line chunks anywhere.

use std::fmt::Write as _;

use certctl_domain::audit::AuditEvent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

/// CSV columns, in the order of the proto's fields.
pub const CSV_COLUMNS: [&str; 12] = [
    "name",
    "sequence",
    "actor",
    "action",
    "resource",
    "event_time",
    "request_id",
    "details",
    "source",
    "source_id",
    "hash",
    "previous_hash",
];

/// The line that opens an export, if the format has one.
pub fn header(format: ExportFormat) -> Option<String> {
    match format {
        ExportFormat::Csv => Some(format!("{}\r\n", CSV_COLUMNS.join(","))),
        ExportFormat::JsonLines => None,
    }
}

/// One event as one line, terminator included.
pub fn line(format: ExportFormat, event: &AuditEvent) -> String {
    match format {
        ExportFormat::Csv => csv_line(event),
        ExportFormat::JsonLines => json_line(event),
    }
}

/// RFC 3339 in UTC with microseconds when there are any, the proto3 JSON
/// spelling of a timestamp. Times outside years 1-9999 cannot be stored (the
/// ingest API refuses them), so the fallback only guards against hand edits.
pub fn rfc3339_micros(micros: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000) else {
        return micros.to_string();
    };
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.microsecond() != 0 {
        write!(out, ".{:06}", t.microsecond()).expect("writing to a String cannot fail");
    }
    out.push('Z');
    out
}

/// Quotes a field when it holds a separator, a quote or a line break, and
/// doubles the quotes inside.
fn csv_field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_line(e: &AuditEvent) -> String {
    let details = serde_json::to_string(&e.event.details).expect("JSON values always serialise");
    let fields: [&str; 12] = [
        &e.name(),
        &e.sequence.to_string(),
        &e.event.actor,
        &e.event.action,
        &e.event.resource,
        &rfc3339_micros(e.event.event_time_micros),
        &e.event.request_id,
        &details,
        &e.event.source,
        &e.event.source_id,
        &e.hash,
        &e.previous_hash,
    ];
    let mut out = String::with_capacity(fields.iter().map(|f| f.len() + 1).sum::<usize>() + 16);
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, field);
    }
    out.push_str("\r\n");
    out
}

/// The proto3 JSON field names, so a line parses as a `certctl.audit.v1.AuditEvent`.
/// `sequence` stays a number (proto3 JSON parsers accept numbers for int64),
/// which is what people piping the export through `jq` expect.
fn json_line(e: &AuditEvent) -> String {
    let value = serde_json::json!({
        "name": e.name(),
        "sequence": e.sequence,
        "actor": e.event.actor,
        "action": e.event.action,
        "resource": e.event.resource,
        "eventTime": rfc3339_micros(e.event.event_time_micros),
        "requestId": e.event.request_id,
        "details": e.event.details,
        "source": e.event.source,
        "sourceId": e.event.source_id,
        "hash": e.hash,
        "previousHash": e.previous_hash,
    });
    let mut out = serde_json::to_string(&value).expect("JSON values always serialise");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use certctl_domain::audit::{GENESIS_HASH, NewAuditEvent};

    use super::*;

    fn event(actor: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent::link(
            7,
            GENESIS_HASH,
            NewAuditEvent {
                actor: actor.into(),
                action: "inventory.UpdateCertificate".into(),
                resource: "certificates/web".into(),
                event_time_micros: 1_700_000_000_123_456,
                request_id: "r-1".into(),
                details,
                source: "inventory".into(),
                source_id: "42".into(),
            },
        )
    }

    #[test]
    fn timestamps() {
        for (micros, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_700_000_000_123_456, "2023-11-14T22:13:20.123456Z"),
            (1_700_000_000_000_001, "2023-11-14T22:13:20.000001Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (-62_135_596_800_000_000, "0001-01-01T00:00:00Z"),
            (253_402_300_799_999_999, "9999-12-31T23:59:59.999999Z"),
        ] {
            assert_eq!(rfc3339_micros(micros), expected, "{micros}");
        }
    }

    #[test]
    fn csv_quotes_only_what_needs_quoting() {
        for (value, expected) in [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\rhere", "\"cr\rhere\""),
            ("", ""),
        ] {
            let mut out = String::new();
            csv_field(&mut out, value);
            assert_eq!(out, expected, "{value:?}");
        }
    }

    #[test]
    fn csv_line_matches_the_header() {
        let e = event("users/o'neil, \"admin\"", serde_json::json!({"b": "x,y", "a": 1}));
        let line = line(ExportFormat::Csv, &e);
        let expected = format!(
            "auditEvents/7,7,\"users/o'neil, \"\"admin\"\"\",inventory.UpdateCertificate,certificates/web,\
             2023-11-14T22:13:20.123456Z,r-1,\"{{\"\"a\"\":1,\"\"b\"\":\"\"x,y\"\"}}\",inventory,42,{},{}\r\n",
            e.hash, GENESIS_HASH
        );
        assert_eq!(line, expected);
        assert_eq!(header(ExportFormat::Csv).unwrap().matches(',').count(), CSV_COLUMNS.len() - 1);
    }

    #[test]
    fn json_line_uses_proto_json_names_and_one_line() {
        let e = event("users/alice", serde_json::json!({"note": "line one\nline two"}));
        let line = line(ExportFormat::JsonLines, &e);
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "embedded newlines are escaped");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["name"], "auditEvents/7");
        assert_eq!(parsed["sequence"], 7);
        assert_eq!(parsed["eventTime"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(parsed["requestId"], "r-1");
        assert_eq!(parsed["sourceId"], "42");
        assert_eq!(parsed["previousHash"], GENESIS_HASH);
        assert_eq!(parsed["hash"], e.hash);
        assert_eq!(parsed["details"]["note"], "line one\nline two");
        assert!(header(ExportFormat::JsonLines).is_none());
    }
}
