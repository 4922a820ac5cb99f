//! `certctl migrate`: creates and migrates every service's database (its
//! SQLite file or its PostgreSQL schema), the same way each role does when it
//! starts, then exits. Deployments run it as a step of its own before they
//! roll out a new version (the Kubernetes Job, the compose `migrate` service).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use certctl_common::db::{Database, DatabaseConfig};

/// Every service that keeps a database, in the order `migrate` visits them.
pub const SERVICES: [&str; 5] = [
    certctl_audit::SERVICE,
    certctl_inventory::SERVICE,
    certctl_issuance::SERVICE,
    certctl_scheduler::SERVICE,
    certctl_notification::SERVICE,
];

#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// PostgreSQL URL; each service migrates its own schema there. Unset means SQLite under --data-dir.
    #[arg(long, env = "CERTCTL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of the embedded SQLite databases [default: ./certctl-data].
    #[arg(long, env = "CERTCTL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl MigrateArgs {
    /// The same choice `certctl server` makes: an empty URL means SQLite.
    pub fn database(&self) -> DatabaseConfig {
        match self.database_url.clone().filter(|u| !u.is_empty()) {
            Some(url) => DatabaseConfig::Postgres { url },
            None => DatabaseConfig::Sqlite {
                data_dir: self.data_dir.clone().unwrap_or_else(|| crate::config::DEFAULT_DATA_DIR.into()),
            },
        }
    }
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let database = args.database();
    println!("migrating {}", database.describe());
    for service in SERVICES {
        let db = Database::connect(&database, service).await?;
        migrate(service, &db).await?;
        let applied = applied(&db).await.with_context(|| format!("cannot read the {service} migrations"))?;
        close(db).await;
        println!("{service}: up to date, {applied}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Closes the pool, so SQLite checkpoints and removes its WAL files before the process exits.
pub async fn close(db: Database) {
    match db {
        Database::Sqlite(pool) => pool.close().await,
        Database::Postgres(pool) => pool.close().await,
    }
}

/// Runs `service`'s own migrations on `db`.
async fn migrate(service: &str, db: &Database) -> anyhow::Result<()> {
    match service {
        certctl_audit::SERVICE => certctl_audit::migrate(db).await?,
        certctl_inventory::SERVICE => certctl_inventory::migrate(db).await?,
        certctl_issuance::SERVICE => certctl_issuance::migrate(db).await?,
        certctl_scheduler::SERVICE => certctl_scheduler::migrate(db).await?,
        certctl_notification::SERVICE => certctl_notification::migrate(db).await?,
        other => anyhow::bail!("no migrations for the service `{other}`"),
    }
    Ok(())
}

/// What sqlx recorded as applied in a database: how many migrations, and the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub migrations: i64,
    pub latest: Option<i64>,
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.latest {
            Some(latest) => {
                let plural = if self.migrations == 1 { "" } else { "s" };
                write!(f, "{} migration{plural} applied, the latest {latest}", self.migrations)
            }
            None => write!(f, "no migrations applied"),
        }
    }
}

/// Reads sqlx's bookkeeping table; a database that was never migrated has none.
pub async fn applied(db: &Database) -> anyhow::Result<Applied> {
    const SQL: &str = "SELECT COUNT(*), MAX(version) FROM _sqlx_migrations WHERE success";
    let (migrations, latest) = match db {
        Database::Sqlite(pool) => {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                    .fetch_optional(pool)
                    .await?;
            if exists.is_none() {
                return Ok(Applied { migrations: 0, latest: None });
            }
            sqlx::query_as::<_, (i64, Option<i64>)>(SQL).fetch_one(pool).await?
        }
        Database::Postgres(pool) => {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text").fetch_one(pool).await?;
            if exists.is_none() {
                return Ok(Applied { migrations: 0, latest: None });
            }
            sqlx::query_as::<_, (i64, Option<i64>)>(SQL).fetch_one(pool).await?
        }
    };
    Ok(Applied { migrations, latest })
}
