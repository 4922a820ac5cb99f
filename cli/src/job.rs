//! `certctl job ...`: the scheduler's jobs, through the gateway.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use certctl_proto::scheduler::scheduler_service_client::SchedulerServiceClient;
use certctl_proto::scheduler::{
    CancelJobRequest, Job, JobKind, JobState, ListJobEventsRequest, ListJobsRequest, RetryJobRequest, WatchJobsRequest,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::ServerAddress;
use crate::admin::{Output, connect, json_line, qualify, refused, request, table, when};

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Lists jobs, newest first.
    List(ListArgs),
    /// Follows jobs until all of them finish; exits 0 only if all succeeded.
    Watch {
        /// `jobs/ID` (or ID); one or more.
        #[arg(required = true)]
        names: Vec<String>,
        /// How long to wait at most.
        #[arg(long, default_value = "10m", value_parser = crate::cert::parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Cancels a job that has not finished.
    Cancel {
        /// `jobs/ID` (or ID).
        name: String,
        /// Recorded on the job and in the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Runs a failed or cancelled job again, with its attempts reset.
    Retry {
        /// `jobs/ID` (or ID).
        name: String,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Prints a job's timeline: each state change, oldest first.
    Events {
        /// `jobs/ID` (or ID).
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only jobs in this state: pending, running, awaiting-agent, succeeded, failed or cancelled.
    #[arg(long, value_parser = parse_state)]
    state: Option<JobState>,
    /// Only jobs of this kind: issuance, renewal, deployment or validation.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<JobKind>,
    /// Only jobs about this certificate (`certificates/ID` or ID).
    #[arg(long, default_value = "")]
    certificate: String,
    /// At most this many jobs.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    /// Prints only the jobs' names, one a line (for `$(...)` in scripts).
    #[arg(long, short, conflicts_with = "output")]
    quiet: bool,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    server: ServerAddress,
}

pub async fn run(command: JobCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobCommand::List(args) => list(args).await,
        JobCommand::Watch { names, timeout, server } => {
            let names = names.iter().map(|n| qualify("jobs", n)).collect();
            follow(connect(&server).await?, names, timeout).await
        }
        JobCommand::Cancel { name, reason, server } => {
            let name = qualify("jobs", &name);
            let job = client(&server)
                .await?
                .cancel_job(request(CancelJobRequest { name: name.clone(), reason }))
                .await
                .map_err(|s| refused(format!("cannot cancel {name}"), &s))?
                .into_inner()
                .job
                .context("the server answered without the job")?;
            println!("{}", progress(&job, None));
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Retry { name, server } => {
            let name = qualify("jobs", &name);
            let job = client(&server)
                .await?
                .retry_job(request(RetryJobRequest { name: name.clone() }))
                .await
                .map_err(|s| refused(format!("cannot retry {name}"), &s))?
                .into_inner()
                .job
                .context("the server answered without the job")?;
            println!("{}", progress(&job, None));
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Events { name, output, server } => events(&qualify("jobs", &name), output, &server).await,
    }
}

async fn client(server: &ServerAddress) -> anyhow::Result<SchedulerServiceClient<Channel>> {
    Ok(SchedulerServiceClient::new(connect(server).await?))
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut client = client(&args.server).await?;
    let limit = args.limit as usize;
    let mut query = ListJobsRequest {
        state: args.state.map_or(0, |s| s as i32),
        kind: args.kind.map_or(0, |k| k as i32),
        certificate: qualify("certificates", &args.certificate),
        ..Default::default()
    };
    let mut jobs = Vec::new();
    let more = loop {
        query.page_size = (limit - jobs.len()).min(1000) as i32;
        let page =
            client.list_jobs(request(query.clone())).await.map_err(|s| refused("cannot list jobs", &s))?.into_inner();
        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() {
            break false;
        }
        if jobs.len() >= limit {
            break true;
        }
        query.page_token = page.next_page_token;
    };
    if args.quiet {
        jobs.iter().for_each(|j| println!("{}", j.name));
        return Ok(ExitCode::SUCCESS);
    }
    match args.output {
        Output::Json => jobs.iter().try_for_each(json_line)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    vec![
                        j.name.clone(),
                        kind_name(j.kind).to_owned(),
                        state_name(j.state).to_owned(),
                        j.certificate.clone(),
                        format!("{}/{}", j.attempts, j.max_attempts),
                        when(j.update_time.as_ref()),
                        j.error.as_ref().map_or_else(String::new, |e| format!("{}: {}", e.code, e.message)),
                    ]
                })
                .collect();
            table(&["NAME", "KIND", "STATE", "CERTIFICATE", "ATTEMPTS", "UPDATED", "ERROR"], &rows);
            if more {
                eprintln!("(more jobs match: raise --limit to see them)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn events(name: &str, output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let mut client = client(server).await?;
    let mut query = ListJobEventsRequest { parent: name.to_owned(), page_size: 1000, ..Default::default() };
    let mut events = Vec::new();
    loop {
        let page = client
            .list_job_events(request(query.clone()))
            .await
            .map_err(|s| refused(format!("cannot list the events of {name}"), &s))?
            .into_inner();
        events.extend(page.job_events);
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    match output {
        Output::Json => events.iter().try_for_each(json_line)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = events
                .iter()
                .map(|e| {
                    vec![
                        when(e.event_time.as_ref()),
                        match e.from_state {
                            0 => state_name(e.to_state).to_owned(),
                            from => format!("{} -> {}", state_name(from), state_name(e.to_state)),
                        },
                        e.attempt.to_string(),
                        e.message.clone(),
                    ]
                })
                .collect();
            table(&["TIME", "CHANGE", "ATTEMPT", "MESSAGE"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Follows jobs with `WatchJobs` until every one has finished, printing a
/// line per change; exit 0 only if all succeeded. A stream cut short (a
/// restart, a proxy's idle timeout) is opened again for the unfinished jobs.
pub(crate) async fn follow(channel: Channel, names: Vec<String>, timeout: Duration) -> anyhow::Result<ExitCode> {
    let mut client = SchedulerServiceClient::new(channel);
    let mut seen: HashMap<String, Job> = HashMap::new();
    let watching = async {
        loop {
            let open: Vec<String> =
                names.iter().filter(|n| !seen.get(*n).is_some_and(|j| finished(j.state))).cloned().collect();
            if open.is_empty() {
                return Ok(());
            }
            match watch_once(&mut client, open, &mut seen).await {
                Ok(()) => {}
                Err(s) if matches!(s.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled) => {
                    tracing::debug!(status = %s, "the job watch broke off; opening it again");
                }
                Err(s) => return Err(refused("cannot watch the jobs", &s)),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    match tokio::time::timeout(timeout, watching).await {
        Ok(result) => result?,
        Err(_) => {
            let open: Vec<&str> =
                names.iter().filter(|n| !seen.get(*n).is_some_and(|j| finished(j.state))).map(String::as_str).collect();
            anyhow::bail!("gave up after {}s: {} not finished", timeout.as_secs(), open.join(", "));
        }
    }
    let all_succeeded = names.iter().all(|n| seen.get(n).is_some_and(|j| j.state == JobState::Succeeded as i32));
    Ok(if all_succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn watch_once(
    client: &mut SchedulerServiceClient<Channel>,
    names: Vec<String>,
    seen: &mut HashMap<String, Job>,
) -> Result<(), tonic::Status> {
    let mut stream = client.watch_jobs(WatchJobsRequest { names }).await?.into_inner();
    while let Some(answer) = stream.message().await? {
        let Some(job) = answer.job else { continue };
        let before = seen.get(&job.name).map(|j| j.state);
        if before != Some(job.state) {
            println!("{}", progress(&job, before));
        }
        seen.insert(job.name.clone(), job);
    }
    Ok(())
}

/// `jobs/x certificates/y RUNNING -> SUCCEEDED`, with the error of a failed
/// job and the result of a succeeded one.
pub(crate) fn progress(job: &Job, before: Option<i32>) -> String {
    let mut line = format!("{} {} ", job.name, job.certificate);
    if let Some(before) = before {
        line.push_str(&format!("{} -> ", state_name(before)));
    }
    line.push_str(state_name(job.state));
    if let Some(error) = job.error.as_ref().filter(|_| job.state != JobState::Succeeded as i32) {
        line.push_str(&format!(": {}: {}", error.code, error.message));
    }
    if job.state == JobState::Succeeded as i32 && job.result.is_some() {
        line.push_str(&format!(" {}", certctl_proto::struct_to_json(job.result.as_ref())));
    }
    line
}

fn finished(state: i32) -> bool {
    [JobState::Succeeded, JobState::Failed, JobState::Cancelled].iter().any(|s| *s as i32 == state)
}

fn state_name(state: i32) -> &'static str {
    JobState::try_from(state).map_or("?", |s| s.as_str_name().trim_start_matches("JOB_STATE_"))
}

fn kind_name(kind: i32) -> &'static str {
    JobKind::try_from(kind).map_or("?", |k| k.as_str_name().trim_start_matches("JOB_KIND_"))
}

fn parse_state(text: &str) -> Result<JobState, String> {
    JobState::from_str_name(&format!("JOB_STATE_{}", text.to_ascii_uppercase().replace('-', "_")))
        .filter(|s| *s != JobState::Unspecified)
        .ok_or_else(|| format!("`{text}` is not one of pending, running, awaiting-agent, succeeded, failed, cancelled"))
}

fn parse_kind(text: &str) -> Result<JobKind, String> {
    JobKind::from_str_name(&format!("JOB_KIND_{}", text.to_ascii_uppercase()))
        .filter(|k| *k != JobKind::Unspecified)
        .ok_or_else(|| format!("`{text}` is not one of issuance, renewal, deployment, validation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_name_the_job_the_certificate_and_the_change() {
        let mut job = Job {
            name: "jobs/a1".into(),
            certificate: "certificates/shop".into(),
            state: JobState::Running as i32,
            ..Default::default()
        };
        assert_eq!(progress(&job, None), "jobs/a1 certificates/shop RUNNING");
        job.state = JobState::Failed as i32;
        job.error = Some(certctl_proto::scheduler::JobError { code: "NEEDS_CSR".into(), message: "send one".into() });
        assert_eq!(
            progress(&job, Some(JobState::Running as i32)),
            "jobs/a1 certificates/shop RUNNING -> FAILED: NEEDS_CSR: send one"
        );
    }

    #[test]
    fn filters_parse_as_documented() {
        assert_eq!(parse_state("awaiting-agent"), Ok(JobState::AwaitingAgent));
        assert_eq!(parse_state("FAILED"), Ok(JobState::Failed));
        assert!(parse_state("done").is_err());
        assert_eq!(parse_kind("renewal"), Ok(JobKind::Renewal));
        assert!(parse_kind("unspecified").is_err());
    }
}
