//! The admin commands: thin gRPC clients of a running gateway.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use certctl_proto::audit::audit_service_client::AuditServiceClient;
use certctl_proto::audit::{ExportAuditEventsRequest, ExportFormat, VerifyChainRequest};
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{ImportCertificatesRequest, ImportItem};
use tonic::transport::{Channel, Endpoint};

use crate::ServerAddress;

/// Items per ImportCertificates call: large directories go in several calls.
const IMPORT_BATCH: usize = 200;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// PEM files, or directories searched for .pem/.crt/.cer files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Owner of the imported certificates, e.g. owners/alice.
    #[arg(long, default_value = "")]
    pub owner: String,
    /// Team of the imported certificates, e.g. teams/platform.
    #[arg(long, default_value = "")]
    pub team: String,
    /// Environment label, e.g. production.
    #[arg(long, default_value = "")]
    pub environment: String,
    #[command(flatten)]
    pub server: ServerAddress,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Recomputes the hash chain; exits 1 when it is broken.
    Verify {
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Writes the audit trail to stdout.
    Export {
        /// `csv` or `json` (one object per line).
        #[arg(long, default_value = "csv")]
        format: String,
        #[command(flatten)]
        server: ServerAddress,
    },
}

pub(crate) async fn connect(server: &ServerAddress) -> anyhow::Result<Channel> {
    Endpoint::from_shared(server.url.clone())
        .with_context(|| format!("`{}` is not a valid server URL", server.url))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach certctl at {} (is `certctl server` running? see --server)", server.url))
}

pub async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let files = crate::pem_files(&args.paths)?;
    anyhow::ensure!(!files.is_empty(), "no .pem, .crt or .cer files found under the given paths");
    let mut items = Vec::with_capacity(files.len());
    let mut failed = 0usize;
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(pem_chain) => items.push(ImportItem {
                pem_chain,
                owner: args.owner.clone(),
                team: args.team.clone(),
                environment: args.environment.clone(),
                source: file.display().to_string(),
                ..Default::default()
            }),
            Err(e) => {
                failed += 1;
                println!("{}: cannot read: {e}", file.display());
            }
        }
    }
    let mut client = InventoryServiceClient::new(connect(&args.server).await?).max_decoding_message_size(32 << 20);
    let mut imported = 0usize;
    for batch in items.chunks(IMPORT_BATCH) {
        let answer = client
            .import_certificates(ImportCertificatesRequest { items: batch.to_vec() })
            .await
            .map_err(|s| anyhow::anyhow!("the import was refused: {}", s.message()))?
            .into_inner();
        for result in answer.results {
            if result.error.is_empty() {
                imported += 1;
                println!("{}: imported as {}", result.source, result.version);
            } else {
                failed += 1;
                println!("{}: {}", result.source, result.error);
            }
        }
    }
    println!("{imported} imported, {failed} failed");
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub async fn audit(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { server } => {
            let mut client = AuditServiceClient::new(connect(&server).await?);
            let report = client
                .verify_chain(VerifyChainRequest {})
                .await
                .map_err(|s| anyhow::anyhow!("verification failed to run: {}", s.message()))?
                .into_inner();
            if report.valid {
                println!("audit chain intact: {} events verified", report.events_checked);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "audit chain BROKEN at event {}: {} ({} events checked)",
                    report.first_broken_sequence, report.problem, report.events_checked
                );
                Ok(ExitCode::FAILURE)
            }
        }
        AuditCommand::Export { format, server } => {
            let format = match format.as_str() {
                "csv" => ExportFormat::Csv,
                "json" => ExportFormat::Json,
                other => anyhow::bail!("--format `{other}` is not one of csv, json"),
            };
            let mut client = AuditServiceClient::new(connect(&server).await?);
            let mut stream = client
                .export_audit_events(ExportAuditEventsRequest { format: format as i32, ..Default::default() })
                .await
                .map_err(|s| anyhow::anyhow!("the export was refused: {}", s.message()))?
                .into_inner();
            let mut out = std::io::stdout().lock();
            while let Some(chunk) =
                stream.message().await.map_err(|s| anyhow::anyhow!("the export broke off: {}", s.message()))?
            {
                out.write_all(chunk.data.as_bytes())?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

// Shared by the client command groups (`cert`, `job`, `ca`).

/// How long one unary call may take; the gateway gives up on its side after 30 s.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(45);

/// A request with [`CALL_TIMEOUT`] set.
pub(crate) fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// A refused call as an error that says what was refused and why: the
/// status message, plus any `google.rpc.BadRequest` field violation the
/// message does not already spell out.
pub(crate) fn refused(what: impl std::fmt::Display, status: &tonic::Status) -> anyhow::Error {
    use tonic_types::StatusExt as _;
    let message = match status.message() {
        "" => status.code().description(),
        m => m,
    };
    let mut text = format!("{what}: {message}");
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations.iter().filter(|v| !message.contains(&v.description)) {
            text.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    anyhow::anyhow!(text)
}

/// `table` (aligned columns for people) or `json` (one proto3 JSON object per line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    #[default]
    Table,
    Json,
}

/// Prints one value as a line of proto3 JSON (the REST API's shapes).
pub(crate) fn json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// Prints rows under a header, each column as wide as its widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                out.push_str(cell);
            }
        }
        println!("{}", out.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// A timestamp for people: RFC 3339 in UTC, or `-` when unset.
pub(crate) fn when(timestamp: Option<&pbjson_types::Timestamp>) -> String {
    timestamp.map_or_else(|| "-".to_owned(), |t| certctl_domain::rfc3339(t.seconds))
}

/// `id` as a resource name of `collection` (`shop` -> `certificates/shop`);
/// a name that already has a collection is kept as it is.
pub(crate) fn qualify(collection: &str, id: &str) -> String {
    if id.contains('/') || id.is_empty() { id.to_owned() } else { format!("{collection}/{id}") }
}
