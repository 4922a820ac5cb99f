//! `certctl-agent enroll` once, then `certctl-agent run`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "certctl-agent",
    version,
    about = "The certctl agent: keeps keys on this host, deploys and verifies certificates"
)]
struct Cli {
    /// Where the agent keeps its identity, keys and answers (0700).
    #[arg(long, env = "CERTCTL_AGENT_STATE_DIR", default_value = "/var/lib/certctl-agent", global = true)]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Trades a join token for this agent's identity.
    Enroll {
        /// The hub's agent port, e.g. https://certctl.example.com:8444.
        #[arg(long, env = "CERTCTL_AGENT_SERVER")]
        server: String,
        /// The join token (`certctl agent token create` prints it).
        #[arg(long, env = "CERTCTL_AGENT_TOKEN")]
        token: String,
        /// SHA-256 of the platform CA's root, printed with the token: the
        /// agent trusts no other server.
        #[arg(long, env = "CERTCTL_AGENT_CA_FINGERPRINT")]
        ca_fingerprint: String,
        /// The name this host goes by; default: the kernel's host name.
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Holds the stream to the hub and carries out its commands.
    Run {
        /// Scan these files and directories for certificates at each connect.
        #[arg(long = "discover")]
        discover: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,h2=warn,hyper=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = async {
        let state = certctl_agent::state::StateDir::open(&cli.state_dir)?;
        match cli.command {
            Command::Enroll { server, token, ca_fingerprint, hostname } => {
                let hostname = hostname.unwrap_or_else(certctl_agent::enroll::hostname);
                let settings =
                    certctl_agent::enroll::enroll(&state, &server, &token, &ca_fingerprint, &hostname).await?;
                println!(
                    "enrolled as {}; start it with `certctl-agent --state-dir {} run`",
                    settings.agent,
                    cli.state_dir.display()
                );
                Ok(())
            }
            Command::Run { discover } => {
                let options = certctl_agent::session::Options { discovery_paths: discover };
                let stop = async {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                };
                certctl_agent::session::run(state, options, stop).await
            }
        }
    }
    .await;
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("certctl-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
