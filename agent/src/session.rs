//! The stream: Hello, heartbeats, and commands carried out one at a time.
//!
//! Every frame the agent sends is built in this file, and none carries a
//! private key: a CSR and fingerprints are all the server ever sees. Each
//! command's answer is saved before it is sent, so a command the hub sends
//! again (after a reconnect) gets the same answer and no new work: no second
//! key, no second reload.

use std::path::PathBuf;
use std::time::Duration;

use certctl_domain::inventory::{TargetConfig, WebServerConfig};
use certctl_pki::KeyType;
use certctl_proto::agent::{self as pb, agent_service_client::AgentServiceClient, connect_request::Frame};
use certctl_proto::inventory as inv;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::client::{self, Trust};
use crate::state::{Settings, StateDir};
use crate::targets::{self, Bundle, Deployed};
use crate::verify::{self, Verification};

/// How the agent runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Files and directories scanned for certificates at each connect.
    pub discovery_paths: Vec<PathBuf>,
}

/// A saved answer, replayed when a command comes again.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Saved {
    Csr { csr_pem: String },
    Deploy { results: Vec<SavedResult> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedResult {
    target: String,
    outcome: i32,
    served_fingerprint: String,
    message: String,
}

fn frame(frame: Frame) -> pb::ConnectRequest {
    pb::ConnectRequest { frame: Some(frame) }
}

fn key_type(algorithm: i32) -> Result<KeyType, String> {
    use certctl_proto::types::KeyAlgorithm as K;
    Ok(match K::try_from(algorithm) {
        Ok(K::EcdsaP256 | K::Unspecified) => KeyType::EcdsaP256,
        Ok(K::EcdsaP384) => KeyType::EcdsaP384,
        Ok(K::Rsa2048) => KeyType::Rsa2048,
        Ok(K::Rsa3072) => KeyType::Rsa3072,
        Ok(K::Rsa4096) => KeyType::Rsa4096,
        Ok(K::Ed25519) => KeyType::Ed25519,
        _ => return Err(format!("key algorithm {algorithm} cannot be generated")),
    })
}

/// The target's configuration in the agent's terms.
fn target_config(target: &inv::Target) -> Option<TargetConfig> {
    use inv::target::Config;
    let web = |c: &inv::WebServerTargetConfig| WebServerConfig {
        certificate_path: c.certificate_path.clone(),
        key_path: c.key_path.clone(),
        verify_host: c.verify_host.clone(),
        verify_port: c.verify_port,
        verify_server_name: c.verify_server_name.clone(),
        validate_command: c.validate_command.clone(),
        reload_command: c.reload_command.clone(),
    };
    Some(match target.config.as_ref()? {
        Config::File(f) => TargetConfig::File {
            directory: f.directory.clone(),
            mode: f.mode.clone(),
            owner: f.owner.clone(),
            group: f.group.clone(),
            post_deploy_command: f.post_deploy_command.clone(),
        },
        Config::Nginx(c) => TargetConfig::Nginx(web(c)),
        Config::Apache(c) => TargetConfig::Apache(web(c)),
        Config::Haproxy(c) => TargetConfig::Haproxy(web(c)),
        Config::Caddy(c) => TargetConfig::Caddy(web(c)),
        Config::Lighttpd(c) => TargetConfig::Lighttpd(web(c)),
        Config::Postfix(c) => TargetConfig::Postfix(web(c)),
        Config::Dovecot(c) => TargetConfig::Dovecot(web(c)),
    })
}

fn spki_sha256(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    Ok(hex::encode(Sha256::digest(cert.tbs_certificate.subject_pki.raw)))
}

/// Carries out commands against the state directory.
pub struct Worker {
    state: StateDir,
    /// Where progress frames go while a command runs (the stream), if anywhere.
    progress: Option<mpsc::Sender<pb::ConnectRequest>>,
}

impl Worker {
    pub fn new(state: StateDir) -> Self {
        Self { state, progress: None }
    }

    /// Reports each step of a command on `stream`.
    pub fn with_progress(mut self, stream: mpsc::Sender<pb::ConnectRequest>) -> Self {
        self.progress = Some(stream);
        self
    }

    async fn step(&self, command_id: &str, message: String) {
        if let Some(stream) = &self.progress {
            let progress = pb::CommandProgress { command_id: command_id.to_owned(), message };
            let _ = stream.send(frame(Frame::Progress(progress))).await;
        }
    }

    /// The answer to one command (computed once, then replayed).
    pub async fn handle(&self, command: pb::Command) -> pb::ConnectRequest {
        let id = command.command_id.clone();
        let reject = |code: &str, message: String| {
            frame(Frame::Rejected(pb::CommandRejected { command_id: id.clone(), code: code.to_owned(), message }))
        };
        let saved = match self.state.answer::<Saved>(&id) {
            Ok(saved) => saved,
            Err(e) => return reject("BAD_COMMAND", e.to_string()),
        };
        let answer = match (saved, command.action) {
            (Some(saved), _) => Ok(saved),
            (None, Some(pb::command::Action::RequestCsr(r))) => self.csr(&r).await,
            (None, Some(pb::command::Action::Deploy(d))) => self.deploy(&id, &d).await,
            (None, None) => Err(("BAD_COMMAND", "the command has no action".to_owned())),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err((code, message)) => return reject(code, message),
        };
        if let Err(e) = self.state.save_answer(&id, &answer) {
            tracing::warn!(command = %id, error = %e, "cannot save the answer; a repeated command will be redone");
        }
        match answer {
            Saved::Csr { csr_pem } => frame(Frame::Csr(pb::CsrReady { command_id: id, csr_pem })),
            Saved::Deploy { results } => frame(Frame::Deploy(pb::DeployReport {
                command_id: id,
                results: results
                    .into_iter()
                    .map(|r| pb::TargetResult {
                        target: r.target,
                        outcome: r.outcome,
                        served_fingerprint: r.served_fingerprint,
                        message: r.message,
                    })
                    .collect(),
            })),
        }
    }

    async fn csr(&self, request: &pb::RequestCsr) -> Result<Saved, (&'static str, String)> {
        let kind = key_type(request.key_algorithm).map_err(|m| ("UNSUPPORTED_KEY", m))?;
        // RSA keys take a while to find.
        let key = tokio::task::spawn_blocking(move || kind.generate())
            .await
            .map_err(|e| ("KEYGEN_FAILED", e.to_string()))?
            .map_err(|e| ("KEYGEN_FAILED", e.to_string()))?;
        let sans: Vec<String> = request.dns_names.iter().chain(&request.ip_addresses).cloned().collect();
        let csr_pem =
            certctl_pki::build_csr(&key, &request.common_name, &sans).map_err(|e| ("BAD_NAMES", e.to_string()))?;
        let pkcs8 = certctl_pki::keys::pkcs8_v1(key.serialized_der()).map_err(|e| ("KEYGEN_FAILED", e.to_string()))?;
        let key_pem = certctl_pki::parse::to_pem("PRIVATE KEY", &pkcs8);
        let spki = hex::encode(Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)));
        self.state.save_key(&request.certificate, &spki, &key_pem).map_err(|e| ("STATE_UNWRITABLE", e.to_string()))?;
        tracing::info!(certificate = %request.certificate, key = %kind, "generated a key and a CSR");
        Ok(Saved::Csr { csr_pem })
    }

    async fn deploy(&self, id: &str, deploy: &pb::Deploy) -> Result<Saved, (&'static str, String)> {
        let mut configs = Vec::with_capacity(deploy.targets.len());
        for target in &deploy.targets {
            let Some(config) = target_config(target) else {
                return Err((
                    "UNSUPPORTED_TARGET",
                    format!("{} has a target type this agent does not know", target.name),
                ));
            };
            if !targets::kinds().contains(&config.type_name()) {
                return Err((
                    "UNSUPPORTED_TARGET",
                    format!("{} is a {} target, which this agent cannot deploy to", target.name, config.type_name()),
                ));
            }
            configs.push((target.name.clone(), config));
        }
        let certs = CertificateDer::pem_slice_iter(deploy.certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ("BAD_CERTIFICATE", format!("{}: {e}", deploy.version)))?;
        let Some(leaf) = certs.first() else {
            return Err(("BAD_CERTIFICATE", format!("{} holds no certificate", deploy.version)));
        };
        let spki = spki_sha256(leaf).map_err(|m| ("BAD_CERTIFICATE", m))?;
        let key_pem = match self.state.key(&deploy.certificate, &spki) {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Err((
                    "KEY_NOT_FOUND",
                    format!("{} is for a key this agent did not generate (public key sha256 {spki})", deploy.version),
                ));
            }
            Err(e) => return Err(("STATE_UNREADABLE", e.to_string())),
        };
        let pem = |der: &CertificateDer<'_>| certctl_pki::parse::to_pem("CERTIFICATE", der);
        let bundle = Bundle {
            version: deploy.version.clone(),
            leaf_pem: pem(leaf),
            chain_pem: certs[1..].iter().map(pem).collect(),
            key_pem,
            fingerprint: verify::fingerprint(leaf),
        };
        let mut results = Vec::with_capacity(configs.len());
        for (name, config) in configs {
            self.step(id, format!("deploying {} to {name}", deploy.version)).await;
            let result = deploy_one(&name, &config, &bundle).await;
            self.step(id, format!("{name}: {}", result.message)).await;
            results.push(result);
        }
        Ok(Saved::Deploy { results })
    }
}

async fn deploy_one(name: &str, config: &TargetConfig, bundle: &Bundle) -> SavedResult {
    let result = |outcome: pb::TargetOutcome, served: String, message: String| SavedResult {
        target: name.to_owned(),
        outcome: outcome as i32,
        served_fingerprint: served,
        message,
    };
    let target = match targets::build(config) {
        Ok(t) => t,
        Err(e) => return result(pb::TargetOutcome::Failed, String::new(), e.to_string()),
    };
    let deployed = target.deploy(bundle).await;
    let note = match deployed {
        Ok(Deployed::Installed) => "installed",
        Ok(Deployed::Unchanged) => "unchanged: already installed",
        Err(e) => {
            tracing::warn!(target = %name, version = %bundle.version, error = %e, "deploy failed; previous files restored");
            return result(pb::TargetOutcome::Failed, String::new(), e.to_string());
        }
    };
    let Some(endpoint) = target.endpoint() else {
        return result(pb::TargetOutcome::Deployed, String::new(), note.to_owned());
    };
    let mut seen = verify::check_settled(&endpoint, &bundle.fingerprint, 10, Duration::from_millis(500)).await;
    if matches!(deployed, Ok(Deployed::Unchanged)) && seen != Verification::Verified {
        // The files are in place but not what is served: an earlier deploy
        // stopped between writing and reloading (the agent was killed).
        tracing::info!(target = %name, version = %bundle.version, "files in place but not served; reloading");
        if let Err(e) = target.reload().await {
            return result(pb::TargetOutcome::Failed, String::new(), format!("files in place, but {e}"));
        }
        seen = verify::check_settled(&endpoint, &bundle.fingerprint, 10, Duration::from_millis(500)).await;
    }
    match seen {
        Verification::Verified => result(pb::TargetOutcome::Verified, bundle.fingerprint.clone(), note.to_owned()),
        Verification::Mismatch { served } => result(
            pb::TargetOutcome::Mismatch,
            served.clone(),
            format!("{note}, but {}:{} serves another certificate (sha256 {served})", endpoint.host, endpoint.port),
        ),
        Verification::Unreachable(why) => result(
            pb::TargetOutcome::Mismatch,
            String::new(),
            format!("{note}, but the endpoint cannot be checked: {why}"),
        ),
    }
}

/// Why a stream ended.
#[derive(Debug)]
pub enum Ended {
    /// The hub drained or dropped the stream: reconnect.
    Reconnect(String),
    /// The hub refused this agent: reconnecting will not help.
    Refused(String),
}

/// One stream, until it ends.
pub async fn connect_once(state: &StateDir, settings: &Settings, options: &Options) -> Ended {
    let identity = match state.identity() {
        Ok(i) => i,
        Err(e) => return Ended::Refused(e.to_string()),
    };
    let (chain_pem, key_pem, ca_pem) = identity;
    let channel = match client::channel(&settings.server, &Trust::Identity { ca_pem, chain_pem, key_pem }).await {
        Ok(c) => c,
        Err(e) => return Ended::Reconnect(e.to_string()),
    };
    let (tx, rx) = mpsc::channel::<pb::ConnectRequest>(64);
    let hello = pb::Hello {
        agent: settings.agent.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        capabilities: targets::kinds().iter().map(|k| (*k).to_owned()).collect(),
        inventory_digest: state.holdings_digest(),
    };
    let _ = tx.send(frame(Frame::Hello(hello))).await;
    let response = AgentServiceClient::new(channel)
        .max_decoding_message_size(16 << 20)
        .connect(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let mut inbound = match response {
        Ok(r) => r.into_inner(),
        Err(s) => return ended(s),
    };
    let worker = std::sync::Arc::new(Worker::new(state.clone()).with_progress(tx.clone()));
    let (commands, mut queue) = mpsc::unbounded_channel::<pb::Command>();
    // One command at a time: two deploys must not interleave on one server.
    let runner = {
        let tx = tx.clone();
        let worker = worker.clone();
        tokio::spawn(async move {
            while let Some(command) = queue.recv().await {
                let answer = worker.handle(command).await;
                if tx.send(answer).await.is_err() {
                    return;
                }
            }
        })
    };
    let mut heartbeat: Option<tokio::time::Interval> = None;
    let ended = loop {
        let tick = async {
            match heartbeat.as_mut() {
                Some(h) => {
                    h.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tick => {
                if tx.send(frame(Frame::Heartbeat(pb::Heartbeat {}))).await.is_err() {
                    break Ended::Reconnect("the stream closed".to_owned());
                }
            }
            message = inbound.message() => match message {
                Ok(Some(pb::ConnectResponse { frame: Some(pb::connect_response::Frame::Welcome(welcome)) })) => {
                    let every = welcome.heartbeat_interval.map_or(30, |d| d.seconds.max(1) as u64);
                    let mut interval = tokio::time::interval(Duration::from_secs(every));
                    interval.tick().await;
                    heartbeat = Some(interval);
                    tracing::info!(agent = %settings.agent, hub = %welcome.hub, "connected");
                    if !options.discovery_paths.is_empty() {
                        let tx = tx.clone();
                        let paths = options.discovery_paths.clone();
                        tokio::spawn(async move { discover(paths, tx).await });
                    }
                }
                Ok(Some(pb::ConnectResponse { frame: Some(pb::connect_response::Frame::Command(command)) })) => {
                    let ack = frame(Frame::Ack(pb::CommandAck { command_id: command.command_id.clone() }));
                    if tx.send(ack).await.is_err() {
                        break Ended::Reconnect("the stream closed".to_owned());
                    }
                    let _ = commands.send(command);
                }
                Ok(Some(_)) => {}
                Ok(None) => break Ended::Reconnect("the hub ended the stream".to_owned()),
                Err(s) => break ended(s),
            }
        }
    };
    runner.abort();
    ended
}

fn ended(status: tonic::Status) -> Ended {
    use tonic::Code;
    match status.code() {
        Code::PermissionDenied | Code::Unauthenticated => Ended::Refused(status.message().to_owned()),
        _ => Ended::Reconnect(format!("{:?}: {}", status.code(), status.message())),
    }
}

async fn discover(paths: Vec<PathBuf>, tx: mpsc::Sender<pb::ConnectRequest>) {
    let found = match tokio::task::spawn_blocking(move || crate::discovery::scan(&paths)).await {
        Ok(found) => found,
        Err(_) => return,
    };
    tracing::info!(certificates = found.len(), "discovery scan done");
    // Several frames rather than one huge one.
    for chunk in found.chunks(500) {
        let files =
            chunk.iter().map(|f| pb::DiscoveredFile { path: f.path.clone(), certificate_der: f.der.clone() }).collect();
        if tx.send(frame(Frame::Discovery(pb::DiscoveryReport { files }))).await.is_err() {
            return;
        }
    }
}

/// Runs until `stop`: connects, reconnects with jittered exponential
/// backoff, and renews the identity when it is due.
pub async fn run(state: StateDir, options: Options, stop: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let settings = state.settings()?;
    tokio::pin!(stop);
    let mut backoff = Duration::from_millis(500);
    loop {
        if let Ok((chain, _, _)) = state.identity()
            && let Ok(due) = crate::enroll::renewal_due(&chain)
            && certctl_domain::now() >= due
        {
            match crate::enroll::renew(&state, &settings).await {
                Ok(()) => tracing::info!(agent = %settings.agent, "identity renewed"),
                Err(e) => tracing::warn!(error = %e, "identity renewal failed; trying again after the next stream"),
            }
        }
        let started = std::time::Instant::now();
        let ended = tokio::select! {
            ended = connect_once(&state, &settings, &options) => ended,
            () = &mut stop => return Ok(()),
        };
        match ended {
            Ended::Refused(why) => anyhow::bail!("the hub refused {}: {why}", settings.agent),
            Ended::Reconnect(why) => tracing::warn!(%why, retry_in = ?backoff, "stream ended; reconnecting"),
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(500);
        }
        let jitter = rand::random::<f64>() * 0.5 + 0.75;
        tokio::select! {
            () = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
            () = &mut stop => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use rcgen::{CertificateParams, DistinguishedName, IsCa, Issuer, KeyPair};

    use super::*;

    /// Signs the agent's CSR the way a CA would (only its public key is used).
    fn sign(csr_pem: &str) -> String {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name = DistinguishedName::new();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let csr = certctl_pki::verify_csr(csr_pem.as_bytes()).unwrap();
        let leaf = CertificateParams::new(vec!["web.example.com".to_owned()]).unwrap();
        let leaf = leaf.signed_by(&csr.public_key_data(), &issuer).unwrap();
        format!("{}{}", leaf.pem(), ca_cert.pem())
    }

    fn command(id: &str, action: pb::command::Action) -> pb::Command {
        pb::Command { command_id: id.to_owned(), action: Some(action) }
    }

    fn key_material(state: &std::path::Path) -> Vec<Vec<u8>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(state.join("keys/web")).unwrap() {
            let pem = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let der = rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
            found.push(pem.clone().into_bytes());
            found.push(der.secret_der().to_vec());
        }
        found
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn no_answer_carries_a_private_key_and_a_repeated_command_gets_the_same_answer() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path().join("state")).unwrap();
        let worker = Worker::new(state.clone());
        let request = pb::RequestCsr {
            certificate: "certificates/web".into(),
            common_name: "web.example.com".into(),
            dns_names: vec!["web.example.com".into()],
            ..Default::default()
        };
        let mut sent = vec![worker.handle(command("j1.1", pb::command::Action::RequestCsr(request.clone()))).await];
        let Some(Frame::Csr(csr)) = sent[0].frame.clone() else { panic!("a CSR, got {:?}", sent[0]) };
        // Sent again (a reconnect): the same CSR, and still one key.
        sent.push(worker.handle(command("j1.1", pb::command::Action::RequestCsr(request))).await);
        assert_eq!(sent[0], sent[1]);
        assert_eq!(std::fs::read_dir(state.path().join("keys/web")).unwrap().count(), 1);

        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let file = inv::Target {
            name: "targets/files".into(),
            config: Some(inv::target::Config::File(inv::FileTargetConfig {
                directory: out.display().to_string(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let deploy = pb::Deploy {
            certificate: "certificates/web".into(),
            version: "certificates/web/versions/1".into(),
            certificate_pem: sign(&csr.csr_pem),
            targets: vec![file],
            ..Default::default()
        };
        sent.push(worker.handle(command("j2.1", pb::command::Action::Deploy(deploy.clone()))).await);
        let Some(Frame::Deploy(report)) = sent[2].frame.clone() else { panic!("a report, got {:?}", sent[2]) };
        assert_eq!(report.results[0].outcome, pb::TargetOutcome::Deployed as i32, "{:?}", report.results[0]);
        let installed = std::fs::read_to_string(out.join("key.pem")).unwrap();
        assert!(installed.contains("PRIVATE KEY"), "the key went to the target, on this host");

        for secret in key_material(state.path()) {
            for frame in &sent {
                assert!(!contains(&frame.encode_to_vec(), &secret), "a frame to the server carries the private key");
            }
        }

        // A target type this agent cannot deploy to: refused before anything is touched.
        let mut odd = deploy;
        odd.targets = vec![inv::Target { name: "targets/odd".into(), ..Default::default() }];
        let refused = worker.handle(command("j3.1", pb::command::Action::Deploy(odd))).await;
        let Some(Frame::Rejected(r)) = refused.frame else { panic!("rejected, got {refused:?}") };
        assert_eq!(r.code, "UNSUPPORTED_TARGET");
    }

    #[tokio::test]
    async fn a_version_for_a_key_the_agent_never_made_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let worker = Worker::new(StateDir::open(dir.path()).unwrap());
        let stranger = certctl_pki::build_csr(&KeyPair::generate().unwrap(), "web.example.com", &[]).unwrap();
        let deploy = pb::Deploy {
            certificate: "certificates/web".into(),
            version: "certificates/web/versions/9".into(),
            certificate_pem: sign(&stranger),
            ..Default::default()
        };
        let answer = worker.handle(command("j4.1", pb::command::Action::Deploy(deploy))).await;
        let Some(Frame::Rejected(r)) = answer.frame else { panic!("rejected, got {answer:?}") };
        assert_eq!(r.code, "KEY_NOT_FOUND", "{}", r.message);
    }
}
