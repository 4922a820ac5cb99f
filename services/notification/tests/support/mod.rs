//! What the notification tests share: a store on a fresh SQLite file or a
//! throwaway PostgreSQL database, the inventory and audit services on
//! loopback, an HTTP endpoint that records what it receives and answers
//! from a script, and a real SMTP server (aiosmtpd) writing to a maildir.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::secret::MasterKey;
use certctl_common::shutdown::{self, Shutdown, ShutdownTrigger};
use certctl_notification::http::HttpClient;
use certctl_notification::model::RetryPolicy;
use certctl_notification::{Clock, Notifications, Store};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

pub const ADMIN_URL_ENV: &str = "CERTCTL_TEST_DATABASE_URL";

/// Where a test's notification data lives; reopening it is a restart.
pub enum Place {
    Sqlite(tempfile::TempDir),
    Postgres { admin: String, database: String },
}

impl Place {
    pub async fn sqlite() -> Self {
        Place::Sqlite(tempfile::tempdir().expect("a temporary directory"))
    }

    /// A fresh PostgreSQL database, or `None` when no server is configured.
    pub async fn postgres() -> Option<Self> {
        let admin = std::env::var(ADMIN_URL_ENV).ok().filter(|u| !u.is_empty())?;
        let database = format!("certctl_notif_{:016x}", rand::random::<u64>());
        let pool = sqlx::PgPool::connect(&admin).await.expect("the PostgreSQL admin URL connects");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&pool).await.unwrap();
        pool.close().await;
        Some(Place::Postgres { admin, database })
    }

    pub fn config(&self) -> DatabaseConfig {
        match self {
            Place::Sqlite(dir) => DatabaseConfig::Sqlite { data_dir: dir.path().to_path_buf() },
            Place::Postgres { admin, database } => {
                let (base, _) = admin.rsplit_once('/').expect("the admin URL names a database");
                DatabaseConfig::Postgres { url: format!("{base}/{database}") }
            }
        }
    }

    /// Opens (and migrates) the notification store: a new process's view.
    pub async fn open(&self) -> (Arc<dyn Store>, Database) {
        let db = Database::connect(&self.config(), certctl_notification::SERVICE).await.expect("the database opens");
        certctl_notification::migrate(&db).await.expect("the database migrates");
        (certctl_notification::store(db.clone()), db)
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Place::Sqlite(_) => "sqlite",
            Place::Postgres { .. } => "postgres",
        }
    }
}

/// Both places this machine offers: SQLite always, PostgreSQL when configured.
pub async fn places() -> Vec<Place> {
    let mut places = vec![Place::sqlite().await];
    match Place::postgres().await {
        Some(pg) => places.push(pg),
        None => eprintln!("{ADMIN_URL_ENV} is not set: skipping PostgreSQL"),
    }
    places
}

pub fn master_key() -> MasterKey {
    MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").expect("a fixed test key")
}

/// A notification core on `store`, retrying after one second.
pub fn core(store: Arc<dyn Store>, clock: Clock) -> Arc<Notifications<dyn Store>> {
    let retry = RetryPolicy { base_secs: 1, max_backoff_secs: 4, max_attempts: 4 };
    Arc::new(Notifications::new(store, master_key(), HttpClient::new(Duration::from_secs(5)), clock, retry))
}

/// Polls `check` until it returns `Some`; no deadline (a hung test names
/// what it waits for every few seconds).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut rounds = 0_u64;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        rounds += 1;
        if rounds.is_multiple_of(250) {
            eprintln!("still waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn serve_grpc(routes: tonic::service::Routes, stop: Shutdown) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), stop.wait())
            .await
            .unwrap();
    });
    addr
}

pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy()
}

/// Audit and inventory on loopback, on SQLite in a temporary directory.
pub struct Platform {
    pub inventory: Channel,
    pub audit: Channel,
    _dir: tempfile::TempDir,
    _trigger: ShutdownTrigger,
}

impl Platform {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig::Sqlite { data_dir: dir.path().to_path_buf() };
        let (trigger, stop) = shutdown::channel();
        let audit_db = Database::connect(&config, certctl_audit::SERVICE).await.unwrap();
        certctl_audit::migrate(&audit_db).await.unwrap();
        let (public, ingest) = certctl_audit::build(certctl_audit::store(audit_db));
        let mut routes = tonic::service::RoutesBuilder::default();
        routes.add_service(public).add_service(ingest);
        let audit = channel(serve_grpc(routes.routes(), stop.clone()).await);
        let inventory_db = Database::connect(&config, certctl_inventory::SERVICE).await.unwrap();
        certctl_inventory::migrate(&inventory_db).await.unwrap();
        let Database::Sqlite(pool) = inventory_db else { unreachable!() };
        let server = certctl_inventory::build(
            Arc::new(certctl_inventory::store::SqliteStore::new(pool)),
            audit.clone(),
            stop.clone(),
        );
        let inventory = channel(serve_grpc(tonic::service::Routes::new(server), stop).await);
        Self { inventory, audit, _dir: dir, _trigger: trigger }
    }
}

/// A scripted answer: status, body, extra headers.
type Scripted = (u16, String, Vec<(String, String)>);

/// One request the fake endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: serde_json::Value,
    pub raw: Vec<u8>,
}

/// An HTTP endpoint on loopback that records requests and answers each
/// from a script of (status, body, headers), then with the default.
#[derive(Clone)]
pub struct FakeEndpoint {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
    default: Arc<Mutex<(u16, String)>>,
}

impl FakeEndpoint {
    pub async fn start(default_status: u16, default_body: &str) -> Self {
        let fake = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            received: Arc::default(),
            script: Arc::default(),
            default: Arc::new(Mutex::new((default_status, default_body.to_owned()))),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = fake.clone();
        let app =
            axum::Router::new().fallback(move |uri: http::Uri, headers: http::HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let raw = body.to_vec();
                    state.received.lock().unwrap().push(Received {
                        path: uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
                        headers,
                        body: serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null),
                        raw,
                    });
                    let (status, body, extra) = state.script.lock().unwrap().pop_front().unwrap_or_else(|| {
                        let (s, b) = state.default.lock().unwrap().clone();
                        (s, b, Vec::new())
                    });
                    let mut response = axum::response::Response::new(axum::body::Body::from(body));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    for (name, value) in extra {
                        response.headers_mut().insert(
                            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                            http::HeaderValue::from_str(&value).unwrap(),
                        );
                    }
                    response
                }
            });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, ..fake }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next answers, before the default.
    pub fn answer(&self, status: u16, body: &str, headers: &[(&str, &str)]) {
        let headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        self.script.lock().unwrap().push_back((status, body.to_owned(), headers));
    }

    pub fn set_default(&self, status: u16, body: &str) {
        *self.default.lock().unwrap() = (status, body.to_owned());
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A real SMTP server: aiosmtpd (Debian's python3-aiosmtpd) delivering to
/// a maildir, on a loopback port of its own.
pub struct SmtpSink {
    pub port: u16,
    pub maildir: PathBuf,
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("mail");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .kill_on_drop(true)
            .spawn()
            .expect("python3-aiosmtpd is installed (apt install python3-aiosmtpd)");
        eventually("the SMTP server to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        Self { port, maildir, child, _dir: dir }
    }

    /// Every message received so far, as raw RFC 5322 text.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                paths.sort();
                out.extend(paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
            }
        }
        out
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Runs the delivery worker's rounds until nothing is pending and due.
pub async fn deliver_all(n: &Notifications<dyn Store>) {
    eventually("every due delivery to be attempted", || async {
        let attempted = certctl_notification::delivery::run_once(n).await.unwrap();
        (attempted == 0).then_some(())
    })
    .await;
}
