//! One agent's stream: enrolment and identity renewal (unary), and the
//! Connect loop that carries commands down and answers up.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use certctl_proto::agent::{self as pb, agent_service_server::AgentService, connect_request::Frame};
use certctl_proto::scheduler::complete_agent_work_request::Answer;
use futures::Stream;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::tls::Peer;
use super::{AGENT_PROFILE, AgentHub, HEARTBEAT_INTERVAL, HELLO_TIMEOUT, request};

/// Frames queued to an agent before the hub stops reading its answers: a
/// slow agent holds back only itself.
const OUTBOX: usize = 64;

/// A live stream, as the hub holds it.
pub struct Session {
    pub agent: String,
    id: u64,
    tx: mpsc::Sender<Result<pb::ConnectResponse, Status>>,
    /// Commands this stream has carried; a new stream carries them again.
    sent: Mutex<HashSet<String>>,
    heard: AtomicBool,
    /// A command did not fit in the outbox; look at the agent's work again
    /// once it has answered something.
    dropped: AtomicBool,
}

impl Session {
    /// Queues a command unless this stream already carried it.
    pub fn send_command(&self, command: pb::Command) {
        if !self.sent.lock().expect("sent").insert(command.command_id.clone()) {
            return;
        }
        let id = command.command_id.clone();
        let frame = pb::ConnectResponse { frame: Some(pb::connect_response::Frame::Command(command)) };
        if let Err(e) = self.tx.try_send(Ok(frame)) {
            // Not carried: the next look at this agent's work sends it again.
            self.sent.lock().expect("sent").remove(&id);
            self.dropped.store(true, Ordering::Relaxed);
            tracing::warn!(agent = %self.agent, command = %id, error = %e, "cannot queue a command now");
        }
    }

    /// True once per heartbeat window in which the agent was heard from.
    pub fn take_heard(&self) -> bool {
        self.heard.swap(false, Ordering::Relaxed)
    }

    pub fn close(&self, status: Status) {
        let _ = self.tx.try_send(Err(status));
    }

    fn answered(&self, command_id: &str) {
        self.sent.lock().expect("sent").remove(command_id);
    }
}

fn peer_of<T>(request: &Request<T>) -> Result<Peer, Status> {
    request.extensions().get::<Peer>().cloned().ok_or_else(|| Status::internal("the agent port must run over TLS"))
}

/// The serial number (hex, upper case) of a verified client certificate.
fn serial_of(certificate: &rustls::pki_types::CertificateDer<'_>) -> Result<String, Status> {
    let pem = certctl_pki::parse::to_pem("CERTIFICATE", certificate);
    certctl_pki::parse_pem_chain(&pem)
        .map(|chain| chain.leaf.serial_number)
        .map_err(|e| Status::unauthenticated(format!("unreadable client certificate: {e}")))
}

fn job_of(command_id: &str) -> Result<String, Status> {
    match command_id.split_once('.') {
        Some((job, _)) if !job.is_empty() => Ok(format!("jobs/{job}")),
        _ => Err(Status::invalid_argument(format!("`{command_id}` is not a command id this hub sent"))),
    }
}

impl AgentHub {
    /// The agent the connection's certificate proves, checked against the
    /// inventory: the identity must be the one recorded, and not retired.
    async fn authenticate(&self, peer: &Peer, claimed: &str) -> Result<certctl_proto::inventory::Agent, Status> {
        let Some(certificate) = &peer.certificate else {
            return Err(Status::unauthenticated(
                "no client certificate: enrol first (`certctl-agent enroll --token ...`), then connect with the identity",
            ));
        };
        let serial = serial_of(certificate)?;
        let agent = self
            .upstreams
            .inventory
            .clone()
            .get_agent(request(certctl_proto::inventory::GetAgentRequest { name: claimed.to_owned() }, "agent-hub"))
            .await
            .map_err(|e| match e.code() {
                tonic::Code::NotFound => Status::permission_denied(format!("{claimed} is not a known agent")),
                _ => e,
            })?
            .into_inner()
            .agent
            .ok_or_else(|| Status::unavailable("the inventory gave an empty answer"))?;
        if let Some(retired) = &agent.retire_time {
            tracing::warn!(agent = %claimed, address = %peer.address, "refused a retired agent");
            return Err(Status::permission_denied(format!(
                "{claimed} was retired at {}; its identity is revoked",
                certctl_domain::rfc3339(retired.seconds)
            )));
        }
        if !agent.identity_serial.eq_ignore_ascii_case(&serial) {
            tracing::warn!(agent = %claimed, address = %peer.address, %serial, "refused an identity that is not the agent's");
            return Err(Status::permission_denied(format!(
                "this client certificate (serial {serial}) is not {claimed}'s current identity"
            )));
        }
        Ok(agent)
    }

    async fn run_stream(self, agent: String, mut inbound: Streaming<pb::ConnectRequest>, session: Arc<Session>) {
        loop {
            let frame = match inbound.message().await {
                Ok(Some(request)) => request.frame,
                Ok(None) => break,
                Err(e) => {
                    // A malformed or oversized frame, or the connection dropped:
                    // end the stream with why, not with a clean close.
                    tracing::info!(%agent, code = ?e.code(), error = %e.message(), "agent stream ended");
                    session.close(e);
                    break;
                }
            };
            session.heard.store(true, Ordering::Relaxed);
            let answer = match frame {
                None | Some(Frame::Heartbeat(_)) => continue,
                Some(Frame::Hello(_)) => {
                    session.close(Status::invalid_argument("Hello is the first frame only"));
                    break;
                }
                Some(Frame::Ack(ack)) => {
                    tracing::debug!(%agent, command = %ack.command_id, "command acknowledged");
                    continue;
                }
                Some(Frame::Progress(p)) => {
                    tracing::info!(%agent, command = %p.command_id, progress = %p.message, "agent progress");
                    continue;
                }
                Some(Frame::Discovery(report)) => {
                    let hub = self.clone();
                    let agent = agent.clone();
                    tokio::spawn(async move { hub.report_discoveries(&agent, report).await });
                    continue;
                }
                Some(Frame::Rejected(r)) => (r.command_id.clone(), Answer::Rejected(r)),
                Some(Frame::Csr(c)) => (c.command_id.clone(), Answer::Csr(c)),
                Some(Frame::Deploy(d)) => (d.command_id.clone(), Answer::Deploy(d)),
            };
            let hub = self.clone();
            let agent = agent.clone();
            let session = session.clone();
            tokio::spawn(async move {
                let (command_id, answer) = answer;
                match hub.complete(&agent, &command_id, answer).await {
                    Ok(()) => {
                        session.answered(&command_id);
                        if session.dropped.swap(false, Ordering::Relaxed) {
                            hub.push_work(&agent).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%agent, command = %command_id, code = ?e.code(), error = %e.message(), "answer refused")
                    }
                }
            });
        }
        self.forget(&session);
    }

    /// Removes `session` from the live streams unless a newer one replaced it.
    fn forget(&self, session: &Session) {
        let mut sessions = self.sessions.lock().expect("sessions");
        if sessions.get(&session.agent).is_some_and(|s| s.id == session.id) {
            sessions.remove(&session.agent);
        }
    }

    async fn complete(&self, agent: &str, command_id: &str, answer: Answer) -> Result<(), Status> {
        let job = job_of(command_id)?;
        self.upstreams
            .scheduler
            .clone()
            .complete_agent_work(request(
                certctl_proto::scheduler::CompleteAgentWorkRequest {
                    job,
                    agent: agent.to_owned(),
                    answer: Some(answer),
                },
                agent,
            ))
            .await
            .map(|_| ())
    }

    async fn report_discoveries(&self, agent: &str, report: pb::DiscoveryReport) {
        for chunk in report.files.chunks(1000) {
            let reports = chunk
                .iter()
                .map(|f| certctl_proto::inventory::DiscoveryReport {
                    path: f.path.clone(),
                    certificate_der: f.certificate_der.clone(),
                })
                .collect();
            let sent = self
                .upstreams
                .inventory
                .clone()
                .report_discoveries(request(
                    certctl_proto::inventory::ReportDiscoveriesRequest { agent: agent.to_owned(), reports },
                    agent,
                ))
                .await;
            if let Err(e) = sent {
                tracing::warn!(%agent, error = %e, "discovery report refused");
            }
        }
    }
}

type ConnectStream = Pin<Box<dyn Stream<Item = Result<pb::ConnectResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentHub {
    async fn enroll(&self, request: Request<pb::EnrollRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        let peer = peer_of(&request)?;
        let r = request.into_inner();
        if r.join_token.is_empty() {
            return Err(Status::invalid_argument("join_token: required (`certctl agent token create` prints one)"));
        }
        certctl_pki::verify_csr(r.csr_pem.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("csr_pem: not a valid CSR: {e}")))?;
        let redeemed = self
            .upstreams
            .inventory
            .clone()
            .redeem_join_token(super::request(
                certctl_proto::inventory::RedeemJoinTokenRequest {
                    secret: r.join_token,
                    hostname: r.hostname,
                    version: r.version,
                    capabilities: r.capabilities,
                },
                "agent-hub",
            ))
            .await
            .inspect_err(|e| tracing::warn!(address = %peer.address, error = %e.message(), "enrolment refused"))?
            .into_inner()
            .agent
            .ok_or_else(|| Status::unavailable("the inventory gave an empty answer"))?;
        let issued = self.sign_identity(&r.csr_pem, AGENT_PROFILE, &redeemed.name).await?;
        self.record_identity(&redeemed.name, &issued).await?;
        tracing::info!(agent = %redeemed.name, address = %peer.address, "agent enrolled");
        Ok(Response::new(pb::EnrollResponse {
            agent: redeemed.name,
            certificate_pem: issued.pem_chain,
            ca_pem: self.ca_pem.to_string(),
            expire_time: issued.not_after,
        }))
    }

    async fn renew_identity(
        &self,
        request: Request<pb::RenewIdentityRequest>,
    ) -> Result<Response<pb::RenewIdentityResponse>, Status> {
        let peer = peer_of(&request)?;
        let r = request.into_inner();
        let agent = self.authenticate(&peer, &r.agent).await?;
        let issued = self.sign_identity(&r.csr_pem, AGENT_PROFILE, &agent.name).await?;
        self.record_identity(&agent.name, &issued).await?;
        tracing::info!(agent = %agent.name, serial = %issued.serial_number, "agent identity renewed");
        Ok(Response::new(pb::RenewIdentityResponse {
            certificate_pem: issued.pem_chain,
            ca_pem: self.ca_pem.to_string(),
            expire_time: issued.not_after,
        }))
    }

    type ConnectStream = ConnectStream;

    async fn connect(
        &self,
        request: Request<Streaming<pb::ConnectRequest>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = peer_of(&request)?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello frame in time"))??;
        let Some(pb::ConnectRequest { frame: Some(Frame::Hello(hello)) }) = first else {
            return Err(Status::invalid_argument("the first frame must be a Hello"));
        };
        let agent = self.authenticate(&peer, &hello.agent).await?;
        let arrival = certctl_proto::inventory::AgentSession {
            agent: agent.name.clone(),
            hub: self.config.hub_id.clone(),
            version: hello.version.clone(),
            capabilities: hello.capabilities.clone(),
        };
        check_arrival(&arrival)?;
        let (tx, rx) = mpsc::channel(OUTBOX);
        let session = Arc::new(Session {
            agent: agent.name.clone(),
            id: rand::random(),
            tx,
            sent: Mutex::default(),
            heard: AtomicBool::new(false),
            dropped: AtomicBool::new(false),
        });
        let welcome = pb::Welcome {
            heartbeat_interval: Some(pbjson_types::Duration { seconds: HEARTBEAT_INTERVAL.as_secs() as i64, nanos: 0 }),
            hub: self.config.hub_id.clone(),
        };
        let _ =
            session.tx.try_send(Ok(pb::ConnectResponse { frame: Some(pb::connect_response::Frame::Welcome(welcome)) }));
        if let Some(previous) = self.sessions.lock().expect("sessions").insert(agent.name.clone(), session.clone()) {
            previous.close(Status::aborted("a newer stream of this agent replaced this one"));
        }
        let refused = match self.record_arrival(arrival).await {
            Ok(refused) => refused,
            Err(e) => {
                self.forget(&session);
                return Err(e);
            }
        };
        if refused {
            // Retired between the check above and now.
            self.drop_refused(std::slice::from_ref(&agent.name));
        }
        tracing::info!(
            agent = %agent.name,
            address = %peer.address,
            version = %hello.version,
            holds = %hello.inventory_digest,
            "agent connected"
        );
        let hub = self.clone();
        let name = agent.name.clone();
        tokio::spawn(async move {
            hub.push_work(&name).await;
            hub.run_stream(name, inbound, session).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}

impl AgentHub {
    async fn record_identity(
        &self,
        agent: &str,
        issued: &certctl_proto::issuance::IssuedCertificate,
    ) -> Result<(), Status> {
        self.upstreams
            .inventory
            .clone()
            .record_agent_identity(request(
                certctl_proto::inventory::RecordAgentIdentityRequest {
                    agent: agent.to_owned(),
                    identity_serial: issued.serial_number.clone(),
                    identity_expire_time: issued.not_after,
                },
                agent,
            ))
            .await
            .map(|_| ())
    }
}

/// Refuses a Hello whose self-report (version, capabilities) the inventory
/// would refuse, before the stream replaces the agent's current one and
/// before it joins other agents' arrivals in one inventory call.
fn check_arrival(arrival: &certctl_proto::inventory::AgentSession) -> Result<(), Status> {
    certctl_domain::agents::heartbeats(vec![certctl_domain::agents::AgentSession {
        agent: arrival.agent.clone(),
        hub: arrival.hub.clone(),
        version: arrival.version.clone(),
        capabilities: arrival.capabilities.clone(),
    }])
    .map(drop)
    .map_err(|e| match e {
        // Named after the Hello the agent sent, not the inventory call.
        certctl_domain::DomainError::InvalidArgument(mut violations) => {
            for v in &mut violations {
                if let Some(rest) = v.field.strip_prefix("sessions[0].") {
                    v.field = format!("hello.{rest}");
                }
            }
            certctl_common::error::status_from_domain(certctl_domain::DomainError::InvalidArgument(violations))
        }
        other => certctl_common::error::status_from_domain(other),
    })
}
