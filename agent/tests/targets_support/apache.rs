//! A private apache on a loopback port, configured for one test.

use std::fs;
use std::path::PathBuf;

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, web_config, write_bootstrap};

const MODULES: &str = "/usr/lib/apache2/modules";

pub struct Apache {
    // Dropped first: stops the server while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub apache: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl Apache {
    pub fn start() -> Self {
        let apache = require("apache2", "apache2");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let port = free_port();
        for sub in ["tls", "conf.d", "htdocs", "logs"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        write_bootstrap(&root.join("tls/site.crt"), Some(&root.join("tls/site.key")));
        for module in ["mod_mpm_event.so", "mod_authz_core.so", "mod_socache_shmcb.so", "mod_ssl.so"] {
            assert!(
                PathBuf::from(MODULES).join(module).exists(),
                "{MODULES}/{module} is missing: apt-get install -y apache2"
            );
        }
        let r = root.display();
        fs::write(
            root.join("httpd.conf"),
            format!(
                "ServerRoot {r}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {r}/httpd.pid
Mutex file:{r} default
ErrorLog {r}/logs/error.log
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule socache_shmcb_module {MODULES}/mod_socache_shmcb.so
LoadModule ssl_module {MODULES}/mod_ssl.so
StartServers 1
ServerLimit 2
ThreadsPerChild 4
MaxRequestWorkers 8
DocumentRoot {r}/htdocs
SSLSessionCache shmcb:{r}/logs/ssl_scache(64000)
IncludeOptional {r}/conf.d/*.conf
<VirtualHost 127.0.0.1:{port}>
    ServerName localhost
    SSLEngine on
    SSLCertificateFile {r}/tls/site.crt
    SSLCertificateKeyFile {r}/tls/site.key
</VirtualHost>
"
            ),
        )
        .unwrap();
        let daemon = Daemon::start(
            "apache",
            &format!("{} {} -k start", apache.display(), args(&root)),
            root.join("httpd.pid"),
            root.join("logs/error.log"),
        );
        Self { daemon, root, port, apache, _dir: dir }
    }
}

fn args(root: &std::path::Path) -> String {
    let r = root.display();
    format!("-d {r} -f {r}/httpd.conf")
}

impl Server for Apache {
    fn target(&self) -> TargetConfig {
        let apache = format!("{} {}", self.apache.display(), args(&self.root));
        TargetConfig::Apache(web_config(
            &self.root.join("tls/site.crt"),
            Some(&self.root.join("tls/site.key")),
            self.port,
            &format!("{apache} -t"),
            &failing_once(&format!("{apache} -k graceful"), &self.root.join("fail-reload")),
        ))
    }

    fn break_config(&self) {
        fs::write(self.root.join("conf.d/broken.conf"), "ThisIsNotADirective on\n").unwrap();
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
        vec![self.root.join("httpd.conf")]
    }
}
