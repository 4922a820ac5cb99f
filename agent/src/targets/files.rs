//! Installing a set of files so that a failure leaves the previous ones.
//!
//! Each file is written to a temporary file in its own directory, synced and
//! renamed over the old one, so a reader sees the old file or the new one and
//! never a part. The previous contents, mode and owner of every file are kept
//! in memory until the deploy is over, so a refused deploy can put them back.
//!
//! Everything here is blocking; callers run it under `spawn_blocking`.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::TargetError;

/// One file a deploy writes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct FileSpec {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
    /// Numeric owner and group to set; `None` keeps the replaced file's (or
    /// the agent's, for a new file).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A file as it was before a deploy.
struct Snapshot {
    contents: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The files a deploy replaced, to undo it.
pub(crate) struct Installed {
    previous: Vec<(PathBuf, Option<Snapshot>)>,
}

/// Whether every file already exists with exactly these bytes, this mode
/// and the requested owner and group.
pub(crate) fn is_current(specs: &[FileSpec]) -> Result<bool, TargetError> {
    for spec in specs {
        let Some(now) = snapshot(&spec.path)? else { return Ok(false) };
        if now.contents != spec.contents
            || now.mode != spec.mode
            || spec.uid.is_some_and(|u| u != now.uid)
            || spec.gid.is_some_and(|g| g != now.gid)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes every file. When one fails, those already written are put back
/// and the error names the file.
pub(crate) fn install(specs: &[FileSpec]) -> Result<Installed, TargetError> {
    let mut previous = Vec::with_capacity(specs.len());
    for spec in specs {
        previous.push((spec.path.clone(), snapshot(&spec.path)?));
    }
    let mut installed = Installed { previous: Vec::with_capacity(specs.len()) };
    for (spec, (path, before)) in specs.iter().zip(previous) {
        let keep_uid = before.as_ref().map(|b| b.uid);
        let keep_gid = before.as_ref().map(|b| b.gid);
        let ownership = Ownership {
            uid: spec.uid.or(keep_uid),
            gid: spec.gid.or(keep_gid),
            required: spec.uid.is_some() || spec.gid.is_some(),
        };
        // Recorded before writing: a failed rename may still have replaced the file.
        installed.previous.push((path, before));
        if let Err(e) = write_atomic(&spec.path, &spec.contents, spec.mode, ownership) {
            let mut message = format!("cannot write {}: {e}", spec.path.display());
            if let Err(undo) = installed.restore() {
                message.push_str(&format!("; and restoring the previous files failed: {undo}"));
            }
            return Err(TargetError::Io(message));
        }
    }
    Ok(installed)
}

/// Deletes those of `paths` that exist; `None` when none did. When one
/// cannot be deleted, those already deleted are put back and the error names
/// the file. The result restores them all.
pub(crate) fn remove(paths: &[PathBuf]) -> Result<Option<Installed>, TargetError> {
    let mut existing = Vec::with_capacity(paths.len());
    for path in paths {
        if let Some(before) = snapshot(path)? {
            existing.push((path.clone(), before));
        }
    }
    if existing.is_empty() {
        return Ok(None);
    }
    let mut removed = Installed { previous: Vec::with_capacity(existing.len()) };
    for (path, before) in existing {
        let deleted = fs::remove_file(&path).and_then(|()| sync_parent(&path));
        // Recorded first: a failed sync has still deleted the file.
        removed.previous.push((path.clone(), Some(before)));
        if let Err(e) = deleted {
            let mut message = format!("cannot remove {}: {e}", path.display());
            if let Err(undo) = removed.restore() {
                message.push_str(&format!("; and restoring the removed files failed: {undo}"));
            }
            return Err(TargetError::Io(message));
        }
    }
    Ok(Some(removed))
}

fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    File::open(dir)?.sync_all()
}

impl Installed {
    /// Puts every file back as it was: same bytes, mode and (where the agent
    /// may set it) owner; a file that did not exist is removed.
    pub(crate) fn restore(&self) -> Result<(), String> {
        let mut failures = Vec::new();
        for (path, before) in self.previous.iter().rev() {
            let result = match before {
                Some(s) => write_atomic(
                    path,
                    &s.contents,
                    s.mode,
                    Ownership { uid: Some(s.uid), gid: Some(s.gid), required: false },
                ),
                None => match fs::remove_file(path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            };
            if let Err(e) = result {
                failures.push(format!("{}: {e}", path.display()));
            }
        }
        if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
    }
}

fn snapshot(path: &Path) -> Result<Option<Snapshot>, TargetError> {
    let read = || -> io::Result<Snapshot> {
        let contents = fs::read(path)?;
        let meta = fs::metadata(path)?;
        Ok(Snapshot { contents, mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid() })
    };
    match read() {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TargetError::Io(format!("cannot read {}: {e}", path.display()))),
    }
}

struct Ownership {
    uid: Option<u32>,
    gid: Option<u32>,
    /// Configured by the operator: failing to set it fails the write. Kept
    /// from a replaced file: best effort (an unprivileged agent cannot).
    required: bool,
}

fn write_atomic(path: &Path, contents: &[u8], mode: u32, ownership: Ownership) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = dir.join(format!(".{}.certctl-{:016x}", name.to_string_lossy(), rand::random::<u64>()));
    // 0600 until the contents are complete, whatever the final mode.
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let written = (|| {
        file.write_all(contents)?;
        if ownership.uid.is_some() || ownership.gid.is_some() {
            match std::os::unix::fs::fchown(&file, ownership.uid, ownership.gid) {
                Err(e) if !ownership.required && e.kind() == ErrorKind::PermissionDenied => {
                    tracing::debug!(path = %path.display(), "cannot keep the replaced file's owner: {e}");
                }
                other => other?,
            }
        }
        // After chown, which may clear set-id bits; not subject to the umask.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    // The rename is durable once the directory is synced.
    File::open(dir)?.sync_all()
}

/// Numeric ids pass through; names are looked up in `/etc/passwd` or `/etc/group`.
pub(crate) fn resolve_user(name: &str) -> Result<u32, TargetError> {
    resolve(name, Path::new("/etc/passwd"), "owner")
}

pub(crate) fn resolve_group(name: &str) -> Result<u32, TargetError> {
    resolve(name, Path::new("/etc/group"), "group")
}

fn resolve(name: &str, database: &Path, what: &str) -> Result<u32, TargetError> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text = fs::read_to_string(database).map_err(|e| {
        TargetError::Config(format!("cannot read {} to look up {what} `{name}`: {e}", database.display()))
    })?;
    lookup(&text, name).ok_or_else(|| {
        TargetError::Config(format!(
            "{what} `{name}` is not in {}; use a numeric id if it comes from a directory service",
            database.display()
        ))
    })
}

/// The id (third field) of `name` in a passwd- or group-format database.
fn lookup(database: &str, name: &str) -> Option<u32> {
    database.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// Checks that `path` is absolute, is not a directory, and that its parent
/// directory exists.
pub(crate) fn check_file_path(field: &str, path: &str) -> Result<PathBuf, TargetError> {
    let p = PathBuf::from(path);
    if !p.is_absolute() || p.file_name().is_none() {
        return Err(TargetError::Config(format!("{field} `{path}` must be an absolute file path")));
    }
    let parent = p.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(TargetError::Config(format!(
            "{field} `{path}`: the directory {} does not exist",
            parent.display()
        )));
    }
    if p.is_dir() {
        return Err(TargetError::Config(format!("{field} `{path}` is a directory")));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &Path, contents: &str, mode: u32) -> FileSpec {
        FileSpec { path: path.to_owned(), contents: contents.as_bytes().to_vec(), mode, uid: None, gid: None }
    }

    #[test]
    fn lookup_reads_the_third_field() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n";
        assert_eq!(lookup(passwd, "www-data"), Some(33));
        assert_eq!(lookup(passwd, "root"), Some(0));
        assert_eq!(lookup(passwd, "www"), None);
        assert_eq!(lookup("ssl-cert:x:110:\n", "ssl-cert"), Some(110));
    }

    #[test]
    fn numeric_ids_need_no_database() {
        assert_eq!(resolve("1234", Path::new("/nonexistent"), "owner"), Ok(1234));
        assert!(matches!(resolve("nobody-here", Path::new("/nonexistent"), "owner"), Err(TargetError::Config(_))));
    }

    #[test]
    fn install_then_restore_puts_back_bytes_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.pem");
        let new = dir.path().join("new.pem");
        fs::write(&old, "before").unwrap();
        fs::set_permissions(&old, Permissions::from_mode(0o640)).unwrap();

        let specs = [spec(&old, "after", 0o600), spec(&new, "fresh", 0o644)];
        assert!(!is_current(&specs).unwrap());
        let installed = install(&specs).unwrap();
        assert!(is_current(&specs).unwrap());
        assert_eq!(fs::read_to_string(&old).unwrap(), "after");
        assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o644);

        installed.restore().unwrap();
        assert_eq!(fs::read_to_string(&old).unwrap(), "before");
        assert_eq!(fs::metadata(&old).unwrap().mode() & 0o777, 0o640);
        assert!(!new.exists());
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_undoes_the_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.pem");
        fs::write(&first, "before").unwrap();
        let blocked = dir.path().join("missing-dir").join("second.pem");
        let err = install(&[spec(&first, "after", 0o644), spec(&blocked, "x", 0o644)]).err().unwrap();
        assert!(matches!(&err, TargetError::Io(m) if m.contains("second.pem")), "{err:?}");
        assert_eq!(fs::read_to_string(&first).unwrap(), "before");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn remove_then_restore_puts_back_bytes_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("site.crt");
        let key = dir.path().join("site.key");
        let never = dir.path().join("never.pem");
        fs::write(&cert, "certificate").unwrap();
        fs::write(&key, "key").unwrap();
        fs::set_permissions(&key, Permissions::from_mode(0o600)).unwrap();

        let removed = remove(&[cert.clone(), key.clone(), never.clone()]).unwrap().expect("files existed");
        assert!(!cert.exists() && !key.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        removed.restore().unwrap();
        assert_eq!(fs::read_to_string(&cert).unwrap(), "certificate");
        assert_eq!(fs::read_to_string(&key).unwrap(), "key");
        assert_eq!(fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert!(!never.exists());

        assert!(remove(&[never]).unwrap().is_none(), "nothing to remove");
    }

    #[test]
    fn an_unreadable_path_stops_a_removal_before_anything_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.pem");
        fs::write(&first, "before").unwrap();
        // Every file is read (to be restorable) before any is deleted; a
        // directory where a file should be cannot be read.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "x").unwrap();
        let err = remove(&[first.clone(), blocked]).err().unwrap();
        assert!(matches!(&err, TargetError::Io(m) if m.contains("blocked")), "{err:?}");
        assert_eq!(fs::read_to_string(&first).unwrap(), "before");
    }

    #[test]
    fn mode_differences_are_not_current() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pem");
        install(&[spec(&p, "k", 0o600)]).unwrap();
        assert!(is_current(&[spec(&p, "k", 0o600)]).unwrap());
        assert!(!is_current(&[spec(&p, "k", 0o640)]).unwrap());
        assert!(!is_current(&[spec(&p, "other", 0o600)]).unwrap());
    }

    #[test]
    fn file_paths_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("a.crt");
        assert_eq!(check_file_path("f", ok.to_str().unwrap()).unwrap(), ok);
        assert!(check_file_path("f", "relative/a.crt").is_err());
        assert!(check_file_path("f", dir.path().to_str().unwrap()).is_err());
        assert!(check_file_path("f", dir.path().join("no/a.crt").to_str().unwrap()).is_err());
    }
}
