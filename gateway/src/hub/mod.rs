//! The agent hub: terminates agents' streams on the agent port (mTLS) and
//! carries work between them and the scheduler.
//!
//! The hub keeps no state but its live streams. The scheduler owns the work:
//! the hub watches it for notices naming agents with new work
//! (`WatchAgentWork`), fetches the commands of the agents it holds
//! (`ListAgentWork`) and forwards each answer (`CompleteAgentWork`). The
//! inventory owns agents: it redeems join tokens, records identities, and
//! hears heartbeats in batches. Any number of hubs run side by side; an
//! agent's work reaches whichever hub holds its stream.
//!
//! An agent is who its client certificate says only if that certificate's
//! serial is the identity the inventory recorded for the agent it claims to
//! be, and the agent is not retired: a replaced or retired identity is
//! refused even though the platform CA signed it.

mod session;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_common::shutdown::Shutdown;
use certctl_proto::agent as pb;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use certctl_proto::scheduler::scheduler_service_client::SchedulerServiceClient;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::GatewayError;
use session::Session;

/// How often agents send heartbeats. Three fit in the inventory's ONLINE
/// window (90 s), so one lost heartbeat does not show an agent as stale;
/// at 20 s, 10,000 idle agents' heartbeats alone cost the hub 5% of a core.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// How long a new stream may take to send its Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the hub tells the inventory who it has heard from.
const SESSION_FLUSH: Duration = Duration::from_secs(10);
/// Most new streams recorded in one inventory call.
const ARRIVAL_BATCH: usize = 1000;
/// How long a draining hub waits for its streams to end.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Lifetime asked for agent identities; agents renew at two thirds of it.
const IDENTITY_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Largest frame an agent may send (a discovery report of many certificates).
pub const MAX_AGENT_FRAME: usize = 4 << 20;
/// The platform CA's issuer and the profiles of its identities.
const PLATFORM_ISSUER: &str = "issuers/platform";
const AGENT_PROFILE: &str = "profiles/tls-client";
const HUB_PROFILE: &str = "profiles/tls-server";

/// Where the agent port listens and what names its certificate carries.
#[derive(Debug, Clone)]
pub struct HubConfig {
    pub listen: SocketAddr,
    /// DNS names and IP addresses agents reach the hub by.
    pub server_names: Vec<String>,
    /// This hub's name, recorded on the agents it holds.
    pub hub_id: String,
}

#[derive(Clone)]
pub(crate) struct Upstreams {
    inventory: InventoryServiceClient<Channel>,
    scheduler: SchedulerServiceClient<Channel>,
    issuance: IssuanceServiceClient<Channel>,
}

pub(crate) fn request<T>(message: T, actor: &str) -> Request<T> {
    let mut request = Request::new(message);
    Caller { actor: actor.to_owned(), request_id: String::new() }.stamp(&mut request);
    request.set_timeout(Duration::from_secs(30));
    request
}

/// The live streams, by agent name.
#[derive(Clone)]
pub struct AgentHub {
    pub(crate) config: Arc<HubConfig>,
    pub(crate) upstreams: Upstreams,
    pub(crate) sessions: Arc<Mutex<HashMap<String, Arc<Session>>>>,
    pub(crate) ca_pem: Arc<String>,
    arrivals: mpsc::Sender<Arrival>,
}

/// A new stream's session, waiting to be recorded with the others that
/// arrived meanwhile; `answer` says whether the inventory refused it.
struct Arrival {
    session: certctl_proto::inventory::AgentSession,
    answer: oneshot::Sender<Result<bool, Status>>,
}

impl AgentHub {
    /// How many agents hold a stream here.
    pub fn connected(&self) -> usize {
        self.sessions.lock().expect("sessions").len()
    }

    fn session(&self, agent: &str) -> Option<Arc<Session>> {
        self.sessions.lock().expect("sessions").get(agent).cloned()
    }

    fn held(&self) -> Vec<String> {
        self.sessions.lock().expect("sessions").keys().cloned().collect()
    }

    /// Sends the agent every command waiting for it that its stream has not
    /// carried yet.
    pub(crate) async fn push_work(&self, agent: &str) {
        let Some(session) = self.session(agent) else { return };
        let mut token = String::new();
        loop {
            let answer = self
                .upstreams
                .scheduler
                .clone()
                .list_agent_work(request(
                    certctl_proto::scheduler::ListAgentWorkRequest {
                        agent: agent.to_owned(),
                        page_size: 100,
                        page_token: token.clone(),
                    },
                    "agent-hub",
                ))
                .await;
            let page = match answer {
                Ok(page) => page.into_inner(),
                Err(e) => {
                    tracing::warn!(%agent, error = %e, "cannot list the agent's work");
                    return;
                }
            };
            for work in page.work {
                if let Some(command) = work.command {
                    session.send_command(command);
                }
            }
            if page.next_page_token.is_empty() {
                return;
            }
            token = page.next_page_token;
        }
    }

    /// Follows the scheduler's agent notices for as long as the hub runs.
    async fn follow_work(self, shutdown: Shutdown) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let watch = self
                .upstreams
                .scheduler
                .clone()
                .watch_agent_work(certctl_proto::scheduler::WatchAgentWorkRequest {})
                .await;
            match watch {
                Ok(stream) => {
                    backoff = Duration::from_millis(200);
                    let mut stream = stream.into_inner();
                    loop {
                        let next = tokio::select! {
                            next = stream.message() => next,
                            () = shutdown.clone().wait() => return,
                        };
                        match next {
                            Ok(Some(notice)) => {
                                let agents =
                                    if notice.agents.iter().any(|a| a == "*") { self.held() } else { notice.agents };
                                for agent in agents {
                                    if self.session(&agent).is_some() {
                                        let hub = self.clone();
                                        tokio::spawn(async move { hub.push_work(&agent).await });
                                    }
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(error = %e, "lost the scheduler's agent work stream");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "cannot watch the scheduler for agent work"),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = shutdown.clone().wait() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    /// Tells the inventory, in batches, which agents were heard from.
    async fn flush_sessions(self, shutdown: Shutdown) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(SESSION_FLUSH) => {}
                () = shutdown.clone().wait() => return,
            }
            let heard: Vec<_> = {
                let sessions = self.sessions.lock().expect("sessions");
                sessions.values().filter(|s| s.take_heard()).map(|s| s.agent.clone()).collect()
            };
            for chunk in heard.chunks(10_000) {
                let sessions = chunk
                    .iter()
                    .map(|agent| certctl_proto::inventory::AgentSession {
                        agent: agent.clone(),
                        hub: self.config.hub_id.clone(),
                        ..Default::default()
                    })
                    .collect();
                match self.record_sessions(sessions).await {
                    Ok(refused) => self.drop_refused(&refused),
                    Err(e) => tracing::warn!(error = %e, agents = chunk.len(), "cannot record agent heartbeats"),
                }
            }
        }
    }

    /// Records a new stream's session (hub, version, capabilities) before
    /// the stream is served; true when the inventory refused the agent.
    /// Arrivals are recorded together: after a gateway restart thousands of
    /// agents connect within seconds, and one inventory write each would
    /// queue them all behind SQLite's single writer. The caller has checked
    /// the session alone (`check_arrival`), so one agent's bad Hello cannot
    /// fail the batch.
    pub(crate) async fn record_arrival(&self, session: certctl_proto::inventory::AgentSession) -> Result<bool, Status> {
        let (answer, answered) = oneshot::channel();
        let closing = || Status::unavailable("the agent hub is shutting down");
        self.arrivals.send(Arrival { session, answer }).await.map_err(|_| closing())?;
        answered.await.map_err(|_| closing())?
    }

    async fn record_arrivals(self, mut queued: mpsc::Receiver<Arrival>, shutdown: Shutdown) {
        let mut batch = Vec::with_capacity(ARRIVAL_BATCH);
        loop {
            let received = tokio::select! {
                received = queued.recv_many(&mut batch, ARRIVAL_BATCH) => received,
                () = shutdown.clone().wait() => return,
            };
            if received == 0 {
                return;
            }
            let sessions = batch.iter().map(|a| a.session.clone()).collect();
            let recorded = self.record_sessions(sessions).await;
            for arrival in batch.drain(..) {
                let answer = match &recorded {
                    Ok(refused) => Ok(refused.contains(&arrival.session.agent)),
                    Err(e) => Err(e.clone()),
                };
                let _ = arrival.answer.send(answer);
            }
        }
    }

    /// Records that these agents were heard from; returns those the
    /// inventory refused (retired since they connected, or deleted).
    pub(crate) async fn record_sessions(
        &self,
        sessions: Vec<certctl_proto::inventory::AgentSession>,
    ) -> Result<Vec<String>, Status> {
        self.upstreams
            .inventory
            .clone()
            .record_agent_sessions(request(
                certctl_proto::inventory::RecordAgentSessionsRequest { sessions },
                "agent-hub",
            ))
            .await
            .map(|answer| answer.into_inner().refused_agents)
    }

    /// Ends the streams of agents the inventory no longer accepts.
    pub(crate) fn drop_refused(&self, refused: &[String]) {
        for agent in refused {
            if let Some(session) = self.sessions.lock().expect("sessions").remove(agent) {
                tracing::warn!(%agent, "the agent was retired or removed; ending its stream");
                session.close(Status::permission_denied(format!("{agent} was retired; its identity is refused")));
            }
        }
    }

    /// Signs an identity CSR with the platform CA.
    pub(crate) async fn sign_identity(
        &self,
        csr_pem: &str,
        profile: &str,
        actor: &str,
    ) -> Result<certctl_proto::issuance::IssuedCertificate, Status> {
        let lifetime = (profile == AGENT_PROFILE)
            .then(|| pbjson_types::Duration { seconds: IDENTITY_LIFETIME.as_secs() as i64, nanos: 0 });
        self.upstreams
            .issuance
            .clone()
            .sign_certificate(request(
                certctl_proto::issuance::SignCertificateRequest {
                    issuer: PLATFORM_ISSUER.to_owned(),
                    profile: profile.to_owned(),
                    csr_pem: csr_pem.to_owned(),
                    lifetime,
                    ..Default::default()
                },
                actor,
            ))
            .await?
            .into_inner()
            .issued_certificate
            .ok_or_else(|| Status::unavailable("the platform CA gave an empty answer"))
    }

    /// Ends every stream with UNAVAILABLE so agents reconnect elsewhere.
    fn drain(&self) {
        let sessions: Vec<_> = self.sessions.lock().expect("sessions").drain().map(|(_, s)| s).collect();
        for session in sessions {
            session.close(Status::unavailable("the hub is draining; reconnect"));
        }
    }
}

impl AgentHub {
    /// A fresh key and a certificate for it from the platform CA, naming
    /// `server_names`, and when to renew it (two thirds into its lifetime).
    async fn own_certificate(&self) -> Result<(String, Vec<u8>, i64), GatewayError> {
        let key = certctl_pki::KeyType::EcdsaP256.generate().map_err(|e| GatewayError::Hub(e.to_string()))?;
        let csr = certctl_pki::build_csr(&key, "certctl agent hub", &self.config.server_names)
            .map_err(|e| GatewayError::Hub(e.to_string()))?;
        let issued = self.sign_identity(&csr, HUB_PROFILE, "agent-hub").await.map_err(|e| {
            GatewayError::Hub(format!("the platform CA refused the hub's certificate: {}", e.message()))
        })?;
        let (from, until) = (issued.not_before.map_or(0, |t| t.seconds), issued.not_after.map_or(0, |t| t.seconds));
        Ok((issued.pem_chain, key.serialize_der(), from + (until - from) * 2 / 3))
    }

    /// Replaces the hub's certificate before it expires, for as long as the
    /// hub runs; a failed attempt is retried in a minute.
    async fn renew_own_certificate(self, certificate: Arc<tls::HubCertificate>, mut renew_at: i64, shutdown: Shutdown) {
        loop {
            let wait = (renew_at - certctl_domain::now()).max(0) as u64;
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(wait)) => {}
                () = shutdown.clone().wait() => return,
            }
            match self.own_certificate().await {
                Ok((chain, key, next)) => match certificate.replace(&chain, key) {
                    Ok(()) => {
                        tracing::info!("renewed the agent hub's certificate");
                        renew_at = next;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot use the hub's renewed certificate");
                        renew_at = certctl_domain::now() + 60;
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the agent hub's certificate; retrying in a minute");
                    renew_at = certctl_domain::now() + 60;
                }
            }
        }
    }
}

/// The platform CA's root certificate.
async fn platform_root(issuance: &mut IssuanceServiceClient<Channel>) -> Result<String, GatewayError> {
    let mut backoff = Duration::from_millis(100);
    for _ in 0..50 {
        let answer = issuance
            .list_authorities(request(
                certctl_proto::issuance::ListAuthoritiesRequest { parent: PLATFORM_ISSUER.to_owned() },
                "agent-hub",
            ))
            .await;
        match answer {
            Ok(a) => {
                return a
                    .into_inner()
                    .authorities
                    .into_iter()
                    .find(|a| a.role == "root")
                    .map(|a| a.certificate_pem)
                    .ok_or_else(|| GatewayError::Hub(format!("{PLATFORM_ISSUER} has no root authority")));
            }
            // The issuance role may still be starting.
            Err(e) if matches!(e.code(), tonic::Code::Unavailable | tonic::Code::NotFound) => {
                tracing::debug!(error = %e, "waiting for the platform CA");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(GatewayError::Hub(format!("cannot read the platform CA: {e}"))),
        }
    }
    Err(GatewayError::Hub("the platform CA did not answer".to_owned()))
}

/// A started agent port.
pub struct RunningHub {
    pub hub: AgentHub,
    pub address: SocketAddr,
    /// Ends once the hub has drained after shutdown. A process must wait for
    /// it before exiting, or its agents may see their connections cut
    /// instead of the UNAVAILABLE that tells them to reconnect elsewhere.
    pub serving: tokio::task::JoinHandle<()>,
}

/// Starts the agent port: gets the hub a certificate from the platform CA,
/// then serves AgentService until shutdown, when it drains every stream.
pub async fn serve(
    config: HubConfig,
    inventory: Channel,
    scheduler: Channel,
    issuance: Channel,
    shutdown: Shutdown,
) -> Result<RunningHub, GatewayError> {
    let mut upstreams = Upstreams {
        inventory: InventoryServiceClient::new(inventory),
        scheduler: SchedulerServiceClient::new(scheduler),
        issuance: IssuanceServiceClient::new(issuance),
    };
    let root = platform_root(&mut upstreams.issuance).await?;
    let (arrivals, arrived) = mpsc::channel(ARRIVAL_BATCH);
    let hub = AgentHub {
        config: Arc::new(config.clone()),
        upstreams,
        sessions: Arc::default(),
        ca_pem: Arc::new(root.clone()),
        arrivals,
    };
    tokio::spawn(hub.clone().record_arrivals(arrived, shutdown.clone()));
    let (chain, key, renew_at) = hub.own_certificate().await?;
    let certificate = tls::HubCertificate::new(&chain, key)?;
    let tls = tls::server_config(&root, certificate.clone())?;
    tokio::spawn(hub.clone().renew_own_certificate(certificate, renew_at, shutdown.clone()));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let listener = TcpListener::bind(config.listen).await.map_err(|e| GatewayError::Bind(config.listen, e))?;
    let address = listener.local_addr().map_err(|e| GatewayError::Bind(config.listen, e))?;
    let (connections, incoming) = mpsc::channel::<Result<tls::AgentConnection, std::io::Error>>(256);
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, peer) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "agent port accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    () = shutdown.clone().wait() => return,
                };
                let acceptor = acceptor.clone();
                let connections = connections.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = connections.send(Ok(tls::AgentConnection::new(stream, peer))).await;
                        }
                        // A certificate from another CA, a plain-text client, a scanner.
                        Ok(Err(e)) => tracing::warn!(%peer, error = %e, "agent TLS handshake refused"),
                        Err(_) => tracing::warn!(%peer, "agent TLS handshake timed out"),
                    }
                });
            }
        });
    }
    tokio::spawn(hub.clone().follow_work(shutdown.clone()));
    tokio::spawn(hub.clone().flush_sessions(shutdown.clone()));
    let service =
        pb::agent_service_server::AgentServiceServer::new(hub.clone()).max_decoding_message_size(MAX_AGENT_FRAME);
    let draining = hub.clone();
    let serving = tokio::spawn(async move {
        let drained = {
            let shutdown = shutdown.clone();
            async move {
                shutdown.wait().await;
                draining.drain();
            }
        };
        let server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(service)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::ReceiverStream::new(incoming), drained);
        // A stream that was still being opened when the drain ran is not
        // among those it ended; it must not hold the process up.
        let grace = async {
            shutdown.wait().await;
            tokio::time::sleep(DRAIN_GRACE).await;
        };
        tokio::select! {
            result = server => if let Err(e) = result {
                tracing::error!(error = %e, "the agent port stopped");
            },
            () = grace => tracing::warn!(grace = ?DRAIN_GRACE, "agent streams still open after the drain; closing them"),
        }
    });
    tracing::info!(%address, "agent hub listening (mTLS)");
    Ok(RunningHub { hub, address, serving })
}
