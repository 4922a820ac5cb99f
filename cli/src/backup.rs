//! `certctl backup` and `certctl restore`: consistent copies of an SQLite
//! data directory, taken while the server runs. (PostgreSQL has its own
//! tools: `pg_dump`, docs/operations.md.)
//!
//! A backup is a directory: one `VACUUM INTO` snapshot per database file of
//! the data directory, `demo-master.key` when `--demo` left one there, and
//! `certctl-backup.json`, written last, which lists every file with its size
//! and SHA-256 and the migrations applied to it. Restore checks all of that
//! before it touches the target, so a truncated or damaged backup is refused
//! whole.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use certctl_common::db::Database;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::migrate::{Applied, MigrateArgs};

pub const MANIFEST: &str = "certctl-backup.json";
const FORMAT: u32 = 1;
/// The key `--demo` generates beside the data (`ServerConfig::demo_key_path`).
const DEMO_KEY: &str = "demo-master.key";
/// Snapshot order: callers before the services they hand data to, audit last.
/// A relay deletes what it sent only once the receiver has it, so anything
/// sent between two snapshots is still pending in the earlier one, and is
/// sent again (idempotently) after a restore; nothing falls between them.
const ORDER: [&str; 4] = ["scheduler", "issuance", "inventory", "audit"];

/// `migrate`, `backup` and `restore`: the commands that work on a database
/// directly instead of calling a server.
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Creates and migrates every service's database (SQLite files or PostgreSQL schemas), then exits.
    Migrate(MigrateArgs),
    /// Copies every database of an SQLite data directory, consistently, while the server runs.
    Backup(BackupArgs),
    /// Puts a backup made by `certctl backup` into a data directory, after checking it whole.
    Restore(RestoreArgs),
}

pub async fn run(command: DataCommand) -> anyhow::Result<ExitCode> {
    match command {
        DataCommand::Migrate(args) => crate::migrate::run(args).await,
        DataCommand::Backup(args) => backup(args).await,
        DataCommand::Restore(args) => restore(args).await,
    }
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The data directory to copy; a running server's is fine [default: ./certctl-data].
    #[arg(long, env = "CERTCTL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The directory to write the backup into. It must not exist yet, or be empty.
    #[arg(long)]
    pub out: PathBuf,
    /// Set when the platform runs on PostgreSQL, which this command does not back up.
    #[arg(long, env = "CERTCTL_DATABASE_URL", hide = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// A directory written by `certctl backup`.
    pub backup: PathBuf,
    /// The data directory to restore into [default: ./certctl-data].
    #[arg(long, env = "CERTCTL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Replace the databases of a data directory that holds some; they are moved to
    /// `<data-dir>/pre-restore-<time>/` first. A data directory in use is refused even so.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    certctl_version: String,
    created_at: String,
    source: String,
    files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    bytes: u64,
    sha256: String,
    /// For databases: the migrations sqlx recorded; none for the demo key.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    migrations: Option<Applied>,
}

fn data_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| crate::config::DEFAULT_DATA_DIR.into())
}

async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    if args.database_url.as_deref().is_some_and(|u| !u.is_empty()) {
        bail!(
            "CERTCTL_DATABASE_URL is set: this platform keeps its data in PostgreSQL, which `certctl backup` does not \
             copy. Use pg_dump (docs/operations.md, \"Backup and restore\")."
        );
    }
    let source = data_dir(args.data_dir);
    let databases = databases_in(&source)?;
    if databases.is_empty() {
        bail!("{} holds no certctl database (*.db): nothing to back up", source.display());
    }
    if args.out.exists() && std::fs::read_dir(&args.out)?.next().is_some() {
        bail!("{} already exists and is not empty: give a new directory to --out", args.out.display());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    // The databases hold sealed CA keys and the audit trail: the owner alone reads them.
    #[cfg(unix)]
    std::fs::set_permissions(&args.out, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;

    let mut files = Vec::new();
    for name in snapshot_order(databases) {
        let to = args.out.join(&name);
        snapshot(&source.join(&name), &to).await?;
        let migrations = check_database(&to).await.with_context(|| format!("the copy of {name} is not usable"))?;
        let (bytes, sha256) = digest(&to).await?;
        println!("{name}: {bytes} bytes, {migrations}");
        files.push(FileEntry { name, bytes, sha256, migrations: Some(migrations) });
    }
    if source.join(DEMO_KEY).is_file() {
        copy_private(&source.join(DEMO_KEY), &args.out.join(DEMO_KEY))?;
        let (bytes, sha256) = digest(&args.out.join(DEMO_KEY)).await?;
        println!("{DEMO_KEY}: the --demo master key (a real installation keeps its key apart from the backups)");
        files.push(FileEntry { name: DEMO_KEY.into(), bytes, sha256, migrations: None });
    }
    let manifest = Manifest {
        format: FORMAT,
        certctl_version: env!("CARGO_PKG_VERSION").into(),
        created_at: time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?,
        source: std::path::absolute(&source).unwrap_or(source).display().to_string(),
        files,
    };
    // Written last and renamed into place: a backup without it is incomplete.
    let partial = args.out.join(format!("{MANIFEST}.partial"));
    let mut file = std::fs::File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, args.out.join(MANIFEST))?;
    sync_dir(&args.out)?;
    println!(
        "backed up {} databases to {}",
        manifest.files.iter().filter(|f| f.migrations.is_some()).count(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let manifest = verify(&args.backup).await?;
    let target = data_dir(args.data_dir);
    std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
    let present = present_files(&target)?;
    if !present.is_empty() {
        let shown: Vec<&str> =
            present.iter().map(String::as_str).filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm")).collect();
        if !args.force {
            bail!(
                "{} already holds certctl data ({}); restoring would replace it. Stop every certctl server that \
                 uses it and run again with --force (the current files are moved aside first), or restore into an \
                 empty directory",
                target.display(),
                shown.join(", ")
            );
        }
        for name in shown.iter().filter(|n| n.ends_with(".db")) {
            if in_use(&target.join(name)).await {
                bail!(
                    "{} is in use by a running process: stop every certctl server on {} before restoring into it",
                    target.join(name).display(),
                    target.display()
                );
            }
        }
        // The check closed the last connections, which removed the WAL files.
        let present = present_files(&target)?;
        let aside = target.join(format!("pre-restore-{}", time::OffsetDateTime::now_utc().unix_timestamp()));
        std::fs::create_dir(&aside).with_context(|| format!("cannot create {}", aside.display()))?;
        for name in &present {
            std::fs::rename(target.join(name), aside.join(name))
                .with_context(|| format!("cannot move {name} to {}", aside.display()))?;
        }
        println!("moved the current {} to {}", present.join(", "), aside.display());
    }
    for entry in &manifest.files {
        let partial = target.join(format!("{}.restoring", entry.name));
        if entry.name == DEMO_KEY {
            copy_private(&args.backup.join(&entry.name), &partial)?;
        } else {
            std::fs::copy(args.backup.join(&entry.name), &partial)
                .with_context(|| format!("cannot write {}", partial.display()))?;
        }
        std::fs::File::open(&partial)?.sync_all()?;
        std::fs::rename(&partial, target.join(&entry.name))?;
    }
    sync_dir(&target)?;
    println!(
        "restored {} files into {} (backup of {}, certctl {})",
        manifest.files.len(),
        target.display(),
        manifest.created_at,
        manifest.certctl_version
    );
    Ok(ExitCode::SUCCESS)
}

/// Checks a backup whole: its manifest, then every file's presence, size,
/// checksum and, for databases, SQLite's own integrity check.
async fn verify(backup: &Path) -> anyhow::Result<Manifest> {
    let path = backup.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} is not a complete certctl backup: it has no {MANIFEST}, which `certctl backup` writes last",
            backup.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is damaged: it is not a backup manifest", path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is in backup format {}, which this certctl does not read (it reads {FORMAT})",
            backup.display(),
            manifest.format
        );
    }
    if !manifest.files.iter().any(|f| f.migrations.is_some()) {
        bail!("{} lists no database", path.display());
    }
    for entry in &manifest.files {
        if entry.name.contains('/') || entry.name.contains('\\') || entry.name.starts_with('.') {
            bail!("{} is damaged: `{}` is not a file name", path.display(), entry.name);
        }
        let file = backup.join(&entry.name);
        let Ok(meta) = std::fs::metadata(&file) else {
            bail!("{} is incomplete: {} is missing", backup.display(), entry.name);
        };
        if meta.len() != entry.bytes {
            bail!(
                "{} is incomplete or damaged: {} has {} bytes, the manifest says {}",
                backup.display(),
                entry.name,
                meta.len(),
                entry.bytes
            );
        }
        let (_, sha256) = digest(&file).await?;
        if sha256 != entry.sha256 {
            bail!("{} is damaged: the SHA-256 of {} does not match the manifest", backup.display(), entry.name);
        }
        if entry.migrations.is_some() {
            check_database(&file)
                .await
                .with_context(|| format!("{} is damaged: {} is not a usable database", backup.display(), entry.name))?;
        }
    }
    Ok(manifest)
}

/// The `*.db` files of a data directory (one per service).
fn databases_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read the data directory {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".db") && entry.file_type()?.is_file() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Databases outside `ORDER` (services added later) first, by name; then `ORDER`.
fn snapshot_order(mut names: Vec<String>) -> Vec<String> {
    let rank = |name: &str| ORDER.iter().position(|s| name.strip_suffix(".db") == Some(*s));
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    names
}

/// What a restore would replace: databases with their WAL files, and the demo key.
fn present_files(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".db") || name.ends_with(".db-wal") || name.ends_with(".db-shm") || name == DEMO_KEY {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new().filename(path).create_if_missing(false).busy_timeout(Duration::from_secs(30))
}

/// A transactionally consistent copy of one database, taken while the server writes to it.
async fn snapshot(from: &Path, to: &Path) -> anyhow::Result<()> {
    let mut conn =
        options(from).connect().await.with_context(|| format!("cannot open the database {}", from.display()))?;
    let to_text = to.to_str().with_context(|| format!("{} is not a UTF-8 path", to.display()))?;
    sqlx::query("VACUUM INTO ?")
        .bind(to_text)
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// SQLite's integrity check, then the migrations recorded in the database.
async fn check_database(path: &Path) -> anyhow::Result<Applied> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options(path).read_only(true))
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let result: anyhow::Result<Applied> = async {
        let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&pool).await?;
        if problems != ["ok"] {
            bail!("SQLite's integrity check failed: {}", problems.join("; "));
        }
        crate::migrate::applied(&Database::Sqlite(pool.clone())).await
    }
    .await;
    crate::migrate::close(Database::Sqlite(pool)).await;
    result
}

/// True when another connection holds the database open: leaving WAL mode
/// needs the only connection, and every certctl server keeps WAL
/// connections open while it runs.
async fn in_use(path: &Path) -> bool {
    use sqlx::Connection as _;
    let mut conn = match options(path).busy_timeout(Duration::ZERO).connect().await {
        Ok(conn) => conn,
        // A file SQLite cannot open is no one's database; the restore replaces it.
        Err(e) => return e.to_string().contains("locked") || e.to_string().contains("busy"),
    };
    let mode: Result<String, _> = sqlx::query_scalar("PRAGMA journal_mode = DELETE").fetch_one(&mut conn).await;
    conn.close().await.ok();
    !matches!(mode.as_deref(), Ok("delete"))
}

/// The file's size and SHA-256 (hex), read off the async runtime.
async fn digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            bytes += n as u64;
        }
        let hex = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
        Ok((bytes, hex))
    })
    .await?
}

/// Copies a key file, readable by its owner alone.
fn copy_private(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(to).with_context(|| format!("cannot write {}", to.display()))?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    Ok(())
}

/// Makes the renames in `dir` durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_copied_before_the_services_they_call() {
        let names = ["audit.db", "inventory.db", "notification.db", "scheduler.db", "issuance.db"];
        let order = snapshot_order(names.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(order, ["notification.db", "scheduler.db", "issuance.db", "inventory.db", "audit.db"]);
    }
}
