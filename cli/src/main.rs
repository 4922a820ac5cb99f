//! `certctl`: the server (any set of roles) and the admin commands.

mod admin;
mod agent;
mod backup;
mod ca;
mod cert;
mod channel;
mod config;
mod demo;
mod job;
mod migrate;
mod policy;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "certctl", version, about = "Self-hosted certificate lifecycle platform")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs certctl: every role in one process by default, or the roles named by --roles.
    Server(config::ServerArgs),
    /// Imports PEM certificates (files, or directories of .pem/.crt/.cer files) into the inventory.
    Import(admin::ImportArgs),
    /// Works with the audit trail.
    Audit {
        #[command(subcommand)]
        command: admin::AuditCommand,
    },
    /// Managed certificates: list, inspect, create, issue, renew, revoke, export server-held keys.
    Cert {
        #[command(subcommand)]
        command: cert::CertCommand,
    },
    /// The scheduler's jobs: list, watch, cancel, retry, and their timelines.
    Job {
        #[command(subcommand)]
        command: job::JobCommand,
    },
    /// Agents and the join tokens that enrol them.
    Agent {
        #[command(subcommand)]
        command: agent::AgentCommand,
    },
    /// Notification channels: list, create, and send a test message.
    Channel {
        #[command(subcommand)]
        command: channel::ChannelCommand,
    },
    /// Policies certificates must keep, and the rules they break now.
    Policy {
        #[command(subcommand)]
        command: policy::PolicyCommand,
    },
    /// Issuers and their CA certificates.
    Ca {
        #[command(subcommand)]
        command: ca::CaCommand,
    },
    #[command(flatten)]
    Data(backup::DataCommand),
    /// Platform administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Prints a new random master key (base64) for --master-key-file or CERTCTL_MASTER_KEY.
    NewMasterKey,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("certctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(config::ServerConfig::load(args)?).await.map(|()| ExitCode::SUCCESS),
            Command::Import(args) => admin::import(args).await,
            Command::Audit { command } => admin::audit(command).await,
            Command::Cert { command } => cert::run(command).await,
            Command::Job { command } => job::run(command).await,
            Command::Channel { command } => channel::run(command).await,
            Command::Agent { command } => agent::run(command).await,
            Command::Policy { command } => policy::run(command).await,
            Command::Ca { command } => ca::run(command).await,
            Command::Data(command) => backup::run(command).await,
            Command::Admin { command: AdminCommand::NewMasterKey } => {
                println!("{}", certctl_common::secret::MasterKey::generate().to_base64());
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("certctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where the admin commands find a running gateway.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerAddress {
    /// The gateway's URL.
    #[arg(long = "server", env = "CERTCTL_SERVER", default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// The files named on the command line, with directories walked recursively
/// for `.pem`, `.crt` and `.cer` files (sorted, so runs are repeatable).
pub fn pem_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        collect(path, &mut out)?;
    }
    Ok(out)
}

fn collect(path: &std::path::Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let is_pem = entry
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "pem" | "crt" | "cer"));
            if entry.is_dir() || is_pem {
                collect(&entry, out)?;
            }
        }
    } else {
        out.push(path.to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
