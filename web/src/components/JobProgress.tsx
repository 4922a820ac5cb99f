import { Link } from "react-router";
import { JobState, type Job } from "../gen/certctl/scheduler/v1/scheduler_pb";
import { jobKindLabel, jobProgress } from "../lib/jobs";
import { resourceId } from "../lib/names";
import { JobStateBadge } from "./JobBadge";

/** One job's progress as the watch stream reports it, with its error if it failed. */
export function JobProgress({ job, live }: { job: Job; live?: boolean }) {
  const pct = Math.round(jobProgress(job.state) * 100);
  const tone = job.state === JobState.FAILED || job.state === JobState.CANCELLED ? "failed" : job.state === JobState.SUCCEEDED ? "done" : "";
  return (
    <div className="stack" style={{ gap: 6 }} data-testid="job-progress" data-job={job.name}>
      <div className="job-progress">
        <JobStateBadge state={job.state} />
        <div
          className="progress"
          role="progressbar"
          aria-label={`${jobKindLabel(job.kind)} job progress`}
          aria-valuemin={0}
          aria-valuemax={100}
          aria-valuenow={pct}
          aria-valuetext={`${pct}%`}
        >
          <div className={tone} style={{ width: `${pct}%` }} />
        </div>
        <span className="subtle">
          {jobKindLabel(job.kind)}{" "}
          <Link to={`/jobs/${resourceId(job.name)}`} className="mono" title={job.name} aria-label={`Open ${job.name}`}>
            {resourceId(job.name).length > 14 ? `${resourceId(job.name).slice(0, 12)}…` : resourceId(job.name)}
          </Link>{" "}
          · attempt {job.attempts}
          {job.maxAttempts ? ` of ${job.maxAttempts}` : ""}
          {live ? <span className="faint"> · live</span> : null}
        </span>
      </div>
      {job.error && (job.error.code || job.error.message) && (
        <div className={`alert${job.state === JobState.FAILED ? "" : " info"}`} role={job.state === JobState.FAILED ? "alert" : undefined} style={{ marginBottom: 0 }}>
          <strong>{job.error.code || "Error"}</strong>: {job.error.message || "no message"}
        </div>
      )}
    </div>
  );
}
