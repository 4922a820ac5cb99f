//! A private haproxy on a loopback port, configured for one test.

use std::fs;
use std::path::{Path, PathBuf};

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, web_config, write_bootstrap};

pub struct Haproxy {
    // Dropped first: stops the server while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub haproxy: PathBuf,
    pub certificate: PathBuf,
    pub key: Option<PathBuf>,
    pub _dir: tempfile::TempDir,
}

impl Haproxy {
    /// `certificate` and `key` are file names under the instance's `tls/`.
    pub fn start(certificate: &str, key: Option<&str>) -> Self {
        let haproxy = require("haproxy", "haproxy");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let port = free_port();
        for sub in ["tls", "conf.d"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        let certificate = root.join("tls").join(certificate);
        let key = key.map(|k| root.join("tls").join(k));
        write_bootstrap(&certificate, key.as_deref());
        let r = root.display();
        fs::write(
            root.join("haproxy.cfg"),
            format!(
                "global
    log stderr format short local0 notice
    nbthread 1
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend tls
    bind 127.0.0.1:{port} ssl crt {certificate}
    http-request return status 200 content-type text/plain string ok
",
                certificate = certificate.display()
            ),
        )
        .unwrap();
        // Output of the daemon goes to a log file, the pid file names the
        // current process; a reload starts a new one that takes over (-sf).
        let start = format!("{} -D >>{r}/haproxy.log 2>&1", command(&haproxy, &root));
        let daemon = Daemon::start("haproxy", &start, root.join("haproxy.pid"), root.join("haproxy.log"));
        Self { daemon, root, port, haproxy, certificate, key, _dir: dir }
    }
}

/// haproxy with this instance's configuration files and pid file.
fn command(haproxy: &Path, root: &Path) -> String {
    let r = root.display();
    format!("{} -f {r}/haproxy.cfg -f {r}/conf.d -p {r}/haproxy.pid", haproxy.display())
}

impl Server for Haproxy {
    fn target(&self) -> TargetConfig {
        let haproxy = command(&self.haproxy, &self.root);
        let r = self.root.display();
        TargetConfig::Haproxy(web_config(
            &self.certificate,
            self.key.as_deref(),
            self.port,
            &format!("{haproxy} -c -q"),
            &failing_once(
                &format!("{haproxy} -D -sf $(cat {r}/haproxy.pid) >>{r}/haproxy.log 2>&1"),
                &self.root.join("fail-reload"),
            ),
        ))
    }

    fn break_config(&self) {
        fs::write(self.root.join("conf.d/broken.cfg"), "frontend broken\n    this-is-not-a-keyword on\n").unwrap();
    }

    fn repair_config(&self) {
        fs::remove_file(self.root.join("conf.d/broken.cfg")).unwrap();
    }

    fn fail_next_reload(&self) {
        fs::write(self.root.join("fail-reload"), "").unwrap();
    }

    fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn config_files(&self) -> Vec<PathBuf> {
        vec![self.root.join("haproxy.cfg")]
    }
}
