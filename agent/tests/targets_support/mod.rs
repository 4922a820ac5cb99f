//! What the server target tests share: a test PKI, private server
//! instances on loopback that are killed when dropped, and the one
//! conformance scenario every server target must pass.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use certctl_agent::targets::{self, Bundle, Deployed, Endpoint, Protocol, Removed, TargetError};
use certctl_agent::verify::{self, Verification};
use certctl_domain::inventory::{TargetConfig, WebServerConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A test CA issuing leaves for `localhost` and 127.0.0.1.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "certctl target test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        Self { issuer: Issuer::new(params, key), ca_pem: ca.pem() }
    }

    /// A fresh leaf (new key) named `label` in its common name.
    pub fn bundle(&self, label: &str) -> Bundle {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, format!("certctl test leaf {label}"));
        let leaf = params.signed_by(&key, &self.issuer).unwrap();
        Bundle {
            version: format!("certificates/test/versions/{label}"),
            leaf_pem: leaf.pem(),
            chain_pem: self.ca_pem.clone(),
            key_pem: key.serialize_pem(),
            fingerprint: verify::fingerprint(leaf.der()),
        }
    }
}

/// Writes a certificate for the server to start with (servers refuse to
/// start without one); with no key path, the key goes into the certificate file.
pub fn write_bootstrap(certificate: &Path, key: Option<&Path>) {
    let bootstrap = Pki::new().bundle("bootstrap");
    let fullchain = format!("{}{}", bootstrap.leaf_pem, bootstrap.chain_pem);
    match key {
        Some(key) => {
            fs::write(certificate, fullchain).unwrap();
            fs::write(key, &bootstrap.key_pem).unwrap();
        }
        None => fs::write(certificate, format!("{fullchain}{}", bootstrap.key_pem)).unwrap(),
    }
}

/// The absolute path of `program`, or a failure naming the package to install.
pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{program}` is not installed; this test needs a real server: apt-get install -y {package}")
        })
}

pub mod apache;
pub mod caddy;
pub mod dovecot;
pub mod haproxy;
pub mod lighttpd;
pub mod nginx;
pub mod postfix;

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `command` with `/bin/sh -c` and fails the test when it fails.
pub fn sh(command: &str) {
    let out = Command::new("/bin/sh").arg("-c").arg(command).output().unwrap();
    assert!(
        out.status.success(),
        "`{command}` failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server started as a daemon, known by its pid file; stopped on drop,
/// whether the test passed or not. Declare it before the server's
/// `TempDir` so that it is dropped first, while the pid file still exists.
pub struct Daemon {
    pub name: &'static str,
    pub pid_file: PathBuf,
    pub log: PathBuf,
    first_pid: u32,
}

impl Daemon {
    /// Runs `start` (which daemonises) and waits for the pid file.
    pub fn start(name: &'static str, start: &str, pid_file: PathBuf, log: PathBuf) -> Self {
        sh(start);
        let first_pid = read_pid(&pid_file)
            .unwrap_or_else(|| panic!("{name} wrote no pid file {}: {}", pid_file.display(), tail(name, &log)));
        Self { name, pid_file, log, first_pid }
    }

    pub fn log_tail(&self) -> String {
        tail(self.name, &self.log)
    }
}

/// The pid in `pid_file`, waiting a little for it to be written.
fn read_pid(pid_file: &Path) -> Option<u32> {
    for _ in 0..100 {
        if let Some(pid) = fs::read_to_string(pid_file).ok().and_then(|s| s.trim().parse().ok()) {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn tail(name: &str, log: &Path) -> String {
    let log_bytes = fs::read(log).unwrap_or_default();
    let tail = &log_bytes[log_bytes.len().saturating_sub(3000)..];
    format!("{name} log {}:\n{}", log.display(), String::from_utf8_lossy(tail))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // The pid file may name a newer process (a reload that starts one).
        let current = fs::read_to_string(&self.pid_file).ok().and_then(|s| s.trim().parse().ok());
        for pid in [Some(self.first_pid), current.filter(|&p| p != self.first_pid)].into_iter().flatten() {
            stop(pid);
        }
    }
}

fn stop(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    for _ in 0..200 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
}

/// Running and not a zombie (the daemon's parent is gone; nobody may reap it).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A private instance of a server, configured for one test.
pub trait Server {
    /// The target configuration pointing at this instance, with its own
    /// validate and reload commands.
    fn target(&self) -> TargetConfig;
    /// Makes the server's configuration invalid (so validation fails) / valid again.
    fn break_config(&self);
    fn repair_config(&self);
    /// Makes the next reload command fail after it has reloaded.
    fn fail_next_reload(&self);
    fn daemon(&self) -> &Daemon;
    /// The configuration files that name the target's paths.
    fn config_files(&self) -> Vec<PathBuf>;
    /// Whether the validate command opens the certificate files, and so
    /// fails while the configuration names a file that is missing.
    fn validation_opens_the_files(&self) -> bool {
        true
    }
}

/// A reload command that fails once, after reloading, while `flag` exists.
pub fn failing_once(reload: &str, flag: &Path) -> String {
    format!(
        "{reload} && if [ -e {flag} ]; then rm -f {flag}; echo 'injected reload failure' >&2; exit 1; fi",
        flag = flag.display()
    )
}

pub fn web_config(certificate: &Path, key: Option<&Path>, port: u16, validate: &str, reload: &str) -> WebServerConfig {
    WebServerConfig {
        certificate_path: certificate.to_str().unwrap().to_owned(),
        key_path: key.map(|k| k.to_str().unwrap().to_owned()).unwrap_or_default(),
        verify_host: "127.0.0.1".to_owned(),
        verify_port: port.into(),
        verify_server_name: "localhost".to_owned(),
        validate_command: validate.to_owned(),
        reload_command: reload.to_owned(),
    }
}

/// Checks until the endpoint serves `bundle` on several handshakes in a row:
/// servers reload asynchronously, and the previous workers may answer for a
/// moment after the new ones have started.
pub async fn wait_serving(server: &dyn Server, endpoint: &Endpoint, bundle: &Bundle) {
    const IN_A_ROW: u32 = 5;
    let mut in_a_row = 0;
    let mut last = Verification::Unreachable("not checked".into());
    for _ in 0..400 {
        last = verify::check(endpoint, &bundle.fingerprint).await;
        in_a_row = if last == Verification::Verified { in_a_row + 1 } else { 0 };
        if in_a_row == IN_A_ROW {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} does not settle on {}: last {last:?}; {}",
        server.daemon().name,
        bundle.version,
        server.daemon().log_tail()
    );
}

/// Checks that `openssl s_client`, a client independent of ours, is served
/// `bundle` (retrying while previous workers drain), speaking SMTP or IMAP
/// first when the endpoint does.
pub fn assert_openssl_sees(endpoint: &Endpoint, bundle: &Bundle) {
    let mut served = String::new();
    for _ in 0..100 {
        served = openssl_served_on(endpoint.port, endpoint.protocol);
        if served == bundle.fingerprint {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("openssl s_client is served {served}, not {} ({})", bundle.fingerprint, bundle.version);
}

/// What `openssl s_client` sees served over TLS on `port`.
pub fn openssl_served(port: u16) -> String {
    openssl_served_on(port, Protocol::Tls)
}

/// What `openssl s_client` sees served on `port`, after STARTTLS if the protocol has one.
pub fn openssl_served_on(port: u16, protocol: Protocol) -> String {
    let openssl = require("openssl", "openssl");
    let starttls: &[&str] = match protocol {
        Protocol::Tls => &[],
        Protocol::SmtpStartTls => &["-starttls", "smtp"],
        Protocol::ImapStartTls => &["-starttls", "imap"],
    };
    let out = Command::new(openssl)
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "localhost"])
        .args(starttls)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("openssl s_client saw no certificate:\n{text}"));
    let end = text[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + "-----END CERTIFICATE-----".len();
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    verify::fingerprint(&CertificateDer::from_pem_slice(text[begin..end].as_bytes()).unwrap())
}

/// The target's paths.
fn paths_of(config: &TargetConfig) -> Vec<String> {
    let c = config.server().expect("a server target");
    [&c.certificate_path, &c.key_path].into_iter().filter(|p| !p.is_empty()).cloned().collect()
}

/// Contents and modes of the target's files.
fn files_of(config: &TargetConfig) -> Vec<(String, Vec<u8>, u32)> {
    paths_of(config)
        .into_iter()
        .map(|p| {
            let (contents, meta) = (fs::read(&p).unwrap(), fs::metadata(&p).unwrap());
            (p, contents, meta.mode() & 0o7777)
        })
        .collect()
}

/// The same target type with other settings.
fn with_server(config: &TargetConfig, c: WebServerConfig) -> TargetConfig {
    match config {
        TargetConfig::Nginx(_) => TargetConfig::Nginx(c),
        TargetConfig::Apache(_) => TargetConfig::Apache(c),
        TargetConfig::Haproxy(_) => TargetConfig::Haproxy(c),
        TargetConfig::Caddy(_) => TargetConfig::Caddy(c),
        TargetConfig::Lighttpd(_) => TargetConfig::Lighttpd(c),
        TargetConfig::Postfix(_) => TargetConfig::Postfix(c),
        TargetConfig::Dovecot(_) => TargetConfig::Dovecot(c),
        TargetConfig::File { .. } => panic!("not a server target"),
    }
}

/// `path` with `released-` before its file name.
fn released(path: &str) -> String {
    let p = Path::new(path);
    let name = p.file_name().unwrap().to_str().unwrap();
    p.with_file_name(format!("released-{name}")).to_str().unwrap().to_owned()
}

/// Points the server at other files holding `replacement`, as an operator
/// does before removing a target: the replacement is installed by a second
/// target of the same type, the configuration files are edited to name its
/// paths, and the server is reloaded.
async fn move_server_to(server: &dyn Server, replacement: &Bundle, endpoint: &Endpoint) {
    let config = server.target();
    let c = config.server().unwrap().clone();
    let mut other = c.clone();
    other.certificate_path = released(&c.certificate_path);
    if !c.key_path.is_empty() {
        other.key_path = released(&c.key_path);
    }
    let twin = targets::build(&with_server(&config, other.clone())).unwrap();
    assert_eq!(twin.deploy(replacement).await.unwrap(), Deployed::Installed);
    for file in server.config_files() {
        let text = fs::read_to_string(&file).unwrap();
        // The key first: with a sidecar key its path extends the certificate's.
        let mut edited = text.clone();
        for (from, to) in [(&c.key_path, &other.key_path), (&c.certificate_path, &other.certificate_path)] {
            if !from.is_empty() {
                edited = edited.replace(from.as_str(), to);
            }
        }
        assert_ne!(edited, text, "{} does not name the target's files", file.display());
        fs::write(&file, edited).unwrap();
    }
    sh(&c.reload_command);
    wait_serving(server, endpoint, replacement).await;
}

/// The scenario every web-server target passes against a real server:
/// deploy A, then B, redeploy B, a refused validation, a failed reload,
/// and a final deploy; each checked by live handshakes.
pub async fn conformance(server: &dyn Server) {
    let pki = Pki::new();
    let (a, b, c) = (pki.bundle("a"), pki.bundle("b"), pki.bundle("c"));
    let config = server.target();
    let target = targets::build(&config).unwrap_or_else(|e| panic!("build refused {config:?}: {e}"));
    let endpoint = target.endpoint().expect("a verify port is configured");

    assert_eq!(target.deploy(&a).await.unwrap(), Deployed::Installed);
    wait_serving(server, &endpoint, &a).await;
    assert_openssl_sees(&endpoint, &a);

    assert_eq!(target.deploy(&b).await.unwrap(), Deployed::Installed);
    wait_serving(server, &endpoint, &b).await;
    assert_openssl_sees(&endpoint, &b);

    let with_b = files_of(&config);
    assert_eq!(target.deploy(&b).await.unwrap(), Deployed::Unchanged);
    assert_eq!(files_of(&config), with_b);

    // A configuration the server refuses: C is not installed, B stays.
    server.break_config();
    match target.deploy(&c).await {
        Err(TargetError::Validation { output }) => assert!(!output.is_empty()),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(files_of(&config), with_b, "the previous files were not restored");
    assert_eq!(verify::check(&endpoint, &b.fingerprint).await, Verification::Verified);
    server.repair_config();

    // A reload that fails once it has loaded C: B is put back and loaded again.
    server.fail_next_reload();
    match target.deploy(&c).await {
        Err(TargetError::Reload { output }) => {
            assert!(output.contains("injected reload failure"), "{output}");
            assert!(!output.contains("failed too"), "the second reload failed: {output}");
        }
        other => panic!("expected a reload error, got {other:?}"),
    }
    assert_eq!(files_of(&config), with_b, "the previous files were not restored");
    wait_serving(server, &endpoint, &b).await;

    // And the server still takes a good deploy.
    assert_eq!(target.deploy(&c).await.unwrap(), Deployed::Installed);
    wait_serving(server, &endpoint, &c).await;

    // Removal while the configuration names the files: refused, nothing changes.
    let with_c = files_of(&config);
    if server.validation_opens_the_files() {
        match target.remove().await {
            Err(TargetError::Validation { output }) => assert!(output.contains("still needs the files"), "{output}"),
            other => panic!("expected the removal to be refused, got {other:?}"),
        }
        assert_eq!(files_of(&config), with_c, "the removed files were not restored");
        assert_eq!(verify::check(&endpoint, &c.fingerprint).await, Verification::Verified);
    }

    // Once the server uses other files, the target's files go and the
    // server's configuration still checks.
    let d = pki.bundle("d");
    move_server_to(server, &d, &endpoint).await;
    assert_eq!(target.remove().await.unwrap(), Removed::Removed);
    for path in paths_of(&config) {
        assert!(!Path::new(&path).exists(), "{path} was not removed");
        let dir = Path::new(&path).parent().unwrap();
        let leftovers: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".certctl-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left in {}: {leftovers:?}", dir.display());
    }
    sh(&config.server().unwrap().validate_command);
    assert_eq!(target.remove().await.unwrap(), Removed::Absent);
    assert_eq!(verify::check(&endpoint, &d.fingerprint).await, Verification::Verified);
}
