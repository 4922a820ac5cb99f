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
