//! `certctl migrate`, `certctl backup` and `certctl restore` against real
//! data directories and real servers, and the `pg_dump` / `pg_restore`
//! round trip that docs/operations.md gives for PostgreSQL.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{BIN, CliRun, Platform, Storage};

/// Runs `certctl ARGS...` in `dir`, with no server configured.
fn certctl(dir: &Path, args: &[&str]) -> CliRun {
    let output = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("CERTCTL_DATABASE_URL")
        .env_remove("CERTCTL_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("the certctl binary runs");
    CliRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The names of the files in `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls until the platform's audit trail names `needle`.
async fn audit_mentions(platform: &Platform, needle: &str) -> bool {
    for _ in 0..100 {
        if platform.cli(&["audit", "export", "--format", "json"]).ok().stdout.contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_the_server_runs_restores_into_a_platform_that_has_the_data() {
    let scratch = tempfile::tempdir().unwrap();
    let (live, backup, restored) =
        (scratch.path().join("live"), scratch.path().join("backup"), scratch.path().join("restored"));
    let platform = Platform::single(&Storage::SqliteAt(live.clone()), &[]).await;
    platform.cli(&["cert", "create", "shop", "--cn", "shop.example.test", "--server-keyed"]).ok();
    platform.cli(&["cert", "issue", "shop"]).ok();
    platform.cli(&["cert", "create", "web", "--cn", "web.example.test", "--server-keyed"]).ok();
    assert!(audit_mentions(&platform, "certificates/shop").await, "logs:\n{}", platform.logs());

    let taken = certctl(scratch.path(), &["backup", "--data-dir", &path(&live), "--out", &path(&backup)]).ok();
    assert!(taken.stdout.contains("backed up 5 databases"), "{taken}");
    assert_eq!(
        files(&backup),
        ["audit.db", "certctl-backup.json", "inventory.db", "issuance.db", "notification.db", "scheduler.db"],
        "{taken}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("certctl-backup.json")).unwrap()).unwrap();
    assert_eq!(manifest["certctl_version"], env!("CARGO_PKG_VERSION"));
    assert!(manifest["files"].as_array().unwrap().iter().all(|f| f["migrations"]["latest"].as_i64() >= Some(1)));
    // Written after the backup: not in it.
    platform.cli(&["cert", "create", "late", "--cn", "late.example.test"]).ok();

    // The live data directory is not overwritten: not without --force, and
    // not while a server has it open, even with --force.
    let refused = certctl(scratch.path(), &["restore", &path(&backup), "--data-dir", &path(&live)]).failed();
    assert!(refused.contains("already holds certctl data") && refused.contains("--force"), "{refused}");
    let refused = certctl(scratch.path(), &["restore", &path(&backup), "--data-dir", &path(&live), "--force"]).failed();
    assert!(refused.contains("in use by a running process"), "{refused}");
    assert!(platform.cli(&["cert", "get", "late"]).ok().stdout.contains("late.example.test"));

    let done = certctl(scratch.path(), &["restore", &path(&backup), "--data-dir", &path(&restored)]).ok();
    assert!(done.stdout.contains("restored 5 files"), "{done}");
    let copy = Platform::single(&Storage::SqliteAt(restored.clone()), &[]).await;
    let shop = copy.cli(&["cert", "get", "shop"]).ok().stdout;
    assert!(shop.contains("ACTIVE") && shop.contains("certificates/shop/versions/1"), "{shop}");
    let late = copy.cli(&["cert", "get", "late"]).failed();
    assert!(late.contains("not found") || late.contains("NotFound"), "{late}");
    // The CA keys came along and open under the same master key.
    let issued = copy.cli(&["cert", "issue", "web"]).ok();
    let version = issued.stdout.lines().next().and_then(|l| l.strip_prefix("issued ")).unwrap_or_default().to_owned();
    assert!(version.starts_with("certificates/web/versions/"), "{issued}");
    assert!(audit_mentions(&copy, &version).await, "logs:\n{}", copy.logs());
    assert!(copy.cli(&["audit", "verify"]).ok().stdout.contains("audit chain intact"));

    // With the original stopped, --force replaces its data and keeps the old files aside.
    drop(platform);
    let forced = certctl(scratch.path(), &["restore", &path(&backup), "--data-dir", &path(&live), "--force"]).ok();
    assert!(forced.stdout.contains("moved the current audit.db, inventory.db"), "{forced}");
    let aside = files(&live).into_iter().find(|n| n.starts_with("pre-restore-")).expect("the old files moved aside");
    assert!(files(&live.join(aside)).contains(&"inventory.db".to_owned()));
    let again = Platform::single(&Storage::SqliteAt(live.clone()), &[]).await;
    assert!(again.cli(&["cert", "get", "late"]).failed().to_lowercase().contains("not found"));
    assert!(again.cli(&["cert", "get", "shop"]).ok().stdout.contains("ACTIVE"));
}

#[test]
fn a_damaged_or_incomplete_backup_is_refused_whole() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    certctl(dir, &["migrate", "--data-dir", "data"]).ok();
    certctl(dir, &["backup", "--data-dir", "data", "--out", "good"]).ok();
    let again = certctl(dir, &["backup", "--data-dir", "data", "--out", "good"]).failed();
    assert!(again.contains("not empty"), "an existing backup is never overwritten: {again}");
    let none = certctl(dir, &["backup", "--data-dir", "good-but-not-data", "--out", "other"]).failed();
    assert!(none.contains("cannot read the data directory"), "{none}");
    let pg = Command::new(BIN)
        .args(["backup", "--out", "pg"])
        .current_dir(dir)
        .env("CERTCTL_DATABASE_URL", "postgres://u@127.0.0.1:1/x")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"), "PostgreSQL points at pg_dump");

    let damaged = |name: &str, damage: &dyn Fn(&Path)| {
        let copy = dir.join(name);
        std::fs::create_dir(&copy).unwrap();
        for file in files(&dir.join("good")) {
            std::fs::copy(dir.join("good").join(&file), copy.join(&file)).unwrap();
        }
        damage(&copy);
        let target = dir.join(format!("{name}-restored"));
        let error = certctl(dir, &["restore", &path(&copy), "--data-dir", &path(&target)]).failed();
        assert!(!target.exists(), "{name}: nothing is written");
        error
    };
    let flipped = damaged("flipped", &|b| {
        let file = b.join("inventory.db");
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[5000] ^= 0x55;
        std::fs::write(&file, bytes).unwrap();
    });
    assert!(flipped.contains("is damaged: the SHA-256 of inventory.db"), "{flipped}");
    let truncated = damaged("truncated", &|b| {
        let file = std::fs::OpenOptions::new().write(true).open(b.join("audit.db")).unwrap();
        file.set_len(4096).unwrap();
    });
    assert!(truncated.contains("incomplete or damaged: audit.db has 4096 bytes"), "{truncated}");
    let missing = damaged("missing", &|b| std::fs::remove_file(b.join("scheduler.db")).unwrap());
    assert!(missing.contains("is incomplete: scheduler.db is missing"), "{missing}");
    let unfinished = damaged("unfinished", &|b| std::fs::remove_file(b.join("certctl-backup.json")).unwrap());
    assert!(unfinished.contains("not a complete certctl backup"), "{unfinished}");
    let garbled = damaged("garbled", &|b| std::fs::write(b.join("certctl-backup.json"), "{\"format\": 1,").unwrap());
    assert!(garbled.contains("not a backup manifest"), "{garbled}");
    // A file that matches its manifest but is not a database: SQLite's own check.
    let not_sqlite = damaged("not-sqlite", &|b| {
        std::fs::write(b.join("audit.db"), vec![7u8; 8192]).unwrap();
        let text = std::fs::read_to_string(b.join("certctl-backup.json")).unwrap();
        let mut manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
        let entry = manifest["files"].as_array_mut().unwrap().iter_mut().find(|f| f["name"] == "audit.db").unwrap();
        entry["bytes"] = 8192.into();
        entry["sha256"] = sha256_hex(&[7u8; 8192]).into();
        std::fs::write(b.join("certctl-backup.json"), manifest.to_string()).unwrap();
    });
    assert!(not_sqlite.contains("audit.db is not a usable database"), "{not_sqlite}");

    let fine = certctl(dir, &["restore", "good", "--data-dir", "restored"]).ok();
    assert!(fine.stdout.contains("restored 5 files"), "{fine}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_prepares_every_database_and_a_second_run_changes_nothing() {
    let storage = Storage::from_env().await;
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let target = match &storage {
        Storage::Postgres(url) => vec!["--database-url".to_owned(), url.clone()],
        _ => vec!["--data-dir".to_owned(), path(&data)],
    };
    let args = |extra: &[String]| [vec!["migrate".to_owned()], extra.to_vec()].concat();
    let first = certctl(scratch.path(), &args(&target).iter().map(String::as_str).collect::<Vec<_>>()).ok();
    for service in ["audit", "inventory", "issuance", "scheduler", "notification"] {
        assert!(
            first.stdout.lines().any(|l| l.starts_with(&format!("{service}: up to date, ")) && l.contains("applied")),
            "{first}"
        );
    }
    let second = certctl(scratch.path(), &args(&target).iter().map(String::as_str).collect::<Vec<_>>()).ok();
    assert_eq!(second.stdout, first.stdout, "nothing left to migrate");
    if !matches!(storage, Storage::Postgres(_)) {
        assert_eq!(files(&data), ["audit.db", "inventory.db", "issuance.db", "notification.db", "scheduler.db"]);
    }
    // A server starts on what migrate prepared.
    let storage = match storage {
        Storage::Postgres(url) => Storage::Postgres(url),
        _ => Storage::SqliteAt(data),
    };
    let platform = Platform::single(&storage, &[]).await;
    platform.cli(&["cert", "create", "after", "--cn", "after.example.test"]).ok();

    let bad = certctl(scratch.path(), &["migrate", "--database-url", "postgres://nobody@127.0.0.1:1/none"]).failed();
    assert!(bad.contains("cannot connect to PostgreSQL"), "{bad}");
}

/// The PostgreSQL backup of docs/operations.md: pg_dump's custom format,
/// pg_restore into an empty database, and the platform on the copy.
#[tokio::test(flavor = "multi_thread")]
async fn pg_dump_and_pg_restore_carry_a_platform_to_another_database() {
    let Storage::Postgres(url) = Storage::from_env().await else {
        eprintln!("note: CERTCTL_TEST_DATABASE_URL is not set; the pg_dump round trip is skipped");
        return;
    };
    let platform = Platform::single(&Storage::Postgres(url.clone()), &[]).await;
    platform.cli(&["cert", "create", "shop", "--cn", "shop.example.test", "--server-keyed"]).ok();
    platform.cli(&["cert", "issue", "shop"]).ok();
    let dump = platform.path("certctl.dump");
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(out.status.success(), "{program} {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    };
    run("pg_dump", &["--format=custom", "--file", &path(&dump), &url]);
    let Storage::Postgres(copy_url) = Storage::from_env().await else { unreachable!() };
    run("pg_restore", &["--no-owner", "--exit-on-error", "--dbname", &copy_url, &path(&dump)]);
    drop(platform);
    let copy = Platform::single(&Storage::Postgres(copy_url), &[]).await;
    let shop = copy.cli(&["cert", "get", "shop"]).ok().stdout;
    assert!(shop.contains("ACTIVE") && shop.contains("certificates/shop/versions/1"), "{shop}");
    copy.cli(&["cert", "create", "after", "--cn", "after.example.test", "--server-keyed"]).ok();
    copy.cli(&["cert", "issue", "after"]).ok();
    assert!(copy.cli(&["audit", "verify"]).ok().stdout.contains("audit chain intact"));
}
