//! A private Dovecot (`dovecot -c <conf>`) with its own base directory and
//! an IMAP listener on a loopback port, configured for one test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, web_config, write_bootstrap};

pub struct Dovecot {
    // Dropped first: stops the master (and with it every process) while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub dovecot: PathBuf,
    pub doveconf: PathBuf,
    pub doveadm: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl Dovecot {
    pub fn start() -> Self {
        let dovecot = require("dovecot", "dovecot-imapd");
        let doveconf = require("doveconf", "dovecot-core");
        let doveadm = require("doveadm", "dovecot-core");
        assert!(
            Path::new("/usr/lib/dovecot/imap-login").exists(),
            "/usr/lib/dovecot/imap-login is missing: apt-get install -y dovecot-imapd"
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        // Login processes run as dovenull and must reach the base directory.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        for sub in ["tls", "conf.d", "run", "state", "mail"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        write_bootstrap(&root.join("tls/mail.crt"), Some(&root.join("tls/mail.key")));
        fs::write(root.join("users"), "").unwrap();
        let r = root.display();
        let name = root.file_name().unwrap().to_string_lossy();
        fs::write(
            root.join("dovecot.conf"),
            format!(
                "base_dir = {r}/run
state_dir = {r}/state
instance_name = certctl-{name}
protocols = imap
listen = 127.0.0.1
log_path = {r}/dovecot.log
ssl = yes
ssl_cert = <{r}/tls/mail.crt
ssl_key = <{r}/tls/mail.key
mail_location = maildir:{r}/mail/%u
passdb {{
  driver = passwd-file
  args = {r}/users
}}
userdb {{
  driver = passwd-file
  args = {r}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
!include_try {r}/conf.d/*.conf
"
            ),
        )
        .unwrap();
        let start = format!("{} -c {r}/dovecot.conf >>{r}/start.log 2>&1", dovecot.display());
        let daemon = Daemon::start("dovecot", &start, root.join("run/master.pid"), root.join("dovecot.log"));
        Self { daemon, root, port, dovecot, doveconf, doveadm, _dir: dir }
    }
}

impl Server for Dovecot {
    fn target(&self) -> TargetConfig {
        let conf = self.root.join("dovecot.conf");
        let conf = conf.display();
        TargetConfig::Dovecot(web_config(
            &self.root.join("tls/mail.crt"),
            Some(&self.root.join("tls/mail.key")),
            self.port,
            &format!("{} -c {conf} -n -x >/dev/null", self.doveconf.display()),
            &failing_once(&format!("{} -c {conf} reload", self.doveadm.display()), &self.root.join("fail-reload")),
        ))
    }

    fn break_config(&self) {
        fs::write(self.root.join("conf.d/broken.conf"), "this_is_not_a_setting = yes\n").unwrap();
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
        vec![self.root.join("dovecot.conf")]
    }
}
