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
}

pub mod rest {
    //! The REST transcoder over every annotated service.
    use super::certctl;
    include!(concat!(env!("OUT_DIR"), "/transcoder.rest.rs"));
}

pub use certctl::audit::v1 as audit;
pub use certctl::inventory::v1 as inventory;
pub use certctl::r#type::v1 as types;

/// The OpenAPI 3.1 documents generated from the same descriptors, one per package.
pub const OPENAPI_DOCUMENTS: &[&str] = &[
    include_str!(concat!(env!("OUT_DIR"), "/certctl.inventory.v1.openapi.json")),
    include_str!(concat!(env!("OUT_DIR"), "/certctl.audit.v1.openapi.json")),
];
