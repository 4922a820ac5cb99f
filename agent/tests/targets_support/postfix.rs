//! A private Postfix instance (`postfix -c <dir>`) with its own queue, its
//! own log file and one smtpd on a loopback port, configured for one test.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use certctl_domain::inventory::TargetConfig;

use super::{Daemon, Server, failing_once, free_port, require, sh, web_config, write_bootstrap};

pub struct Postfix {
    // Dropped first: stops the master (and with it every daemon) while its pid file exists.
    pub daemon: Daemon,
    pub root: PathBuf,
    pub port: u16,
    pub postfix: PathBuf,
    pub certificate: PathBuf,
    pub key: Option<PathBuf>,
    main_cf: String,
    pub _dir: tempfile::TempDir,
}

/// The services a private instance needs: smtpd on the test's port, the
/// queue's daemons, and postlogd for `maillog_file`. None is chrooted.
const MASTER_CF: &str = "pickup    unix  n - n 60    1 pickup
cleanup   unix  n - n -     0 cleanup
qmgr      unix  n - n 300   1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -     - trivial-rewrite
bounce    unix  - - n -     0 bounce
defer     unix  - - n -     0 bounce
trace     unix  - - n -     0 bounce
verify    unix  - - n -     1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -     - proxymap
smtp      unix  - - n -     - smtp
relay     unix  - - n -     - smtp
showq     unix  n - n -     - showq
error     unix  - - n -     - error
retry     unix  - - n -     - error
discard   unix  - - n -     - discard
anvil     unix  - - n -     1 anvil
scache    unix  - - n -     1 scache
postlog   unix-dgram n - n - 1 postlogd
";

impl Postfix {
    /// `certificate` and `key` are file names under the instance's `tls/`.
    /// Without a key, the one file is `smtpd_tls_chain_files`; with one,
    /// they are `smtpd_tls_cert_file` and `smtpd_tls_key_file`.
    pub fn start(certificate: &str, key: Option<&str>) -> Self {
        let postfix = require("postfix", "postfix");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        // The daemons run as `postfix` and must reach the queue.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        for sub in ["tls", "conf", "queue", "data"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        sh(&format!("chown postfix: {}", root.join("data").display()));
        let certificate = root.join("tls").join(certificate);
        let key = key.map(|k| root.join("tls").join(k));
        match &key {
            // The combined file holds the key first, as smtpd_tls_chain_files wants it.
            None => {
                let bootstrap = super::Pki::new().bundle("bootstrap");
                let combined = format!("{}{}{}", bootstrap.key_pem, bootstrap.leaf_pem, bootstrap.chain_pem);
                fs::write(&certificate, combined).unwrap();
                fs::set_permissions(&certificate, fs::Permissions::from_mode(0o600)).unwrap();
            }
            Some(key) => write_bootstrap(&certificate, Some(key)),
        }
        let tls_files = match &key {
            None => format!("smtpd_tls_chain_files = {}", certificate.display()),
            Some(key) => {
                format!("smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}", certificate.display(), key.display())
            }
        };
        let r = root.display();
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {r}/queue
data_directory = {r}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
notify_classes =
maillog_file = {r}/maillog
maillog_file_prefixes = {r}
smtpd_tls_security_level = may
{tls_files}
"
        );
        fs::write(root.join("conf/main.cf"), &main_cf).unwrap();
        fs::write(root.join("conf/master.cf"), format!("127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF}")).unwrap();
        let start = format!("{} start >>{r}/start.log 2>&1", command(&postfix, &root));
        let daemon = Daemon::start("postfix", &start, root.join("queue/pid/master.pid"), root.join("maillog"));
        Self { daemon, root, port, postfix, certificate, key, main_cf, _dir: dir }
    }
}

/// postfix with this instance's configuration directory.
fn command(postfix: &Path, root: &Path) -> String {
    format!("{} -c {}/conf", postfix.display(), root.display())
}

impl Server for Postfix {
    fn target(&self) -> TargetConfig {
        let postfix = command(&self.postfix, &self.root);
        TargetConfig::Postfix(web_config(
            &self.certificate,
            self.key.as_deref(),
            self.port,
            &format!("{postfix} check"),
            &failing_once(&format!("{postfix} reload"), &self.root.join("fail-reload")),
        ))
    }

    fn break_config(&self) {
        fs::write(self.root.join("conf/main.cf"), format!("{}this line is not a parameter\n", self.main_cf)).unwrap();
    }

    fn repair_config(&self) {
        fs::write(self.root.join("conf/main.cf"), &self.main_cf).unwrap();
    }

    fn fail_next_reload(&self) {
        fs::write(self.root.join("fail-reload"), "").unwrap();
    }

    fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    fn config_files(&self) -> Vec<PathBuf> {
        vec![self.root.join("conf/main.cf")]
    }

    /// `postfix check` reads main.cf and master.cf, not the TLS files.
    fn validation_opens_the_files(&self) -> bool {
        false
    }
}
