//! A private Caddy on a loopback port, with its own admin endpoint, configured for one test.

use std::fs;
use std::path::{Path, PathBuf};

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, web_config, write_bootstrap};

pub struct Caddy {
    // Dropped first: stops the server while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub caddy: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl Caddy {
    pub fn start() -> Self {
        let caddy = require("caddy", "caddy");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let port = free_port();
        let admin = free_port();
        for sub in ["tls", "conf.d", "data", "config"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        write_bootstrap(&root.join("tls/site.crt"), Some(&root.join("tls/site.key")));
        let r = root.display();
        // No automatic HTTPS (nothing is fetched from an ACME CA), state and
        // logs under the test's directory, an admin endpoint of its own.
        fs::write(
            root.join("Caddyfile"),
            format!(
                "{{
	admin 127.0.0.1:{admin}
	auto_https off
	storage file_system {r}/data
	log {{
		output file {r}/caddy.log
	}}
}}
https://localhost:{port}, https://127.0.0.1:{port} {{
	bind 127.0.0.1
	tls {r}/tls/site.crt {r}/tls/site.key
	respond \"ok\"
}}
import {r}/conf.d/*.caddy
"
            ),
        )
        .unwrap();
        let start = format!(
            "{} start --config {r}/Caddyfile --pidfile {r}/caddy.pid >>{r}/caddy.out 2>&1",
            command(&caddy, &root)
        );
        let daemon = Daemon::start("caddy", &start, root.join("caddy.pid"), root.join("caddy.log"));
        Self { daemon, root, port, caddy, _dir: dir }
    }
}

/// caddy with this instance's autosave and data directories.
fn command(caddy: &Path, root: &Path) -> String {
    let r = root.display();
    format!("XDG_CONFIG_HOME={r}/config XDG_DATA_HOME={r}/data {}", caddy.display())
}

impl Server for Caddy {
    fn target(&self) -> TargetConfig {
        let caddy = command(&self.caddy, &self.root);
        let r = self.root.display();
        TargetConfig::Caddy(web_config(
            &self.root.join("tls/site.crt"),
            Some(&self.root.join("tls/site.key")),
            self.port,
            &format!("{caddy} validate --config {r}/Caddyfile"),
            &failing_once(&format!("{caddy} reload --config {r}/Caddyfile --force"), &self.root.join("fail-reload")),
        ))
    }

    fn break_config(&self) {
        let broken = format!("https://127.0.0.1:{} {{\n\tthis_is_not_a_directive\n}}\n", free_port());
        fs::write(self.root.join("conf.d/broken.caddy"), broken).unwrap();
    }

    fn repair_config(&self) {
        fs::remove_file(self.root.join("conf.d/broken.caddy")).unwrap();
    }

    fn fail_next_reload(&self) {
        fs::write(self.root.join("fail-reload"), "").unwrap();
    }

    fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn config_files(&self) -> Vec<PathBuf> {
        vec![self.root.join("Caddyfile")]
    }
}
