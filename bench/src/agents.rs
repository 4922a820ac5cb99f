//! `certctl-bench agents`: many simulated agents against one real
//! `certctl server`, for the agent hub's targets (docs/benchmarks.md).
//!
//! Every simulated agent is a real agent as far as the server can tell: it
//! enrolled through the hub with a join token of its own (with the real
//! agent's `enroll` code, which pins the platform root), and it holds one
//! Connect stream over its own TCP connection and TLS session, presenting its
//! own identity certificate. It sends Hello, heartbeats at the interval the
//! Welcome names, acknowledges every command, answers RequestCsr with a CSR
//! for a fresh key of its own, and answers Deploy with a report marking its
//! targets DEPLOYED. The deploy is simulated: no file is written and nothing
//! is reloaded; the agent only checks that the certificate is for the key it
//! generated. It reconnects like `certctl-agent` does (jittered exponential
//! backoff from 500 ms).
//!
//! The tool starts and stops `certctl server` itself, because one
//! measurement kills it. One run, on a fresh server process:
//! 1. hold: the server's RSS before any agent connects and once all are
//!    connected and have been idle for `--idle-secs`, and its CPU over that
//!    idle window;
//! 2. reconnect: SIGKILL the server, start it again on the same data dir and
//!    ports, and time until every agent has been welcomed on a new stream;
//! 3. push: with one managed certificate per agent (created beforehand, each
//!    bound to a `file` target of its agent), `RenewCertificates` in batches,
//!    timed until every agent has acknowledged its RequestCsr;
//! 4. fan-out: from the same start until every agent has acknowledged the
//!    Deploy of its new version, and until the scheduler has no open job.
//!
//! Enrolments are kept in `--state-dir` (one real agent state directory per
//! agent), so later invocations against the same data dir skip them. Any
//! agent that cannot enrol or is refused, or a phase that does not complete
//! within `--phase-timeout`, ends the tool with an error: it never prints a
//! figure it did not measure.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use certctl_agent::client::{self, Trust};
use certctl_agent::state::StateDir;
use certctl_pki::KeyType;
use certctl_proto::agent::{self as pb, agent_service_client::AgentServiceClient, connect_request::Frame};
use certctl_proto::inventory::{self as inv, inventory_service_client::InventoryServiceClient};
use certctl_proto::issuance::{ListAuthoritiesRequest, issuance_service_client::IssuanceServiceClient};
use certctl_proto::scheduler::{self as sched, scheduler_service_client::SchedulerServiceClient};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::procfs;

/// The same shape as `certctl-agent`'s reconnects (agent/src/session.rs).
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A stream that lived this long resets the backoff.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);
/// Quiet (no command to any agent) that counts as settled.
const SETTLED: Duration = Duration::from_secs(5);
/// RenewCertificates takes at most this many names.
const MAX_RENEW_BATCH: usize = 1000;

#[derive(Debug, clap::Args)]
pub struct AgentsArgs {
    /// How many agents to simulate.
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// The `certctl` binary [default: `certctl` beside this one].
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The server's data directory (SQLite); reuse it with the same --state-dir.
    #[arg(long)]
    data_dir: PathBuf,
    /// Where the agents' enrolments are kept between invocations.
    #[arg(long)]
    state_dir: PathBuf,
    /// The server's public port (loopback only).
    #[arg(long, default_value = "127.0.0.1:18191")]
    listen: SocketAddr,
    /// The agent hub's port (loopback only).
    #[arg(long, default_value = "127.0.0.1:18192")]
    agent_listen: SocketAddr,
    /// The server's output is appended here [default: server.log in --state-dir].
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// Measured runs, each on a fresh server process; the summary gives medians.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Seconds all agents stay connected and idle in phase 1. Shorter than 60 s
    /// misses part of the heartbeat (20 s) and keepalive (30 s) cycles.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Agents connecting at once when a run starts (later reconnects are not limited).
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Agents enrolling at once.
    #[arg(long, default_value_t = 16)]
    enroll_concurrency: usize,
    /// Targets and certificates created at once during setup.
    #[arg(long, default_value_t = 16)]
    setup_concurrency: usize,
    /// Certificates per RenewCertificates call (at most 1000).
    #[arg(long, default_value_t = 1000)]
    renew_batch: usize,
    /// RenewCertificates calls in flight at once (1: one batch after the other).
    #[arg(long, default_value_t = 1)]
    renew_concurrency: usize,
    /// Seconds a phase may take before the run fails.
    #[arg(long, default_value_t = 900)]
    phase_timeout: u64,
    /// Stop each run after the reconnect (phases 1 and 2 only).
    #[arg(long)]
    no_fanout: bool,
    /// Print each run, and the summary, as one JSON object per line on stdout.
    #[arg(long)]
    json: bool,
}

struct Plan {
    agents: usize,
    server_bin: PathBuf,
    data_dir: PathBuf,
    state_dir: PathBuf,
    listen: SocketAddr,
    agent_listen: SocketAddr,
    server_log: PathBuf,
    idle: Duration,
    connect_concurrency: usize,
    enroll_concurrency: usize,
    setup_concurrency: usize,
    renew_batch: usize,
    renew_concurrency: usize,
    limit: Duration,
    fanout: bool,
}

impl Plan {
    fn public_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    fn hub_url(&self) -> String {
        format!("https://{}", self.agent_listen)
    }
}

fn agent_id(i: usize) -> String {
    format!("bench-{i}")
}

fn certificate_id(i: usize) -> String {
    format!("bench-a{i}")
}

fn dns_name(i: usize) -> String {
    format!("a{i}.bench.test")
}

fn log(message: impl std::fmt::Display) {
    eprintln!("[agents] {message}");
}

pub async fn run(args: AgentsArgs) -> anyhow::Result<()> {
    for (flag, addr) in [("--listen", args.listen), ("--agent-listen", args.agent_listen)] {
        if !addr.ip().is_loopback() {
            bail!("{flag} {addr}: the benchmark only runs on loopback addresses");
        }
    }
    if args.agents == 0 || args.runs == 0 {
        bail!("--agents and --runs must be at least 1");
    }
    if args.renew_batch == 0 || args.renew_batch > MAX_RENEW_BATCH {
        bail!("--renew-batch must be 1 to {MAX_RENEW_BATCH}");
    }
    if std::env::var_os("CERTCTL_MASTER_KEY").is_none() && std::env::var_os("CERTCTL_MASTER_KEY_FILE").is_none() {
        bail!(
            "set CERTCTL_MASTER_KEY (`certctl admin new-master-key` prints one) and keep it for later runs on the same --data-dir"
        );
    }
    let server_bin = match args.server_bin {
        Some(bin) => bin,
        None => std::env::current_exe()?.with_file_name("certctl"),
    };
    if !server_bin.exists() {
        bail!(
            "{} does not exist: build it (`cargo build --release -p certctl`) or give --server-bin",
            server_bin.display()
        );
    }
    check_open_files(args.agents)?;
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("cannot create --state-dir {}", args.state_dir.display()))?;
    let plan = Plan {
        agents: args.agents,
        server_bin,
        data_dir: args.data_dir,
        server_log: args.server_log.unwrap_or_else(|| args.state_dir.join("server.log")),
        state_dir: args.state_dir,
        listen: args.listen,
        agent_listen: args.agent_listen,
        idle: Duration::from_secs(args.idle_secs.max(1)),
        connect_concurrency: args.connect_concurrency.max(1),
        enroll_concurrency: args.enroll_concurrency.max(1),
        setup_concurrency: args.setup_concurrency.max(1),
        renew_batch: args.renew_batch,
        renew_concurrency: args.renew_concurrency.max(1),
        limit: Duration::from_secs(args.phase_timeout.max(1)),
        fanout: !args.no_fanout,
    };
    if plan.idle < Duration::from_secs(60) {
        log("warning: an idle window under 60 s does not cover whole heartbeat and keepalive cycles");
    }
    log(format_args!(
        "{} agents; server {} (data {}, log {}); public {}, hub {}",
        plan.agents,
        plan.server_bin.display(),
        plan.data_dir.display(),
        plan.server_log.display(),
        plan.listen,
        plan.agent_listen
    ));

    // Enrol whoever is not enrolled yet, then set up a fresh process for the runs.
    let mut server = Server::start(&plan).await?;
    let public = public_channel(&plan).await?;
    let root = platform_root(&public).await?;
    let (identities, enrolled) = identities(&plan, &public, &root).await?;
    log(format_args!(
        "{} agents ready ({enrolled} enrolled now, the others from {})",
        identities.len(),
        plan.state_dir.display()
    ));
    drop(public);
    server.stop().await;

    let identities = Arc::new(identities);
    let mut results = Vec::new();
    for run in 1..=args.runs {
        log(format_args!("run {run} of {}", args.runs));
        let result = run_once(&plan, identities.clone()).await.with_context(|| format!("run {run}"))?;
        eprintln!("{}", result.summary());
        if args.json {
            let mut out = result.to_json();
            out["run"] = run.into();
            println!("{out}");
        }
        results.push(result);
    }
    let summary = Summary::of(&results);
    eprintln!("{}", summary.text(plan.agents, results.len()));
    if args.json {
        println!("{}", summary.json(plan.agents, results.len()));
    }
    Ok(())
}

/// Each connection is a file descriptor on both sides: this process and the
/// server (which inherits the limit) each need one per agent.
fn check_open_files(agents: usize) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits").context("cannot read /proc/self/limits")?;
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<usize>().ok());
    let needed = agents + 512;
    match soft {
        Some(soft) if soft < needed => bail!(
            "the open-files limit is {soft}, but {agents} agents need at least {needed} here and in the server: \
             raise it first (`ulimit -n {needed}`; bench/agents.sh does)"
        ),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------- the server

struct Server {
    child: tokio::process::Child,
    pid: u32,
}

impl Server {
    /// Starts `certctl server` and waits until both its ports answer.
    async fn start(plan: &Plan) -> anyhow::Result<Self> {
        for addr in [plan.listen, plan.agent_listen] {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                bail!("something already listens on {addr}: stop it, or choose other ports");
            }
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&plan.server_log)
            .with_context(|| format!("cannot open {}", plan.server_log.display()))?;
        let child = tokio::process::Command::new(&plan.server_bin)
            .arg("server")
            .args(["--listen", &plan.listen.to_string(), "--agent-listen", &plan.agent_listen.to_string()])
            .arg("--data-dir")
            .arg(&plan.data_dir)
            .args(["--web-dir", "/nonexistent"])
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot run {}", plan.server_bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut server = Self { child, pid };
        server.wait_ready(plan).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, plan: &Plan) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("certctl server exited ({status}) while starting; see {}", plan.server_log.display());
            }
            if tokio::net::TcpStream::connect(plan.agent_listen).await.is_ok() && public_ready(plan).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("certctl server was not ready within 120 s; see {}", plan.server_log.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash would.
    async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then SIGKILL after 30 s.
    async fn stop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            self.kill().await;
        }
    }
}

async fn public_ready(plan: &Plan) -> bool {
    let Ok(channel) = Endpoint::from_shared(plan.public_url()).map(|e| e.connect_timeout(Duration::from_secs(1)))
    else {
        return false;
    };
    let Ok(channel) = channel.connect().await else { return false };
    IssuanceServiceClient::new(channel)
        .list_authorities(ListAuthoritiesRequest { parent: "issuers/platform".to_owned() })
        .await
        .is_ok()
}

async fn public_channel(plan: &Plan) -> anyhow::Result<Channel> {
    Endpoint::from_shared(plan.public_url())?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot reach the server at {}", plan.public_url()))
}

/// The SHA-256 of the platform CA's root, which agents pin to enrol.
async fn platform_root(public: &Channel) -> anyhow::Result<String> {
    IssuanceServiceClient::new(public.clone())
        .list_authorities(ListAuthoritiesRequest { parent: "issuers/platform".to_owned() })
        .await
        .context("ListAuthorities issuers/platform")?
        .into_inner()
        .authorities
        .into_iter()
        .find(|a| a.role == "root")
        .map(|a| a.sha256_fingerprint.to_lowercase())
        .context("issuers/platform has no root authority")
}

// ------------------------------------------------------------- enrolment

/// What a simulated agent connects with.
#[derive(Clone)]
struct Identity {
    index: usize,
    agent: String,
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

/// Loads every agent's saved enrolment, enrolling those without one.
async fn identities(plan: &Plan, public: &Channel, root: &str) -> anyhow::Result<(Vec<Identity>, usize)> {
    let marker = plan.state_dir.join("platform-root.sha256");
    match std::fs::read_to_string(&marker) {
        Ok(saved) if saved.trim() != root => bail!(
            "{} holds agents enrolled with another platform (root sha256 {}), but the server on {} has root {root}: \
             use the --data-dir they enrolled with, or a new --state-dir",
            plan.state_dir.display(),
            saved.trim(),
            plan.data_dir.display()
        ),
        Ok(_) => {}
        Err(_) => std::fs::write(&marker, root)?,
    }
    let enrolled = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut loaded = futures::stream::iter(0..plan.agents)
        .map(|i| {
            let (public, enrolled) = (public.clone(), enrolled.clone());
            async move { load_or_enroll(plan, &public, root, i, &enrolled).await }
        })
        .buffer_unordered(plan.enroll_concurrency);
    let mut identities = Vec::with_capacity(plan.agents);
    let mut last_report = Instant::now();
    while let Some(identity) = loaded.next().await {
        identities.push(identity?);
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            log(format_args!(
                "enrolment: {} of {} ready ({} enrolled now, {:.0} s)",
                identities.len(),
                plan.agents,
                enrolled.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            ));
        }
    }
    identities.sort_by_key(|i| i.index);
    Ok((identities, enrolled.load(Ordering::Relaxed)))
}

async fn load_or_enroll(
    plan: &Plan,
    public: &Channel,
    root: &str,
    i: usize,
    enrolled: &AtomicUsize,
) -> anyhow::Result<Identity> {
    let dir = plan.state_dir.join("agents").join(i.to_string());
    let state = StateDir::open(&dir)?;
    let expected = format!("agents/{}", agent_id(i));
    let settings = match state.settings() {
        Ok(settings) if state.identity().is_ok() => settings,
        _ => {
            let token = InventoryServiceClient::new(public.clone())
                .create_join_token(inv::CreateJoinTokenRequest {
                    join_token: Some(inv::JoinToken {
                        display_name: "certctl-bench agents".to_owned(),
                        agent_id: agent_id(i),
                        ..Default::default()
                    }),
                    join_token_id: String::new(),
                })
                .await
                .map_err(|s| anyhow::anyhow!("agent {i}: CreateJoinToken refused ({:?}): {}", s.code(), s.message()))?
                .into_inner()
                .secret;
            let settings = certctl_agent::enroll::enroll(&state, &plan.hub_url(), &token, root, &agent_id(i))
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "agent {i} cannot enrol: {e:#} (an agent of that name from an interrupted run? then start over \
                         with a new --data-dir and --state-dir)"
                    )
                })?;
            enrolled.fetch_add(1, Ordering::Relaxed);
            settings
        }
    };
    if settings.agent != expected {
        bail!("{} is enrolled as {}, not {expected}", dir.display(), settings.agent);
    }
    let (chain_pem, key_pem, ca_pem) = state.identity()?;
    Ok(Identity { index: i, agent: settings.agent, ca_pem, chain_pem, key_pem })
}

// -------------------------------------------------------- simulated agents

/// One time per agent (nanoseconds since `Shared::base`, plus one; zero
/// while unset): when it was welcomed, or got its command.
struct Slots(Vec<AtomicU64>);

impl Slots {
    fn new(n: usize) -> Self {
        Self((0..n).map(|_| AtomicU64::new(0)).collect())
    }

    fn clear(&self) {
        for slot in &self.0 {
            slot.store(0, Ordering::SeqCst);
        }
    }

    fn mark(&self, i: usize, at: u64) {
        let _ = self.0[i].compare_exchange(0, at, Ordering::SeqCst, Ordering::Relaxed);
    }

    fn count(&self) -> usize {
        self.0.iter().filter(|s| s.load(Ordering::Relaxed) != 0).count()
    }

    fn times(&self) -> Vec<u64> {
        self.0.iter().map(|s| s.load(Ordering::Relaxed)).filter(|t| *t != 0).collect()
    }

    /// The latest time marked, once every agent is.
    fn last(&self) -> Option<u64> {
        self.0.iter().map(|s| s.load(Ordering::Relaxed)).try_fold(0, |max, t| (t != 0).then_some(max.max(t)))
    }
}

/// What all simulated agents share: the clock, what they saw, what went wrong.
struct Shared {
    base: Instant,
    hub: String,
    welcomed: Slots,
    csr: Slots,
    deploy: Slots,
    /// Agents whose stream is welcomed right now.
    connected: AtomicUsize,
    commands: AtomicU64,
    last_command: AtomicU64,
    heartbeat_secs: AtomicU64,
    streams_ended: AtomicU64,
    unexpected: AtomicU64,
    key_mismatches: AtomicU64,
    refused: Mutex<Option<String>>,
    last_error: Mutex<String>,
    /// Why streams ended or could not be opened, by kind (digits blanked).
    errors: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64 + 1
    }

    /// The instant a slot time stands for.
    fn instant(&self, at: u64) -> Instant {
        self.base + Duration::from_nanos(at - 1)
    }

    fn refused(&self) -> Option<String> {
        self.refused.lock().expect("refused").clone()
    }
}

/// The agent's keys and answers; commands sent again get the same answer.
#[derive(Default)]
struct SimState {
    /// A key made before the clock started, used by the next CSR.
    spare: Option<rcgen::KeyPair>,
    /// SubjectPublicKeyInfo DER of the keys its CSRs were for, latest last.
    keys: VecDeque<Vec<u8>>,
    answers: VecDeque<(String, pb::ConnectRequest)>,
}

struct Sim {
    identity: Identity,
    certificate: String,
    state: Mutex<SimState>,
}

enum Ended {
    Reconnect(String),
    Refused(String),
}

fn frame(frame: Frame) -> pb::ConnectRequest {
    pb::ConnectRequest { frame: Some(frame) }
}

fn ended(status: tonic::Status) -> Ended {
    match status.code() {
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => Ended::Refused(status.message().to_owned()),
        // With the causes: a local transport error has them, a status the hub sent has none.
        code => Ended::Reconnect(format!("{code:?}: {}", client::describe(&status))),
    }
}

/// Counts a welcomed stream while it lasts.
struct Connected<'a>(&'a AtomicUsize);

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Sim {
    /// Connects, reconnects with `certctl-agent`'s backoff, until `stop`.
    async fn run(
        self: Arc<Self>,
        shared: Arc<Shared>,
        mut first: Option<OwnedSemaphorePermit>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut backoff = BACKOFF_START;
        loop {
            let started = Instant::now();
            let ended = tokio::select! {
                ended = self.connect_once(&shared, &mut first) => ended,
                _ = stop.changed() => return,
            };
            first = None;
            match ended {
                Ended::Refused(why) => {
                    let mut refused = shared.refused.lock().expect("refused");
                    refused.get_or_insert_with(|| format!("the hub refused {}: {why}", self.identity.agent));
                    return;
                }
                Ended::Reconnect(why) => {
                    shared.streams_ended.fetch_add(1, Ordering::Relaxed);
                    let kind: String =
                        why.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).take(160).collect();
                    *shared.errors.lock().expect("errors").entry(kind).or_default() += 1;
                    *shared.last_error.lock().expect("last error") = why;
                }
            }
            if started.elapsed() > BACKOFF_RESET_AFTER {
                backoff = BACKOFF_START;
            }
            let jitter = rand::random::<f64>() * 0.5 + 0.75;
            tokio::select! {
                () = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect_once(&self, shared: &Shared, first: &mut Option<OwnedSemaphorePermit>) -> Ended {
        let id = &self.identity;
        let trust =
            Trust::Identity { ca_pem: id.ca_pem.clone(), chain_pem: id.chain_pem.clone(), key_pem: id.key_pem.clone() };
        let channel = match client::channel(&shared.hub, &trust).await {
            Ok(c) => c,
            Err(e) => return Ended::Reconnect(format!("{e:#}")),
        };
        let (tx, rx) = mpsc::channel::<pb::ConnectRequest>(16);
        let hello = pb::Hello {
            agent: id.agent.clone(),
            version: format!("certctl-bench {}", env!("CARGO_PKG_VERSION")),
            capabilities: vec!["file".to_owned()],
            inventory_digest: String::new(),
        };
        let _ = tx.send(frame(Frame::Hello(hello))).await;
        let response = AgentServiceClient::new(channel)
            .max_decoding_message_size(16 << 20)
            .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        let mut inbound = match response {
            Ok(r) => r.into_inner(),
            Err(s) => return ended(s),
        };
        let mut heartbeat: Option<tokio::time::Interval> = None;
        let mut _connected = None;
        loop {
            let tick = async {
                match heartbeat.as_mut() {
                    Some(h) => {
                        h.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = tick => {
                    if tx.send(frame(Frame::Heartbeat(pb::Heartbeat {}))).await.is_err() {
                        return Ended::Reconnect("the stream closed".to_owned());
                    }
                }
                message = inbound.message() => match message {
                    Ok(Some(pb::ConnectResponse { frame: Some(pb::connect_response::Frame::Welcome(welcome)) })) => {
                        let every = welcome.heartbeat_interval.map_or(30, |d| d.seconds.max(1) as u64);
                        shared.heartbeat_secs.store(every, Ordering::Relaxed);
                        let mut interval = tokio::time::interval(Duration::from_secs(every));
                        interval.tick().await;
                        heartbeat = Some(interval);
                        if _connected.is_none() {
                            shared.connected.fetch_add(1, Ordering::SeqCst);
                            _connected = Some(Connected(&shared.connected));
                        }
                        shared.welcomed.mark(id.index, shared.now());
                        first.take();
                    }
                    Ok(Some(pb::ConnectResponse { frame: Some(pb::connect_response::Frame::Command(command)) })) => {
                        let ack = frame(Frame::Ack(pb::CommandAck { command_id: command.command_id.clone() }));
                        if tx.send(ack).await.is_err() {
                            return Ended::Reconnect("the stream closed".to_owned());
                        }
                        let answer = self.answer(shared, command).await;
                        if tx.send(answer).await.is_err() {
                            return Ended::Reconnect("the stream closed".to_owned());
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return Ended::Reconnect("the hub ended the stream".to_owned()),
                    Err(s) => return ended(s),
                }
            }
        }
    }

    /// Records the command's arrival (its ack), then answers it.
    async fn answer(&self, shared: &Shared, command: pb::Command) -> pb::ConnectRequest {
        let now = shared.now();
        shared.commands.fetch_add(1, Ordering::Relaxed);
        shared.last_command.store(now, Ordering::Relaxed);
        let id = command.command_id.clone();
        if let Some((_, saved)) = self.state.lock().expect("state").answers.iter().find(|(c, _)| *c == id) {
            return saved.clone();
        }
        let reject = |code: &str, message: String| {
            frame(Frame::Rejected(pb::CommandRejected { command_id: id.clone(), code: code.to_owned(), message }))
        };
        let answer = match command.action {
            Some(pb::command::Action::RequestCsr(r)) => {
                if r.certificate == self.certificate {
                    shared.csr.mark(self.identity.index, now);
                } else {
                    shared.unexpected.fetch_add(1, Ordering::Relaxed);
                }
                match self.csr(&r).await {
                    Ok(csr_pem) => frame(Frame::Csr(pb::CsrReady { command_id: id.clone(), csr_pem })),
                    Err((code, message)) => reject(code, message),
                }
            }
            Some(pb::command::Action::Deploy(d)) => {
                if d.certificate == self.certificate {
                    shared.deploy.mark(self.identity.index, now);
                } else {
                    shared.unexpected.fetch_add(1, Ordering::Relaxed);
                }
                let (outcome, message) = match self.holds_key_of(&d.certificate_pem) {
                    Ok(()) => (pb::TargetOutcome::Deployed, "simulated by certctl-bench: nothing written".to_owned()),
                    Err(why) => {
                        shared.key_mismatches.fetch_add(1, Ordering::Relaxed);
                        (pb::TargetOutcome::Failed, why)
                    }
                };
                let results = d
                    .targets
                    .iter()
                    .map(|t| pb::TargetResult {
                        target: t.name.clone(),
                        outcome: outcome as i32,
                        served_fingerprint: String::new(),
                        message: message.clone(),
                    })
                    .collect();
                frame(Frame::Deploy(pb::DeployReport { command_id: id.clone(), results }))
            }
            None => {
                shared.unexpected.fetch_add(1, Ordering::Relaxed);
                reject("BAD_COMMAND", "the command has no action".to_owned())
            }
        };
        let mut state = self.state.lock().expect("state");
        state.answers.push_back((id, answer.clone()));
        if state.answers.len() > 8 {
            state.answers.pop_front();
        }
        answer
    }

    /// A CSR for a key of this agent's own, with the names asked for.
    async fn csr(&self, r: &pb::RequestCsr) -> Result<String, (&'static str, String)> {
        let spare = self.state.lock().expect("state").spare.take();
        let key = match (spare, key_type(r.key_algorithm)?) {
            (Some(key), KeyType::EcdsaP256) => key,
            (_, kind @ (KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)) => {
                tokio::task::spawn_blocking(move || kind.generate())
                    .await
                    .map_err(|e| ("KEYGEN_FAILED", e.to_string()))?
                    .map_err(|e| ("KEYGEN_FAILED", e.to_string()))?
            }
            (_, kind) => kind.generate().map_err(|e| ("KEYGEN_FAILED", e.to_string()))?,
        };
        let sans: Vec<String> = r.dns_names.iter().chain(&r.ip_addresses).cloned().collect();
        let csr = certctl_pki::build_csr(&key, &r.common_name, &sans).map_err(|e| ("BAD_NAMES", e.to_string()))?;
        let mut state = self.state.lock().expect("state");
        state.keys.push_back(rcgen::PublicKeyData::subject_public_key_info(&key));
        if state.keys.len() > 4 {
            state.keys.pop_front();
        }
        Ok(csr)
    }

    /// The leaf is for a key this agent generated.
    fn holds_key_of(&self, chain_pem: &str) -> Result<(), String> {
        let pem = x509_parser::pem::Pem::iter_from_buffer(chain_pem.as_bytes())
            .next()
            .ok_or("the deploy holds no certificate")?
            .map_err(|e| format!("unreadable PEM: {e}"))?;
        let (_, leaf) =
            x509_parser::parse_x509_certificate(&pem.contents).map_err(|e| format!("not a certificate: {e}"))?;
        let spki = leaf.tbs_certificate.subject_pki.raw;
        if self.state.lock().expect("state").keys.iter().any(|k| k.as_slice() == spki) {
            Ok(())
        } else {
            Err("the certificate is not for a key this agent generated".to_owned())
        }
    }
}

fn key_type(algorithm: i32) -> Result<KeyType, (&'static str, String)> {
    use certctl_proto::types::KeyAlgorithm as K;
    Ok(match K::try_from(algorithm) {
        Ok(K::EcdsaP256 | K::Unspecified) => KeyType::EcdsaP256,
        Ok(K::EcdsaP384) => KeyType::EcdsaP384,
        Ok(K::Rsa2048) => KeyType::Rsa2048,
        Ok(K::Rsa3072) => KeyType::Rsa3072,
        Ok(K::Rsa4096) => KeyType::Rsa4096,
        Ok(K::Ed25519) => KeyType::Ed25519,
        _ => return Err(("UNSUPPORTED_KEY", format!("key algorithm {algorithm} cannot be generated"))),
    })
}

/// The running fleet.
struct Fleet {
    shared: Arc<Shared>,
    sims: Vec<Arc<Sim>>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Fleet {
    fn start(plan: &Plan, identities: &Arc<Vec<Identity>>) -> Self {
        let n = identities.len();
        let shared = Arc::new(Shared {
            base: Instant::now(),
            hub: plan.hub_url(),
            welcomed: Slots::new(n),
            csr: Slots::new(n),
            deploy: Slots::new(n),
            connected: AtomicUsize::new(0),
            commands: AtomicU64::new(0),
            last_command: AtomicU64::new(0),
            heartbeat_secs: AtomicU64::new(0),
            streams_ended: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            key_mismatches: AtomicU64::new(0),
            refused: Mutex::new(None),
            last_error: Mutex::new(String::new()),
            errors: Mutex::default(),
        });
        let sims: Vec<Arc<Sim>> = identities
            .iter()
            .map(|identity| {
                Arc::new(Sim {
                    identity: identity.clone(),
                    certificate: format!("certificates/{}", certificate_id(identity.index)),
                    state: Mutex::default(),
                })
            })
            .collect();
        let (stop, stopped) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(plan.connect_concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        {
            let (sims, shared) = (sims.clone(), shared.clone());
            // Agents start in order, each once a connect slot is free.
            tasks.spawn(async move {
                let mut inner = tokio::task::JoinSet::new();
                for sim in sims {
                    let Ok(permit) = gate.clone().acquire_owned().await else { return };
                    inner.spawn(sim.run(shared.clone(), Some(permit), stopped.clone()));
                }
                while inner.join_next().await.is_some() {}
            });
        }
        Self { shared, sims, stop, tasks }
    }

    /// A fresh key per agent, made before a timed phase.
    async fn pregenerate_keys(&self) -> anyhow::Result<()> {
        let sims = self.sims.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for sim in sims {
                let key = KeyType::EcdsaP256.generate()?;
                sim.state.lock().expect("state").spare = Some(key);
            }
            Ok(())
        })
        .await?
    }

    async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until `done`, failing on a refused agent or after `limit`.
    async fn wait(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Shared) -> bool,
        progress: impl Fn(&Shared) -> String,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut reported = Instant::now();
        loop {
            if let Some(why) = self.shared.refused() {
                bail!("{what}: {why}");
            }
            if done(&self.shared) {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "{what}: not done after {} s ({}); last stream error: {}",
                    limit.as_secs(),
                    progress(&self.shared),
                    self.shared.last_error.lock().expect("last error")
                );
            }
            if reported.elapsed() > Duration::from_secs(5) {
                reported = Instant::now();
                log(format_args!(
                    "  {what}: {} after {:.0} s",
                    progress(&self.shared),
                    started.elapsed().as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no agent has had a command for `SETTLED`.
    async fn settle(&self, limit: Duration) -> anyhow::Result<()> {
        self.wait(
            "settling (no commands for 5 s)",
            limit,
            |s| {
                let last = s.last_command.load(Ordering::Relaxed);
                last == 0 || s.instant(last).elapsed() > SETTLED
            },
            |s| format!("{} commands so far", s.commands.load(Ordering::Relaxed)),
        )
        .await
    }
}

// ------------------------------------------------------------------ one run

#[derive(Debug, Clone, Default)]
struct RunResult {
    agents: usize,
    /// Whether phases 3 and 4 ran; their figures mean nothing otherwise.
    fanout: bool,
    heartbeat_secs: u64,
    initial_connect_s: f64,
    rss_0_kib: u64,
    rss_n_kib: u64,
    idle_s: f64,
    idle_server_cpu_pct: f64,
    idle_bench_cpu_pct: f64,
    idle_others_cpu_pct: f64,
    idle_commands: u64,
    restart_ready_s: f64,
    reconnect_s: f64,
    streams_ended_at_restart: u64,
    /// Agents welcomed in each second after the kill.
    reconnect_per_second: Vec<usize>,
    /// Why reconnects failed, by kind, most frequent first.
    reconnect_errors: Vec<(String, u64)>,
    setup_created: usize,
    first_issuance_s: Option<f64>,
    renew_calls_s: f64,
    /// Each RenewCertificates call, in order of completion.
    renew_call_s: Vec<f64>,
    all_csr_s: f64,
    all_deploy_s: f64,
    all_jobs_done_s: f64,
    fanout_server_cpu_pct: f64,
    fanout_bench_cpu_pct: f64,
    fanout_others_cpu_pct: f64,
    failed_jobs: u64,
    unexpected_commands: u64,
    key_mismatches: u64,
    bench_rss_kib: u64,
}

impl RunResult {
    fn rss_per_agent_kib(&self) -> f64 {
        (self.rss_n_kib as f64 - self.rss_0_kib as f64) / self.agents as f64
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "  hold: RSS {} KiB before, {} KiB with {} agents idle {:.0} s: {:.1} KiB per agent (goal <= 64 KB); \
             idle server CPU {:.1}% of one core (goal < 5%; bench {:.1}%, others {:.1}%, {} commands in the window; \
             heartbeat every {} s)\n",
            self.rss_0_kib,
            self.rss_n_kib,
            self.agents,
            self.idle_s,
            self.rss_per_agent_kib(),
            self.idle_server_cpu_pct,
            self.idle_bench_cpu_pct,
            self.idle_others_cpu_pct,
            self.idle_commands,
            self.heartbeat_secs,
        );
        s += &format!(
            "  reconnect: all {} welcomed {:.2} s after the kill (goal <= 15 s); the server took {:.2} s to start; \
             welcomed per second: {:?}; {} failed attempts\n",
            self.agents,
            self.reconnect_s,
            self.restart_ready_s,
            self.reconnect_per_second,
            self.streams_ended_at_restart.saturating_sub(self.agents as u64)
        );
        for (kind, count) in self.reconnect_errors.iter().take(6) {
            s += &format!("    {count} x {kind}\n");
        }
        if !self.fanout {
            return s;
        }
        if let Some(first) = self.first_issuance_s {
            s += &format!(
                "  setup: {} certificates created, first issuance and deploy of them in {first:.1} s\n",
                self.setup_created
            );
        }
        let calls: Vec<String> = self.renew_call_s.iter().map(|c| format!("{c:.2}")).collect();
        s += &format!(
            "  push: RenewCertificates calls took {:.2} s (each: {}); every agent had its RequestCsr after {:.2} s (goal < 2 s)\n",
            self.renew_calls_s,
            calls.join(" "),
            self.all_csr_s
        );
        s += &format!(
            "  fan-out: every agent had its Deploy after {:.2} s (goal <= 60 s); no job open after {:.2} s; \
             server CPU {:.0}%, bench {:.0}%, others {:.0}% meanwhile; {} failed jobs, {} unexpected commands, {} key mismatches",
            self.all_deploy_s,
            self.all_jobs_done_s,
            self.fanout_server_cpu_pct,
            self.fanout_bench_cpu_pct,
            self.fanout_others_cpu_pct,
            self.failed_jobs,
            self.unexpected_commands,
            self.key_mismatches
        );
        s
    }

    fn to_json(&self) -> Value {
        let mut out = json!({
            "agents": self.agents,
            "heartbeat_secs": self.heartbeat_secs,
            "initial_connect_s": round2(self.initial_connect_s),
            "rss_0_kib": self.rss_0_kib,
            "rss_n_kib": self.rss_n_kib,
            "rss_per_agent_kib": round2(self.rss_per_agent_kib()),
            "idle_s": round2(self.idle_s),
            "idle_server_cpu_pct": round2(self.idle_server_cpu_pct),
            "idle_bench_cpu_pct": round2(self.idle_bench_cpu_pct),
            "idle_others_cpu_pct": round2(self.idle_others_cpu_pct),
            "idle_commands": self.idle_commands,
            "restart_ready_s": round2(self.restart_ready_s),
            "reconnect_s": round2(self.reconnect_s),
            "streams_ended_at_restart": self.streams_ended_at_restart,
            "reconnect_per_second": self.reconnect_per_second,
            "reconnect_errors": self.reconnect_errors.iter().map(|(k, n)| json!({"error": k, "count": n})).collect::<Vec<_>>(),
            "setup_created": self.setup_created,
            "first_issuance_s": self.first_issuance_s.map(round2),
            "renew_calls_s": round2(self.renew_calls_s),
            "renew_call_s": self.renew_call_s.iter().copied().map(round2).collect::<Vec<_>>(),
            "all_csr_s": round2(self.all_csr_s),
            "all_deploy_s": round2(self.all_deploy_s),
            "all_jobs_done_s": round2(self.all_jobs_done_s),
            "fanout_server_cpu_pct": round2(self.fanout_server_cpu_pct),
            "fanout_bench_cpu_pct": round2(self.fanout_bench_cpu_pct),
            "fanout_others_cpu_pct": round2(self.fanout_others_cpu_pct),
            "failed_jobs": self.failed_jobs,
            "unexpected_commands": self.unexpected_commands,
            "key_mismatches": self.key_mismatches,
            "bench_rss_kib": self.bench_rss_kib,
        });
        if !self.fanout {
            for key in [
                "setup_created",
                "first_issuance_s",
                "renew_calls_s",
                "renew_call_s",
                "all_csr_s",
                "all_deploy_s",
                "all_jobs_done_s",
                "fanout_server_cpu_pct",
                "fanout_bench_cpu_pct",
                "fanout_others_cpu_pct",
                "failed_jobs",
                "unexpected_commands",
                "key_mismatches",
            ] {
                out.as_object_mut().expect("object").remove(key);
            }
        }
        out
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

async fn run_once(plan: &Plan, identities: Arc<Vec<Identity>>) -> anyhow::Result<RunResult> {
    let n = identities.len();
    let mut result = RunResult { agents: n, fanout: plan.fanout, ..Default::default() };
    let mut server = Server::start(plan).await?;
    // Let the fresh process finish starting (first scans, pools) before the baseline.
    tokio::time::sleep(Duration::from_secs(5)).await;

    // 1. Hold N streams.
    result.rss_0_kib = procfs::memory(server.pid)?.rss_kib;
    let started = Instant::now();
    let fleet = Fleet::start(plan, &identities);
    let outcome = hold(plan, &mut server, &fleet, &mut result, started).await;
    let outcome = match outcome {
        Ok(()) if plan.fanout => push(plan, &mut server, &fleet, &mut result).await,
        Ok(()) => Ok(()),
        Err(e) => Err(e),
    };
    result.bench_rss_kib = procfs::memory(std::process::id()).map(|m| m.rss_kib).unwrap_or(0);
    fleet.stop().await;
    server.stop().await;
    outcome.map(|()| result)
}

async fn hold(
    plan: &Plan,
    server: &mut Server,
    fleet: &Fleet,
    result: &mut RunResult,
    started: Instant,
) -> anyhow::Result<()> {
    let n = fleet.sims.len();
    fleet
        .wait(
            "connecting every agent",
            plan.limit,
            |s| s.welcomed.count() == n,
            |s| format!("{} of {n} welcomed", s.welcomed.count()),
        )
        .await?;
    result.initial_connect_s =
        fleet.shared.instant(fleet.shared.welcomed.last().unwrap_or(1)).duration_since(started).as_secs_f64();
    result.heartbeat_secs = fleet.shared.heartbeat_secs.load(Ordering::Relaxed);
    log(format_args!("  all {n} agents connected in {:.1} s; settling", result.initial_connect_s));
    fleet.settle(plan.limit).await?;
    let commands_before = fleet.shared.commands.load(Ordering::Relaxed);
    let before = procfs::ticks(Some(server.pid))?;
    let window = Instant::now();
    log(format_args!("  idle for {} s", plan.idle.as_secs()));
    tokio::time::sleep(plan.idle).await;
    let cpu = procfs::CpuUse::between(before, procfs::ticks(Some(server.pid))?).context("no CPU ticks passed")?;
    result.idle_s = window.elapsed().as_secs_f64();
    result.rss_n_kib = procfs::memory(server.pid)?.rss_kib;
    result.idle_server_cpu_pct = cpu.server_pct;
    result.idle_bench_cpu_pct = cpu.bench_pct;
    result.idle_others_cpu_pct = cpu.others_pct();
    result.idle_commands = fleet.shared.commands.load(Ordering::Relaxed) - commands_before;
    let still = fleet.shared.connected.load(Ordering::SeqCst);
    if still != n {
        bail!("only {still} of {n} agents were still connected at the end of the idle window");
    }
    log(format_args!(
        "  held: {:.1} KiB per agent, idle CPU {:.1}%",
        result.rss_per_agent_kib(),
        result.idle_server_cpu_pct
    ));

    // 2. Reconnect after a restart.
    fleet.shared.welcomed.clear();
    fleet.shared.errors.lock().expect("errors").clear();
    let ended_before = fleet.shared.streams_ended.load(Ordering::Relaxed);
    let killed = Instant::now();
    server.kill().await;
    *server = Server::start(plan).await?;
    result.restart_ready_s = killed.elapsed().as_secs_f64();
    fleet
        .wait(
            "reconnecting after the restart",
            plan.limit,
            |s| s.welcomed.count() == n,
            |s| format!("{} of {n} welcomed again", s.welcomed.count()),
        )
        .await?;
    result.reconnect_s =
        fleet.shared.instant(fleet.shared.welcomed.last().unwrap_or(1)).duration_since(killed).as_secs_f64();
    result.streams_ended_at_restart = fleet.shared.streams_ended.load(Ordering::Relaxed) - ended_before;
    for at in fleet.shared.welcomed.times() {
        let second = fleet.shared.instant(at).saturating_duration_since(killed).as_secs() as usize;
        if result.reconnect_per_second.len() <= second {
            result.reconnect_per_second.resize(second + 1, 0);
        }
        result.reconnect_per_second[second] += 1;
    }
    let mut errors: Vec<(String, u64)> =
        std::mem::take(&mut *fleet.shared.errors.lock().expect("errors")).into_iter().collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    result.reconnect_errors = errors;
    log(format_args!(
        "  reconnected in {:.2} s (server ready after {:.2} s)",
        result.reconnect_s, result.restart_ready_s
    ));
    Ok(())
}

async fn push(plan: &Plan, server: &mut Server, fleet: &Fleet, result: &mut RunResult) -> anyhow::Result<()> {
    let n = fleet.sims.len();
    let public = public_channel(plan).await?;
    let names: Vec<String> = (0..n).map(|i| format!("certificates/{}", certificate_id(i))).collect();

    // Setup: a file target and a managed certificate per agent.
    let created = setup(plan, &public, n).await?;
    result.setup_created = created.len();
    if !created.is_empty() {
        // Their first version, so the timed round is a renewal like any other.
        fleet.shared.deploy.clear();
        fleet.pregenerate_keys().await?;
        let started = Instant::now();
        let wanted: Vec<String> = created.iter().map(|&i| names[i].clone()).collect();
        renew(plan, &public, &wanted).await?;
        let count = created.len();
        let created_set = Arc::new(created);
        let set = created_set.clone();
        fleet
            .wait(
                "first issuance of the new certificates",
                plan.limit,
                move |s| set.iter().all(|&i| s.deploy.0[i].load(Ordering::Relaxed) != 0),
                move |s| format!("{} of {count} deployed", s.deploy.count()),
            )
            .await?;
        result.first_issuance_s = Some(started.elapsed().as_secs_f64());
        wait_no_open_jobs(&public, plan.limit).await?;
    }
    fleet.settle(plan.limit).await?;
    let failed_before = count_jobs(&public, sched::JobState::Failed).await?;
    let unexpected_before = fleet.shared.unexpected.load(Ordering::Relaxed);
    let mismatches_before = fleet.shared.key_mismatches.load(Ordering::Relaxed);
    fleet.pregenerate_keys().await?;
    fleet.shared.csr.clear();
    fleet.shared.deploy.clear();

    // 3 and 4: renew them all.
    let ticks = procfs::ticks(Some(server.pid))?;
    let t0 = Instant::now();
    result.renew_call_s = renew(plan, &public, &names).await?;
    result.renew_calls_s = t0.elapsed().as_secs_f64();
    log(format_args!("  RenewCertificates for {n} certificates returned after {:.2} s", result.renew_calls_s));
    fleet
        .wait(
            "every RequestCsr",
            plan.limit,
            |s| s.csr.count() == n,
            |s| format!("{} of {n} CSRs asked", s.csr.count()),
        )
        .await?;
    result.all_csr_s = fleet.shared.instant(fleet.shared.csr.last().unwrap_or(1)).duration_since(t0).as_secs_f64();
    log(format_args!("  every agent had its RequestCsr after {:.2} s", result.all_csr_s));
    fleet
        .wait(
            "every Deploy",
            plan.limit,
            |s| s.deploy.count() == n,
            |s| format!("{} of {n} deploys received", s.deploy.count()),
        )
        .await?;
    result.all_deploy_s =
        fleet.shared.instant(fleet.shared.deploy.last().unwrap_or(1)).duration_since(t0).as_secs_f64();
    let cpu = procfs::CpuUse::between(ticks, procfs::ticks(Some(server.pid))?).context("no CPU ticks passed")?;
    result.fanout_server_cpu_pct = cpu.server_pct;
    result.fanout_bench_cpu_pct = cpu.bench_pct;
    result.fanout_others_cpu_pct = cpu.others_pct();
    log(format_args!("  every agent had its Deploy after {:.2} s", result.all_deploy_s));
    wait_no_open_jobs(&public, plan.limit).await?;
    result.all_jobs_done_s = t0.elapsed().as_secs_f64();
    result.failed_jobs = count_jobs(&public, sched::JobState::Failed).await?.saturating_sub(failed_before);
    result.unexpected_commands = fleet.shared.unexpected.load(Ordering::Relaxed) - unexpected_before;
    result.key_mismatches = fleet.shared.key_mismatches.load(Ordering::Relaxed) - mismatches_before;
    if result.failed_jobs > 0 || result.key_mismatches > 0 {
        bail!(
            "the fan-out went wrong: {} jobs failed and {} deploys were for keys the agents did not make (figures above are not valid)",
            result.failed_jobs,
            result.key_mismatches
        );
    }
    Ok(())
}

/// Creates what is missing; returns the agents whose certificate is new.
async fn setup(plan: &Plan, public: &Channel, n: usize) -> anyhow::Result<Vec<usize>> {
    let started = Instant::now();
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let public = public.clone();
            async move {
                let mut inventory = InventoryServiceClient::new(public);
                let target = inv::Target {
                    display_name: format!("bench agent {i}"),
                    agent: format!("agents/{}", agent_id(i)),
                    config: Some(inv::target::Config::File(inv::FileTargetConfig {
                        directory: format!("/nonexistent/certctl-bench/{}", certificate_id(i)),
                        mode: "0600".to_owned(),
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                match inventory
                    .create_target(inv::CreateTargetRequest { target: Some(target), target_id: certificate_id(i) })
                    .await
                {
                    Ok(_) => {}
                    Err(s) if s.code() == tonic::Code::AlreadyExists => {}
                    Err(s) => bail!("CreateTarget for agent {i}: {:?}: {}", s.code(), s.message()),
                }
                let certificate = inv::Certificate {
                    common_name: dns_name(i),
                    subject_alt_names: vec![dns_name(i)],
                    issuer: "issuers/local".to_owned(),
                    targets: vec![format!("targets/{}", certificate_id(i))],
                    ..Default::default()
                };
                let created = inventory
                    .create_certificate(inv::CreateCertificateRequest {
                        certificate: Some(certificate),
                        certificate_id: certificate_id(i),
                        request_id: String::new(),
                    })
                    .await;
                match created {
                    Ok(_) => Ok(Some(i)),
                    Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(None),
                    Err(s) => bail!("CreateCertificate for agent {i}: {:?}: {}", s.code(), s.message()),
                }
            }
        })
        .buffer_unordered(plan.setup_concurrency);
    let mut created = Vec::new();
    let mut done = 0;
    while let Some(r) = results.next().await {
        created.extend(r?);
        done += 1;
        if done % 2000 == 0 {
            log(format_args!("  setup: {done} of {n} ({:.0} s)", started.elapsed().as_secs_f64()));
        }
    }
    log(format_args!(
        "  setup: {} targets and certificates created in {:.1} s",
        created.len(),
        started.elapsed().as_secs_f64()
    ));
    created.sort_unstable();
    Ok(created)
}

/// RenewCertificates in batches; how long each call took.
async fn renew(plan: &Plan, public: &Channel, names: &[String]) -> anyhow::Result<Vec<f64>> {
    let mut calls = futures::stream::iter(names.chunks(plan.renew_batch))
        .map(|batch| {
            let public = public.clone();
            async move {
                let started = Instant::now();
                let jobs = SchedulerServiceClient::new(public)
                    .renew_certificates(sched::RenewCertificatesRequest {
                        certificates: batch.to_vec(),
                        csr_pem: String::new(),
                    })
                    .await
                    .map_err(|s| anyhow::anyhow!("RenewCertificates refused ({:?}): {}", s.code(), s.message()))?
                    .into_inner()
                    .jobs;
                if jobs.len() != batch.len() {
                    bail!("RenewCertificates answered {} jobs for {} certificates", jobs.len(), batch.len());
                }
                Ok(started.elapsed().as_secs_f64())
            }
        })
        .buffer_unordered(plan.renew_concurrency);
    let mut took = Vec::new();
    while let Some(r) = calls.next().await {
        took.push(r?);
    }
    Ok(took)
}

async fn count_jobs(public: &Channel, state: sched::JobState) -> anyhow::Result<u64> {
    let mut scheduler = SchedulerServiceClient::new(public.clone());
    let mut token = String::new();
    let mut count = 0;
    loop {
        let page = scheduler
            .list_jobs(sched::ListJobsRequest {
                page_size: 1000,
                page_token: token,
                state: state as i32,
                ..Default::default()
            })
            .await
            .context("ListJobs")?
            .into_inner();
        count += page.jobs.len() as u64;
        if page.next_page_token.is_empty() {
            return Ok(count);
        }
        token = page.next_page_token;
    }
}

/// Until no job is pending, running or waiting for an agent.
async fn wait_no_open_jobs(public: &Channel, limit: Duration) -> anyhow::Result<()> {
    let mut scheduler = SchedulerServiceClient::new(public.clone());
    let started = Instant::now();
    loop {
        let mut open = 0;
        for state in [sched::JobState::Pending, sched::JobState::Running, sched::JobState::AwaitingAgent] {
            let page = scheduler
                .list_jobs(sched::ListJobsRequest { page_size: 1, state: state as i32, ..Default::default() })
                .await
                .context("ListJobs")?
                .into_inner();
            open += page.jobs.len();
        }
        if open == 0 {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("jobs are still open {} s after the agents answered", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------------ summary

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// A goal a median is held to.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    Below(f64),
}

impl Goal {
    fn met(self, value: f64) -> bool {
        match self {
            Goal::AtMost(limit) => value <= limit,
            Goal::Below(limit) => value < limit,
        }
    }
}

struct Summary {
    rows: Vec<(&'static str, Vec<f64>, &'static str, Option<Goal>)>,
}

impl Summary {
    fn of(results: &[RunResult]) -> Self {
        let col = |f: fn(&RunResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
        let fanout = results.iter().all(|r| r.fanout);
        let mut summary = Self {
            rows: vec![
                // /proc's "kB" are KiB; the goal is 64 of them.
                ("RSS per agent", col(|r| r.rss_per_agent_kib()), "KiB", Some(Goal::AtMost(64.0))),
                ("idle server CPU", col(|r| r.idle_server_cpu_pct), "% of one core", Some(Goal::Below(5.0))),
                ("reconnect after restart", col(|r| r.reconnect_s), "s", Some(Goal::AtMost(15.0))),
                ("RenewCertificates calls", col(|r| r.renew_calls_s), "s", None),
                ("every RequestCsr acked", col(|r| r.all_csr_s), "s", Some(Goal::Below(2.0))),
                ("every Deploy acked", col(|r| r.all_deploy_s), "s", Some(Goal::AtMost(60.0))),
                ("no job open", col(|r| r.all_jobs_done_s), "s", None),
                ("server start at restart", col(|r| r.restart_ready_s), "s", None),
                ("initial connect (throttled)", col(|r| r.initial_connect_s), "s", None),
                ("RSS before connecting", col(|r| r.rss_0_kib as f64), "KiB", None),
                ("RSS with all connected", col(|r| r.rss_n_kib as f64), "KiB", None),
            ],
        };
        if !fanout {
            const FANOUT: [&str; 4] =
                ["RenewCertificates calls", "every RequestCsr acked", "every Deploy acked", "no job open"];
            summary.rows.retain(|(name, ..)| !FANOUT.contains(name));
        }
        summary
    }

    fn text(&self, agents: usize, runs: usize) -> String {
        let mut out = format!("summary: {agents} agents, median of {runs} run(s)\n");
        for (name, values, unit, goal) in &self.rows {
            let m = median(values.clone());
            let each: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
            let verdict = match goal {
                Some(goal) if goal.met(m) => " (goal met)",
                Some(_) => " (goal MISSED)",
                None => "",
            };
            out += &format!("  {name:<30} {m:>10.2} {unit}{verdict}   runs: {}\n", each.join(" / "));
        }
        out
    }

    fn json(&self, agents: usize, runs: usize) -> Value {
        let mut out = json!({"summary": true, "agents": agents, "runs": runs});
        for (name, values, _, _) in &self.rows {
            out[name.replace(' ', "_")] = json!({"median": round2(median(values.clone())), "runs": values});
        }
        out
    }
}
