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
        let mut platform = Self { url: format!("http://127.0.0.1:{port}"), agent_port, server, dir };
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
    let (kind, c) = match config {
        TargetConfig::Nginx(c) => ("nginx", c),
        TargetConfig::Apache(c) => ("apache", c),
        TargetConfig::Haproxy(c) => ("haproxy", c),
        TargetConfig::File { .. } => unreachable!("web servers only"),
    };
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

/// The scenario against one kind of web server.
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

    // Retired: the agent's identity is refused from now on.
    platform.cli(&["agent", "retire", "agents/web-01"]);
    agent.stop();
    agent.start(&[]);
    let process = agent.process.as_mut().unwrap();
    let status = process.child.wait().unwrap();
    assert!(!status.success(), "a retired agent must not keep running");
    assert!(process.log().contains("retired"), "{}", process.log());
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
