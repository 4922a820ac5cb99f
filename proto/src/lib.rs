//! Generated code for certctl's protobuf contract. Only service `grpc.rs`
//! modules, the gateway and the CLI use these types; everything below a
//! service's gRPC layer speaks `certctl-domain`.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every certctl proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/certctl_descriptor.bin"));

pub mod certctl {
    pub mod r#type {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.r#type.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.r#type.v1.serde.rs"));
        }
    }
    pub mod agent {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.agent.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.agent.v1.serde.rs"));
        }
    }
    pub mod inventory {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.inventory.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.inventory.v1.serde.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.inventory.v1.rest.rs"));
            pub mod forward {
                include!(concat!(env!("OUT_DIR"), "/certctl.inventory.v1.forward.rs"));
            }
        }
    }
    pub mod audit {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.audit.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.audit.v1.serde.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.audit.v1.rest.rs"));
            pub mod forward {
                include!(concat!(env!("OUT_DIR"), "/certctl.audit.v1.forward.rs"));
            }
        }
    }
    pub mod issuance {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.issuance.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.issuance.v1.serde.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.issuance.v1.rest.rs"));
            pub mod forward {
                include!(concat!(env!("OUT_DIR"), "/certctl.issuance.v1.forward.rs"));
            }
        }
    }
    pub mod scheduler {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.scheduler.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.scheduler.v1.serde.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.scheduler.v1.rest.rs"));
            pub mod forward {
                include!(concat!(env!("OUT_DIR"), "/certctl.scheduler.v1.forward.rs"));
            }
        }
    }
    pub mod notification {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/certctl.notification.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.notification.v1.serde.rs"));
            include!(concat!(env!("OUT_DIR"), "/certctl.notification.v1.rest.rs"));
            pub mod forward {
                include!(concat!(env!("OUT_DIR"), "/certctl.notification.v1.forward.rs"));
            }
        }
    }
}

pub mod rest {
    //! The REST transcoder over every annotated service.
    use super::certctl;
    include!(concat!(env!("OUT_DIR"), "/transcoder.rest.rs"));
}

pub use certctl::agent::v1 as agent;
pub use certctl::audit::v1 as audit;
pub use certctl::inventory::v1 as inventory;
pub use certctl::issuance::v1 as issuance;
pub use certctl::notification::v1 as notification;
pub use certctl::scheduler::v1 as scheduler;
pub use certctl::r#type::v1 as types;

/// The OpenAPI 3.1 documents generated from the same descriptors, one per package.
pub const OPENAPI_DOCUMENTS: &[&str] = &[
    include_str!(concat!(env!("OUT_DIR"), "/certctl.inventory.v1.openapi.json")),
    include_str!(concat!(env!("OUT_DIR"), "/certctl.audit.v1.openapi.json")),
    include_str!(concat!(env!("OUT_DIR"), "/certctl.issuance.v1.openapi.json")),
    include_str!(concat!(env!("OUT_DIR"), "/certctl.scheduler.v1.openapi.json")),
    include_str!(concat!(env!("OUT_DIR"), "/certctl.notification.v1.openapi.json")),
];

/// Converts JSON to a `google.protobuf.Struct` (non-objects are wrapped as `{"value": ...}`).
pub fn json_to_struct(value: &serde_json::Value) -> Option<pbjson_types::Struct> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::Object(map) => {
            Some(pbjson_types::Struct { fields: map.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect() })
        }
        other => {
            Some(pbjson_types::Struct { fields: [("value".to_owned(), json_to_value(other))].into_iter().collect() })
        }
    }
}

fn json_to_value(value: &serde_json::Value) -> pbjson_types::Value {
    use pbjson_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => {
            Kind::ListValue(pbjson_types::ListValue { values: a.iter().map(json_to_value).collect() })
        }
        serde_json::Value::Object(m) => Kind::StructValue(pbjson_types::Struct {
            fields: m.iter().map(|(k, v)| (k.clone(), json_to_value(v))).collect(),
        }),
    };
    pbjson_types::Value { kind: Some(kind) }
}

/// Converts a `google.protobuf.Struct` back to JSON.
pub fn struct_to_json(value: Option<&pbjson_types::Struct>) -> serde_json::Value {
    match value {
        None => serde_json::Value::Null,
        Some(s) => serde_json::Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect()),
    }
}

fn value_to_json(value: &pbjson_types::Value) -> serde_json::Value {
    use pbjson_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => struct_to_json(Some(s)),
    }
}

/// Converts Unix seconds to a protobuf timestamp.
pub fn timestamp(seconds: i64) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds, nanos: 0 })
}

/// Metadata a forwarder passes on to the owning service. Everything else (the
/// HTTP headers of a REST call, hop-by-hop headers, anything a client made up)
/// stays at the edge, so a caller cannot speak for the gateway.
pub const FORWARDED_METADATA: &[&str] = &["x-certctl-actor", "x-request-id", "traceparent", "tracestate"];

/// How long a forwarded unary call may take before the gateway gives up.
pub const FORWARD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Rebuilds a request for forwarding: only [`FORWARDED_METADATA`] survives.
pub fn forwarded<T>(request: tonic::Request<T>, timeout: Option<std::time::Duration>) -> tonic::Request<T> {
    let (metadata, extensions, message) = request.into_parts();
    let mut kept = tonic::metadata::MetadataMap::new();
    for key in FORWARDED_METADATA {
        if let Some(value) = metadata.get(*key) {
            kept.insert(*key, value.clone());
        }
    }
    let mut request = tonic::Request::from_parts(kept, extensions, message);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    request
}
