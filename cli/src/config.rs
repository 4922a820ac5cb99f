//! `certctl server`'s configuration, layered: the TOML file, then `CERTCTL_*`
//! environment variables, then flags (clap reads env and flags; the file
//! fills what neither set). Every key is documented in
//! `deploy/certctl.example.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use certctl_common::db::DatabaseConfig;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "certctl-data";
pub const DEFAULT_WEB_DIR: &str = "web/dist";
/// Holds the master key itself (base64), as an alternative to `--master-key-file`.
pub const MASTER_KEY_ENV: &str = "CERTCTL_MASTER_KEY";

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// A TOML config file (see deploy/certctl.example.toml).
    #[arg(long, env = "CERTCTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Roles to run: `all`, or a comma-separated list of inventory, audit, issuance, scheduler, notification, gateway.
    #[arg(long, env = "CERTCTL_ROLES", value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// The public address: the gateway's when it runs here, else the services' gRPC address [default: 127.0.0.1:8080].
    #[arg(long, env = "CERTCTL_LISTEN")]
    pub listen: Option<String>,
    /// Directory for the embedded SQLite databases [default: ./certctl-data].
    #[arg(long, env = "CERTCTL_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL; when set, every service keeps its data in its own schema there instead of SQLite.
    #[arg(long, env = "CERTCTL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seeds realistic demo data into an empty inventory.
    #[arg(long, env = "CERTCTL_DEMO")]
    pub demo: bool,
    /// The inventory service's URL when it runs in another process.
    #[arg(long, env = "CERTCTL_INVENTORY_URL")]
    pub inventory_url: Option<String>,
    /// The audit service's URL when it runs in another process.
    #[arg(long, env = "CERTCTL_AUDIT_URL")]
    pub audit_url: Option<String>,
    /// The issuance service's URL when it runs in another process.
    #[arg(long, env = "CERTCTL_ISSUANCE_URL")]
    pub issuance_url: Option<String>,
    /// The scheduler service's URL when it runs in another process.
    #[arg(long, env = "CERTCTL_SCHEDULER_URL")]
    pub scheduler_url: Option<String>,
    /// The notification service's URL when it runs in another process.
    #[arg(long, env = "CERTCTL_NOTIFICATION_URL")]
    pub notification_url: Option<String>,
    /// Seconds between the scheduler's renewal scans of the inventory [default: 60].
    #[arg(long, env = "CERTCTL_RENEWAL_SCAN_INTERVAL")]
    pub renewal_scan_interval: Option<u64>,
    /// Seconds a scheduler replica leases a job for; a replica that dies leaves its jobs to others after
    /// this long [default: 60, at least 3].
    #[arg(long, env = "CERTCTL_JOB_LEASE")]
    pub job_lease: Option<u64>,
    /// File holding the master key (32 random bytes, base64) that seals CA and other private keys at rest;
    /// `CERTCTL_MASTER_KEY` may hold the key itself instead. Make one with `certctl admin new-master-key`.
    #[arg(long, env = "CERTCTL_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The URL relying parties reach this platform's gateway at; CRL and OCSP URLs in issued certificates
    /// start with it [default: http://<listen>].
    #[arg(long, env = "CERTCTL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The built web GUI the gateway serves at / [default: web/dist].
    #[arg(long, env = "CERTCTL_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Origins allowed to call the API from a browser on another origin (comma-separated).
    #[arg(long, env = "CERTCTL_CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Option<Vec<String>>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "CERTCTL_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Where the gateway's agent hub listens for agents (mTLS), or `off` [default: <listen's IP>:8444].
    #[arg(long, env = "CERTCTL_AGENT_LISTEN")]
    pub agent_listen: Option<String>,
    /// Names agents reach the hub by, for its certificate (comma-separated DNS names or IPs)
    /// [default: localhost, the listen IP and this host's name].
    #[arg(long, env = "CERTCTL_AGENT_NAMES", value_delimiter = ',')]
    pub agent_names: Option<Vec<String>>,
}

/// The file's keys; unknown keys are an error so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    roles: Option<Vec<String>>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    demo: Option<bool>,
    web_dir: Option<PathBuf>,
    cors_allowed_origins: Option<Vec<String>>,
    log_format: Option<String>,
    master_key_file: Option<PathBuf>,
    public_url: Option<String>,
    renewal_scan_interval: Option<u64>,
    job_lease: Option<u64>,
    agent_listen: Option<String>,
    agent_names: Option<Vec<String>>,
    #[serde(default)]
    peers: Peers,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Peers {
    inventory: Option<String>,
    audit: Option<String>,
    issuance: Option<String>,
    scheduler: Option<String>,
    notification: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Inventory,
    Audit,
    Issuance,
    Scheduler,
    Notification,
    Gateway,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Inventory, Role::Audit, Role::Issuance, Role::Scheduler, Role::Notification, Role::Gateway];

    fn parse(name: &str) -> anyhow::Result<Vec<Role>> {
        Ok(match name.trim() {
            "all" => Self::ALL.to_vec(),
            "inventory" => vec![Self::Inventory],
            "audit" => vec![Self::Audit],
            "issuance" => vec![Self::Issuance],
            "scheduler" => vec![Self::Scheduler],
            "notification" => vec![Self::Notification],
            "gateway" => vec![Self::Gateway],
            other => bail!(
                "unknown role `{other}`: expected all, inventory, audit, issuance, scheduler, notification or gateway"
            ),
        })
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub roles: Vec<Role>,
    pub listen: SocketAddr,
    pub database: DatabaseConfig,
    pub demo: bool,
    pub inventory_url: Option<String>,
    pub audit_url: Option<String>,
    pub issuance_url: Option<String>,
    pub scheduler_url: Option<String>,
    pub notification_url: Option<String>,
    pub renewal_scan_interval: std::time::Duration,
    pub job_lease_secs: i64,
    pub master_key_file: Option<PathBuf>,
    pub public_url: String,
    pub web_dir: PathBuf,
    pub cors_allowed_origins: Vec<String>,
    pub json_logs: bool,
    /// The agent hub's port; `None` when turned off.
    pub agent_listen: Option<SocketAddr>,
    pub agent_names: Vec<String>,
}

impl ServerConfig {
    pub fn runs(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Where `--demo` keeps the master key it generates.
    pub fn demo_key_path(&self) -> PathBuf {
        let dir = match &self.database {
            DatabaseConfig::Sqlite { data_dir } => data_dir.clone(),
            DatabaseConfig::Postgres { .. } => PathBuf::from(DEFAULT_DATA_DIR),
        };
        dir.join("demo-master.key")
    }

    pub fn load(args: ServerArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("{} is not a valid certctl config", path.display()))?
            }
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    fn merge(args: ServerArgs, file: FileConfig) -> anyhow::Result<Self> {
        let mut roles = Vec::new();
        for name in args.roles.or(file.roles).unwrap_or_else(|| vec!["all".into()]) {
            for role in Role::parse(&name)? {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
        if roles.is_empty() {
            bail!(
                "--roles names no role: expected all, or some of inventory, audit, issuance, scheduler, notification, gateway"
            );
        }
        let listen = args.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr =
            listen.parse().with_context(|| format!("--listen `{listen}` is not an address like 127.0.0.1:8080"))?;
        let database = match args.database_url.or(file.database_url).filter(|u| !u.is_empty()) {
            Some(url) => DatabaseConfig::Postgres { url },
            None => DatabaseConfig::Sqlite {
                data_dir: args.data_dir.or(file.data_dir).unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
            },
        };
        let json_logs = match args.log_format.or(file.log_format).as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("--log-format `{other}` is not one of text, json"),
        };
        let config = Self {
            roles,
            listen,
            database,
            demo: args.demo || file.demo.unwrap_or(false),
            inventory_url: args.inventory_url.or(file.peers.inventory),
            audit_url: args.audit_url.or(file.peers.audit),
            issuance_url: args.issuance_url.or(file.peers.issuance),
            scheduler_url: args.scheduler_url.or(file.peers.scheduler),
            notification_url: args.notification_url.or(file.peers.notification),
            renewal_scan_interval: match args.renewal_scan_interval.or(file.renewal_scan_interval).unwrap_or(60) {
                0 => bail!("--renewal-scan-interval must be at least 1 second"),
                secs => std::time::Duration::from_secs(secs),
            },
            job_lease_secs: match args.job_lease.or(file.job_lease).unwrap_or(60) {
                secs @ 3..=86_400 => secs as i64,
                other => bail!("--job-lease {other} is out of range: give 3 to 86400 seconds"),
            },
            master_key_file: args.master_key_file.or(file.master_key_file),
            public_url: public_url(args.public_url.or(file.public_url), listen)?,
            web_dir: args.web_dir.or(file.web_dir).unwrap_or_else(|| DEFAULT_WEB_DIR.into()),
            cors_allowed_origins: args.cors_allowed_origins.or(file.cors_allowed_origins).unwrap_or_default(),
            json_logs,
            agent_listen: agent_listen(args.agent_listen.or(file.agent_listen), listen)?,
            agent_names: Vec::new(),
        };
        let config = Self {
            agent_names: match args.agent_names.or(file.agent_names) {
                Some(names) => names.into_iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect(),
                None => default_agent_names(config.agent_listen),
            },
            ..config
        };
        config.check_peers()?;
        Ok(config)
    }

    /// Every role must reach the services it calls: in this process or at a URL.
    fn check_peers(&self) -> anyhow::Result<()> {
        let needs_audit = self.runs(Role::Inventory) || self.runs(Role::Issuance) || self.runs(Role::Gateway);
        if needs_audit && !self.runs(Role::Audit) && self.audit_url.is_none() {
            bail!(
                "the audit role does not run in this process: give its address with --audit-url (e.g. http://127.0.0.1:7002)"
            );
        }
        if self.runs(Role::Gateway) && !self.runs(Role::Inventory) && self.inventory_url.is_none() {
            bail!(
                "the inventory role does not run in this process: give its address with --inventory-url (e.g. http://127.0.0.1:7001)"
            );
        }
        let needs_audit = self.runs(Role::Scheduler);
        if needs_audit && !self.runs(Role::Audit) && self.audit_url.is_none() {
            bail!("the scheduler relays its audit events: give the audit role's address with --audit-url");
        }
        if self.runs(Role::Scheduler) && !self.runs(Role::Issuance) && self.issuance_url.is_none() {
            bail!(
                "the scheduler asks issuance to sign, which does not run in this process: give its address with \
                 --issuance-url (e.g. http://127.0.0.1:7003)"
            );
        }
        if self.runs(Role::Gateway) && !self.runs(Role::Scheduler) && self.scheduler_url.is_none() {
            bail!(
                "the scheduler role does not run in this process: give its address with --scheduler-url (e.g. http://127.0.0.1:7004)"
            );
        }
        if self.runs(Role::Notification) && !self.runs(Role::Audit) && self.audit_url.is_none() {
            bail!(
                "notifications follow the audit trail and relay their own audit events: give the audit role's \
                 address with --audit-url (e.g. http://127.0.0.1:7002)"
            );
        }
        if self.runs(Role::Gateway) && !self.runs(Role::Notification) && self.notification_url.is_none() {
            bail!(
                "the notification role does not run in this process: give its address with --notification-url \
                 (e.g. http://127.0.0.1:7005)"
            );
        }
        let needs_inventory = self.runs(Role::Issuance) || self.runs(Role::Scheduler) || self.runs(Role::Notification);
        if needs_inventory && !self.runs(Role::Inventory) && self.inventory_url.is_none() {
            bail!(
                "issuance, the scheduler and notifications call the inventory, which does not run in this process: \
                 give its address with --inventory-url (e.g. http://127.0.0.1:7001)"
            );
        }
        if self.runs(Role::Gateway) && !self.runs(Role::Issuance) && self.issuance_url.is_none() {
            bail!(
                "the issuance role does not run in this process: give its address with --issuance-url (e.g. http://127.0.0.1:7003)"
            );
        }
        if self.demo && !self.runs(Role::Inventory) {
            bail!("--demo seeds the inventory, so it needs the inventory role in this process");
        }
        Ok(())
    }
}

/// The default agent port: the public listener's IP, port 8444.
pub const DEFAULT_AGENT_PORT: u16 = 8444;

fn agent_listen(given: Option<String>, listen: SocketAddr) -> anyhow::Result<Option<SocketAddr>> {
    match given.as_deref().map(str::trim) {
        Some("off") => Ok(None),
        Some(addr) => addr
            .parse()
            .map(Some)
            .with_context(|| format!("--agent-listen `{addr}` is not an address like 127.0.0.1:8444, or `off`")),
        None => Ok(Some(SocketAddr::new(listen.ip(), DEFAULT_AGENT_PORT))),
    }
}

/// What agents are likely to call the hub: localhost, its IP, this host.
fn default_agent_names(listen: Option<SocketAddr>) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if let Some(addr) = listen
        && !addr.ip().is_unspecified()
        && !addr.ip().is_loopback()
    {
        names.push(addr.ip().to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim().to_owned();
        // A CA signs fully qualified names only; a bare host name would refuse the hub's certificate.
        if host.contains('.')
            && certctl_domain::inventory::validate_dns_name("hostname", &host).is_ok()
            && !names.contains(&host)
        {
            names.push(host);
        }
    }
    names
}

/// `--public-url`, or the listen address as a URL; no trailing slash.
fn public_url(given: Option<String>, listen: SocketAddr) -> anyhow::Result<String> {
    let url = given.unwrap_or_else(|| format!("http://{listen}"));
    let url = url.trim_end_matches('/').to_owned();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.parse::<http::Uri>().is_ok_and(|u| u.host().is_some() && u.query().is_none());
    if !ok {
        bail!("--public-url `{url}` is not an http(s) URL like https://certs.example.com");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn args(flags: &[&str]) -> ServerArgs {
        Wrapper::parse_from(std::iter::once("certctl").chain(flags.iter().copied())).args
    }

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_run_everything_on_sqlite() {
        let c = ServerConfig::merge(args(&[]), FileConfig::default()).unwrap();
        assert_eq!(c.roles, Role::ALL.to_vec());
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(
            matches!(c.database, DatabaseConfig::Sqlite { ref data_dir } if data_dir == &PathBuf::from(DEFAULT_DATA_DIR))
        );
    }

    #[test]
    fn flags_override_the_file() {
        let f = file("listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/certctl\"\n[peers]\naudit = \"http://a:1\"\n");
        let c = ServerConfig::merge(args(&["--listen", "127.0.0.1:9100"]), f).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert!(
            matches!(c.database, DatabaseConfig::Sqlite { ref data_dir } if data_dir == &PathBuf::from("/srv/certctl"))
        );
        assert_eq!(c.audit_url.as_deref(), Some("http://a:1"));
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let e = ServerConfig::merge(args(&["--roles", "inventory,billing"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("unknown role `billing`"), "{e}");
        let e = ServerConfig::merge(args(&["--listen", "localhost"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("--listen"), "{e}");
        let e = ServerConfig::merge(args(&["--roles", "gateway", "--audit-url", "http://a:1"]), FileConfig::default())
            .unwrap_err();
        assert!(e.to_string().contains("--inventory-url"), "{e}");
        let e = ServerConfig::merge(args(&["--roles", "audit", "--demo"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("--demo"), "{e}");
    }

    #[test]
    fn the_notification_role_needs_its_peers() {
        let e = ServerConfig::merge(args(&["--roles", "notification"]), FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("--audit-url"), "{e}");
        let e =
            ServerConfig::merge(args(&["--roles", "notification", "--audit-url", "http://a:1"]), FileConfig::default())
                .unwrap_err();
        assert!(e.to_string().contains("--inventory-url"), "{e}");
        let f = file("[peers]\ninventory = \"http://i:1\"\naudit = \"http://a:1\"\nnotification = \"http://n:1\"\n");
        let c = ServerConfig::merge(args(&["--roles", "notification"]), f).unwrap();
        assert_eq!(c.roles, vec![Role::Notification]);
        assert_eq!(c.notification_url.as_deref(), Some("http://n:1"));
        let e = ServerConfig::merge(
            args(&[
                "--roles",
                "gateway",
                "--audit-url",
                "http://a:1",
                "--inventory-url",
                "http://i:1",
                "--issuance-url",
                "http://s:1",
                "--scheduler-url",
                "http://j:1",
            ]),
            FileConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--notification-url"), "{e}");
    }

    #[test]
    fn a_database_url_selects_postgres() {
        let c = ServerConfig::merge(
            args(&["--database-url", "postgres://u@127.0.0.1:5432/certctl", "--roles", "inventory,audit"]),
            FileConfig::default(),
        )
        .unwrap();
        assert!(matches!(c.database, DatabaseConfig::Postgres { .. }));
        assert_eq!(c.roles, vec![Role::Inventory, Role::Audit]);
    }
}
