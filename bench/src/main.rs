//! `certctl-bench`: the benchmark of the platform spine (docs/benchmarks.md).
//!
//! - `seed` fills the inventory's database directly with SQL, fast enough
//!   for a million certificates in minutes;
//! - `load` drives open-loop HTTP/1.1 load at a running `certctl server` on
//!   loopback and prints latency percentiles;
//! - `issue` drives `SignCertificate` over gRPC at a running server, open
//!   loop at a fixed rate or closed loop for the maximum throughput;
//! - `issue-phases` times the steps of one issuance in this process (CSR
//!   verification, signing, recording one or a batch per transaction);
//! - `renewal-scan` times the scheduler's renewal scan over a seeded
//!   inventory (served over gRPC in this process) into an empty job table;
//! - `rss` prints a process's resident memory;
//! - `agents` simulates thousands of enrolled agents against a `certctl
//!   server` it starts itself: memory and CPU per held stream, reconnection
//!   after a restart, and the push and fan-out of a renewal to all of them.
//!
//! With `--pid`, `load` also reports the server's memory and its CPU time per
//! request, and how busy the whole machine was, so noisy runs show as such.
//!
//! Architecture invariant: the benchmark talks to the server only through its
//! public API (REST, and gRPC for issuance); the only thing it knows about the inventory's internals is
//! the row layout `seed` writes, which its test checks by reading the rows
//! back through the inventory's own store.

mod agents;
mod issue;
mod load;
mod phases;
mod procfs;
mod scan;
mod seed;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use certctl_common::db::DatabaseConfig;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "certctl-bench", version, about = "Benchmark of the certctl platform spine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fills the inventory's database with synthetic certificates and versions.
    Seed(SeedArgs),
    /// Sends requests at a fixed rate to a loopback URL and reports latencies.
    Load(LoadArgs),
    /// Signs CSRs over gRPC (`SignCertificate`) and reports throughput and latencies.
    Issue(IssueArgs),
    /// Times CSR verification, signing and recording in this process.
    IssuePhases(PhasesArgs),
    /// Times the scheduler's renewal scan over a seeded inventory (run `seed` first).
    RenewalScan(ScanArgs),
    /// Simulates many agents against a `certctl server` it starts (docs/benchmarks.md).
    Agents(agents::AgentsArgs),
    /// Prints the resident memory of a process (VmRSS and VmHWM, KiB).
    Rss {
        #[arg(long)]
        pid: u32,
    },
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// How many certificates to create.
    #[arg(long)]
    count: u64,
    /// SQLite: the server's data directory (the inventory is `inventory.db` in it).
    #[arg(long, conflicts_with = "database_url", required_unless_present = "database_url")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL: the server's database URL (the inventory is schema `inventory`).
    #[arg(long)]
    database_url: Option<String>,
    /// Delete the inventory's existing data first (SQLite file or PostgreSQL schema).
    #[arg(long)]
    reset: bool,
    /// Certificates per INSERT statement and transaction.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
}

#[derive(Debug, Args)]
struct ScanArgs {
    /// SQLite: the seeded data directory.
    #[arg(long, conflicts_with = "database_url", required_unless_present = "database_url")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL: the seeded database URL (the job tables go to a schema of their own).
    #[arg(long)]
    database_url: Option<String>,
    /// How many certificates are due at the scan.
    #[arg(long, default_value_t = 100_000)]
    due: u64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Base URL of the server; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Path and query of every request.
    #[arg(long)]
    path: String,
    /// Offered load, requests per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Requests in flight at most, which is also the most connections opened.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds before a request counts as timed out.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Read the resident memory of this process after the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Print the result as one JSON object on stdout (the summary goes to stderr).
    #[arg(long)]
    json: bool,
    /// Print the start of the first response body (to check what is measured).
    #[arg(long)]
    show_body: bool,
    /// A name for this run, copied into the output.
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// The server's public gRPC URL; must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The issuer to sign with.
    #[arg(long, default_value = "issuers/local")]
    issuer: String,
    /// Create the issuer first (a generated Local CA hierarchy) if it does
    /// not exist: `rsa-2048`, `ecdsa-p256`, ...
    #[arg(long)]
    create_issuer_key: Option<String>,
    /// Offered load, requests per second (open loop); without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Requests in flight at most (open loop), or callers (closed loop).
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// HTTP/2 connections to spread the requests over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds before a request counts as timed out.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Distinct CSRs generated before the run and reused in turn.
    #[arg(long, default_value_t = 2000)]
    csrs: usize,
    /// Send a fresh request id with every request (idempotent signing).
    #[arg(long)]
    request_ids: bool,
    /// Measure this process's CPU (the server) during the run.
    #[arg(long)]
    pid: Option<u32>,
    /// Print the result as one JSON object on stdout (the summary goes to stderr).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value = "")]
    label: String,
}

#[derive(Debug, Args)]
struct PhasesArgs {
    /// Certificates per phase.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Certificates per transaction in the batched recording phase.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// PostgreSQL to record into (an `issuance` schema is created in it);
    /// without it, SQLite in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Agents(args) => agents::run(args).await?,
        Command::RenewalScan(args) => {
            let database = match (args.data_dir, args.database_url) {
                (Some(data_dir), None) => DatabaseConfig::Sqlite { data_dir },
                (None, Some(url)) => DatabaseConfig::Postgres { url },
                _ => bail!("give exactly one of --data-dir and --database-url"),
            };
            scan::run(&database, &scan::Plan { due: args.due, runs: args.runs }).await?;
        }
        Command::Seed(args) => {
            let database = match (args.data_dir, args.database_url) {
                (Some(data_dir), None) => DatabaseConfig::Sqlite { data_dir },
                (None, Some(url)) => DatabaseConfig::Postgres { url },
                _ => bail!("give exactly one of --data-dir and --database-url"),
            };
            seed::run(
                &database,
                &seed::Plan { count: args.count, batch: args.batch, reset: args.reset, verbose: true },
            )
            .await?;
        }
        Command::Load(args) => {
            let plan = load::Plan {
                url: load::target(&args.url, &args.path)?,
                rate: args.rate,
                duration: secs("--duration", args.duration)?,
                connections: args.connections,
                timeout: secs("--timeout", args.timeout)?,
                keep_first_body: args.show_body,
            };
            let before = procfs::ticks(args.pid)?;
            let started = std::time::Instant::now();
            let report = load::run(&plan).await?;
            let cpu = procfs::CpuUse::between(before, procfs::ticks(args.pid)?);
            let wall = started.elapsed().as_secs_f64();
            let memory = args.pid.map(procfs::memory).transpose()?;
            eprintln!("{}", report.summary(&args.path));
            if let Some(body) = &report.first_body {
                eprintln!("  first body: {body}");
            }
            if let Some(cpu) = cpu {
                eprintln!(
                    "  cpu (% of one core, {:.0} available): server {:.0}, load generator {:.0}, others {:.0}",
                    cpu.capacity_pct,
                    cpu.server_pct,
                    cpu.bench_pct,
                    cpu.others_pct()
                );
            }
            if let Some(m) = memory {
                eprintln!(
                    "  server memory: rss {} KiB (anon {}, file {}), peak {} KiB",
                    m.rss_kib, m.anon_kib, m.file_kib, m.peak_kib
                );
            }
            if args.json {
                let mut out = report.to_json(&args.label, &args.path);
                if let (Some(cpu), true) = (cpu, args.pid.is_some()) {
                    out["server_cpu_pct"] = round1(cpu.server_pct).into();
                    out["server_cpu_ms_per_request"] =
                        round1(cpu.server_pct * 10.0 * wall / report.attempted().max(1) as f64).into();
                }
                if let Some(cpu) = cpu {
                    out["bench_cpu_pct"] = round1(cpu.bench_pct).into();
                    out["others_cpu_pct"] = round1(cpu.others_pct()).into();
                }
                if let Some(m) = memory {
                    out["rss_kib"] = m.rss_kib.into();
                    out["rss_peak_kib"] = m.peak_kib.into();
                }
                println!("{out}");
            }
        }
        Command::Issue(args) => {
            load::target(&args.url, "/")?;
            let csrs = std::sync::Arc::new(tokio::task::spawn_blocking(move || issue::csrs(args.csrs)).await??);
            let mut clients = issue::connect(&args.url, args.connections).await?;
            if let Some(key) = &args.create_issuer_key {
                let id = args.issuer.strip_prefix("issuers/").unwrap_or(&args.issuer);
                let key_type =
                    key.parse::<certctl_pki::KeyType>().map_err(|e| anyhow::anyhow!("--create-issuer-key: {e}"))?;
                let algorithm = match key_type {
                    certctl_pki::KeyType::EcdsaP256 => certctl_proto::types::KeyAlgorithm::EcdsaP256,
                    certctl_pki::KeyType::EcdsaP384 => certctl_proto::types::KeyAlgorithm::EcdsaP384,
                    certctl_pki::KeyType::Rsa2048 => certctl_proto::types::KeyAlgorithm::Rsa2048,
                    certctl_pki::KeyType::Rsa3072 => certctl_proto::types::KeyAlgorithm::Rsa3072,
                    certctl_pki::KeyType::Rsa4096 => certctl_proto::types::KeyAlgorithm::Rsa4096,
                    certctl_pki::KeyType::Ed25519 => certctl_proto::types::KeyAlgorithm::Ed25519,
                };
                issue::ensure_issuer(&mut clients[0], id, algorithm).await?;
            }
            let plan = issue::Plan {
                issuer: args.issuer.clone(),
                rate: args.rate,
                concurrency: args.concurrency,
                duration: secs("--duration", args.duration)?,
                timeout: secs("--timeout", args.timeout)?,
                request_ids: args.request_ids,
            };
            let before = procfs::ticks(args.pid)?;
            let started = std::time::Instant::now();
            let report = issue::run(&plan, &clients, csrs).await?;
            let cpu = procfs::CpuUse::between(before, procfs::ticks(args.pid)?);
            let wall = started.elapsed().as_secs_f64();
            eprintln!("{}", report.summary(&args.issuer));
            if let Some(cpu) = cpu {
                eprintln!(
                    "  cpu (% of one core, {:.0} available): server {:.0}, load generator {:.0}, others {:.0}",
                    cpu.capacity_pct,
                    cpu.server_pct,
                    cpu.bench_pct,
                    cpu.others_pct()
                );
            }
            if args.json {
                let mut out = report.to_json(&args.label, &args.issuer);
                if let Some(cpu) = cpu {
                    if args.pid.is_some() {
                        out["server_cpu_pct"] = round1(cpu.server_pct).into();
                        out["server_cpu_us_per_request"] =
                            (cpu.server_pct * 10_000.0 * wall / report.attempted().max(1) as f64).round().into();
                    }
                    out["bench_cpu_pct"] = round1(cpu.bench_pct).into();
                    out["others_cpu_pct"] = round1(cpu.others_pct()).into();
                }
                println!("{out}");
            }
        }
        Command::IssuePhases(args) => {
            let tmp = tempfile::tempdir()?;
            let database = match args.database_url {
                Some(url) => DatabaseConfig::Postgres { url },
                None => DatabaseConfig::Sqlite { data_dir: tmp.path().to_owned() },
            };
            let count = args.count.max(2);
            let csrs = tokio::task::spawn_blocking(move || issue::csrs(count)).await??;
            for phase in phases::run(&csrs, &database, args.batch).await? {
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({"phase": phase.name, "us_per_op": round1(phase.micros_per_op), "ops": phase.ops})
                    );
                } else {
                    eprintln!(
                        "{:<50} {:>9.1} µs/op  ({:.0}/s on one core)",
                        phase.name,
                        phase.micros_per_op,
                        1e6 / phase.micros_per_op
                    );
                }
            }
        }
        Command::Rss { pid } => {
            let m = procfs::memory(pid)?;
            let out = serde_json::json!({
                "pid": pid,
                "rss_kib": m.rss_kib,
                "rss_peak_kib": m.peak_kib,
                "rss_anon_kib": m.anon_kib,
                "rss_file_kib": m.file_kib,
            });
            println!("{out}");
        }
    }
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn secs(flag: &str, value: f64) -> anyhow::Result<Duration> {
    if !(value.is_finite() && value > 0.0 && value <= 3600.0) {
        bail!("{flag} must be between 0 and 3600 seconds, got {value}");
    }
    Ok(Duration::from_secs_f64(value))
}
