//! Work for agents: the commands a job waits on, and what an agent's answer
//! does to the job. With `grpc.rs` and `upstream.rs`, a module that sees
//! proto types: a command is an `certctl.agent.v1.Command` kept in the job's
//! payload in its proto3 JSON form, so it reaches the agent as it was made.
//!
//! A job waiting for an agent has `payload.agent` (`agents/{id}`) and
//! `payload.command`. The command id is the job id and the attempt, so an
//! answer to a command from an earlier attempt is recognised as stale.

use certctl_domain::DomainError;
use certctl_domain::job::{Job, JobError};
use certctl_proto::agent as pb;
use serde_json::{Value, json};

use crate::error::Result;
use crate::store::awaited_agent;
use crate::upstream::Placement;

/// How long a job waits for an agent before a worker claims it again (a new
/// attempt, which sends the command anew).
pub const AGENT_TIMEOUT_SECS: i64 = 3600;

fn command_id(job: &Job) -> String {
    format!("{}.{}", job.id, job.attempts)
}

/// The payload of a job that waits for `agent` to carry out `action`.
fn awaiting(job: &Job, agent: &str, action: pb::command::Action) -> Value {
    let command = pb::Command { command_id: command_id(job), action: Some(action) };
    let mut payload = job.payload.clone();
    payload["agent"] = json!(agent);
    payload["command"] = serde_json::to_value(&command).unwrap_or(Value::Null);
    payload
}

/// Asks the agent holding the certificate's key for a CSR.
pub fn request_csr(job: &Job, placement: &Placement, agent: &str) -> Value {
    let c = &placement.certificate;
    let (dns_names, ip_addresses) =
        c.subject_alt_names.iter().cloned().partition(|san| san.parse::<std::net::IpAddr>().is_err());
    let key_algorithm = match c.key_algorithm {
        0 => certctl_proto::types::KeyAlgorithm::EcdsaP256 as i32,
        other => other,
    };
    awaiting(
        job,
        agent,
        pb::command::Action::RequestCsr(pb::RequestCsr {
            certificate: c.name.clone(),
            common_name: c.common_name.clone(),
            dns_names,
            ip_addresses,
            key_algorithm,
        }),
    )
}

/// Asks `agent` to install `version` on its targets.
pub fn deploy(
    job: &Job,
    agent: &str,
    version: &certctl_proto::inventory::CertificateVersion,
    targets: Vec<certctl_proto::inventory::Target>,
) -> Value {
    let certificate = version.name.split("/versions/").next().unwrap_or_default().to_owned();
    awaiting(
        job,
        agent,
        pb::command::Action::Deploy(pb::Deploy {
            certificate,
            version: version.name.clone(),
            certificate_pem: version.pem_chain.clone(),
            fingerprint: version.sha256_fingerprint.clone(),
            targets,
        }),
    )
}

/// The command a job waits on, as the agent receives it.
pub fn command_of(job: &Job) -> Option<pb::Command> {
    awaited_agent(job)?;
    serde_json::from_value(job.payload.get("command")?.clone()).ok()
}

/// An agent's answer to a command.
#[derive(Debug, Clone)]
pub enum Answer {
    Csr(pb::CsrReady),
    Deploy(pb::DeployReport),
    Rejected(pb::CommandRejected),
}

impl Answer {
    fn command_id(&self) -> &str {
        match self {
            Answer::Csr(a) => &a.command_id,
            Answer::Deploy(a) => &a.command_id,
            Answer::Rejected(a) => &a.command_id,
        }
    }
}

/// What an answer does to the job waiting for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Continuation {
    /// Run the job again with this payload (the answer in it).
    Resume(Value),
    /// The job cannot go on: fail it for good.
    Fail(JobError),
}

/// Checks that `agent` may answer the job and the answer fits the command,
/// and decides how the job continues.
pub fn answer(job: &Job, agent: &str, answer: Answer) -> Result<Continuation> {
    let Some(waiting_for) = awaited_agent(job) else {
        return Err(DomainError::FailedPrecondition(format!(
            "{} is {}, not waiting for an agent",
            job.name(),
            job.state
        ))
        .into());
    };
    if waiting_for != agent {
        return Err(
            DomainError::FailedPrecondition(format!("{} waits for {waiting_for}, not {agent}", job.name())).into()
        );
    }
    let Some(command) = command_of(job) else {
        return Err(DomainError::FailedPrecondition(format!("{} holds no command", job.name())).into());
    };
    if answer.command_id() != command.command_id {
        return Err(DomainError::FailedPrecondition(format!(
            "command {} is stale: {} now waits on command {}",
            answer.command_id(),
            job.name(),
            command.command_id
        ))
        .into());
    }
    let mut payload = job.payload.clone();
    if let Some(map) = payload.as_object_mut() {
        map.remove("command");
    }
    match (answer, command.action) {
        (Answer::Rejected(r), _) => Ok(Continuation::Fail(JobError::new(
            if r.code.is_empty() { "AGENT_REJECTED".to_owned() } else { r.code },
            format!("{agent} refused the command: {}", r.message),
        ))),
        (Answer::Csr(csr), Some(pb::command::Action::RequestCsr(asked))) => {
            check_csr(&csr.csr_pem, &asked)?;
            payload["csr_pem"] = json!(csr.csr_pem);
            Ok(Continuation::Resume(payload))
        }
        (Answer::Deploy(report), Some(pb::command::Action::Deploy(asked))) => {
            let expected: std::collections::BTreeSet<&str> = asked.targets.iter().map(|t| t.name.as_str()).collect();
            let answered: std::collections::BTreeSet<&str> = report.results.iter().map(|r| r.target.as_str()).collect();
            if expected != answered {
                return Err(DomainError::invalid(
                    "deploy.results",
                    format!("the report must cover exactly the targets of the command: {expected:?}, not {answered:?}"),
                )
                .into());
            }
            payload["report"] = serde_json::to_value(&report).unwrap_or(Value::Null);
            Ok(Continuation::Resume(payload))
        }
        (_, _) => Err(DomainError::invalid("answer", "the answer does not fit the command it names").into()),
    }
}

/// A CSR must be valid and ask for exactly the names the command asked for:
/// an agent cannot widen what is issued.
fn check_csr(csr_pem: &str, asked: &pb::RequestCsr) -> Result<()> {
    let verified = certctl_pki::csr::verify_csr(csr_pem.as_bytes())
        .map_err(|e| DomainError::invalid("csr.csr_pem", format!("not a valid CSR: {e}")))?;
    let mut wanted: Vec<String> = asked.dns_names.iter().chain(&asked.ip_addresses).map(|n| n.to_lowercase()).collect();
    let mut got: Vec<String> = verified.dns_names.iter().map(|n| n.to_lowercase()).collect();
    got.extend(verified.ip_addresses.iter().map(|ip| ip.to_string()));
    wanted.sort();
    wanted.dedup();
    got.sort();
    got.dedup();
    if wanted != got {
        return Err(DomainError::invalid(
            "csr.csr_pem",
            format!("the CSR names {got:?}, but the certificate asks for {wanted:?}"),
        )
        .into());
    }
    if !asked.common_name.is_empty() && verified.common_name.as_deref() != Some(asked.common_name.as_str()) {
        return Err(DomainError::invalid(
            "csr.csr_pem",
            format!("the CSR's common name is {:?}, not {:?}", verified.common_name, asked.common_name),
        )
        .into());
    }
    Ok(())
}

/// The agent's report of a deployment job, once it answered.
pub fn report_of(job: &Job) -> Option<pb::DeployReport> {
    serde_json::from_value(job.payload.get("report")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use certctl_domain::job::{JobKind, JobState, NewJob, RetryPolicy};
    use certctl_pki::KeyType;

    use super::*;

    fn placement() -> Placement {
        Placement {
            certificate: certctl_proto::inventory::Certificate {
                name: "certificates/web".into(),
                common_name: "web.example.com".into(),
                subject_alt_names: vec!["web.example.com".into(), "10.0.0.7".into()],
                ..Default::default()
            },
            targets: vec![],
        }
    }

    /// A renewal job that waits for agents/web-01's CSR.
    fn waiting_for_csr() -> Job {
        let mut job = NewJob::new(JobKind::Renewal, "k").into_job("ab12".into(), &RetryPolicy::default(), 100);
        job.attempts = 2;
        job.payload = request_csr(&job, &placement(), "agents/web-01");
        job.state = JobState::AwaitingAgent;
        job
    }

    fn csr_for(names: &[&str]) -> String {
        let key = KeyType::EcdsaP256.generate().unwrap();
        certctl_pki::build_csr(&key, "web.example.com", &names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap()
    }

    fn csr_answer(job: &Job, csr_pem: String) -> Answer {
        Answer::Csr(pb::CsrReady { command_id: command_of(job).unwrap().command_id, csr_pem })
    }

    fn refusal(result: Result<Continuation>) -> String {
        match result {
            Err(e) => e.to_string(),
            Ok(c) => panic!("expected a refusal, got {c:?}"),
        }
    }

    #[test]
    fn the_command_names_the_attempt_and_asks_for_the_certificates_names() {
        let job = waiting_for_csr();
        let command = command_of(&job).unwrap();
        assert_eq!(command.command_id, "ab12.2");
        let Some(pb::command::Action::RequestCsr(r)) = command.action else { panic!("a CSR request") };
        assert_eq!(r.dns_names, ["web.example.com"]);
        assert_eq!(r.ip_addresses, ["10.0.0.7"]);
        assert_eq!(r.key_algorithm, certctl_proto::types::KeyAlgorithm::EcdsaP256 as i32, "P-256 by default");
    }

    #[test]
    fn a_matching_csr_resumes_the_job_with_it_and_drops_the_command() {
        let job = waiting_for_csr();
        let csr = csr_for(&["web.example.com", "10.0.0.7"]);
        let Continuation::Resume(payload) = answer(&job, "agents/web-01", csr_answer(&job, csr.clone())).unwrap()
        else {
            panic!("resumed")
        };
        assert_eq!(payload["csr_pem"], csr.as_str());
        assert!(payload.get("command").is_none());
    }

    #[test]
    fn a_csr_for_other_names_is_refused() {
        let job = waiting_for_csr();
        let wider = csr_for(&["web.example.com", "10.0.0.7", "admin.example.com"]);
        let message = refusal(answer(&job, "agents/web-01", csr_answer(&job, wider)));
        assert!(message.contains("admin.example.com"), "{message}");
        let message = refusal(answer(&job, "agents/web-01", csr_answer(&job, "not a CSR".into())));
        assert!(message.contains("not a valid CSR"), "{message}");
    }

    #[test]
    fn only_the_awaited_agent_may_answer_the_current_command() {
        let job = waiting_for_csr();
        let csr = csr_for(&["web.example.com", "10.0.0.7"]);
        let message = refusal(answer(&job, "agents/web-02", csr_answer(&job, csr.clone())));
        assert!(message.contains("waits for agents/web-01, not agents/web-02"), "{message}");
        let stale = Answer::Csr(pb::CsrReady { command_id: "ab12.1".into(), csr_pem: csr.clone() });
        assert!(refusal(answer(&job, "agents/web-01", stale)).contains("stale"));
        let mut done = job.clone();
        done.state = JobState::Succeeded;
        assert!(refusal(answer(&done, "agents/web-01", csr_answer(&job, csr))).contains("not waiting for an agent"));
    }

    #[test]
    fn an_answer_of_the_wrong_kind_or_a_refusal() {
        let job = waiting_for_csr();
        let id = command_of(&job).unwrap().command_id;
        let report = Answer::Deploy(pb::DeployReport { command_id: id.clone(), results: vec![] });
        assert!(refusal(answer(&job, "agents/web-01", report)).contains("does not fit"));
        let rejected = Answer::Rejected(pb::CommandRejected {
            command_id: id,
            code: "UNSUPPORTED_TARGET".into(),
            message: "no such target type".into(),
        });
        let Continuation::Fail(error) = answer(&job, "agents/web-01", rejected).unwrap() else { panic!("failed") };
        assert_eq!(error.code, "UNSUPPORTED_TARGET");
        assert!(error.message.contains("agents/web-01 refused the command"), "{}", error.message);
    }

    #[test]
    fn a_deploy_report_must_cover_exactly_the_commands_targets() {
        let mut job = NewJob::new(JobKind::Deployment, "d").into_job("cd34".into(), &RetryPolicy::default(), 100);
        let version = certctl_proto::inventory::CertificateVersion {
            name: "certificates/web/versions/3".into(),
            ..Default::default()
        };
        let target = |name: &str| certctl_proto::inventory::Target { name: name.into(), ..Default::default() };
        job.payload = deploy(&job, "agents/web-01", &version, vec![target("targets/a"), target("targets/b")]);
        job.state = JobState::AwaitingAgent;
        let id = command_of(&job).unwrap().command_id;
        let result = |t: &str| pb::TargetResult { target: t.into(), ..Default::default() };
        let partial = Answer::Deploy(pb::DeployReport { command_id: id.clone(), results: vec![result("targets/a")] });
        assert!(refusal(answer(&job, "agents/web-01", partial)).contains("exactly the targets"));
        let full = Answer::Deploy(pb::DeployReport {
            command_id: id,
            results: vec![result("targets/b"), result("targets/a")],
        });
        let Continuation::Resume(payload) = answer(&job, "agents/web-01", full).unwrap() else { panic!("resumed") };
        assert_eq!(report_of(&Job { payload, ..job }).unwrap().results.len(), 2);
    }
}
