//! A platform in one test process: audit, inventory, issuance and the
//! gateway, each a real gRPC server on loopback, on SQLite or (when
//! `CERTCTL_TEST_DATABASE_URL` is set) a throwaway PostgreSQL database.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::secret::MasterKey;
use certctl_common::shutdown::{self, Shutdown, ShutdownTrigger as Trigger};
use certctl_issuance::issuers::IssuerContext;
use certctl_issuance::{Issuance, IssuanceConfig};
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use sqlx::Connection as _;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};

pub const ADMIN_URL_ENV: &str = "CERTCTL_TEST_DATABASE_URL";

pub struct Platform {
    pub dir: tempfile::TempDir,
    pub database: DatabaseConfig,
    pub master_key: MasterKey,
    pub issuance: IssuanceServiceClient<Channel>,
    pub inventory: InventoryServiceClient<Channel>,
    pub audit: Channel,
    /// The gateway's base URL (`http://127.0.0.1:port`), for /pki and REST.
    pub gateway: String,
    pub core: Issuance,
    trigger: Option<Trigger>,
    pg: Option<(String, String)>,
}

/// Which database a platform runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backends this run can use: SQLite always, PostgreSQL when configured.
    pub fn available() -> Vec<Backend> {
        let mut out = vec![Backend::Sqlite];
        if std::env::var(ADMIN_URL_ENV).is_ok_and(|u| !u.is_empty()) {
            out.push(Backend::Postgres);
        } else {
            eprintln!("{ADMIN_URL_ENV} is not set: PostgreSQL variants skipped");
        }
        out
    }
}

async fn serve_grpc(routes: tonic::service::Routes, stop: Shutdown) -> SocketAddr {
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
    Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_timeout(Duration::from_secs(5)).connect_lazy()
}

impl Platform {
    pub async fn start(backend: Backend) -> Platform {
        Self::start_with(backend, MasterKey::generate()).await
    }

    pub async fn start_with(backend: Backend, master_key: MasterKey) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let (database, pg) = match backend {
            Backend::Sqlite => (DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() }, None),
            Backend::Postgres => {
                let admin = std::env::var(ADMIN_URL_ENV).unwrap();
                let name = format!("certctl_issuance_test_{:016x}", rand::random::<u64>());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("{ADMIN_URL_ENV} must end in /database"),
                };
                (DatabaseConfig::Postgres { url }, Some((admin, name)))
            }
        };
        let mut platform = Self::boot(dir, database, master_key).await;
        platform.pg = pg;
        platform
    }

    /// Starts the services over an existing data directory / database.
    pub async fn boot(dir: tempfile::TempDir, database: DatabaseConfig, master_key: MasterKey) -> Platform {
        Self::try_boot(dir, database, master_key).await.unwrap_or_else(|(_, e)| panic!("platform start: {e}"))
    }

    pub async fn try_boot(
        dir: tempfile::TempDir,
        database: DatabaseConfig,
        master_key: MasterKey,
    ) -> Result<Platform, (tempfile::TempDir, String)> {
        let (trigger, stop) = shutdown::channel();

        let audit_db = Database::connect(&database, certctl_audit::SERVICE).await.unwrap();
        certctl_audit::migrate(&audit_db).await.unwrap();
        let (audit_public, audit_ingest) = certctl_audit::build(certctl_audit::store(audit_db));
        let audit_addr =
            serve_grpc(tonic::service::Routes::new(audit_public).add_service(audit_ingest), stop.clone()).await;
        let audit = channel(audit_addr);

        let inventory_db = Database::connect(&database, certctl_inventory::SERVICE).await.unwrap();
        certctl_inventory::migrate(&inventory_db).await.unwrap();
        let inventory_server = match inventory_db {
            Database::Sqlite(pool) => tonic::service::Routes::new(certctl_inventory::build(
                std::sync::Arc::new(certctl_inventory::store::SqliteStore::new(pool)),
                audit.clone(),
                stop.clone(),
            )),
            Database::Postgres(pool) => tonic::service::Routes::new(certctl_inventory::build(
                std::sync::Arc::new(certctl_inventory::store::PostgresStore::new(pool)),
                audit.clone(),
                stop.clone(),
            )),
        };
        let inventory_addr = serve_grpc(inventory_server, stop.clone()).await;

        let gateway_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = format!("http://{}", gateway_listener.local_addr().unwrap());

        let issuance_db = Database::connect(&database, certctl_issuance::SERVICE).await.unwrap();
        certctl_issuance::migrate(&issuance_db).await.unwrap();
        let core = Issuance::new(
            certctl_issuance::store(issuance_db),
            certctl_issuance::inventory::Inventory::new(channel(inventory_addr)),
            IssuanceConfig {
                context: IssuerContext { master_key: master_key.clone(), public_url: gateway.clone() },
                crl_lifetime_secs: 3600,
            },
        );
        if let Err(e) = core.start().await {
            trigger.trigger();
            return Err((dir, e.to_string()));
        }
        let issuance_addr = serve_grpc(
            tonic::service::Routes::new(certctl_issuance::build(core.clone(), audit.clone(), stop.clone())),
            stop.clone(),
        )
        .await;

        let config = certctl_gateway::GatewayConfig {
            inventory: channel(inventory_addr),
            audit: audit.clone(),
            issuance: channel(issuance_addr),
            // No scheduler or notifications in these tests; the gateway reaches them lazily.
            scheduler: channel("127.0.0.1:9".parse().unwrap()),
            notification: channel("127.0.0.1:9".parse().unwrap()),
            web_dir: None,
            cors_allowed_origins: Vec::new(),
        };
        let gateway_stop = stop.clone();
        tokio::spawn(async move { certctl_gateway::serve(gateway_listener, config, gateway_stop).await.unwrap() });

        Ok(Platform {
            dir,
            database,
            master_key,
            issuance: IssuanceServiceClient::new(channel(issuance_addr)),
            inventory: InventoryServiceClient::new(channel(inventory_addr)),
            audit,
            gateway,
            core,
            trigger: Some(trigger),
            pg: None,
        })
    }

    /// Stops the services, keeping the data for another `boot`.
    pub async fn stop(mut self) -> (tempfile::TempDir, DatabaseConfig, Option<(String, String)>) {
        if let Some(t) = self.trigger.take() {
            t.trigger();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pg = self.pg.take();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.database.clone(), pg)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if let Some(t) = self.trigger.take() {
            t.trigger();
        }
        if let Some((admin, name)) = self.pg.take() {
            drop_database(admin, name);
        }
    }
}

pub fn drop_database(admin: String, name: String) {
    // Drop happens outside any runtime we may block; use a fresh thread.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await;
            }
        });
    })
    .join()
    .ok();
}

/// Runs openssl; returns (success, stdout + stderr).
pub fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is installed");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// A fresh key and a CSR for `names` (the first is the CN).
pub fn csr(key_type: certctl_pki::KeyType, names: &[&str]) -> (rcgen::KeyPair, String) {
    let key = key_type.generate().unwrap();
    let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let pem = certctl_pki::build_csr(&key, names[0], &sans).unwrap();
    (key, pem)
}

/// Splits a PEM chain into its certificates' PEM blocks.
pub fn pem_blocks(chain: &str) -> Vec<String> {
    chain
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| format!("{}\n", b.trim_start()))
        .collect()
}
