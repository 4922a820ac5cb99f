//! Compiles `proto/` without a system `protoc`: protox parses the files, then
//! tonic (messages, gRPC stubs), pbjson (proto3 JSON mapping) and
//! rest_over_grpc (REST transcoding + OpenAPI) generate from one descriptor set.
//! We also emit, per service, a `*Forwarder` that implements the tonic server
//! trait by calling the generated client: the gateway mounts it behind the REST
//! transcoder so REST calls reach the owning service over gRPC like any other
//! caller.

use std::fmt::Write as _;
use std::path::PathBuf;

use prost_types::FileDescriptorSet;

const PROTOS: &[&str] = &[
    "certctl/type/v1/key.proto",
    "certctl/agent/v1/agent.proto",
    "certctl/inventory/v1/inventory.proto",
    "certctl/audit/v1/audit.proto",
    "certctl/issuance/v1/issuance.proto",
    "certctl/scheduler/v1/scheduler.proto",
    "certctl/notification/v1/notification.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", root.join("certctl").display());
    println!("cargo:rerun-if-changed={}", root.join("google").display());

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true);
    compiler.include_source_info(true);
    for proto in PROTOS {
        compiler.open_file(proto)?;
    }
    // Re-encoding through prost-types drops custom options, so the raw bytes
    // feed the REST generator and reflection.
    let encoded = compiler.encode_file_descriptor_set();
    std::fs::write(out_dir.join("certctl_descriptor.bin"), &encoded)?;
    let fds: FileDescriptorSet = compiler.file_descriptor_set();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `XClient::connect(url)`: it would collide with the agent
        // stream's `Connect` RPC. Callers build a Channel and call `new`.
        .build_transport(false)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds.clone())?;
    pbjson_build::Builder::new().register_descriptors(&encoded)?.build(&[".certctl"])?;
    let mut rest = rest_over_grpc::build::Generator::builder()
        .emit_openapi_spec(Some(rest_over_grpc::build::OpenApiInfo::new("certctl", "v1")))
        .build();
    rest.add_all(rest_over_grpc::build::ServiceDefinition::from_fds(
        &encoded,
        &rest_over_grpc::build::DescriptorOptions::new(),
    )?);
    rest.write(&out_dir)?;

    write_forwarders(&fds, &out_dir)?;
    Ok(())
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn rust_type(proto_type: &str, package: &str) -> String {
    let trimmed = proto_type.trim_start_matches('.');
    let local = trimmed
        .strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('.'))
        .expect("forwarded RPCs use messages of their own package");
    format!("super::{local}")
}

fn write_forwarders(fds: &FileDescriptorSet, out_dir: &std::path::Path) -> std::io::Result<()> {
    for file in &fds.file {
        let package = file.package();
        // The agent stream is client-streaming and terminates at the hub: it is never forwarded.
        let client_streaming = file.service.iter().any(|s| s.method.iter().any(|m| m.client_streaming()));
        if !package.starts_with("certctl.") || file.service.is_empty() || client_streaming {
            continue;
        }
        let mut code = String::new();
        for service in &file.service {
            let name = service.name();
            let module = snake(name);
            let forwarder = format!("{name}Forwarder");
            writeln!(
                code,
                "/// Implements the `{name}` server trait by forwarding every call, with its\n\
                 /// metadata, to a remote `{name}` over gRPC.\n\
                 #[derive(Clone, Debug)]\n\
                 pub struct {forwarder} {{ client: super::{module}_client::{name}Client<::tonic::transport::Channel> }}\n\
                 impl {forwarder} {{\n\
                 pub fn new(channel: ::tonic::transport::Channel) -> Self {{ Self {{ client: super::{module}_client::{name}Client::new(channel).max_decoding_message_size(64 << 20) }} }}\n\
                 }}\n\
                 #[::tonic::async_trait]\n\
                 impl super::{module}_server::{name} for {forwarder} {{"
            )
            .unwrap();
            for method in &service.method {
                let rpc = method.name();
                let f = snake(rpc);
                let req = rust_type(method.input_type(), package);
                let resp = rust_type(method.output_type(), package);
                if method.server_streaming() {
                    writeln!(
                        code,
                        "type {rpc}Stream = ::tonic::codec::Streaming<{resp}>;\n\
                         async fn {f}(&self, request: ::tonic::Request<{req}>) -> ::std::result::Result<::tonic::Response<Self::{rpc}Stream>, ::tonic::Status> {{\n\
                         self.client.clone().{f}(crate::forwarded(request, None)).await\n}}"
                    )
                    .unwrap();
                } else {
                    writeln!(
                        code,
                        "async fn {f}(&self, request: ::tonic::Request<{req}>) -> ::std::result::Result<::tonic::Response<{resp}>, ::tonic::Status> {{\n\
                         self.client.clone().{f}(crate::forwarded(request, Some(crate::FORWARD_TIMEOUT))).await\n}}"
                    )
                    .unwrap();
                }
            }
            code.push_str("}\n");
        }
        std::fs::write(out_dir.join(format!("{package}.forward.rs")), code)?;
    }
    Ok(())
}
