//! A private lighttpd on a loopback port, configured for one test.

use std::fs;
use std::path::{Path, PathBuf};

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, web_config, write_bootstrap};

const OPENSSL_MODULE: &str = "/usr/lib/lighttpd/mod_openssl.so";

pub struct Lighttpd {
    // Dropped first: stops the server while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub lighttpd: PathBuf,
    pub certificate: PathBuf,
    pub key: Option<PathBuf>,
    pub _dir: tempfile::TempDir,
}

impl Lighttpd {
    /// `certificate` (`ssl.pemfile`) and `key` (`ssl.privkey`, if any) are
    /// file names under the instance's `tls/`.
    pub fn start(certificate: &str, key: Option<&str>) -> Self {
        let lighttpd = require("lighttpd", "lighttpd");
        assert!(
            Path::new(OPENSSL_MODULE).exists(),
            "{OPENSSL_MODULE} is missing: apt-get install -y lighttpd-mod-openssl"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let port = free_port();
        for sub in ["tls", "conf.d", "htdocs"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        let certificate = root.join("tls").join(certificate);
        let key = key.map(|k| root.join("tls").join(k));
        write_bootstrap(&certificate, key.as_deref());
        let r = root.display();
        let privkey = key.as_ref().map(|k| format!("ssl.privkey = \"{}\"\n", k.display())).unwrap_or_default();
        fs::write(
            root.join("lighttpd.conf"),
            format!(
                "server.document-root = \"{r}/htdocs\"
server.bind = \"127.0.0.1\"
server.port = {port}
server.pid-file = \"{r}/lighttpd.pid\"
server.errorlog = \"{r}/error.log\"
server.modules = ( \"mod_openssl\" )
ssl.engine = \"enable\"
ssl.pemfile = \"{certificate}\"
{privkey}include \"{r}/conf.d/*.conf\"
",
                certificate = certificate.display()
            ),
        )
        .unwrap();
        // The configuration path is absolute: a graceful restart reads it again.
        let start = format!("{} -f {r}/lighttpd.conf >>{r}/start.log 2>&1", lighttpd.display());
        let daemon = Daemon::start("lighttpd", &start, root.join("lighttpd.pid"), root.join("error.log"));
        Self { daemon, root, port, lighttpd, certificate, key, _dir: dir }
    }
}

/// A graceful restart (SIGUSR1, as `systemctl reload lighttpd` sends) that
/// returns once lighttpd has started again. lighttpd takes SIGUSR1 only
/// while it runs: one that arrives while it restarts stops it, and the
/// agent reloads twice in a row when it puts back the previous files.
fn graceful_restart(root: &Path) -> String {
    let r = root.display();
    format!(
        "pid=$(cat {r}/lighttpd.pid); started=$(grep -c 'server started' {r}/error.log); kill -USR1 $pid && \
         until [ $(grep -c 'server started' {r}/error.log) -gt $started ]; do \
         kill -0 $pid 2>/dev/null || {{ echo 'lighttpd stopped instead of restarting' >&2; exit 1; }}; sleep 0.05; done"
    )
}

impl Server for Lighttpd {
    fn target(&self) -> TargetConfig {
        let r = self.root.display();
        TargetConfig::Lighttpd(web_config(
            &self.certificate,
            self.key.as_deref(),
            self.port,
            &format!("{} -tt -f {r}/lighttpd.conf", self.lighttpd.display()),
            &failing_once(&graceful_restart(&self.root), &self.root.join("fail-reload")),
        ))
    }

    fn break_config(&self) {
        fs::write(self.root.join("conf.d/broken.conf"), "this is not lighttpd syntax\n").unwrap();
    }

    fn repair_config(&self) {
        fs::remove_file(self.root.join("conf.d/broken.conf")).unwrap();
    }

    fn fail_next_reload(&self) {
        fs::write(self.root.join("fail-reload"), "").unwrap();
    }

    fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn config_files(&self) -> Vec<PathBuf> {
        vec![self.root.join("lighttpd.conf")]
    }
}
