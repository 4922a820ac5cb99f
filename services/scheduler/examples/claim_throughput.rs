//! Job claiming throughput: enqueues N jobs in bulk, then runs W workers
//! claiming B jobs at a time with a handler that does nothing, and prints how
//! many jobs per second were claimed and completed (reported as Succeeded).
//!
//! ```text
//! cargo run --release -p certctl-scheduler --example claim_throughput -- \
//!     postgres://postgres@127.0.0.1:15432/postgres --jobs 100000 --workers 4 --batch 64 --runs 3
//! ```
//!
//! The URL may also be `sqlite:` for a SQLite file in a temporary directory.
//! On PostgreSQL the tables live in a schema of their own, `scheduler_bench`,
//! which every run empties: the benchmark never touches `scheduler`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use certctl_common::db::{Database, DatabaseConfig};
use certctl_common::shutdown;
use certctl_domain::job::{Job, JobKind, JobState, NewJob};
use certctl_scheduler::store::{JobOutcome, PostgresStore, SqliteStore, Store};
use certctl_scheduler::worker::{JobHandler, Worker, WorkerConfig};

const SCHEMA: &str = "scheduler_bench";

struct Args {
    url: String,
    jobs: usize,
    workers: usize,
    batch: usize,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args { url: String::new(), jobs: 100_000, workers: 4, batch: 64, runs: 3 };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            args.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} takes a positive number"))
        };
        match arg.as_str() {
            "--jobs" => parsed.jobs = number("--jobs")?,
            "--workers" => parsed.workers = number("--workers")?,
            "--batch" => parsed.batch = number("--batch")?,
            "--runs" => parsed.runs = number("--runs")?,
            url if parsed.url.is_empty() && !url.starts_with("--") => parsed.url = url.to_owned(),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    if parsed.url.is_empty() {
        return Err(
            "usage: claim_throughput <postgres://...|sqlite:> [--jobs N] [--workers W] [--batch B] [--runs R]".into()
        );
    }
    Ok(parsed)
}

/// Succeeds at once and counts its runs, so the benchmark can wait without
/// polling the database (which would compete with the workers for the CPU).
#[derive(Default)]
struct Nothing(AtomicUsize);

#[async_trait]
impl JobHandler for Nothing {
    async fn run(&self, _job: &Job) -> JobOutcome {
        self.0.fetch_add(1, Ordering::Relaxed);
        JobOutcome::Succeeded(serde_json::Value::Null)
    }
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    enqueue: Duration,
    drain: Duration,
}

async fn run_once<S: Store>(store: Arc<S>, args: &Args, run: usize) -> Result<Figures, String> {
    let jobs: Vec<NewJob> = (0..args.jobs)
        .map(|i| NewJob {
            certificate: Some(format!("certificates/c{i}")),
            ..NewJob::new(JobKind::Renewal, format!("run{run}:renewal:certificates/c{i}/versions/1"))
        })
        .collect();
    let started = Instant::now();
    store.enqueue_many(jobs).await.map_err(|e| e.to_string())?;
    let enqueue = started.elapsed();

    let (trigger, shutdown) = shutdown::channel();
    let started = Instant::now();
    let handler = Arc::new(Nothing::default());
    let mut workers = Vec::new();
    for w in 0..args.workers {
        let config = WorkerConfig { batch: args.batch, ..WorkerConfig::new(format!("bench-{w}")) };
        let worker = Worker::new(store.clone(), handler.clone(), config);
        workers.push(tokio::spawn(worker.run(shutdown.clone())));
    }
    while handler.0.load(Ordering::Relaxed) < args.jobs {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Then wait for the last reports to commit.
    loop {
        let counts = store.count_by_state().await.map_err(|e| e.to_string())?;
        if counts.get(&JobState::Succeeded).copied().unwrap_or(0) as usize >= args.jobs * (run + 1) {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("not done after 10 minutes: {counts:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain = started.elapsed();
    trigger.trigger();
    for worker in workers {
        worker.await.map_err(|e| e.to_string())?;
    }
    Ok(Figures { enqueue, drain })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn bench<S: Store>(store: Arc<S>, args: &Args) -> Result<(), String> {
    let mut enqueue_rates = Vec::new();
    let mut claim_rates = Vec::new();
    for run in 0..args.runs {
        let f = run_once(store.clone(), args, run).await?;
        let enqueue_rate = args.jobs as f64 / f.enqueue.as_secs_f64();
        let claim_rate = args.jobs as f64 / f.drain.as_secs_f64();
        println!(
            "run {}: enqueued {} jobs in {:.2} s ({enqueue_rate:.0}/s); claimed and completed in {:.2} s ({claim_rate:.0} jobs/s)",
            run + 1,
            args.jobs,
            f.enqueue.as_secs_f64(),
            f.drain.as_secs_f64(),
        );
        enqueue_rates.push(enqueue_rate);
        claim_rates.push(claim_rate);
    }
    println!(
        "median of {}: enqueue {:.0} jobs/s, claim+complete {:.0} jobs/s ({} workers x batch {})",
        args.runs,
        median(enqueue_rates),
        median(claim_rates),
        args.workers,
        args.batch
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    if args.url.starts_with("sqlite:") {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = DatabaseConfig::Sqlite { data_dir: dir.path().to_path_buf() };
        let db = Database::connect(&config, SCHEMA).await.map_err(|e| e.to_string())?;
        certctl_scheduler::migrate(&db).await.map_err(|e| e.to_string())?;
        let Database::Sqlite(pool) = db else { return Err("expected SQLite".into()) };
        bench(Arc::new(SqliteStore::new(pool)), &args).await
    } else {
        let config = DatabaseConfig::Postgres { url: args.url.clone() };
        let db = Database::connect(&config, SCHEMA).await.map_err(|e| e.to_string())?;
        certctl_scheduler::migrate(&db).await.map_err(|e| e.to_string())?;
        let Database::Postgres(pool) = db else { return Err("expected PostgreSQL".into()) };
        // Only the benchmark's own schema (the pool's search_path).
        sqlx::query("TRUNCATE jobs, job_events, outbox").execute(&pool).await.map_err(|e| e.to_string())?;
        bench(Arc::new(PostgresStore::new(pool)), &args).await
    }
}
