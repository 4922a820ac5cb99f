//! The whole path with real processes on loopback: `certctl server` (every
//! role, the agent hub on its own port), a `certctl-agent` process enrolled
//! with a join token, and a real web server. A managed certificate bound to
//! the server's target gets its key on the agent, is issued, deployed and
//! verified; a forced renewal replaces it; a broken server configuration
//! rolls back; an agent that was down picks up its work once.

mod targets_support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use certctl_domain::inventory::TargetConfig;
use serde_json::{Value, json};
use targets_support::{Server, free_port, openssl_served};

const AGENT: &str = env!("CARGO_BIN_EXE_certctl-agent");
/// The master key every test platform seals its CA keys with.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn certctl() -> PathBuf {
    let path = Path::new(AGENT).with_file_name("certctl");
    assert!(path.exists(), "{} is missing: build it first (`cargo build -p certctl`)", path.display());
    path
}

/// A child process, killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn spawn(program: &Path, args: &[String], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .env("CERTCTL_MASTER_KEY", MASTER_KEY)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not run: {e}", program.display()));
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Platform {
    url: String,
    agent_port: u16,
    server: Running,
    dir: tempfile::TempDir,
}

impl Platform {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, agent_port) = (free_port(), free_port());
        let args: Vec<String> = [
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--agent-listen",
            &format!("127.0.0.1:{agent_port}"),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--web-dir",
            &dir.path().join("no-gui").display().to_string(),
            "--renewal-scan-interval",
            "1",
        ]
        .map(str::to_owned)
        .to_vec();
        let server = Running::spawn(&certctl(), &args, dir.path().join("server.log"));
        Self::ready(Self { url: format!("http://127.0.0.1:{port}"), agent_port, server, dir })
    }

    /// The services of a platform in one process, without a gateway.
    fn services() -> (Running, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let args: Vec<String> = [
            "server",
            "--roles",
            "inventory,audit,issuance,scheduler,notification",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &dir.path().join("data").display().to_string(),
            "--renewal-scan-interval",
            "1",
        ]
        .map(str::to_owned)
        .to_vec();
        let services = Running::spawn(&certctl(), &args, dir.path().join("services.log"));
        (services, format!("http://127.0.0.1:{port}"), dir)
    }

    /// A gateway (with its agent hub) in front of `services`.
    fn gateway(services: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (port, agent_port) = (free_port(), free_port());
        let mut args: Vec<String> = [
            "server",
            "--roles",
            "gateway",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--agent-listen",
            &format!("127.0.0.1:{agent_port}"),
            "--web-dir",
            &dir.path().join("no-gui").display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        for role in ["inventory", "audit", "issuance", "scheduler", "notification"] {
            args.extend([format!("--{role}-url"), services.to_owned()]);
        }
        let server = Running::spawn(&certctl(), &args, dir.path().join("gateway.log"));
        Self::ready(Self { url: format!("http://127.0.0.1:{port}"), agent_port, server, dir })
    }

    fn ready(mut platform: Self) -> Self {
        for _ in 0..600 {
            if let Ok(Some(status)) = platform.server.child.try_wait() {
                panic!("the platform exited ({status}):\n{}", platform.server.log());
            }
            if platform.try_rest("GET", "/readyz", None).is_some_and(|(code, _)| code == 200) {
                return platform;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the platform never became ready:\n{}", platform.server.log());
    }

    fn try_rest(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let mut command = Command::new("curl");
        command.args(["-s", "-X", method, "-H", "content-type: application/json", "-w", "\n%{http_code}"]);
        if let Some(body) = body {
            command.args(["--data-binary", &body.to_string()]);
        }
        let out = command.arg(format!("{}{path}", self.url)).output().expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n')?;
        let code: u16 = code.trim().parse().ok()?;
        (code != 0).then(|| (code, serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()))))
    }

    fn rest(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_rest(method, path, body.as_ref()).unwrap_or_else(|| panic!("{method} {path}: no answer"))
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(certctl()).args(args).env("CERTCTL_SERVER", &self.url).output().unwrap();
        assert!(out.status.success(), "certctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `path` until `done` holds for its answer; panics with the logs otherwise.
    fn wait_for(&self, what: &str, path: &str, logs: &[&Running], done: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            let (code, body) = self.rest("GET", path, None);
            if code == 200 && done(&body) {
                return body;
            }
            last = body;
            std::thread::sleep(Duration::from_millis(100));
        }
        let logs: Vec<String> = logs.iter().map(|r| r.log()).collect();
        panic!(
            "{what}: never happened; last answer {last:#}\nserver log:\n{}\nother logs:\n{}",
            self.server.log(),
            logs.join("\n---\n")
        );
    }
}

/// An enrolled agent's state directory, and its running process.
struct Agent {
    state: PathBuf,
    process: Option<Running>,
}

impl Agent {
    fn enroll(platform: &Platform, hostname: &str) -> Self {
        let printed = platform.cli(&[
            "agent",
            "token",
            "create",
            "--agent-server",
            &format!("https://127.0.0.1:{}", platform.agent_port),
        ]);
        let command = printed
            .lines()
            .find(|l| l.trim_start().starts_with("certctl-agent enroll"))
            .unwrap_or_else(|| panic!("no enrol command printed:\n{printed}"));
        let words: Vec<&str> = command.split_whitespace().collect();
        let flag = |name: &str| words[words.iter().position(|w| *w == name).unwrap() + 1].to_owned();
        let state = platform.dir.path().join(format!("agent-{hostname}"));
        let out = Command::new(AGENT)
            .args(["--state-dir", state.to_str().unwrap(), "enroll", "--server", &flag("--server")])
            .args(["--token", &flag("--token"), "--ca-fingerprint", &flag("--ca-fingerprint"), "--hostname", hostname])
            .output()
            .unwrap();
        assert!(out.status.success(), "enrol: {}", String::from_utf8_lossy(&out.stderr));
        // The token is spent: a second agent cannot use it.
        let again = Command::new(AGENT)
            .args(["--state-dir", state.with_extension("again").to_str().unwrap(), "enroll"])
            .args([
                "--server",
                &flag("--server"),
                "--token",
                &flag("--token"),
                "--ca-fingerprint",
                &flag("--ca-fingerprint"),
            ])
            .output()
            .unwrap();
        assert!(!again.status.success());
        assert!(
            String::from_utf8_lossy(&again.stderr).contains("already used"),
            "{}",
            String::from_utf8_lossy(&again.stderr)
        );
        // A wrong pin: the agent refuses to talk to a server it cannot trust.
        let pinned_wrong = Command::new(AGENT)
            .args(["--state-dir", state.with_extension("pin").to_str().unwrap(), "enroll"])
            .args(["--server", &flag("--server"), "--token", "cjt_whatever", "--ca-fingerprint", &"ab".repeat(32)])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&pinned_wrong.stderr).contains("pinned platform CA"),
            "{}",
            String::from_utf8_lossy(&pinned_wrong.stderr)
        );
        let mode = std::fs::metadata(state.join("identity.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the identity key is private");
        Self { state, process: None }
    }

    fn start(&mut self, discover: &[&Path]) {
        let mut args = vec!["--state-dir".to_owned(), self.state.display().to_string(), "run".to_owned()];
        for path in discover {
            args.extend(["--discover".to_owned(), path.display().to_string()]);
        }
        let log = self.state.with_extension(format!("log{}", rand::random::<u16>()));
        self.process = Some(Running::spawn(Path::new(AGENT), &args, log));
    }

    fn stop(&mut self) {
        self.process = None;
    }

    fn logs(&self) -> Vec<&Running> {
        self.process.iter().collect()
    }
}

/// The REST body of a target for `server`, deployed by `agent`.
fn target_body(agent: &str, config: &TargetConfig) -> Value {
    let (kind, c) = (config.type_name(), config.server().expect("server targets only"));
    json!({
        "agent": agent,
        kind: {
            "certificatePath": c.certificate_path,
            "keyPath": c.key_path,
            "verifyHost": c.verify_host,
            "verifyPort": c.verify_port,
            "verifyServerName": c.verify_server_name,
            "validateCommand": c.validate_command,
            "reloadCommand": c.reload_command,
        }
    })
}

fn wait_served(port: u16, fingerprint: &str) {
    let mut served = String::new();
    for _ in 0..200 {
        served = openssl_served(port);
        if served == fingerprint {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("127.0.0.1:{port} serves {served}, not {fingerprint}");
}

fn deployment(deployments: &Value, version: &str) -> Option<String> {
    deployments["deployments"]
        .as_array()?
        .iter()
        .find(|d| d["version"] == version)
        .and_then(|d| d["state"].as_str().map(str::to_owned))
}

fn fingerprint_of(platform: &Platform, version: &str) -> String {
    let (code, body) = platform.rest("GET", &format!("/api/v1/{version}"), None);
    assert_eq!(code, 200, "{body}");
    body["certificateVersion"]["sha256Fingerprint"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

fn versions(platform: &Platform) -> usize {
    let (_, body) = platform.rest("GET", "/api/v1/certificates/web/versions", None);
    body["certificateVersions"].as_array().map_or(0, Vec::len)
}

/// The issue's scenario against one kind of web server.
async fn lifecycle(server: &dyn Server, port: u16) {
    let platform = Platform::start();
    let mut agent = Agent::enroll(&platform, "web-01");
    agent.start(&[]);
    platform.wait_for("the agent shows online", "/api/v1/agents/web-01", &agent.logs(), |a| {
        a["agent"]["status"] == "AGENT_STATUS_ONLINE"
    });

    let (code, body) =
        platform.rest("POST", "/api/v1/targets?targetId=web", Some(target_body("agents/web-01", &server.target())));
    assert_eq!(code, 200, "{body}");
    let certificate = json!({
        "commonName": "localhost",
        "subjectAltNames": ["localhost"],
        "issuer": "issuers/local",
        "targets": ["targets/web"],
    });
    let (code, body) = platform.rest("POST", "/api/v1/certificates?certificateId=web", Some(certificate));
    assert_eq!(code, 200, "{body}");

    // First version: key on the agent, CSR, issuance, deploy, verified.
    let v1 = "certificates/web/versions/1";
    platform.wait_for("version 1 verified on the server", "/api/v1/certificates/web/deployments", &agent.logs(), |d| {
        deployment(d, v1).as_deref() == Some("DEPLOYMENT_STATE_VERIFIED")
    });
    wait_served(port, &fingerprint_of(&platform, v1));
    let log = platform.server.log();
    assert!(log.contains("deploying certificates/web/versions/1 to targets/web"), "the hub hears the agent's progress");
    let keys: Vec<_> = std::fs::read_dir(agent.state.join("keys/web")).unwrap().collect();
    assert_eq!(keys.len(), 1, "one key for one version");
    let (code, body) = platform.rest("POST", &format!("/api/v1/{v1}:exportPrivateKey"), Some(json!({})));
    assert_ne!(code, 200, "the platform holds no key of an agent-keyed certificate: {body}");

    // A forced renewal: a second key, version 2 served.
    let (code, body) =
        platform.rest("POST", "/api/v1/jobs:renewCertificates", Some(json!({"certificates": ["certificates/web"]})));
    assert_eq!(code, 200, "{body}");
    let v2 = "certificates/web/versions/2";
    platform.wait_for("version 2 verified", "/api/v1/certificates/web/deployments", &agent.logs(), |d| {
        deployment(d, v2).as_deref() == Some("DEPLOYMENT_STATE_VERIFIED")
    });
    wait_served(port, &fingerprint_of(&platform, v2));

    // A server configuration that fails its check: version 3 is issued but
    // not installed; the server keeps serving version 2.
    server.break_config();
    platform.rest("POST", "/api/v1/jobs:renewCertificates", Some(json!({"certificates": ["certificates/web"]})));
    let v3 = "certificates/web/versions/3";
    platform.wait_for(
        "version 3 refused by the server's check",
        "/api/v1/certificates/web/deployments",
        &agent.logs(),
        |d| deployment(d, v3).as_deref() == Some("DEPLOYMENT_STATE_FAILED"),
    );
    assert_eq!(openssl_served(port), fingerprint_of(&platform, v2), "the old certificate is still served");
    server.repair_config();

    // The agent is down when the next renewal is asked for: the job waits,
    // and once the agent is back it completes, with exactly one new version.
    agent.stop();
    platform.rest("POST", "/api/v1/jobs:renewCertificates", Some(json!({"certificates": ["certificates/web"]})));
    platform.wait_for("the renewal waits for the agent", "/api/v1/jobs?state=JOB_STATE_AWAITING_AGENT", &[], |j| {
        j["jobs"].as_array().is_some_and(|jobs| !jobs.is_empty())
    });
    assert_eq!(versions(&platform), 3, "nothing is issued without the agent's CSR");
    agent.start(&[]);
    let v4 = "certificates/web/versions/4";
    platform.wait_for(
        "version 4 verified after the reconnect",
        "/api/v1/certificates/web/deployments",
        &agent.logs(),
        |d| deployment(d, v4).as_deref() == Some("DEPLOYMENT_STATE_VERIFIED"),
    );
    wait_served(port, &fingerprint_of(&platform, v4));
    assert_eq!(versions(&platform), 4, "the pending command completed once");

    // Retired while connected: the hub ends its stream at its next
    // heartbeat batch, and the agent stops; started again, it is refused.
    platform.cli(&["agent", "retire", "agents/web-01"]);
    for _ in 0..400 {
        if agent.process.as_mut().unwrap().child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let process = agent.process.as_mut().unwrap();
    let status = process.child.try_wait().unwrap().expect("the retired agent's stream was ended");
    assert!(!status.success(), "a retired agent must not keep running");
    assert!(process.log().contains("retired"), "{}", process.log());
    agent.start(&[]);
    let process = agent.process.as_mut().unwrap();
    let status = process.child.wait().unwrap();
    assert!(!status.success() && process.log().contains("retired"), "{}", process.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_end_to_end() {
    let nginx = targets_support::nginx::Nginx::start();
    let port = nginx.port;
    lifecycle(&nginx, port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apache_end_to_end() {
    let apache = targets_support::apache::Apache::start();
    let port = apache.port;
    lifecycle(&apache, port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_end_to_end() {
    let haproxy = targets_support::haproxy::Haproxy::start("site.pem", None);
    let port = haproxy.port;
    lifecycle(&haproxy, port).await;
}

/// The agent's saved identity, as `client::channel` takes it.
fn identity(state: &Path) -> certctl_agent::client::Trust {
    let read = |name: &str| std::fs::read_to_string(state.join(name)).unwrap();
    certctl_agent::client::Trust::Identity {
        ca_pem: read("ca.pem"),
        chain_pem: read("identity.pem"),
        key_pem: read("identity.key"),
    }
}

/// Opens a stream with `frames` as the agent's first frames; returns how the hub answered.
async fn stream_with(
    platform: &Platform,
    trust: &certctl_agent::client::Trust,
    frames: Vec<certctl_proto::agent::ConnectRequest>,
) -> Result<certctl_proto::agent::ConnectResponse, tonic::Status> {
    let server = format!("https://127.0.0.1:{}", platform.agent_port);
    let channel =
        certctl_agent::client::channel(&server, trust).await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = certctl_proto::agent::agent_service_client::AgentServiceClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    for frame in frames {
        tx.send(frame).await.unwrap();
    }
    let mut answers = client.connect(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
    let first = answers.message().await?.ok_or_else(|| tonic::Status::unknown("no answer"))?;
    // A hub that accepted the stream may still end it over a later frame.
    match tokio::time::timeout(Duration::from_secs(5), answers.message()).await {
        Ok(Err(status)) => Err(status),
        _ => Ok(first),
    }
}

fn hello(agent: &str) -> certctl_proto::agent::ConnectRequest {
    use certctl_proto::agent::{Hello, connect_request::Frame};
    certctl_proto::agent::ConnectRequest {
        frame: Some(Frame::Hello(Hello { agent: agent.into(), ..Default::default() })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_refuses_what_it_cannot_trust() {
    use certctl_proto::agent::connect_request::Frame;
    use certctl_proto::agent::{ConnectRequest, DiscoveredFile, DiscoveryReport, Heartbeat};
    let platform = Platform::start();
    let agent = Agent::enroll(&platform, "edge-01");
    let trust = identity(&agent.state);

    // Its own identity: welcome.
    let welcome = stream_with(&platform, &trust, vec![hello("agents/edge-01")]).await.expect("welcome");
    assert!(matches!(welcome.frame, Some(certctl_proto::agent::connect_response::Frame::Welcome(_))));
    // A Hello whose self-report the inventory would not record, refused on its own.
    let bad = ConnectRequest {
        frame: Some(Frame::Hello(certctl_proto::agent::Hello {
            agent: "agents/edge-01".into(),
            capabilities: vec!["Not A Type".into()],
            ..Default::default()
        })),
    };
    let malformed = stream_with(&platform, &trust, vec![bad]).await.unwrap_err();
    assert_eq!(malformed.code(), tonic::Code::InvalidArgument, "{malformed:?}");
    assert!(malformed.message().contains("hello.capabilities[0]"), "{malformed:?}");
    // Claiming to be another agent, or not saying who it is first.
    let other = stream_with(&platform, &trust, vec![hello("agents/someone-else")]).await.unwrap_err();
    assert_eq!(other.code(), tonic::Code::PermissionDenied, "{other:?}");
    let heartbeat = ConnectRequest { frame: Some(Frame::Heartbeat(Heartbeat {})) };
    let mute = stream_with(&platform, &trust, vec![heartbeat]).await.unwrap_err();
    assert_eq!(mute.code(), tonic::Code::InvalidArgument, "{mute:?}");
    // A frame larger than the hub accepts ends the stream.
    let huge = ConnectRequest {
        frame: Some(Frame::Discovery(DiscoveryReport {
            files: vec![DiscoveredFile { path: "/x".into(), certificate_der: vec![0; 5 << 20] }],
        })),
    };
    let oversized = stream_with(&platform, &trust, vec![hello("agents/edge-01"), huge]).await.unwrap_err();
    assert!(
        matches!(oversized.code(), tonic::Code::ResourceExhausted | tonic::Code::OutOfRange | tonic::Code::Internal),
        "{oversized:?}"
    );

    // A client certificate from another CA does not get past the handshake.
    let foreign_ca =
        certctl_pki::generate::CertificateAuthority::new("Elsewhere", certctl_pki::KeyType::EcdsaP256).unwrap();
    let foreign = foreign_ca
        .issue_leaf(
            "edge-01",
            &["edge-01.agent.certctl.internal".into()],
            certctl_pki::KeyType::EcdsaP256,
            certctl_domain::now() - 60,
            3600,
        )
        .unwrap();
    let certctl_agent::client::Trust::Identity { ca_pem, .. } = identity(&agent.state) else { unreachable!() };
    let forged = certctl_agent::client::Trust::Identity {
        ca_pem,
        chain_pem: foreign.certificate_pem.clone(),
        key_pem: foreign.private_key_pem.clone(),
    };
    let refused = stream_with(&platform, &forged, vec![hello("agents/edge-01")]).await.unwrap_err();
    assert!(
        // TLS 1.3 lets the client finish its half of the handshake before the
        // hub checks its certificate, so the refusal arrives as a closed
        // connection, at whichever point the client notices.
        matches!(
            refused.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled
        ),
        "{refused:?}"
    );
    assert!(platform.server.log().contains("agent TLS handshake refused"), "the hub logs the refusal");

    // Renewing the identity replaces it: the old certificate is refused from then on.
    let settings = certctl_agent::state::StateDir::open(&agent.state).unwrap();
    let before = std::fs::read_to_string(agent.state.join("identity.pem")).unwrap();
    certctl_agent::enroll::renew(&settings, &settings.settings().unwrap()).await.expect("renewed");
    assert_ne!(std::fs::read_to_string(agent.state.join("identity.pem")).unwrap(), before);
    stream_with(&platform, &identity(&agent.state), vec![hello("agents/edge-01")])
        .await
        .expect("the new identity works");
    let replaced = stream_with(&platform, &trust, vec![hello("agents/edge-01")]).await.unwrap_err();
    assert_eq!(replaced.code(), tonic::Code::PermissionDenied, "{replaced:?}");
    assert!(replaced.message().contains("not agents/edge-01's current identity"), "{replaced:?}");

    // Join tokens: forged, expired.
    let enroll = |token: &str| {
        let out = Command::new(AGENT)
            .args(["--state-dir", platform.dir.path().join("x").to_str().unwrap(), "enroll"])
            .args(["--server", &format!("https://127.0.0.1:{}", platform.agent_port), "--token", token])
            .args(["--ca-fingerprint", &platform_fingerprint(&platform)])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(enroll("cjt_forged").contains("not valid"), "{}", enroll("cjt_forged"));
    let (code, body) = platform.rest("POST", "/api/v1/joinTokens", Some(json!({"ttl": "1s"})));
    assert_eq!(code, 200, "{body}");
    std::thread::sleep(Duration::from_millis(2100));
    let expired = enroll(body["secret"].as_str().unwrap());
    assert!(expired.contains("expired"), "{expired}");
}

fn platform_fingerprint(platform: &Platform) -> String {
    let (_, body) = platform.rest("GET", "/api/v1/issuers/platform/authorities", None);
    body["authorities"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["role"] == "root"))
        .and_then(|a| a["sha256Fingerprint"].as_str())
        .unwrap_or_else(|| panic!("no platform root: {body}"))
        .to_lowercase()
}

/// A file target on this host for `agent`.
fn file_target(platform: &Platform, id: &str, agent: &str, directory: &Path) {
    std::fs::create_dir_all(directory).unwrap();
    let body = json!({"agent": agent, "file": {"directory": directory.display().to_string()}});
    let (code, body) = platform.rest("POST", &format!("/api/v1/targets?targetId={id}"), Some(body));
    assert_eq!(code, 200, "{body}");
}

fn managed(platform: &Platform, id: &str, target: &str) {
    let body = json!({
        "commonName": format!("{id}.example.com"),
        "subjectAltNames": [format!("{id}.example.com")],
        "issuer": "issuers/local",
        "targets": [format!("targets/{target}")],
    });
    let (code, body) = platform.rest("POST", &format!("/api/v1/certificates?certificateId={id}"), Some(body));
    assert_eq!(code, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_the_agents_and_their_work() {
    let (services, services_url, services_dir) = Platform::services();
    let first = Platform::gateway(&services_url);
    let second = Platform::gateway(&services_url);
    let mut a = Agent::enroll(&first, "host-a");
    let mut b = Agent::enroll(&second, "host-b");
    // host-a also looks for certificates nobody manages yet.
    let found = services_dir.path().join("found");
    std::fs::create_dir(&found).unwrap();
    let ca = certctl_pki::generate::CertificateAuthority::new("Legacy", certctl_pki::KeyType::EcdsaP256).unwrap();
    let legacy = ca
        .issue_leaf(
            "legacy.example.com",
            &["legacy.example.com".into()],
            certctl_pki::KeyType::EcdsaP256,
            certctl_domain::now() - 60,
            86_400,
        )
        .unwrap();
    std::fs::write(found.join("legacy.pem"), &legacy.certificate_pem).unwrap();
    std::fs::write(found.join("legacy.key"), &legacy.private_key_pem).unwrap();
    a.start(&[&found]);
    b.start(&[]);
    let hub_of = |platform: &Platform, agent: &str| {
        platform.wait_for("the agent shows online", &format!("/api/v1/agents/{agent}"), &[&services], |a| {
            a["agent"]["status"] == "AGENT_STATUS_ONLINE"
        })["agent"]["hub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (hub_a, hub_b) = (hub_of(&first, "host-a"), hub_of(&first, "host-b"));
    assert_ne!(hub_a, hub_b, "each agent is held by the gateway it connected to");

    // Both certificates are set up through the first gateway; each agent's
    // work reaches it through the hub that holds its stream.
    let (dir_a, dir_b) = (services_dir.path().join("files-a"), services_dir.path().join("files-b"));
    file_target(&first, "files-a", "agents/host-a", &dir_a);
    file_target(&first, "files-b", "agents/host-b", &dir_b);
    managed(&first, "alpha", "files-a");
    managed(&first, "beta", "files-b");
    for (certificate, agent) in [("alpha", &a), ("beta", &b)] {
        let version = format!("certificates/{certificate}/versions/1");
        second.wait_for(
            "version 1 deployed by its agent",
            &format!("/api/v1/certificates/{certificate}/deployments"),
            &[&services, agent.process.as_ref().unwrap()],
            |d| deployment(d, &version).as_deref() == Some("DEPLOYMENT_STATE_DEPLOYED"),
        );
    }
    let served = |dir: &Path| std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    assert!(served(&dir_a).contains("BEGIN CERTIFICATE") && served(&dir_b).contains("BEGIN CERTIFICATE"));

    // What host-a found is in the inventory, with where it was found, and can be claimed.
    let discovered =
        first.wait_for("the legacy certificate is discovered", "/api/v1/discoveredCertificates", &[&services], |d| {
            d["discoveredCertificates"].as_array().is_some_and(|l| l.len() == 1)
        });
    let item = &discovered["discoveredCertificates"][0];
    assert_eq!(item["locations"][0]["agent"], "agents/host-a", "{item}");
    assert!(item["locations"][0]["path"].as_str().unwrap().ends_with("legacy.pem"), "{item}");
    let (code, body) = first.rest(
        "POST",
        &format!("/api/v1/{}:claim", item["name"].as_str().unwrap()),
        Some(json!({"certificateId": "legacy"})),
    );
    assert_eq!(code, 200, "{body}");
    let (code, body) = first.rest("GET", "/api/v1/certificates/legacy", None);
    assert_eq!(code, 200, "the claimed certificate is in the inventory: {body}");

    // The first gateway drains on SIGTERM: its agent's stream ends with
    // UNAVAILABLE, the agent retries; the second gateway goes on serving.
    let pid = first.server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let a_log = || a.process.as_ref().unwrap().log();
    for _ in 0..300 {
        if a_log().contains("the hub is draining") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(a_log().contains("Unavailable: the hub is draining"), "{}", a_log());
    drop(first);
    second.rest("POST", "/api/v1/jobs:renewCertificates", Some(json!({"certificates": ["certificates/beta"]})));
    second.wait_for(
        "beta's renewal, on the second gateway",
        "/api/v1/certificates/beta/deployments",
        &[&services],
        |d| deployment(d, "certificates/beta/versions/2").as_deref() == Some("DEPLOYMENT_STATE_DEPLOYED"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_deploy_finishes_it_once_restarted() {
    let nginx = targets_support::nginx::Nginx::start();
    let platform = Platform::start();
    let mut agent = Agent::enroll(&platform, "web-02");
    agent.start(&[]);
    // The reload announces itself, then takes its time: the agent is killed
    // with the new files written but not yet loaded.
    let reloading = platform.dir.path().join("reloading");
    let TargetConfig::Nginx(mut config) = nginx.target() else { unreachable!() };
    config.reload_command = format!("touch {} && sleep 5 && {}", reloading.display(), config.reload_command);
    let body = target_body("agents/web-02", &TargetConfig::Nginx(config));
    let (code, body) = platform.rest("POST", "/api/v1/targets?targetId=web", Some(body));
    assert_eq!(code, 200, "{body}");
    let certificate = json!({"commonName": "localhost", "subjectAltNames": ["localhost"], "issuer": "issuers/local", "targets": ["targets/web"]});
    platform.rest("POST", "/api/v1/certificates?certificateId=web", Some(certificate));
    for _ in 0..600 {
        if reloading.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reloading.exists(), "the deploy never reached its reload:\n{}", agent.process.as_ref().unwrap().log());
    agent.stop();
    let v1 = "certificates/web/versions/1";
    assert_ne!(openssl_served(nginx.port), fingerprint_of(&platform, v1), "killed before the reload");

    agent.start(&[]);
    platform.wait_for(
        "version 1 verified after the restart",
        "/api/v1/certificates/web/deployments",
        &agent.logs(),
        |d| deployment(d, v1).as_deref() == Some("DEPLOYMENT_STATE_VERIFIED"),
    );
    wait_served(nginx.port, &fingerprint_of(&platform, v1));
    assert_eq!(versions(&platform), 1, "the restart issued nothing new");
    let log = agent.process.as_ref().unwrap().log();
    assert!(log.contains("files in place but not served; reloading"), "the restarted agent reloaded:\n{log}");
}
