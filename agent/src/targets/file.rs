//! `file`: the bundle as PEM files in a directory, for any consumer that
//! reads certificates from disk, with an optional command to tell it.

use std::path::PathBuf;

use certctl_domain::inventory::TargetConfig;

use super::files::{self, FileSpec};
use super::{Bundle, Deployed, Endpoint, Removed, Target, TargetError};

/// The files written, in writing order.
pub(crate) const CERT: &str = "cert.pem";
pub(crate) const CHAIN: &str = "chain.pem";
pub(crate) const FULLCHAIN: &str = "fullchain.pem";
pub(crate) const KEY: &str = "key.pem";
pub(crate) const COMBINED: &str = "combined.pem";

const DEFAULT_CERT_MODE: u32 = 0o644;
const DEFAULT_KEY_MODE: u32 = 0o600;
/// Never granted on a file holding the key: group write, other read and write.
const KEY_FORBIDDEN_BITS: u32 = 0o026;

struct FileTarget {
    directory: PathBuf,
    cert_mode: u32,
    key_mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    post_deploy_command: Option<String>,
    lock: tokio::sync::Mutex<()>,
}

pub(super) fn build(config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    let TargetConfig::File { directory, mode, owner, group, post_deploy_command } = config else {
        return Err(TargetError::Config(format!("not a file target: {}", config.type_name())));
    };
    let dir = PathBuf::from(directory);
    if !dir.is_absolute() {
        return Err(TargetError::Config(format!("file.directory `{directory}` must be an absolute path")));
    }
    if !dir.is_dir() {
        return Err(TargetError::Config(format!("file.directory `{directory}` does not exist or is not a directory")));
    }
    let (cert_mode, key_mode) = modes(mode)?;
    let uid = non_empty(owner).map(files::resolve_user).transpose()?;
    let gid = non_empty(group).map(files::resolve_group).transpose()?;
    Ok(Box::new(FileTarget {
        directory: dir,
        cert_mode,
        key_mode,
        uid,
        gid,
        post_deploy_command: non_empty(post_deploy_command).map(str::to_owned),
        lock: tokio::sync::Mutex::new(()),
    }))
}

/// The certificate files' mode and the key files' mode.
fn modes(mode: &str) -> Result<(u32, u32), TargetError> {
    let mode = mode.trim();
    if mode.is_empty() {
        return Ok((DEFAULT_CERT_MODE, DEFAULT_KEY_MODE));
    }
    let digits = mode.strip_prefix("0o").unwrap_or(mode);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 && digits.len() <= 4 => Ok((m, m & !KEY_FORBIDDEN_BITS)),
        _ => Err(TargetError::Config(format!("file.mode `{mode}` is not an octal file mode such as 0640"))),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

impl FileTarget {
    fn specs(&self, bundle: &Bundle) -> Vec<FileSpec> {
        let fullchain = bundle.fullchain();
        let combined = format!("{}{fullchain}", bundle.key());
        [
            (CERT, bundle.leaf(), self.cert_mode),
            (CHAIN, bundle.chain(), self.cert_mode),
            (FULLCHAIN, fullchain, self.cert_mode),
            (KEY, bundle.key(), self.key_mode),
            (COMBINED, combined, self.key_mode),
        ]
        .into_iter()
        .map(|(name, contents, mode)| FileSpec {
            path: self.directory.join(name),
            contents: contents.into_bytes(),
            mode,
            uid: self.uid,
            gid: self.gid,
        })
        .collect()
    }
}

#[async_trait::async_trait]
impl Target for FileTarget {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn deploy(&self, bundle: &Bundle) -> Result<Deployed, TargetError> {
        bundle.check()?;
        let _one_at_a_time = self.lock.lock().await;
        super::install(self.specs(bundle), None, self.post_deploy_command.as_deref()).await
    }

    fn endpoint(&self) -> Option<Endpoint> {
        None
    }

    /// Deletes the five files; the directory stays. No command runs: the
    /// post-deploy command is about new files, and nothing here can tell
    /// whether a consumer still reads these.
    async fn remove(&self) -> Result<Removed, TargetError> {
        let _one_at_a_time = self.lock.lock().await;
        let paths = [CERT, CHAIN, FULLCHAIN, KEY, COMBINED].iter().map(|name| self.directory.join(name)).collect();
        super::uninstall(paths, None).await
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::*;
    use crate::targets::test_bundle;

    fn config(dir: &Path, mode: &str, post: &str) -> TargetConfig {
        TargetConfig::File {
            directory: dir.to_str().unwrap().into(),
            mode: mode.into(),
            owner: String::new(),
            group: String::new(),
            post_deploy_command: post.into(),
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn modes_table() {
        let check = |input: &str, expected: Option<(u32, u32)>| {
            assert_eq!(modes(input).ok(), expected, "mode {input:?}");
        };
        check("", Some((0o644, 0o600)));
        check("0644", Some((0o644, 0o640)));
        check("0640", Some((0o640, 0o640)));
        check("600", Some((0o600, 0o600)));
        check("0666", Some((0o666, 0o640)));
        check("0o755", Some((0o755, 0o751)));
        check("0999", None);
        check("01777", None);
        check("rw-r--r--", None);
    }

    #[tokio::test]
    async fn writes_every_file_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = build(&config(dir.path(), "", "")).unwrap();
        assert_eq!(target.kind(), "file");
        assert_eq!(target.endpoint(), None);
        let bundle = test_bundle("a.example.test");
        assert_eq!(target.deploy(&bundle).await.unwrap(), Deployed::Installed);

        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read(CERT), bundle.leaf());
        assert_eq!(read(CHAIN), bundle.chain());
        assert_eq!(read(FULLCHAIN), format!("{}{}", bundle.leaf(), bundle.chain()));
        assert_eq!(read(KEY), bundle.key());
        assert_eq!(read(COMBINED), format!("{}{}{}", bundle.key(), bundle.leaf(), bundle.chain()));
        for name in [CERT, CHAIN, FULLCHAIN] {
            assert_eq!(mode_of(&dir.path().join(name)), 0o644, "{name}");
        }
        for name in [KEY, COMBINED] {
            assert_eq!(mode_of(&dir.path().join(name)), 0o600, "{name}");
        }
    }

    #[tokio::test]
    async fn a_configured_mode_is_narrowed_for_keys() {
        let dir = tempfile::tempdir().unwrap();
        let target = build(&config(dir.path(), "0664", "")).unwrap();
        target.deploy(&test_bundle("a.example.test")).await.unwrap();
        assert_eq!(mode_of(&dir.path().join(FULLCHAIN)), 0o664);
        assert_eq!(mode_of(&dir.path().join(KEY)), 0o640);
        assert_eq!(mode_of(&dir.path().join(COMBINED)), 0o640);
    }

    #[tokio::test]
    async fn redeploying_the_same_bundle_changes_nothing_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let counter = out.path().join("runs");
        let target = build(&config(dir.path(), "", &format!("echo run >> {}", counter.display()))).unwrap();
        let bundle = test_bundle("a.example.test");
        assert_eq!(target.deploy(&bundle).await.unwrap(), Deployed::Installed);
        let before = fs::metadata(dir.path().join(KEY)).unwrap().ino();
        assert_eq!(target.deploy(&bundle).await.unwrap(), Deployed::Unchanged);
        assert_eq!(fs::metadata(dir.path().join(KEY)).unwrap().ino(), before, "the file was rewritten");
        assert_eq!(fs::read_to_string(&counter).unwrap(), "run\n");

        // A file changed by hand is put back.
        fs::write(dir.path().join(CHAIN), "tampered").unwrap();
        assert_eq!(target.deploy(&bundle).await.unwrap(), Deployed::Installed);
        assert_eq!(fs::read_to_string(dir.path().join(CHAIN)).unwrap(), bundle.chain());
        assert_eq!(fs::read_to_string(&counter).unwrap(), "run\nrun\n");
    }

    #[tokio::test]
    async fn a_failed_post_deploy_command_restores_the_previous_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let flag = out.path().join("fail");
        let log = out.path().join("log");
        // Fails while the flag file exists; logs the fingerprint-bearing cert it saw.
        let post = format!(
            "cat {dir}/cert.pem >> {log}; if [ -e {flag} ]; then echo refusing >&2; exit 7; fi",
            dir = dir.path().display(),
            log = log.display(),
            flag = flag.display()
        );
        let target = build(&config(dir.path(), "0640", &post)).unwrap();
        let a = test_bundle("a.example.test");
        target.deploy(&a).await.unwrap();
        let before: Vec<_> =
            [CERT, CHAIN, FULLCHAIN, KEY, COMBINED].iter().map(|n| fs::read(dir.path().join(n)).unwrap()).collect();
        fs::set_permissions(dir.path().join(CERT), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

        fs::write(&flag, "").unwrap();
        let b = test_bundle("b.example.test");
        let err = target.deploy(&b).await.unwrap_err();
        match &err {
            TargetError::Reload { output } => {
                assert!(output.contains("exit status 7: refusing"), "{output}");
                assert!(output.contains("reloading the previous files failed too"), "{output}");
            }
            other => panic!("expected Reload, got {other:?}"),
        }
        let after: Vec<_> =
            [CERT, CHAIN, FULLCHAIN, KEY, COMBINED].iter().map(|n| fs::read(dir.path().join(n)).unwrap()).collect();
        assert_eq!(after, before);
        assert_eq!(mode_of(&dir.path().join(CERT)), 0o600, "the previous mode was not restored");
        // The command ran for A, for B, then again for A restored.
        let log = fs::read_to_string(&log).unwrap();
        assert_eq!(log, format!("{}{}{}", a.leaf(), b.leaf(), a.leaf()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 5, "temporary files left behind");
    }

    #[tokio::test]
    async fn remove_deletes_the_files_and_keeps_the_rest_of_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let log = out.path().join("log");
        let target = build(&config(dir.path(), "", &format!("echo deployed >> {}", log.display()))).unwrap();
        fs::write(dir.path().join("unrelated.conf"), "kept").unwrap();
        assert_eq!(target.deploy(&test_bundle("a.example.test")).await.unwrap(), Deployed::Installed);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 6);

        assert_eq!(target.remove().await.unwrap(), Removed::Removed);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["unrelated.conf"]);
        assert_eq!(target.remove().await.unwrap(), Removed::Absent);
        assert_eq!(fs::read_to_string(&log).unwrap(), "deployed\n", "the post-deploy command ran on removal");
    }

    #[tokio::test]
    async fn the_first_deploy_failing_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = build(&config(dir.path(), "", "exit 1")).unwrap();
        let err = target.deploy(&test_bundle("a.example.test")).await.unwrap_err();
        assert_eq!(err.code(), "reload");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn owner_and_group_are_applied() {
        let dir = tempfile::tempdir().unwrap();
        let meta = fs::metadata(dir.path()).unwrap();
        let (uid, gid) = (meta.uid(), meta.gid());
        let mut config = config(dir.path(), "", "");
        if let TargetConfig::File { owner, group, .. } = &mut config {
            *owner = uid.to_string();
            *group = gid.to_string();
        }
        let target = build(&config).unwrap();
        target.deploy(&test_bundle("a.example.test")).await.unwrap();
        let key = fs::metadata(dir.path().join(KEY)).unwrap();
        assert_eq!((key.uid(), key.gid()), (uid, gid));
    }

    #[test]
    fn bad_configurations_are_refused_at_build() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |config: TargetConfig, needle: &str| match build(&config) {
            Err(TargetError::Config(m)) => assert!(m.contains(needle), "{m}"),
            Err(other) => panic!("expected Config, got {other:?}"),
            Ok(_) => panic!("accepted {config:?}"),
        };
        refused(config(Path::new("relative/dir"), "", ""), "absolute");
        refused(config(&dir.path().join("missing"), "", ""), "does not exist");
        refused(config(dir.path(), "0888", ""), "octal");
        let mut unknown_owner = config(dir.path(), "", "");
        if let TargetConfig::File { owner, .. } = &mut unknown_owner {
            *owner = "certctl-no-such-user".into();
        }
        refused(unknown_owner, "certctl-no-such-user");
    }

    #[test]
    fn root_resolves_by_name() {
        assert_eq!(files::resolve_user("root"), Ok(0));
        assert_eq!(files::resolve_group("root"), Ok(0));
    }

    #[tokio::test]
    async fn a_bundle_whose_fingerprint_lies_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = build(&config(dir.path(), "", "")).unwrap();
        let mut bundle = test_bundle("a.example.test");
        bundle.fingerprint = "00".repeat(32);
        assert!(matches!(target.deploy(&bundle).await, Err(TargetError::Config(m)) if m.contains("fingerprint")));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
