//! ExportAuditEvents as CSV and as JSON lines.

use std::collections::BTreeSet;

use certctl_proto::audit::{self as pb};

use crate::common::Harness;
use crate::server::*;

on_every_backend!(export_csv, export_json_lines, export_refuses_bad_input);

/// A minimal RFC 4180 reader; panics unless `text` ends on a record boundary.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                quoted = true;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "records end in CRLF");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\n') => panic!("a bare line feed outside quotes"),
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty() && record.is_empty(), "the text ends mid-record");
    records
}

async fn export_csv(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, EVENTS).await;
    let csv = pb::ExportAuditEventsRequest { format: pb::ExportFormat::Csv as i32, ..Default::default() };
    let chunks = s.export(csv.clone()).await.unwrap();
    assert!(chunks.len() >= 3, "{EVENTS} events arrive in several messages, got {}", chunks.len());
    // Every message holds whole records.
    let records: Vec<Vec<String>> = chunks.iter().flat_map(|c| parse_csv(c)).collect();
    assert_eq!(
        records[0],
        [
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
            "previous_hash"
        ]
    );
    assert_eq!(records.len() as i64, EVENTS + 1);
    let listed = s
        .list_all(pb::ListAuditEventsRequest { page_size: 1000, order_by: "sequence".into(), ..Default::default() })
        .await;
    for (row, e) in records[1..].iter().zip(&listed) {
        let details = serde_json::to_string(&certctl_proto::struct_to_json(e.details.as_ref())).unwrap();
        let time = row[5].clone(); // checked by value below and in the export unit tests
        let expected = [
            e.name.clone(),
            e.sequence.to_string(),
            e.actor.clone(),
            e.action.clone(),
            e.resource.clone(),
            time,
            e.request_id.clone(),
            details,
            e.source.clone(),
            e.source_id.clone(),
            e.hash.clone(),
            e.previous_hash.clone(),
        ];
        assert_eq!(row, &expected);
    }
    assert_eq!(records[10][2], "users/\"odd, one\"\nline 10", "quotes, commas and newlines survive");
    assert_eq!(records[5][6], "req\n5");
    assert_eq!(records[1][5], "2023-11-14T22:13:21.123456Z");
    assert_eq!(records[1][7], r#"{"i":1,"note":"a, \"b\"\nc"}"#, "details as compact JSON");

    // The filters of List apply; a filter that matches nothing still gets the header.
    let bob = s.export(pb::ExportAuditEventsRequest { actor: "users/bob".into(), ..csv.clone() }).await.unwrap();
    let bob: Vec<Vec<String>> = bob.iter().flat_map(|c| parse_csv(c)).collect();
    assert_eq!(bob.len() - 1, (1..=EVENTS).filter(|i| i % 3 == 1 && i % 10 != 0).count());
    assert!(bob[1..].iter().all(|r| r[2] == "users/bob"));
    let none = s.export(pb::ExportAuditEventsRequest { actor: "users/nobody".into(), ..csv }).await.unwrap();
    assert_eq!(none.len(), 1);
    assert_eq!(parse_csv(&none[0]).len(), 1);
    s.shutdown().await;
}

async fn export_json_lines(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, EVENTS).await;
    let json = pb::ExportAuditEventsRequest { format: pb::ExportFormat::Json as i32, ..Default::default() };
    let chunks = s.export(json.clone()).await.unwrap();
    let per_message: Vec<usize> = chunks.iter().map(|c| c.lines().count()).collect();
    assert_eq!(per_message, [500, 500, 205]);
    assert!(chunks.iter().all(|c| c.ends_with('\n')));
    let listed = s
        .list_all(pb::ListAuditEventsRequest { page_size: 1000, order_by: "sequence".into(), ..Default::default() })
        .await;
    let lines: Vec<&str> = chunks.iter().flat_map(|c| c.lines()).collect();
    assert_eq!(lines.len(), listed.len());
    for (line, e) in lines.iter().zip(&listed) {
        // Each line is the event in the proto3 JSON mapping.
        let parsed: pb::AuditEvent = serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(&parsed, e);
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let keys: BTreeSet<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "name",
            "sequence",
            "actor",
            "action",
            "resource",
            "eventTime",
            "requestId",
            "details",
            "source",
            "sourceId",
            "hash",
            "previousHash"
        ])
    );
    assert_eq!(first["eventTime"], "2023-11-14T22:13:21.123456Z");

    let window = pb::ExportAuditEventsRequest {
        start_time: Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + 10, nanos: 0 }),
        end_time: Some(pbjson_types::Timestamp { seconds: BASE_SECONDS + 13, nanos: 0 }),
        ..json.clone()
    };
    let windowed = s.export(window).await.unwrap().concat();
    let got: Vec<i64> = windowed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [10, 11, 12]);
    let none = s.export(pb::ExportAuditEventsRequest { actor: "users/nobody".into(), ..json }).await.unwrap();
    assert!(none.is_empty(), "no events, no lines");
    s.shutdown().await;
}

async fn export_refuses_bad_input(h: &Harness) {
    let mut s = serve(h).await;
    seed(&mut s, 3).await;
    let request = pb::ExportAuditEventsRequest::default;
    assert_invalid(s.export(request()).await, "format");
    assert_invalid(s.export(pb::ExportAuditEventsRequest { format: 7, ..request() }).await, "format");
    let csv = || pb::ExportAuditEventsRequest { format: pb::ExportFormat::Csv as i32, ..request() };
    let t = |seconds: i64| Some(pbjson_types::Timestamp { seconds, nanos: 0 });
    assert_invalid(
        s.export(pb::ExportAuditEventsRequest { start_time: t(9), end_time: t(9), ..csv() }).await,
        "end_time",
    );
    assert_invalid(s.export(pb::ExportAuditEventsRequest { action: "a\0".into(), ..csv() }).await, "action");
    s.shutdown().await;
}
