//! Filesystem discovery of certificates the platform does not manage yet.
//!
//! [`scan`] walks the given files and directories and reports every X.509
//! certificate it finds, PEM or DER. It only reads: private keys and other
//! files are passed over without being kept or logged. The walk is blocking;
//! call it under `tokio::task::spawn_blocking`.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How deep below a scanned directory files are found: its own entries are
/// at depth 1, and directories at this depth are not entered.
pub const MAX_DEPTH: usize = 16;
/// Files larger than this are not read: certificate files are small.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// One certificate found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file, as reached from the scanned path.
    pub path: String,
    pub der: Vec<u8>,
    /// Lowercase hex SHA-256 of `der`.
    pub fingerprint: String,
}

/// Every certificate in `paths` (files, or directories scanned recursively,
/// following symbolic links but entering each directory once), sorted by
/// path and then by position in the file. Unreadable entries are skipped
/// with a debug log.
pub fn scan(paths: &[PathBuf]) -> Vec<Found> {
    let mut files = BTreeSet::new();
    let mut entered = HashSet::new();
    for path in paths {
        walk(path, 0, &mut files, &mut entered);
    }
    files.iter().flat_map(|path| certificates_in(path)).collect()
}

fn walk(path: &Path, depth: usize, files: &mut BTreeSet<PathBuf>, entered: &mut HashSet<(u64, u64)>) {
    // `metadata` follows links; loops are caught by the device and inode set.
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            tracing::debug!(path = %path.display(), "discovery skips it: {e}");
            return;
        }
    };
    if meta.is_file() {
        files.insert(path.to_owned());
        return;
    }
    if !meta.is_dir() {
        // Sockets, FIFOs and devices: reading a FIFO could block forever.
        return;
    }
    if !entered.insert((meta.dev(), meta.ino())) {
        tracing::debug!(path = %path.display(), "discovery skips a directory it has already scanned");
        return;
    }
    if depth >= MAX_DEPTH {
        tracing::debug!(path = %path.display(), "discovery stops at depth {MAX_DEPTH}");
        return;
    }
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::debug!(path = %path.display(), "discovery cannot list it: {e}");
            return;
        }
    };
    for entry in entries {
        match entry {
            Ok(entry) => walk(&entry.path(), depth + 1, files, entered),
            Err(e) => tracing::debug!(path = %path.display(), "discovery cannot list an entry: {e}"),
        }
    }
}

fn certificates_in(path: &Path) -> Vec<Found> {
    let bytes = match read_small(path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            tracing::debug!(path = %path.display(), "discovery skips a file over {MAX_FILE_SIZE} bytes");
            return Vec::new();
        }
        Err(e) => {
            tracing::debug!(path = %path.display(), "discovery cannot read it: {e}");
            return Vec::new();
        }
    };
    let found =
        |der: Vec<u8>| Found { path: path.display().to_string(), fingerprint: crate::verify::fingerprint(&der), der };
    if contains(&bytes, b"-----BEGIN CERTIFICATE-----") {
        let mut out = Vec::new();
        // Other sections (keys, CSRs, parameters) are skipped by the iterator.
        for section in CertificateDer::pem_slice_iter(&bytes) {
            match section {
                Ok(der) if is_certificate(&der) => out.push(found(der.to_vec())),
                Ok(_) => {
                    tracing::debug!(path = %path.display(), "discovery skips a CERTIFICATE block that is not X.509")
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), "discovery stops reading malformed PEM: {e}");
                    break;
                }
            }
        }
        out
    } else if bytes.first() == Some(&0x30) && is_certificate(&bytes) {
        vec![found(bytes)]
    } else {
        Vec::new()
    }
}

/// The file's contents, or `None` when it is over [`MAX_FILE_SIZE`].
fn read_small(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = fs::File::open(path)?;
    if file.metadata()?.len() > MAX_FILE_SIZE {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    // Bounded again: the file may have grown since.
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_FILE_SIZE).then_some(bytes))
}

/// One whole DER X.509 certificate, nothing after it.
fn is_certificate(der: &[u8]) -> bool {
    matches!(x509_parser::parse_x509_certificate(der), Ok((rest, _)) if rest.is_empty())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, KeyPair};

    use super::*;

    fn cert(name: &str) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
        (cert, key)
    }

    #[test]
    fn finds_pem_and_der_certificates_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (a, a_key) = cert("a.example.test");
        let (b, _) = cert("b.example.test");
        let (c, _) = cert("c.example.test");
        fs::create_dir_all(root.join("etc/ssl/deep/er")).unwrap();
        // Two certificates with a key and comments between them.
        fs::write(
            root.join("etc/ssl/bundle.pem"),
            format!("# web\n{}{}\nsubject=whatever\n{}", a.pem(), a_key.serialize_pem(), b.pem()),
        )
        .unwrap();
        fs::write(root.join("etc/ssl/deep/er/c.der"), c.der()).unwrap();
        fs::write(root.join("etc/ssl/a.key"), a_key.serialize_pem()).unwrap();
        fs::write(root.join("etc/ssl/a-key.der"), a_key.serialize_der()).unwrap();
        fs::write(root.join("etc/ssl/notes.txt"), "no certificates here").unwrap();
        fs::write(root.join("etc/ssl/empty"), "").unwrap();
        let mut truncated = c.der().to_vec();
        truncated.truncate(truncated.len() / 2);
        fs::write(root.join("etc/ssl/truncated.der"), truncated).unwrap();

        let found = scan(&[root.to_owned()]);
        let summary: Vec<_> = found
            .iter()
            .map(|f| (f.path.strip_prefix(root.to_str().unwrap()).unwrap().to_owned(), f.der.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("/etc/ssl/bundle.pem".to_owned(), a.der().to_vec()),
                ("/etc/ssl/bundle.pem".to_owned(), b.der().to_vec()),
                ("/etc/ssl/deep/er/c.der".to_owned(), c.der().to_vec()),
            ]
        );
        assert_eq!(found[2].fingerprint, crate::verify::fingerprint(c.der()));
        // A file named directly is scanned too, and named twice is reported once.
        let file = root.join("etc/ssl/deep/er/c.der");
        assert_eq!(scan(&[file.clone(), file]).len(), 1);
    }

    #[test]
    fn symlink_loops_end_and_missing_paths_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("certs")).unwrap();
        let (a, _) = cert("a.example.test");
        fs::write(root.join("certs/a.pem"), a.pem()).unwrap();
        std::os::unix::fs::symlink(root, root.join("certs/loop")).unwrap();
        let found = scan(&[root.to_owned(), root.join("does-not-exist")]);
        assert_eq!(found.len(), 1);
        assert!(found[0].path.ends_with("certs/a.pem"), "{}", found[0].path);
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = cert("a.example.test");
        let mut deep = dir.path().to_owned();
        for level in 0..MAX_DEPTH - 1 {
            deep.push(format!("d{level}"));
        }
        fs::create_dir_all(&deep).unwrap();
        // At depth MAX_DEPTH: found. One level further: not.
        fs::write(deep.join("in-reach.pem"), a.pem()).unwrap();
        fs::create_dir(deep.join("too-deep")).unwrap();
        fs::write(deep.join("too-deep/out-of-reach.pem"), a.pem()).unwrap();
        let mut big = a.pem();
        big.push_str(&" ".repeat(MAX_FILE_SIZE as usize));
        fs::write(dir.path().join("big.pem"), big).unwrap();

        let found = scan(&[dir.path().to_owned()]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].path.ends_with("in-reach.pem"));
    }
}
