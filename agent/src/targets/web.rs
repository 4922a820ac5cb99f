//! What the server targets (nginx, apache, haproxy, caddy, lighttpd,
//! postfix, dovecot) share: two paths, a validate command, a reload command
//! and an endpoint to verify. Each server's file says only its defaults,
//! which bytes go to which path and how its endpoint is reached.

use std::path::PathBuf;

use certctl_domain::inventory::{TargetConfig, WebServerConfig};

use super::command::find_on_path;
use super::files::{self, FileSpec};
use super::{Bundle, Deployed, Endpoint, Protocol, Removed, Target, TargetError};

/// The host checked when `verify_host` is empty: the agent runs on the server.
pub(crate) const DEFAULT_VERIFY_HOST: &str = "127.0.0.1";

/// Mode of a file holding only certificates.
pub(crate) const CERT_MODE: u32 = 0o644;
/// Mode of a file holding a private key.
pub(crate) const KEY_MODE: u32 = 0o600;

/// One web server type.
pub(crate) struct Kind {
    pub name: &'static str,
    /// The commands run when the configuration leaves them empty.
    pub default_validate: DefaultCommand,
    pub default_reload: DefaultCommand,
    /// Whether `key_path` may be empty (the key then goes with the certificate).
    pub key_optional: bool,
    /// Which bytes go where.
    pub layout: fn(&Paths, &Bundle) -> Vec<FileSpec>,
    /// What the verification speaks on a port before TLS.
    pub protocol: fn(u16) -> Protocol,
}

/// The web servers' endpoints: TLS on any port.
pub(crate) fn tls_only(_port: u16) -> Protocol {
    Protocol::Tls
}

/// A `/bin/sh -c` command, and the Debian package that provides its program.
pub(crate) struct DefaultCommand {
    pub command: &'static str,
    pub package: &'static str,
}

pub(crate) struct Paths {
    pub certificate: PathBuf,
    pub key: Option<PathBuf>,
}

impl Paths {
    /// Every path a layout may write.
    fn all(&self) -> Vec<PathBuf> {
        std::iter::once(self.certificate.clone()).chain(self.key.clone()).collect()
    }
}

/// The leaf and chain at the certificate path, the key at the key path or,
/// without one, after the chain in the certificate file.
pub(crate) fn fullchain_then_key(paths: &Paths, bundle: &Bundle) -> Vec<FileSpec> {
    match &paths.key {
        None => vec![spec(&paths.certificate, format!("{}{}", bundle.fullchain(), bundle.key()), KEY_MODE)],
        Some(key) => vec![spec(&paths.certificate, bundle.fullchain(), CERT_MODE), spec(key, bundle.key(), KEY_MODE)],
    }
}

pub(crate) fn spec(path: &std::path::Path, contents: String, mode: u32) -> FileSpec {
    FileSpec { path: path.to_owned(), contents: contents.into_bytes(), mode, uid: None, gid: None }
}

struct WebServer {
    kind: &'static Kind,
    paths: Paths,
    validate_command: String,
    reload_command: String,
    endpoint: Option<Endpoint>,
    lock: tokio::sync::Mutex<()>,
}

pub(crate) fn build(kind: &'static Kind, config: &TargetConfig) -> Result<Box<dyn Target>, TargetError> {
    let Some(c) = config.server() else {
        return Err(TargetError::Config(format!("not a {} target: {}", kind.name, config.type_name())));
    };
    Ok(Box::new(WebServer {
        kind,
        paths: paths(kind, c)?,
        validate_command: command(kind, "validate_command", &c.validate_command, &kind.default_validate)?,
        reload_command: command(kind, "reload_command", &c.reload_command, &kind.default_reload)?,
        endpoint: endpoint(kind, c)?,
        lock: tokio::sync::Mutex::new(()),
    }))
}

fn paths(kind: &Kind, c: &WebServerConfig) -> Result<Paths, TargetError> {
    let name = kind.name;
    let certificate = files::check_file_path(&format!("{name}.certificate_path"), &c.certificate_path)?;
    let key = match c.key_path.trim() {
        "" if kind.key_optional => None,
        "" => return Err(TargetError::Config(format!("{name}.key_path is required"))),
        key_path => Some(files::check_file_path(&format!("{name}.key_path"), key_path)?),
    };
    if key.as_ref() == Some(&certificate) {
        return Err(TargetError::Config(format!("{name}.key_path must differ from {name}.certificate_path")));
    }
    Ok(Paths { certificate, key })
}

/// The configured command, or the default one once its program is known to exist.
fn command(kind: &Kind, field: &str, configured: &str, default: &DefaultCommand) -> Result<String, TargetError> {
    let configured = configured.trim();
    if !configured.is_empty() {
        return Ok(configured.to_owned());
    }
    let &DefaultCommand { command: default, package } = default;
    let program = default.split_whitespace().next().unwrap_or(default);
    if find_on_path(program).is_none() {
        return Err(TargetError::Config(format!(
            "{name}.{field} is empty, so the default `{default}` would run, but `{program}` is not on PATH; \
             install it (Debian package `{package}`) or set {name}.{field}",
            name = kind.name,
        )));
    }
    Ok(default.to_owned())
}

fn endpoint(kind: &Kind, c: &WebServerConfig) -> Result<Option<Endpoint>, TargetError> {
    let port = u16::try_from(c.verify_port).map_err(|_| {
        TargetError::Config(format!(
            "{}.verify_port {} is not a TCP port (0 skips verification)",
            kind.name, c.verify_port
        ))
    })?;
    if port == 0 {
        return Ok(None);
    }
    let host = match c.verify_host.trim() {
        "" => DEFAULT_VERIFY_HOST.to_owned(),
        host => host.to_owned(),
    };
    let server_name = Some(c.verify_server_name.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(Some(Endpoint { host, port, server_name, protocol: (kind.protocol)(port) }))
}

#[async_trait::async_trait]
impl Target for WebServer {
    fn kind(&self) -> &'static str {
        self.kind.name
    }

    async fn deploy(&self, bundle: &Bundle) -> Result<Deployed, TargetError> {
        bundle.check()?;
        let _one_at_a_time = self.lock.lock().await;
        let specs = (self.kind.layout)(&self.paths, bundle);
        super::install(specs, Some(&self.validate_command), Some(&self.reload_command)).await
    }

    fn endpoint(&self) -> Option<Endpoint> {
        self.endpoint.clone()
    }

    async fn reload(&self) -> Result<(), TargetError> {
        let _one_at_a_time = self.lock.lock().await;
        super::rerun(Some(&self.validate_command), Some(&self.reload_command)).await
    }

    async fn remove(&self) -> Result<Removed, TargetError> {
        let _one_at_a_time = self.lock.lock().await;
        super::uninstall(self.paths.all(), Some(&self.validate_command)).await
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::targets::test_bundle;

    fn config(dir: &Path, validate: &str, reload: &str) -> WebServerConfig {
        WebServerConfig {
            certificate_path: dir.join("site.crt").to_str().unwrap().into(),
            key_path: dir.join("site.key").to_str().unwrap().into(),
            verify_host: String::new(),
            verify_port: 8443,
            verify_server_name: String::new(),
            validate_command: validate.into(),
            reload_command: reload.into(),
        }
    }

    fn config_error(result: Result<Box<dyn Target>, TargetError>) -> String {
        match result {
            Err(TargetError::Config(m)) => m,
            Err(other) => panic!("expected Config, got {other:?}"),
            Ok(t) => panic!("accepted a {} target", t.kind()),
        }
    }

    #[test]
    fn endpoint_defaults_to_loopback_and_zero_disables_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), "true", "true");
        let target = crate::targets::build(&TargetConfig::Nginx(c.clone())).unwrap();
        assert_eq!(
            target.endpoint(),
            Some(Endpoint { host: "127.0.0.1".into(), port: 8443, server_name: None, protocol: Protocol::Tls })
        );
        c.verify_host = "web.example.test".into();
        c.verify_server_name = "www.example.test".into();
        let target = crate::targets::build(&TargetConfig::Apache(c.clone())).unwrap();
        assert_eq!(
            target.endpoint(),
            Some(Endpoint {
                host: "web.example.test".into(),
                port: 8443,
                server_name: Some("www.example.test".into()),
                protocol: Protocol::Tls,
            })
        );
        c.verify_port = 0;
        assert_eq!(crate::targets::build(&TargetConfig::Haproxy(c.clone())).unwrap().endpoint(), None);
        c.verify_port = 70000;
        assert!(config_error(crate::targets::build(&TargetConfig::Nginx(c))).contains("verify_port"));
    }

    #[test]
    fn paths_are_checked_at_build() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path(), "true", "true");
        c.key_path = String::new();
        assert!(config_error(crate::targets::build(&TargetConfig::Nginx(c.clone()))).contains("key_path is required"));
        // haproxy takes the key inside the certificate file.
        assert!(crate::targets::build(&TargetConfig::Haproxy(c.clone())).is_ok());
        c.key_path = c.certificate_path.clone();
        assert!(config_error(crate::targets::build(&TargetConfig::Haproxy(c.clone()))).contains("must differ"));
        c.key_path = dir.path().join("missing/site.key").to_str().unwrap().into();
        assert!(config_error(crate::targets::build(&TargetConfig::Apache(c.clone()))).contains("does not exist"));
        c.key_path = "site.key".into();
        assert!(config_error(crate::targets::build(&TargetConfig::Apache(c))).contains("absolute"));
    }

    #[test]
    fn a_default_command_needs_its_program() {
        const MISSING: Kind = Kind {
            name: "imaginary",
            default_validate: DefaultCommand { command: "certctl-no-such-server -t", package: "imaginary-server" },
            default_reload: DefaultCommand { command: "true", package: "coreutils" },
            key_optional: false,
            layout: |_, _| Vec::new(),
            protocol: tls_only,
        };
        let dir = tempfile::tempdir().unwrap();
        let m = config_error(build(&MISSING, &TargetConfig::Nginx(config(dir.path(), "", "true"))));
        assert!(m.contains("`certctl-no-such-server` is not on PATH"), "{m}");
        assert!(m.contains("imaginary-server"), "{m}");
        // An explicit command is the operator's business.
        assert!(build(&MISSING, &TargetConfig::Nginx(config(dir.path(), "my-check", "true"))).is_ok());
    }

    #[tokio::test]
    async fn a_failed_validation_restores_without_reloading() {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let reloads = out.path().join("reloads");
        let flag = out.path().join("broken");
        let validate = format!("if [ -e {} ]; then echo 'emerg: broken config' >&2; exit 1; fi", flag.display());
        let reload = format!("echo reload >> {}", reloads.display());
        let target = crate::targets::build(&TargetConfig::Nginx(config(dir.path(), &validate, &reload))).unwrap();

        let a = test_bundle("a.example.test");
        assert_eq!(target.deploy(&a).await.unwrap(), Deployed::Installed);
        assert_eq!(fs::read_to_string(dir.path().join("site.crt")).unwrap(), a.fullchain());
        assert_eq!(fs::read_to_string(dir.path().join("site.key")).unwrap(), a.key());
        assert_eq!(fs::read_to_string(&reloads).unwrap(), "reload\n");

        fs::write(&flag, "").unwrap();
        let err = target.deploy(&test_bundle("b.example.test")).await.unwrap_err();
        assert!(matches!(&err, TargetError::Validation { output } if output.contains("emerg: broken config")), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("site.crt")).unwrap(), a.fullchain());
        assert_eq!(fs::read_to_string(dir.path().join("site.key")).unwrap(), a.key());
        assert_eq!(fs::read_to_string(&reloads).unwrap(), "reload\n", "reloaded after a failed validation");
    }

    #[test]
    fn mail_servers_are_verified_after_starttls_except_on_implicit_tls_ports() {
        let dir = tempfile::tempdir().unwrap();
        let protocol = |make: fn(WebServerConfig) -> TargetConfig, port: i32| {
            let mut c = config(dir.path(), "true", "true");
            c.verify_port = port;
            crate::targets::build(&make(c)).unwrap().endpoint().unwrap().protocol
        };
        assert_eq!(protocol(TargetConfig::Postfix, 25), Protocol::SmtpStartTls);
        assert_eq!(protocol(TargetConfig::Postfix, 587), Protocol::SmtpStartTls);
        assert_eq!(protocol(TargetConfig::Postfix, 465), Protocol::Tls);
        assert_eq!(protocol(TargetConfig::Dovecot, 143), Protocol::ImapStartTls);
        assert_eq!(protocol(TargetConfig::Dovecot, 993), Protocol::Tls);
        assert_eq!(protocol(TargetConfig::Caddy, 443), Protocol::Tls);
        assert_eq!(protocol(TargetConfig::Lighttpd, 25), Protocol::Tls);
    }

    #[tokio::test]
    async fn remove_is_refused_while_the_configuration_needs_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let reloads = out.path().join("reloads");
        let crt = dir.path().join("site.crt");
        let key = dir.path().join("site.key");
        // As a server's own check does: it fails while its configuration
        // (here: while `in-use` exists) names a file that is missing.
        let in_use = out.path().join("in-use");
        let validate = format!(
            "if [ -e {in_use} ] && [ ! -e {crt} ]; then echo 'cannot load {crt}' >&2; exit 1; fi",
            in_use = in_use.display(),
            crt = crt.display()
        );
        let reload = format!("echo reload >> {}", reloads.display());
        let target = crate::targets::build(&TargetConfig::Dovecot(config(dir.path(), &validate, &reload))).unwrap();
        let a = test_bundle("a.example.test");
        assert_eq!(target.deploy(&a).await.unwrap(), Deployed::Installed);

        fs::write(&in_use, "").unwrap();
        let err = target.remove().await.unwrap_err();
        assert!(matches!(&err, TargetError::Validation { output } if output.contains("cannot load")), "{err}");
        assert_eq!(fs::read_to_string(&crt).unwrap(), a.fullchain());
        assert_eq!(fs::read_to_string(&key).unwrap(), a.key());
        assert_eq!(std::os::unix::fs::MetadataExt::mode(&fs::metadata(&key).unwrap()) & 0o777, KEY_MODE);

        fs::remove_file(&in_use).unwrap();
        assert_eq!(target.remove().await.unwrap(), Removed::Removed);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "files or temporary files left behind");
        assert_eq!(target.remove().await.unwrap(), Removed::Absent);
        assert_eq!(fs::read_to_string(&reloads).unwrap(), "reload\n", "a removal reloaded the server");
    }
}
