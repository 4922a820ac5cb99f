//! Database connections: one SQLite file or one PostgreSQL schema per service.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

/// Where a service keeps its data.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// `<data_dir>/<service>.db`.
    Sqlite { data_dir: PathBuf },
    /// A PostgreSQL URL; each service uses a schema named after itself.
    Postgres { url: String },
}

impl DatabaseConfig {
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { data_dir } => format!("SQLite under {}", data_dir.display()),
            Self::Postgres { url } => format!("PostgreSQL at {}", redact(url)),
        }
    }
}

/// Hides the password in a database URL for logs and messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("cannot open the {service} database at {path}: {source}")]
    Sqlite { service: String, path: PathBuf, source: sqlx::Error },
    #[error("`{url}` is not a valid PostgreSQL URL: {source}")]
    BadUrl { url: String, source: sqlx::Error },
    #[error(
        "cannot connect to PostgreSQL at {url}: {source}\n  check that the server is running and that --database-url / CERTCTL_DATABASE_URL is right"
    )]
    Postgres { url: String, source: sqlx::Error },
    #[error("migrating the {service} database failed: {source}")]
    Migrate { service: String, source: sqlx::migrate::MigrateError },
}

impl Database {
    /// Opens the service's database, creating the SQLite file or the
    /// PostgreSQL schema if needed. Fails fast when the server is unreachable.
    pub async fn connect(config: &DatabaseConfig, service: &str) -> Result<Self, ConnectError> {
        match config {
            DatabaseConfig::Sqlite { data_dir } => {
                std::fs::create_dir_all(data_dir)
                    .map_err(|source| ConnectError::DataDir { path: data_dir.clone(), source })?;
                let path = data_dir.join(format!("{service}.db"));
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
                    // 16 MiB of page cache per connection, at most 128 MiB over the pool:
                    // 64 MiB each grew the server by 600 MB under load at 1M certificates.
                    .pragma("cache_size", "-16384")
                    .pragma("temp_store", "memory");
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(|source| ConnectError::Sqlite { service: service.to_owned(), path, source })?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseConfig::Postgres { url } => {
                let shown = redact(url);
                let base = PgConnectOptions::from_str(url)
                    .map_err(|source| ConnectError::BadUrl { url: shown.clone(), source })?
                    .application_name(&format!("certctl-{service}"));
                // The schema must exist before the pool's search_path can use it.
                let mut conn = tokio::time::timeout(Duration::from_secs(10), base.connect())
                    .await
                    .map_err(|_| ConnectError::Postgres { url: shown.clone(), source: sqlx::Error::PoolTimedOut })?
                    .map_err(|source| ConnectError::Postgres { url: shown.clone(), source })?;
                // The service name is a compile-time constant of ours, never user input.
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{service}\"")))
                    .execute(&mut conn)
                    .await
                    .map_err(|source| ConnectError::Postgres { url: shown.clone(), source })?;
                conn.close().await.ok();
                let options = base.options([("search_path", service)]);
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await
                    .map_err(|source| ConnectError::Postgres { url: shown, source })?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// Runs the service's migrations for whichever backend this is.
    pub async fn migrate(&self, service: &str, sqlite: &Migrator, postgres: &Migrator) -> Result<(), ConnectError> {
        let result = match self {
            Self::Sqlite(pool) => sqlite.run(pool).await,
            Self::Postgres(pool) => postgres.run(pool).await,
        };
        result.map_err(|source| ConnectError::Migrate { service: service.to_owned(), source })
    }

    /// True when a trivial query succeeds.
    pub async fn ping(&self) -> bool {
        let result = match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
        };
        result.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/certctl"), "postgres://app:***@db:5432/certctl");
        assert_eq!(redact("postgres://db/certctl"), "postgres://db/certctl");
    }
}
