//! `certctl server`: runs the configured roles. Services always talk to each
//! other through gRPC clients, also when they share this process, so a
//! single-process install exercises the same paths as a cluster (ADR 0002).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use certctl_common::db::Database;
use certctl_common::shutdown::{self, Shutdown};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::service::RoutesBuilder;
use tonic::transport::{Channel, Endpoint};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::{Role, ServerConfig};

const DB_CHECK_EVERY: Duration = Duration::from_secs(5);
const INVENTORY_SERVICE: &str = "certctl.inventory.v1.InventoryService";
const AUDIT_SERVICES: [&str; 2] = ["certctl.audit.v1.AuditService", "certctl.audit.v1.AuditIngestService"];
const ISSUANCE_SERVICE: &str = "certctl.issuance.v1.IssuanceService";
const SCHEDULER_SERVICE: &str = "certctl.scheduler.v1.SchedulerService";
const NOTIFICATION_SERVICE: &str = "certctl.notification.v1.NotificationService";

pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    certctl_common::telemetry::init_logging(config.json_logs, "info");
    let (trigger, stop) = shutdown::channel();
    tokio::spawn(async move {
        shutdown::signal().await;
        tracing::info!("shutdown requested; draining");
        trigger.trigger();
    });

    let public = bind(config.listen).await?;
    let public_addr = public.local_addr()?;
    let runs_services = config.runs(Role::Inventory)
        || config.runs(Role::Audit)
        || config.runs(Role::Issuance)
        || config.runs(Role::Scheduler)
        || config.runs(Role::Notification);
    // With a gateway in this process the services listen on loopback only;
    // without one, they are what --listen exposes.
    let (services_listener, gateway_listener) = match (runs_services, config.runs(Role::Gateway)) {
        (true, true) => (Some(bind("127.0.0.1:0".parse()?).await?), Some(public)),
        (true, false) => (Some(public), None),
        (false, true) => (None, Some(public)),
        (false, false) => bail!("no role to run"),
    };
    let local_url = services_listener.as_ref().map(|l| l.local_addr().map(|a| format!("http://{a}"))).transpose()?;
    // A channel to each service some role here calls: local, or the peer URL.
    let peer = |role: Role, url: &Option<String>| -> anyhow::Result<Option<Channel>> {
        let url = if config.runs(role) { local_url.clone() } else { url.clone() };
        url.map(|u| channel(&u)).transpose()
    };
    let audit = peer(Role::Audit, &config.audit_url)?;
    let inventory = peer(Role::Inventory, &config.inventory_url)?;
    let issuance = peer(Role::Issuance, &config.issuance_url)?;
    let scheduler = peer(Role::Scheduler, &config.scheduler_url)?;
    let notification = peer(Role::Notification, &config.notification_url)?;
    // `ServerConfig` checked that every role's peers are known.
    let required = |channel: &Option<Channel>, name: &str| {
        channel.clone().with_context(|| format!("no address for the {name} service"))
    };

    let mut tasks = JoinSet::new();
    if let Some(listener) = services_listener {
        let peers = Peers { audit: audit.clone(), inventory: inventory.clone(), issuance: issuance.clone() };
        let routes = services(&config, peers, stop.clone(), &mut tasks).await?;
        let stop = stop.clone();
        tasks.spawn(async move {
            tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), stop.wait())
                .await
                .context("the gRPC server failed")
        });
    }
    if config.demo {
        // Seeded before the gateway opens, so a ready gateway means seeded data.
        tracing::warn!(
            "DEMO MODE: seeded sample data, for evaluation only; do not use this instance for real certificates"
        );
        crate::demo::seed(required(&inventory, "inventory")?).await.context("seeding the demo data failed")?;
    }
    if let Some(listener) = gateway_listener {
        let gateway = certctl_gateway::GatewayConfig {
            inventory: required(&inventory, "inventory")?,
            audit: required(&audit, "audit")?,
            issuance: required(&issuance, "issuance")?,
            scheduler: required(&scheduler, "scheduler")?,
            notification: required(&notification, "notification")?,
            web_dir: Some(config.web_dir.clone()),
            cors_allowed_origins: config.cors_allowed_origins.clone(),
        };
        if let Some(listen) = config.agent_listen {
            let hub = certctl_gateway::hub::HubConfig {
                listen,
                server_names: config.agent_names.clone(),
                hub_id: format!("{}/{}", host_name(), public_addr),
            };
            let running = certctl_gateway::hub::serve(
                hub,
                gateway.inventory.clone(),
                gateway.scheduler.clone(),
                gateway.issuance.clone(),
                stop.clone(),
            )
            .await
            .context("the agent hub cannot start")?;
            let address = running.address;
            tracing::info!(%address, "agents connect to https://{address} (`certctl agent token create` prints how)");
            // Waited for like the other roles, so that a drain finishes before the process exits.
            let serving = running.serving;
            tasks.spawn(async move { serving.await.context("the agent hub panicked") });
        }
        let stop = stop.clone();
        tasks.spawn(async move { certctl_gateway::serve(listener, gateway, stop).await.context("the gateway failed") });
    }
    let roles: Vec<String> = config.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
    tracing::info!(roles = %roles.join(","), listen = %public_addr, storage = %config.database.describe(), "certctl is up");

    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.context("a server task panicked").and_then(|r| r);
        if let Err(e) = outcome {
            if first_error.is_none() {
                tracing::error!("{e:#}");
                first_error = Some(e);
            }
            // One role failing takes the process down so a supervisor restarts it whole.
            tasks.abort_all();
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))
}

fn channel(url: &str) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("`{url}` is not a valid peer URL (expected e.g. http://127.0.0.1:7001)"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

/// Channels to the services the roles here call.
struct Peers {
    audit: Option<Channel>,
    inventory: Option<Channel>,
    issuance: Option<Channel>,
}

/// Connects, migrates and mounts every service role of this process.
async fn services(
    config: &ServerConfig,
    peers: Peers,
    stop: Shutdown,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) -> anyhow::Result<tonic::service::Routes> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let mut routes = RoutesBuilder::default();
    routes.add_service(health);
    routes.add_service(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(certctl_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("cannot build the gRPC reflection service")?,
    );
    if config.runs(Role::Audit) {
        let db = open(config, certctl_audit::SERVICE).await?;
        certctl_audit::migrate(&db).await?;
        let (public, ingest) = certctl_audit::build(certctl_audit::store(db.clone()));
        routes.add_service(public);
        routes.add_service(ingest);
        watch_database(tasks, db, reporter.clone(), &AUDIT_SERVICES, stop.clone());
    }
    if config.runs(Role::Inventory) {
        let db = open(config, certctl_inventory::SERVICE).await?;
        certctl_inventory::migrate(&db).await?;
        let audit = peers.audit.clone().context("the inventory relays its audit events: give --audit-url")?;
        match db.clone() {
            Database::Sqlite(pool) => routes.add_service(certctl_inventory::build(
                Arc::new(certctl_inventory::store::SqliteStore::new(pool)),
                audit,
                stop.clone(),
            )),
            Database::Postgres(pool) => routes.add_service(certctl_inventory::build(
                Arc::new(certctl_inventory::store::PostgresStore::new(pool)),
                audit,
                stop.clone(),
            )),
        };
        watch_database(tasks, db, reporter.clone(), &[INVENTORY_SERVICE], stop.clone());
    }
    if config.runs(Role::Issuance) {
        let master_key = master_key(config)?;
        let db = open(config, certctl_issuance::SERVICE).await?;
        certctl_issuance::migrate(&db).await?;
        let inventory =
            peers.inventory.clone().context("issuance records versions in the inventory: give --inventory-url")?;
        let audit = peers.audit.clone().context("issuance relays its audit events: give --audit-url")?;
        let issuance = certctl_issuance::Issuance::new(
            certctl_issuance::store(db.clone()),
            certctl_issuance::inventory::Inventory::new(inventory),
            certctl_issuance::IssuanceConfig {
                context: certctl_issuance::issuers::IssuerContext { master_key, public_url: config.public_url.clone() },
                crl_lifetime_secs: 86_400,
            },
        );
        issuance.start().await.context("the issuance service cannot start")?;
        routes.add_service(certctl_issuance::build(issuance, audit, stop.clone()));
        watch_database(tasks, db, reporter.clone(), &[ISSUANCE_SERVICE], stop.clone());
    }
    if config.runs(Role::Scheduler) {
        let db = open(config, certctl_scheduler::SERVICE).await?;
        certctl_scheduler::migrate(&db).await?;
        let upstreams = certctl_scheduler::upstream::Upstreams::new(
            peers.inventory.clone().context("the scheduler reads the inventory: give --inventory-url")?,
            peers.issuance.clone().context("the scheduler asks issuance to sign: give --issuance-url")?,
        );
        let audit = peers.audit.clone().context("the scheduler relays its audit events: give --audit-url")?;
        let scheduler_config = certctl_scheduler::SchedulerConfig {
            scan_interval: config.renewal_scan_interval,
            lease_secs: config.job_lease_secs,
            ..Default::default()
        };
        match db.clone() {
            Database::Sqlite(pool) => routes.add_service(certctl_scheduler::build(
                Arc::new(certctl_scheduler::SqliteStore::new(pool)),
                upstreams,
                audit,
                scheduler_config,
                stop.clone(),
            )),
            Database::Postgres(pool) => routes.add_service(certctl_scheduler::build(
                Arc::new(certctl_scheduler::PostgresStore::new(pool)),
                upstreams,
                audit,
                scheduler_config,
                stop.clone(),
            )),
        };
        watch_database(tasks, db, reporter.clone(), &[SCHEDULER_SERVICE], stop.clone());
    }
    if config.runs(Role::Notification) {
        let master_key = master_key(config)?;
        let db = open(config, certctl_notification::SERVICE).await?;
        certctl_notification::migrate(&db).await?;
        let upstreams = certctl_notification::upstream::Upstreams::new(
            peers.inventory.clone().context("notifications read the inventory: give --inventory-url")?,
            peers.audit.clone().context("notifications follow the audit trail: give --audit-url")?,
        );
        let audit = peers.audit.clone().context("notifications relay their audit events: give --audit-url")?;
        let built = certctl_notification::build(
            certctl_notification::store(db.clone()),
            master_key,
            upstreams,
            audit,
            certctl_notification::NotificationConfig::default(),
            stop.clone(),
        );
        routes.add_service(built.server);
        watch_database(tasks, db, reporter, &[NOTIFICATION_SERVICE], stop);
    }
    Ok(routes.routes())
}

/// The master key from `--master-key-file` or `CERTCTL_MASTER_KEY`. Only
/// `--demo` may run without one: it keeps a generated key in the data
/// directory, which is exactly what a real installation must not do.
fn master_key(config: &ServerConfig) -> anyhow::Result<certctl_common::secret::MasterKey> {
    use certctl_common::secret::MasterKey;
    if let Some(path) = &config.master_key_file {
        return Ok(MasterKey::from_file(path)?);
    }
    if let Ok(text) = std::env::var(crate::config::MASTER_KEY_ENV) {
        return MasterKey::from_base64(&text)
            .with_context(|| format!("{} is not usable", crate::config::MASTER_KEY_ENV));
    }
    if !config.demo {
        bail!(
            "the issuance and notification roles need a master key to seal CA keys and channel secrets at rest, \
             and none is configured. Create one with\n  \
             certctl admin new-master-key > /etc/certctl/master.key && chmod 600 /etc/certctl/master.key\n\
             and start with --master-key-file /etc/certctl/master.key (or set {} to the key itself). \
             Keep a copy somewhere safe: without it the CA keys cannot be opened.",
            crate::config::MASTER_KEY_ENV
        );
    }
    let path = config.demo_key_path();
    if let Ok(key) = MasterKey::from_file(&path) {
        return Ok(key);
    }
    let key = MasterKey::generate();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_private(&path, &key.to_base64())?;
    tracing::warn!(path = %path.display(), "DEMO MODE: generated a master key and stored it beside the data; never do this in production");
    Ok(key)
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{text}").with_context(|| format!("cannot write {}", path.display()))
}

async fn open(config: &ServerConfig, service: &str) -> anyhow::Result<Database> {
    Ok(Database::connect(&config.database, service).await?)
}

/// Reports a service NOT_SERVING while its database does not answer, so
/// `/readyz` and load balancers take the replica out until it does.
fn watch_database(
    tasks: &mut JoinSet<anyhow::Result<()>>,
    db: Database,
    reporter: HealthReporter,
    services: &'static [&'static str],
    stop: Shutdown,
) {
    tasks.spawn(async move {
        let mut last = None;
        loop {
            let ok = db.ping().await;
            if last != Some(ok) {
                let status = if ok { ServingStatus::Serving } else { ServingStatus::NotServing };
                for service in services {
                    reporter.set_service_status(*service, status).await;
                }
                if last.is_some() {
                    if ok {
                        tracing::info!(?services, "database reachable again");
                    } else {
                        tracing::warn!(?services, "database unreachable; reporting NOT_SERVING");
                    }
                }
                last = Some(ok);
            }
            tokio::select! {
                _ = tokio::time::sleep(DB_CHECK_EVERY) => {}
                _ = stop.clone().wait() => return Ok(()),
            }
        }
    });
}

/// This host's name, for naming the hub on the agents it holds.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}
