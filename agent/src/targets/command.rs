//! Running an operator's validate, reload and post-deploy commands.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// A command still running after this long is killed and counts as failed.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of a failed command's output an error carries.
pub(crate) const OUTPUT_LIMIT: usize = 4096;

/// Runs `command` with `/bin/sh -c`. A failure is described by the exit
/// status and what the command printed (stdout and stderr interleaved,
/// trimmed, at most [`OUTPUT_LIMIT`] bytes).
pub(crate) async fn run(command: &str) -> Result<(), String> {
    // Output goes to an unlinked file rather than a pipe: a reload that
    // starts a daemon which keeps its stdout open must not hold us up.
    let (stdout, stderr, mut capture) =
        capture_file().map_err(|e| format!("`{command}`: cannot capture output: {e}"))?;
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("`{command}`: cannot start /bin/sh: {e}"))?;
    let status = match tokio::time::timeout(COMMAND_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("`{command}`: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            return Err(format!(
                "`{command}` did not finish within {} s and was killed: {}",
                COMMAND_TIMEOUT.as_secs(),
                read_output(&mut capture)
            ));
        }
    };
    if status.success() {
        return Ok(());
    }
    let output = read_output(&mut capture);
    let status = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    };
    Err(if output.is_empty() { format!("`{command}`: {status}") } else { format!("`{command}`: {status}: {output}") })
}

fn capture_file() -> std::io::Result<(File, File, File)> {
    let path = std::env::temp_dir().join(format!(".certctl-command-{:016x}", rand::random::<u64>()));
    let file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
    std::fs::remove_file(&path)?;
    Ok((file.try_clone()?, file.try_clone()?, file))
}

fn read_output(capture: &mut File) -> String {
    let mut bytes = Vec::new();
    let read =
        capture.seek(SeekFrom::Start(0)).and_then(|_| capture.take(OUTPUT_LIMIT as u64 + 1).read_to_end(&mut bytes));
    if let Err(e) = read {
        return format!("(output unreadable: {e})");
    }
    truncate(&String::from_utf8_lossy(&bytes))
}

/// Trimmed, cut at a character boundary to at most [`OUTPUT_LIMIT`] bytes.
fn truncate(output: &str) -> String {
    let output = output.trim();
    if output.len() <= OUTPUT_LIMIT {
        return output.to_owned();
    }
    const MARK: &str = " [truncated]";
    let mut end = OUTPUT_LIMIT - MARK.len();
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &output[..end])
}

/// The program a default command starts, looked up on `PATH` the way the
/// shell will; `None` when it is not there.
pub(crate) fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_and_failure() {
        assert_eq!(run("true").await, Ok(()));
        let err = run("echo out; echo err >&2; exit 3").await.unwrap_err();
        assert_eq!(err, "`echo out; echo err >&2; exit 3`: exit status 3: out\nerr");
    }

    #[tokio::test]
    async fn output_is_capped() {
        let err = run("head -c 10000 /dev/zero | tr '\\0' x; exit 1").await.unwrap_err();
        assert!(err.len() < OUTPUT_LIMIT + 100, "{}", err.len());
        assert!(err.ends_with("[truncated]"));
    }

    #[tokio::test]
    async fn a_background_child_holding_stdout_does_not_block() {
        // The sleeper inherits stdout; with a pipe, run would wait for it to end.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 1000 & echo $! > {}", pid_file.display());
        assert_eq!(run(&command).await, Ok(()));
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
        let still_running = Path::new("/proc").join(&pid).exists();
        let _ = std::process::Command::new("kill").arg(&pid).status();
        assert!(still_running, "run returned only after its background child ended");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let long = "é".repeat(OUTPUT_LIMIT);
        let cut = truncate(&long);
        assert!(cut.len() <= OUTPUT_LIMIT);
        assert!(cut.ends_with("[truncated]"));
    }

    #[test]
    fn finds_sh() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("certctl-no-such-program").is_none());
    }
}
