//! Seeding: synthetic certificates written straight into the inventory's
//! tables, in the row layout of `services/inventory/src/store/sql.rs`.
//!
//! The schema comes from the inventory's own migrations. Rows go in as
//! multi-row INSERTs, one transaction per batch, with the secondary indexes
//! dropped during the load and recreated from their own DDL afterwards, so a
//! million certificates take minutes. Every value in the SQL text is generated
//! here (never user input) and quoted all the same.

mod rows;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use certctl_common::db::{Database, DatabaseConfig};
use certctl_domain::UnixTime;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Connection as _, Postgres, Sqlite};

use rows::{Generator, Row, certificates_sql, documents_sql, sample_pem_chain, versions_sql};

#[derive(Debug, Clone)]
pub struct Plan {
    pub count: u64,
    pub batch: usize,
    pub reset: bool,
    pub verbose: bool,
}

pub async fn run(config: &DatabaseConfig, plan: &Plan) -> anyhow::Result<()> {
    if plan.batch == 0 || plan.batch > 20_000 {
        bail!("--batch must be between 1 and 20000");
    }
    if plan.reset {
        reset(config).await?;
    }
    let db = Database::connect(config, certctl_inventory::SERVICE).await?;
    certctl_inventory::migrate(&db).await?;
    let mut conn = Conn::acquire(&db).await?;
    let existing = conn.count("SELECT COUNT(*) FROM certificates").await?;
    if existing > 0 {
        bail!("the inventory already holds {existing} certificates; seed an empty one (--reset deletes it first)");
    }
    let say = |msg: String| {
        if plan.verbose {
            eprintln!("{msg}");
        }
    };
    say(format!("seeding {} certificates into {}", plan.count, config.describe()));
    conn.tune_for_bulk_load().await?;
    let now = certctl_domain::now();
    conn.transaction(&[documents_sql(now)?]).await?;

    let indexes = conn.secondary_indexes().await?;
    for (name, _) in &indexes {
        conn.exec(format!("DROP INDEX {name}")).await?;
    }
    // Recreate the indexes even when the load fails, so the schema is never left short.
    let loaded = load(&mut conn, plan, now, &say).await;
    for (name, ddl) in &indexes {
        let started = Instant::now();
        conn.exec(ddl.clone()).await.with_context(|| format!("recreating index {name}"))?;
        say(format!("  index {name} rebuilt in {:.1} s", started.elapsed().as_secs_f64()));
    }
    loaded?;
    // Every seeded row carries its renewal time already: nothing to backfill.
    conn.exec("DELETE FROM data_migrations WHERE name = 'renew_time'".to_owned()).await?;
    conn.finish().await?;
    Ok(())
}

async fn load(conn: &mut Conn, plan: &Plan, now: UnixTime, say: &impl Fn(String)) -> anyhow::Result<()> {
    let pem_chain = sample_pem_chain(now)?;
    let mut generator = Generator::new(now);
    let started = Instant::now();
    let mut done = 0u64;
    let mut reported = 0u64;
    while done < plan.count {
        let n = (plan.count - done).min(plan.batch as u64);
        let rows: Vec<Row> = (done..done + n).map(|i| generator.row(i)).collect();
        let mut statements = vec![certificates_sql(&rows)];
        statements.extend(versions_sql(&rows, &pem_chain));
        conn.transaction(&statements).await.with_context(|| format!("inserting certificates {done}..{}", done + n))?;
        done += n;
        if done - reported >= 100_000 || done == plan.count {
            reported = done;
            let secs = started.elapsed().as_secs_f64();
            say(format!(
                "  {done}/{} certificates, {secs:.0} s, {:.0} rows/s",
                plan.count,
                done as f64 / secs.max(1e-9)
            ));
        }
    }
    Ok(())
}

/// Deletes the inventory's data: its SQLite file or its PostgreSQL schema.
async fn reset(config: &DatabaseConfig) -> anyhow::Result<()> {
    match config {
        DatabaseConfig::Sqlite { data_dir } => {
            for suffix in ["", "-wal", "-shm"] {
                let path = data_dir.join(format!("{}.db{suffix}", certctl_inventory::SERVICE));
                remove_if_present(&path)?;
            }
        }
        DatabaseConfig::Postgres { url } => {
            let mut conn = sqlx::PgConnection::connect(url).await.context("connecting to PostgreSQL")?;
            sqlx::raw_sql("DROP SCHEMA IF EXISTS inventory CASCADE").execute(&mut conn).await?;
            conn.close().await?;
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// One connection for the whole load, so session settings stick.
enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Conn {
    async fn acquire(db: &Database) -> anyhow::Result<Self> {
        Ok(match db {
            Database::Sqlite(pool) => Self::Sqlite(pool.acquire().await?),
            Database::Postgres(pool) => Self::Postgres(pool.acquire().await?),
        })
    }

    async fn exec(&mut self, sql: String) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(c) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **c).await.map(drop)?,
            Self::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **c).await.map(drop)?,
        }
        Ok(())
    }

    async fn transaction(&mut self, statements: &[String]) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(c) => {
                let mut tx = c.begin().await?;
                for sql in statements {
                    sqlx::raw_sql(AssertSqlSafe(sql.as_str())).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Self::Postgres(c) => {
                let mut tx = c.begin().await?;
                for sql in statements {
                    sqlx::raw_sql(AssertSqlSafe(sql.as_str())).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    async fn count(&mut self, sql: &'static str) -> anyhow::Result<i64> {
        Ok(match self {
            Self::Sqlite(c) => sqlx::query_scalar(sql).fetch_one(&mut **c).await?,
            Self::Postgres(c) => sqlx::query_scalar(sql).fetch_one(&mut **c).await?,
        })
    }

    async fn tune_for_bulk_load(&mut self) -> anyhow::Result<()> {
        // Session settings only: what the server later runs with is untouched.
        let sql = match self {
            Self::Sqlite(_) => "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144",
            Self::Postgres(_) => "SET synchronous_commit = off; SET maintenance_work_mem = '512MB'",
        };
        self.exec(sql.to_owned()).await
    }

    /// Name and DDL of every index on the two big tables except primary keys.
    async fn secondary_indexes(&mut self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(match self {
            Self::Sqlite(c) => {
                sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                     AND tbl_name IN ('certificates', 'certificate_versions') ORDER BY rowid",
                )
                .fetch_all(&mut **c)
                .await?
            }
            Self::Postgres(c) => {
                sqlx::query_as(
                    "SELECT i.relname::text, pg_get_indexdef(i.oid) FROM pg_index x \
                     JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
                     JOIN pg_namespace n ON n.oid = t.relnamespace \
                     WHERE n.nspname = current_schema() AND t.relname IN ('certificates', 'certificate_versions') \
                     AND NOT x.indisprimary ORDER BY i.oid",
                )
                .fetch_all(&mut **c)
                .await?
            }
        })
    }

    async fn finish(&mut self) -> anyhow::Result<()> {
        let statements: &[&str] = match self {
            // No ANALYZE: the inventory never runs it, so the server plans as it would in production.
            Self::Sqlite(_) => &["PRAGMA wal_checkpoint(TRUNCATE)"],
            // Autovacuum would do this soon after a bulk load anyway. One
            // statement per call: VACUUM refuses to run inside a transaction.
            Self::Postgres(_) => &["VACUUM ANALYZE certificates", "VACUUM ANALYZE certificate_versions"],
        };
        for sql in statements {
            self.exec((*sql).to_owned()).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certctl_inventory::store::{CertificateOrder, CertificateQuery, PostgresStore, SqliteStore, Store};

    #[tokio::test]
    async fn seeded_sqlite_reads_back_through_the_inventory_store() {
        let dir = tempfile::tempdir().unwrap();
        seed_and_read_back(DatabaseConfig::Sqlite { data_dir: dir.path().to_owned() }).await;
    }

    /// Runs when `CERTCTL_TEST_DATABASE_URL` names a PostgreSQL server, in a
    /// database of its own.
    #[tokio::test]
    async fn seeded_postgres_reads_back_through_the_inventory_store() {
        let Some(admin) = std::env::var("CERTCTL_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            eprintln!("note: CERTCTL_TEST_DATABASE_URL is not set; skipping the PostgreSQL seed test");
            return;
        };
        let name = format!("certctl_bench_test_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        // The name is ours (letters, digits, underscores).
        let create = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name}");
        for sql in create.split("; ") {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await.unwrap();
        }
        let url = database_url(&admin, &name);
        let outcome = tokio::spawn(seed_and_read_back(DatabaseConfig::Postgres { url })).await;
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut conn).await.unwrap();
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    /// `admin` pointing at `database` instead.
    fn database_url(admin: &str, database: &str) -> String {
        let (url, params) = admin.split_once('?').map_or((admin, None), |(u, p)| (u, Some(p)));
        let host_start = url.find("://").map_or(0, |i| i + 3);
        let server = url[host_start..].split_once('/').map_or(url, |(host, _)| &url[..host_start + host.len()]);
        match params {
            Some(p) => format!("{server}/{database}?{p}"),
            None => format!("{server}/{database}"),
        }
    }

    #[test]
    fn database_urls_change_only_the_database() {
        for (admin, expected) in [
            ("postgres://postgres@127.0.0.1:15432/postgres", "postgres://postgres@127.0.0.1:15432/db1"),
            ("postgres://u:p@h/x?sslmode=disable", "postgres://u:p@h/db1?sslmode=disable"),
            ("postgres://h:5432", "postgres://h:5432/db1"),
        ] {
            assert_eq!(database_url(admin, "db1"), expected);
        }
    }

    /// Seeds a small inventory and reads it back through the inventory's own
    /// store: the rows must be exactly what the store expects.
    async fn seed_and_read_back(config: DatabaseConfig) {
        let migrated = secondary_indexes(&config).await;
        assert!(!migrated.is_empty());
        let plan = Plan { count: 2_500, batch: 1_000, reset: false, verbose: false };
        run(&config, &plan).await.unwrap();
        let again = run(&config, &plan).await.unwrap_err();
        assert!(again.to_string().contains("already holds 2500"), "{again}");
        run(&config, &Plan { reset: true, ..plan }).await.unwrap();
        assert_eq!(
            secondary_indexes(&config).await,
            migrated,
            "seeding leaves the indexes as the migrations made them"
        );

        let db = Database::connect(&config, certctl_inventory::SERVICE).await.unwrap();
        match db {
            Database::Sqlite(pool) => check_store(&SqliteStore::new(pool)).await,
            Database::Postgres(pool) => check_store(&PostgresStore::new(pool)).await,
        }
    }

    /// The migrated schema's secondary indexes, sorted.
    async fn secondary_indexes(config: &DatabaseConfig) -> Vec<(String, String)> {
        let db = Database::connect(config, certctl_inventory::SERVICE).await.unwrap();
        certctl_inventory::migrate(&db).await.unwrap();
        let mut indexes = Conn::acquire(&db).await.unwrap().secondary_indexes().await.unwrap();
        indexes.sort();
        indexes
    }

    async fn check_store(store: &impl Store) {
        let now = certctl_domain::now();
        let query = CertificateQuery {
            owner: None,
            team: None,
            state: None,
            issuer: None,
            environment: None,
            expire_before: None,
            renew_before: None,
            search: None,
            order: CertificateOrder::NotAfter { descending: false },
            basic: false,
            after: None,
            limit: 51,
            now,
        };
        let page = store.list_certificates(&query).await.unwrap();
        assert_eq!(page.len(), 51);
        let expiries: Vec<i64> = page.iter().map(|c| c.current.as_ref().unwrap().not_after).collect();
        assert!(expiries.windows(2).all(|w| w[0] <= w[1]) && expiries[0] < now, "{expiries:?}");

        let owned = store
            .list_certificates(&CertificateQuery { owner: Some("owners/o17".into()), ..query.clone() })
            .await
            .unwrap();
        assert!(!owned.is_empty() && owned.iter().all(|c| c.owner == "owners/o17" && c.team == "teams/growth"));

        let found = store
            .list_certificates(&CertificateQuery { search: Some("svc-1234.".into()), ..query.clone() })
            .await
            .unwrap();
        assert_eq!(found.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["cert-0001234"]);
        let version = store.get_version(&found[0].id, 1).await;
        match &found[0].current {
            Some(current) => {
                let version = version.unwrap();
                assert_eq!(version.parsed.serial_number, current.serial_number);
                assert!(certctl_pki::parse_pem_chain(&version.pem_chain).is_ok());
            }
            None => assert!(version.is_err()),
        }

        // Renewal times are what the inventory itself would have written.
        assert!(store.run_data_migrations().await.unwrap().is_empty(), "the seed leaves nothing to backfill");
        let due = CertificateQuery { renew_before: Some(now), order: CertificateOrder::RenewTime, ..query.clone() };
        let due = store.list_certificates(&due).await.unwrap();
        assert!(!due.is_empty());
        for c in page.iter().chain(&due) {
            let policy = certctl_domain::inventory::RenewalPolicy::default();
            assert_eq!(c.renew_time, c.next_issue_time(&policy), "{}", c.id);
        }

        let summary = store.summarize(now).await.unwrap();
        assert_eq!(summary.total, 2_500);
        assert!(summary.pending > 0 && summary.revoked > 0 && summary.expired > 0, "{summary:?}");
        // About 30 of the 395 days of spread are the coming month.
        assert!((100..300).contains(&summary.expiring_within_30_days), "{summary:?}");
        assert_eq!(
            summary.total,
            summary.pending + summary.active + summary.expiring + summary.expired + summary.revoked
        );
    }
}
