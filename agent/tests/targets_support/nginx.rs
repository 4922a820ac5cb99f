//! A private nginx on a loopback port, configured for one test.

use std::fs;
use std::path::{Path, PathBuf};

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, web_config, write_bootstrap};

pub struct Nginx {
    // Dropped first: stops the server while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub nginx: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start() -> Self {
        let nginx = require("nginx", "nginx");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let port = free_port();
        for sub in ["tls", "conf.d", "tmp", "logs"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        write_bootstrap(&root.join("tls/site.crt"), Some(&root.join("tls/site.key")));
        let r = root.display();
        fs::write(
            root.join("nginx.conf"),
            format!(
                "daemon on;
worker_processes 1;
pid {r}/nginx.pid;
error_log {r}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {r}/tmp/body;
    proxy_temp_path {r}/tmp/proxy;
    fastcgi_temp_path {r}/tmp/fastcgi;
    uwsgi_temp_path {r}/tmp/uwsgi;
    scgi_temp_path {r}/tmp/scgi;
    include {r}/conf.d/*.conf;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {r}/tls/site.crt;
        ssl_certificate_key {r}/tls/site.key;
        location / {{ return 200 \"ok\\n\"; }}
    }}
}}
"
            ),
        )
        .unwrap();
        let daemon = Daemon::start(
            "nginx",
            &format!("{} {}", nginx.display(), Self::args(&root)),
            root.join("nginx.pid"),
            root.join("logs/error.log"),
        );
        Self { daemon, root, port, nginx, _dir: dir }
    }

    fn args(root: &Path) -> String {
        let r = root.display();
        format!("-e {r}/logs/error.log -p {r} -c {r}/nginx.conf")
    }
}

impl Server for Nginx {
    fn target(&self) -> TargetConfig {
        let nginx = format!("{} {}", self.nginx.display(), Self::args(&self.root));
        TargetConfig::Nginx(web_config(
            &self.root.join("tls/site.crt"),
            Some(&self.root.join("tls/site.key")),
            self.port,
            &format!("{nginx} -t -q"),
            &failing_once(&format!("{nginx} -s reload"), &self.root.join("fail-reload")),
        ))
    }

    fn break_config(&self) {
        fs::write(self.root.join("conf.d/broken.conf"), "this_is_not_a_directive on;\n").unwrap();
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
        vec![self.root.join("nginx.conf")]
    }
}
