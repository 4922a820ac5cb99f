//! The gRPC edge of the scheduler: converts protobuf to domain values, calls
//! `Scheduler`, converts back.

use std::pin::Pin;

use certctl_common::caller::Caller;
use certctl_domain::DomainError;
use certctl_domain::job::{Job, JobKind, JobState, JobTransition};
use certctl_proto::scheduler::{self as pb, scheduler_service_server::SchedulerService};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::listing::ListJobs;
use crate::service::Scheduler;
use crate::store::{JobFilter, Store};

fn invalid(field: &str, message: impl Into<String>) -> Status {
    certctl_common::status_from_domain(DomainError::invalid(field, message))
}

fn state_to_pb(s: JobState) -> i32 {
    (match s {
        JobState::Pending => pb::JobState::Pending,
        JobState::Running => pb::JobState::Running,
        JobState::AwaitingAgent => pb::JobState::AwaitingAgent,
        JobState::Succeeded => pb::JobState::Succeeded,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    }) as i32
}

fn state_from_pb(value: i32) -> Result<Option<JobState>, Status> {
    Ok(match pb::JobState::try_from(value) {
        Ok(pb::JobState::Unspecified) => None,
        Ok(pb::JobState::Pending) => Some(JobState::Pending),
        Ok(pb::JobState::Running) => Some(JobState::Running),
        Ok(pb::JobState::AwaitingAgent) => Some(JobState::AwaitingAgent),
        Ok(pb::JobState::Succeeded) => Some(JobState::Succeeded),
        Ok(pb::JobState::Failed) => Some(JobState::Failed),
        Ok(pb::JobState::Cancelled) => Some(JobState::Cancelled),
        Err(_) => return Err(invalid("state", format!("{value} is not a job state"))),
    })
}

fn kind_to_pb(k: JobKind) -> i32 {
    (match k {
        JobKind::Issuance => pb::JobKind::Issuance,
        JobKind::Renewal => pb::JobKind::Renewal,
        JobKind::Deployment => pb::JobKind::Deployment,
        JobKind::Validation => pb::JobKind::Validation,
    }) as i32
}

fn kind_from_pb(value: i32) -> Result<Option<JobKind>, Status> {
    Ok(match pb::JobKind::try_from(value) {
        Ok(pb::JobKind::Unspecified) => None,
        Ok(pb::JobKind::Issuance) => Some(JobKind::Issuance),
        Ok(pb::JobKind::Renewal) => Some(JobKind::Renewal),
        Ok(pb::JobKind::Deployment) => Some(JobKind::Deployment),
        Ok(pb::JobKind::Validation) => Some(JobKind::Validation),
        Err(_) => return Err(invalid("kind", format!("{value} is not a job kind"))),
    })
}

pub fn job_to_pb(j: Job) -> pb::Job {
    pb::Job {
        name: j.name(),
        kind: kind_to_pb(j.kind),
        state: state_to_pb(j.state),
        certificate: j.certificate.unwrap_or_default(),
        attempts: j.attempts,
        max_attempts: j.max_attempts,
        run_time: certctl_proto::timestamp(j.run_at),
        error: j.error.map(|e| pb::JobError { code: e.code, message: e.message }),
        result: j.result.as_ref().and_then(certctl_proto::json_to_struct),
        worker: j.lease.map(|l| l.owner).unwrap_or_default(),
        create_time: certctl_proto::timestamp(j.create_time),
        update_time: certctl_proto::timestamp(j.update_time),
    }
}

fn event_to_pb(t: JobTransition) -> pb::JobEvent {
    pb::JobEvent {
        sequence: t.seq,
        event_time: certctl_proto::timestamp(t.time),
        from_state: t.from.map_or(0, state_to_pb),
        to_state: state_to_pb(t.to),
        attempt: t.attempt,
        message: t.message,
    }
}

pub struct SchedulerGrpc<S: Store + ?Sized> {
    scheduler: Scheduler<S>,
}

impl<S: Store + ?Sized> SchedulerGrpc<S> {
    pub fn new(scheduler: Scheduler<S>) -> Self {
        Self { scheduler }
    }

    pub fn into_server(self) -> pb::scheduler_service_server::SchedulerServiceServer<Self> {
        pb::scheduler_service_server::SchedulerServiceServer::new(self)
    }
}

type AgentNoticeStream = Pin<Box<dyn Stream<Item = Result<pb::WatchAgentWorkResponse, Status>> + Send>>;
type JobStream = Pin<Box<dyn Stream<Item = Result<pb::WatchJobsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store + ?Sized> SchedulerService for SchedulerGrpc<S> {
    type WatchJobsStream = JobStream;

    async fn get_job(&self, request: Request<pb::GetJobRequest>) -> Result<Response<pb::GetJobResponse>, Status> {
        let job = self.scheduler.get(&request.get_ref().name).await?;
        Ok(Response::new(pb::GetJobResponse { job: Some(job_to_pb(job)) }))
    }

    async fn list_jobs(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        let r = request.into_inner();
        let listing = ListJobs {
            filter: JobFilter {
                state: state_from_pb(r.state)?,
                kind: kind_from_pb(r.kind)?,
                certificate: (!r.certificate.is_empty()).then_some(r.certificate),
            },
            newest_first: true,
            page_size: r.page_size,
            page_token: r.page_token,
        };
        let page = self.scheduler.list(listing).await?;
        Ok(Response::new(pb::ListJobsResponse {
            jobs: page.jobs.into_iter().map(job_to_pb).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn list_job_events(
        &self,
        request: Request<pb::ListJobEventsRequest>,
    ) -> Result<Response<pb::ListJobEventsResponse>, Status> {
        let r = request.get_ref();
        let (events, next_page_token) = self.scheduler.events(&r.parent, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListJobEventsResponse {
            job_events: events.into_iter().map(event_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn cancel_job(
        &self,
        request: Request<pb::CancelJobRequest>,
    ) -> Result<Response<pb::CancelJobResponse>, Status> {
        let caller = Caller::from_metadata(request.metadata());
        let r = request.get_ref();
        if r.reason.chars().count() > 500 {
            return Err(invalid("reason", "at most 500 characters"));
        }
        let job = self.scheduler.cancel(&caller, &r.name, &r.reason).await?;
        Ok(Response::new(pb::CancelJobResponse { job: Some(job_to_pb(job)) }))
    }

    async fn retry_job(&self, request: Request<pb::RetryJobRequest>) -> Result<Response<pb::RetryJobResponse>, Status> {
        let caller = Caller::from_metadata(request.metadata());
        let job = self.scheduler.retry(&caller, &request.get_ref().name).await?;
        Ok(Response::new(pb::RetryJobResponse { job: Some(job_to_pb(job)) }))
    }

    async fn renew_certificates(
        &self,
        request: Request<pb::RenewCertificatesRequest>,
    ) -> Result<Response<pb::RenewCertificatesResponse>, Status> {
        let caller = Caller::from_metadata(request.metadata());
        let r = request.into_inner();
        let jobs = self.scheduler.renew(&caller, &r.certificates, &r.csr_pem).await?;
        Ok(Response::new(pb::RenewCertificatesResponse { jobs: jobs.into_iter().map(job_to_pb).collect() }))
    }

    type WatchAgentWorkStream = AgentNoticeStream;

    async fn watch_agent_work(
        &self,
        _request: Request<pb::WatchAgentWorkRequest>,
    ) -> Result<Response<Self::WatchAgentWorkStream>, Status> {
        let mut notices = self.scheduler.store.agent_notices();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            // A new watcher has missed everything so far.
            let mut batch = vec![crate::store::EVERY_AGENT.to_owned()];
            loop {
                // Whatever else arrived meanwhile rides in the same message.
                loop {
                    match notices.try_recv() {
                        Ok(agent) => batch.push(agent),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                            batch.push(crate::store::EVERY_AGENT.to_owned())
                        }
                        Err(_) => break,
                    }
                    if batch.len() >= 1000 {
                        break;
                    }
                }
                batch.sort_unstable();
                batch.dedup();
                if tx.send(Ok(pb::WatchAgentWorkResponse { agents: std::mem::take(&mut batch) })).await.is_err() {
                    return;
                }
                match notices.recv().await {
                    Ok(agent) => batch.push(agent),
                    Err(RecvError::Lagged(_)) => batch.push(crate::store::EVERY_AGENT.to_owned()),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_agent_work(
        &self,
        request: Request<pb::ListAgentWorkRequest>,
    ) -> Result<Response<pb::ListAgentWorkResponse>, Status> {
        let r = request.into_inner();
        let (jobs, next_page_token) = self.scheduler.agent_work(&r.agent, r.page_size, &r.page_token).await?;
        let work = jobs
            .iter()
            .filter_map(|job| {
                crate::agent_work::command_of(job)
                    .map(|command| pb::AgentWork { job: job.name(), command: Some(command) })
            })
            .collect();
        Ok(Response::new(pb::ListAgentWorkResponse { work, next_page_token }))
    }

    async fn complete_agent_work(
        &self,
        request: Request<pb::CompleteAgentWorkRequest>,
    ) -> Result<Response<pb::CompleteAgentWorkResponse>, Status> {
        use pb::complete_agent_work_request::Answer as A;
        let r = request.into_inner();
        let answer = match r.answer {
            Some(A::Csr(csr)) => crate::agent_work::Answer::Csr(csr),
            Some(A::Deploy(report)) => crate::agent_work::Answer::Deploy(report),
            Some(A::Rejected(rejected)) => crate::agent_work::Answer::Rejected(rejected),
            None => return Err(invalid("answer", "required: csr, deploy or rejected")),
        };
        let job = self.scheduler.complete_agent_work(&r.job, &r.agent, answer).await?;
        Ok(Response::new(pb::CompleteAgentWorkResponse { job: Some(job_to_pb(job)) }))
    }

    async fn watch_jobs(
        &self,
        request: Request<pb::WatchJobsRequest>,
    ) -> Result<Response<Self::WatchJobsStream>, Status> {
        let stream = self.scheduler.watch(&request.get_ref().names).await?;
        let stream = stream.map(|item| match item {
            Ok(job) => Ok(pb::WatchJobsResponse { job: Some(job_to_pb(job)) }),
            Err(e) => Err(Status::from(e)),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}
