//! `renewal-scan`: the scheduler's renewal scan against a seeded inventory.
//!
//! The inventory runs in this process on the seeded database and is reached
//! over gRPC on loopback, as the scheduler reaches it in a real deployment.
//! Each run gives the scan an empty job table of its own and a clock set to
//! the moment when exactly `--due` certificates have come due, then times one
//! `scan_once`: listing what is due, page by page, and enqueueing one job per
//! certificate.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};
use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::shutdown;
use certctl_scheduler::ManualClock;
use certctl_scheduler::renewal_loop::scan_once;
use certctl_scheduler::store::{PostgresStore as JobsOnPostgres, SqliteStore as JobsOnSqlite, Store as JobStore};
use certctl_scheduler::upstream::Upstreams;
use tokio_stream::wrappers::TcpListenerStream;

/// The scheduler tables of the benchmark, never the real `scheduler` schema.
const JOBS_SCHEMA: &str = "scheduler_scan_bench";

pub struct Plan {
    pub due: u64,
    pub runs: usize,
}

pub async fn run(config: &DatabaseConfig, plan: &Plan) -> anyhow::Result<()> {
    let db = Database::connect(config, certctl_inventory::SERVICE).await.context("opening the seeded inventory")?;
    certctl_inventory::migrate(&db).await?;
    let (total, at) = due_moment(&db, plan.due).await?;
    let Some(at) = at else {
        bail!("the inventory holds fewer than {} certificates with a renewal time; seed more", plan.due);
    };
    println!("inventory: {total} certificates; scanning at t={at}, when {} are due", plan.due);

    let (stop, stopped) = shutdown::channel();
    let inventory_url = match db {
        Database::Sqlite(pool) => serve(Arc::new(certctl_inventory::store::SqliteStore::new(pool)), stopped).await?,
        Database::Postgres(pool) => {
            serve(Arc::new(certctl_inventory::store::PostgresStore::new(pool)), stopped).await?
        }
    };
    let inventory = tonic::transport::Endpoint::from_shared(inventory_url)?.connect().await?;
    // The scan never signs; issuance is only named.
    let issuance = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let upstreams = Upstreams::new(inventory, issuance);

    let mut seconds = Vec::new();
    let mut listing = Vec::new();
    for run in 1..=plan.runs {
        // The listing alone, for where the time goes.
        let started = Instant::now();
        let mut token = String::new();
        loop {
            let (_, next) = upstreams.due(at, &token).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if next.is_empty() {
                break;
            }
            token = next;
        }
        listing.push(started.elapsed().as_secs_f64());
        let clock = Arc::new(ManualClock::new(at));
        // The job tables live beside the inventory: a temporary SQLite file,
        // or a schema of their own in the same PostgreSQL database.
        let (elapsed, report) = match config {
            DatabaseConfig::Sqlite { .. } => {
                let dir = tempfile::tempdir()?;
                let config = DatabaseConfig::Sqlite { data_dir: dir.path().to_path_buf() };
                let Database::Sqlite(pool) = jobs_db(&config).await? else { unreachable!() };
                time_scan(&JobsOnSqlite::new(pool).with_clock(clock), &upstreams).await?
            }
            DatabaseConfig::Postgres { url } => {
                let config = DatabaseConfig::Postgres { url: url.clone() };
                let Database::Postgres(pool) = jobs_db(&config).await? else { unreachable!() };
                sqlx::query("TRUNCATE jobs, job_events, outbox").execute(&pool).await?;
                time_scan(&JobsOnPostgres::new(pool).with_clock(clock), &upstreams).await?
            }
        };
        // Certificates sharing the last renewal time all come due with it.
        if (report.enqueued as u64) < plan.due {
            bail!("run {run} enqueued {} jobs, expected at least {}", report.enqueued, plan.due);
        }
        println!(
            "run {run}: examined {} due certificates, enqueued {} jobs in {elapsed:.2} s (listing them alone: {:.2} s)",
            report.examined,
            report.enqueued,
            listing[run - 1]
        );
        seconds.push(elapsed);
    }
    seconds.sort_by(f64::total_cmp);
    listing.sort_by(f64::total_cmp);
    println!(
        "median of {}: {:.2} s (runs {seconds:.2?}); listing alone {:.2} s",
        plan.runs,
        seconds[seconds.len() / 2],
        listing[listing.len() / 2]
    );
    stop.trigger();
    Ok(())
}

async fn jobs_db(config: &DatabaseConfig) -> anyhow::Result<Database> {
    let db = Database::connect(config, JOBS_SCHEMA).await?;
    certctl_scheduler::migrate(&db).await?;
    Ok(db)
}

async fn time_scan<S: JobStore>(
    store: &S,
    upstreams: &Upstreams,
) -> anyhow::Result<(f64, certctl_scheduler::renewal_loop::ScanReport)> {
    let started = Instant::now();
    let report = scan_once(store, upstreams).await.map_err(anyhow::Error::msg)?;
    Ok((started.elapsed().as_secs_f64(), report))
}

/// Serves the inventory on a loopback port; returns its URL.
async fn serve<S: certctl_inventory::store::Store>(
    store: Arc<S>,
    stopped: shutdown::Shutdown,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    // Nothing here writes to the inventory, so its audit relay has nothing to send.
    let audit = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let service = certctl_inventory::build(store, audit, stopped.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stopped.wait()),
    );
    Ok(url)
}

/// How many certificates the inventory holds, and the renewal time of the
/// `n`th to come due: a scan at that moment finds `n` (a few more on ties).
async fn due_moment(db: &Database, n: u64) -> anyhow::Result<(i64, Option<i64>)> {
    const COUNT: &str = "SELECT count(*) FROM certificates";
    const NTH: &str =
        "SELECT renew_time FROM certificates WHERE renew_time IS NOT NULL ORDER BY renew_time, id LIMIT 1 OFFSET $1";
    let offset = n as i64 - 1;
    Ok(match db {
        Database::Sqlite(pool) => (
            sqlx::query_scalar(COUNT).fetch_one(pool).await?,
            sqlx::query_scalar(NTH).bind(offset).fetch_optional(pool).await?,
        ),
        Database::Postgres(pool) => (
            sqlx::query_scalar(COUNT).fetch_one(pool).await?,
            sqlx::query_scalar(NTH).bind(offset).fetch_optional(pool).await?,
        ),
    })
}
