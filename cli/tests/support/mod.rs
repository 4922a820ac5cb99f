//! Starts real `certctl server` processes for the platform tests and talks
//! to them over REST, gRPC and gRPC-web.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_certctl");

/// A port nobody listens on right now (loopback only).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where a platform keeps its data.
pub enum Storage {
    Sqlite,
    /// SQLite under a directory that outlives one platform.
    SqliteAt(PathBuf),
    /// A database of its own on the test PostgreSQL.
    Postgres(String),
}

impl Storage {
    /// PostgreSQL when `CERTCTL_TEST_DATABASE_URL` is set, else SQLite.
    pub async fn from_env() -> Self {
        match std::env::var("CERTCTL_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => Self::Postgres(fresh_database(&admin).await),
            _ => {
                eprintln!("note: CERTCTL_TEST_DATABASE_URL is not set; running on SQLite instead of PostgreSQL");
                Self::Sqlite
            }
        }
    }

    fn args(&self, data_dir: &Path) -> Vec<String> {
        match self {
            Self::Sqlite => vec!["--data-dir".into(), data_dir.display().to_string()],
            Self::SqliteAt(dir) => vec!["--data-dir".into(), dir.display().to_string()],
            Self::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }
}

async fn fresh_database(admin: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("certctl_it_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("the test PostgreSQL answers");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
    let (base, _) = admin.rsplit_once('/').expect("a PostgreSQL URL ends in /database");
    format!("{base}/{name}")
}

/// The master key every test process seals its CA keys with (32 bytes 0..31, base64).
pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// One `certctl server` process, killed when dropped.
pub struct Process {
    pub child: Child,
    pub args: Vec<String>,
    pub log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub fn spawn(args: &[String], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        // The agent hub's port is fixed by default; tests that want it name one.
        let hub_off = ["--agent-listen".to_owned(), "off".to_owned()];
        let hub_off = if args.iter().any(|a| a == "--agent-listen") { &[][..] } else { &hub_off[..] };
        let child = Command::new(BIN)
            .arg("server")
            .args(args)
            .args(hub_off)
            .env("RUST_LOG", "info")
            .env("CERTCTL_MASTER_KEY", TEST_MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the certctl binary runs");
        Self { child, args: args.to_vec(), log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }
}

/// A running platform: one process or several, and its gateway's URL.
pub struct Platform {
    pub url: String,
    pub processes: Vec<Process>,
    pub dir: tempfile::TempDir,
    pub http: Client<HttpConnector, Full<Bytes>>,
}

impl Platform {
    /// Every role in one process.
    pub async fn single(storage: &Storage, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut args = vec![
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--web-dir".into(),
            dir.path().join("no-gui").display().to_string(),
        ];
        args.extend(storage.args(&dir.path().join("data")));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let process = Process::spawn(&args, dir.path().join("server.log"));
        let platform = Self::new(format!("http://127.0.0.1:{port}"), vec![process], dir);
        platform.wait_ready().await;
        platform
    }

    /// Audit, inventory, gateway, issuance, scheduler and notification as six processes.
    pub async fn distributed(storage: &Storage) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (audit, inventory, gateway, issuance, scheduler, notification) =
            (free_port(), free_port(), free_port(), free_port(), free_port(), free_port());
        let scheduler_url = format!("http://127.0.0.1:{scheduler}");
        let notification_url = format!("http://127.0.0.1:{notification}");
        let audit_url = format!("http://127.0.0.1:{audit}");
        let inventory_url = format!("http://127.0.0.1:{inventory}");
        let issuance_url = format!("http://127.0.0.1:{issuance}");
        let gateway_url = format!("http://127.0.0.1:{gateway}");
        let role = |name: &str, port: u16, extra: Vec<String>| {
            let mut args = vec!["--roles".to_owned(), name.to_owned(), "--listen".into(), format!("127.0.0.1:{port}")];
            args.extend(storage.args(&dir.path().join(format!("data-{name}"))));
            args.extend(extra);
            args
        };
        let processes = vec![
            Process::spawn(&role("audit", audit, vec![]), dir.path().join("audit.log")),
            Process::spawn(
                &role("inventory", inventory, vec!["--audit-url".into(), audit_url.clone()]),
                dir.path().join("inventory.log"),
            ),
            Process::spawn(
                &role(
                    "gateway",
                    gateway,
                    vec![
                        "--audit-url".into(),
                        audit_url.clone(),
                        "--inventory-url".into(),
                        inventory_url.clone(),
                        "--issuance-url".into(),
                        issuance_url.clone(),
                        "--scheduler-url".into(),
                        scheduler_url,
                        "--notification-url".into(),
                        notification_url,
                    ],
                ),
                dir.path().join("gateway.log"),
            ),
            Process::spawn(
                &role(
                    "issuance",
                    issuance,
                    vec![
                        "--audit-url".into(),
                        audit_url.clone(),
                        "--inventory-url".into(),
                        inventory_url.clone(),
                        "--public-url".into(),
                        gateway_url,
                    ],
                ),
                dir.path().join("issuance.log"),
            ),
            Process::spawn(
                &role(
                    "scheduler",
                    scheduler,
                    vec![
                        "--audit-url".into(),
                        audit_url.clone(),
                        "--inventory-url".into(),
                        inventory_url.clone(),
                        "--issuance-url".into(),
                        issuance_url,
                    ],
                ),
                dir.path().join("scheduler.log"),
            ),
            Process::spawn(
                &role(
                    "notification",
                    notification,
                    vec!["--audit-url".into(), audit_url, "--inventory-url".into(), inventory_url],
                ),
                dir.path().join("notification.log"),
            ),
        ];
        let platform = Self::new(format!("http://127.0.0.1:{gateway}"), processes, dir);
        platform.wait_ready().await;
        platform
    }

    fn new(url: String, processes: Vec<Process>, dir: tempfile::TempDir) -> Self {
        let http = Client::builder(TokioExecutor::new()).build_http();
        Self { url, processes, dir, http }
    }

    /// Starts process `index` again with the same arguments (a fresh log).
    pub fn restart(&mut self, index: usize) {
        let old = &self.processes[index];
        let log = old.log.with_extension("restarted.log");
        let args = old.args.clone();
        self.processes[index] = Process::spawn(&args, log);
    }

    pub fn logs(&self) -> String {
        self.processes.iter().map(Process::log_text).collect::<Vec<_>>().join("\n----\n")
    }

    /// Polls /readyz; panics with the server logs if it never turns ready.
    pub async fn wait_ready(&self) {
        for _ in 0..600 {
            if let Ok((200, _)) = self.try_request("GET", "/readyz", None).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the platform never became ready; logs:\n{}", self.logs());
    }

    pub async fn try_request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        let (status, _, bytes) = self
            .raw(method, path, "application/json", body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
            .await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }

    /// A REST call; returns the HTTP status and the JSON body.
    pub async fn rest(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_request(method, path, body.as_ref())
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nlogs:\n{}", self.logs()))
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, http::HeaderMap, Bytes), String> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self.http.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, headers, bytes))
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone()).unwrap().connect().await.unwrap()
    }
}

/// The first field violation's field in a REST problem body.
pub fn violated_field(body: &Value) -> Option<String> {
    body["details"].as_array()?.iter().find_map(|d| d["fieldViolations"][0]["field"].as_str().map(str::to_owned))
}

/// A loopback TCP forwarder the test can cut, to make a database unreachable
/// in the middle of a run and bring it back.
pub struct TcpProxy {
    pub port: u16,
    open: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, _) = tokio::sync::watch::channel(true);
        let open = std::sync::Arc::new(open);
        let gate = open.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !*gate.borrow() {
                    continue; // dropped: the connection is refused
                }
                let mut closed = gate.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = closed.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self { port, open, task }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one `certctl` client command printed, and how it exited.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    /// Panics with both streams unless the command exited 0.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "the command failed:\n{self}");
        self
    }

    /// Panics unless the command exited non-zero; returns stderr.
    pub fn failed(self) -> String {
        assert!(self.code.is_some_and(|c| c != 0), "the command was expected to fail:\n{self}");
        self.stderr
    }
}

impl std::fmt::Display for CliRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Platform {
    /// Runs `certctl ARGS...` against this platform's gateway (through
    /// `CERTCTL_SERVER`), in the platform's directory so relative paths land there.
    pub fn cli(&self, args: &[&str]) -> CliRun {
        let output = Command::new(BIN)
            .args(args)
            .env("CERTCTL_SERVER", &self.url)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("the certctl binary runs");
        CliRun {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A file in the platform's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs `openssl ARGS...` in `dir`; panics with its stderr if it fails.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(output.status.success(), "openssl {}:\n{}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
