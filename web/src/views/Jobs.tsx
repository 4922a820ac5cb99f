// The job queue and one job's timeline, kept live by WatchJobs.
import { useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { scheduler } from "../api/client";
import { keys } from "../api/queries";
import { useWatchJobs } from "../api/watch";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { RelTime, tsDate, useNow } from "../components/time";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Field } from "../components/Field";
import { Pager } from "../components/Pager";
import { JobStateBadge } from "../components/JobBadge";
import { JobProgress } from "../components/JobProgress";
import { useToast } from "../components/Toasts";
import { JobKind, JobState, type Job } from "../gen/certctl/scheduler/v1/scheduler_pb";
import {
  JOB_KIND_SLUGS,
  JOB_STATE_SLUGS,
  isOpenJob,
  isRetryable,
  jobFiltersFromParams,
  jobFiltersToParams,
  jobFiltersToRequest,
  jobKindLabel,
  type JobFilters,
} from "../lib/jobs";
import { resourceId } from "../lib/names";
import { formatExact } from "../lib/expiry";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { useTitle } from "../lib/useTitle";

const REFRESH_MS = 5_000;

type Action = { kind: "cancel" | "retry"; job: Job };

function JobActionForm({ action, onClose }: { action: Action; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const [reason, setReason] = useState("");
  const { job, kind } = action;
  const m = useMutation({
    mutationFn: async () =>
      kind === "cancel" ? (await scheduler.cancelJob({ name: job.name, reason: reason.trim() })).job : (await scheduler.retryJob({ name: job.name })).job,
    onSuccess: (j) => {
      qc.invalidateQueries({ queryKey: keys.jobs });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(kind === "cancel" ? `Cancelled ${job.name}` : `Queued ${job.name} again (${j ? "state " + JOB_STATE_SLUGS.find(([, v]) => v === j.state)?.[2] : ""})`);
      onClose();
    },
  });
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <p style={{ marginTop: 0 }}>
        {kind === "cancel" ? (
          <>
            Cancel <code>{job.name}</code> ({jobKindLabel(job.kind)} of <code>{job.certificate || "—"}</code>)? A running attempt is abandoned; the job can
            be retried later.
          </>
        ) : (
          <>
            Run <code>{job.name}</code> ({jobKindLabel(job.kind)} of <code>{job.certificate || "—"}</code>) again? Its attempts start again from zero.
          </>
        )}
      </p>
      {m.error && <ErrorAlert error={m.error} title={kind === "cancel" ? "Cancel refused" : "Retry refused"} />}
      {kind === "cancel" && (
        <Field label="Reason" hint="Recorded on the job and in the audit trail">
          {(p) => <input {...p} type="text" value={reason} onChange={(e) => setReason(e.target.value)} placeholder="Wrong profile; will fix and retry" />}
        </Field>
      )}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Back
        </button>
        <button type="submit" className={`btn ${kind === "cancel" ? "danger" : "primary"}`} disabled={m.isPending}>
          {m.isPending ? (kind === "cancel" ? "Cancelling…" : "Retrying…") : kind === "cancel" ? "Cancel job" : "Retry job"}
        </button>
      </div>
    </form>
  );
}

function JobActions({ job, onAction }: { job: Job; onAction: (a: Action) => void }) {
  return (
    <>
      {isRetryable(job.state) && (
        <button type="button" className="btn small" onClick={() => onAction({ kind: "retry", job })} aria-label={`Retry ${job.name}`}>
          <Icon name="refresh" /> Retry
        </button>
      )}
      {isOpenJob(job.state) && (
        <button type="button" className="btn small danger" onClick={() => onAction({ kind: "cancel", job })} aria-label={`Cancel ${job.name}`}>
          <Icon name="ban" /> Cancel
        </button>
      )}
    </>
  );
}

function ActionModal({ action, onClose }: { action: Action | null; onClose: () => void }) {
  return (
    <Modal title={action ? (action.kind === "cancel" ? `Cancel ${action.job.name}?` : `Retry ${action.job.name}?`) : ""} open={!!action} onClose={onClose}>
      {action && <JobActionForm action={action} onClose={onClose} />}
    </Modal>
  );
}

export function JobsView() {
  useTitle("Jobs");
  const now = useNow(5_000);
  const qc = useQueryClient();
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => jobFiltersFromParams(params), [params]);
  const [certText, setCertText] = useState(filters.certificate);
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [action, setAction] = useState<Action | null>(null);
  const token = currentToken(stack);
  const setFilters = (f: JobFilters) => {
    setParams(jobFiltersToParams(f), { replace: true });
    setStack(firstPage);
  };
  const q = useQuery({
    queryKey: [...keys.jobs, "list", jobFiltersToParams(filters).toString(), token],
    queryFn: () => scheduler.listJobs({ pageSize: 50, pageToken: token, ...jobFiltersToRequest(filters) }),
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
  });
  const rows = q.data?.jobs ?? [];
  // Open jobs on this page change state on screen as the server reports it.
  const watch = useWatchJobs(
    rows.filter((j) => isOpenJob(j.state)).map((j) => j.name),
    (j) => {
      if (!isOpenJob(j.state)) qc.invalidateQueries({ queryKey: [...keys.jobs, "list"] });
    },
  );
  const shown = rows.map((j) => {
    const w = watch.jobs[j.name];
    return w && (tsDate(w.updateTime)?.getTime() ?? 0) >= (tsDate(j.updateTime)?.getTime() ?? 0) ? w : j;
  });
  const filtered = filters.state !== JobState.UNSPECIFIED || filters.kind !== JobKind.UNSPECIFIED || !!filters.certificate;

  return (
    <>
      <div className="page-head">
        <h1>Jobs</h1>
        <span className="subtle">Issuance, renewal, deployment and validation work, newest first</span>
        <span className="spacer" />
        {watch.live && (
          <span className="badge ok" title="Open jobs on this page are streamed from the server">
            <Icon name="check" size={12} /> Live
          </span>
        )}
        {q.isFetching && <span className="spinner" aria-label="Refreshing" />}
      </div>
      <form
        className="filters jobs"
        role="search"
        aria-label="Job filters"
        onSubmit={(e) => {
          e.preventDefault();
          setFilters({ ...filters, certificate: certText });
        }}
      >
        <Field label="State">
          {(p) => (
            <select {...p} value={JOB_STATE_SLUGS.find(([, v]) => v === filters.state)?.[0] ?? ""} onChange={(e) => setFilters({ ...filters, state: JOB_STATE_SLUGS.find(([s]) => s === e.target.value)?.[1] ?? JobState.UNSPECIFIED })}>
              <option value="">Any state</option>
              {JOB_STATE_SLUGS.map(([slug, , label]) => (
                <option key={slug} value={slug}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Kind">
          {(p) => (
            <select {...p} value={JOB_KIND_SLUGS.find(([, v]) => v === filters.kind)?.[0] ?? ""} onChange={(e) => setFilters({ ...filters, kind: JOB_KIND_SLUGS.find(([s]) => s === e.target.value)?.[1] ?? JobKind.UNSPECIFIED })}>
              <option value="">Any kind</option>
              {JOB_KIND_SLUGS.map(([slug, , label]) => (
                <option key={slug} value={slug}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Certificate">
          {(p) => <input {...p} type="search" title="A certificate id; Enter or leaving the field applies it" className="mono" value={certText} onChange={(e) => setCertText(e.target.value)} onBlur={() => certText !== filters.certificate && setFilters({ ...filters, certificate: certText })} placeholder="certificate id, Enter" />}
        </Field>
        <div>
          {filtered && (
            <button
              type="button"
              className="btn"
              onClick={() => {
                setCertText("");
                setFilters({ state: JobState.UNSPECIFIED, kind: JobKind.UNSPECIFIED, certificate: "" });
              }}
            >
              Clear filters
            </button>
          )}
        </div>
      </form>
      {q.isError && <ErrorAlert error={q.error} title="Could not list jobs" />}
      {watch.error !== undefined && !q.isError && <ErrorAlert error={watch.error} title="Live updates stopped; the list still refreshes every 5 s" />}
      <section className="panel flush" aria-label="Jobs">
        {q.isPending ? (
          <Loading what="jobs" />
        ) : q.isSuccess && rows.length === 0 && !token ? (
          <Empty title={filtered ? "No jobs match these filters" : "No jobs yet"}>
            <p>{filtered ? "Clear a filter to see more." : "Use “Issue now” or “Renew now” on a certificate; renewals due by policy appear here on their own."}</p>
          </Empty>
        ) : (
          <>
            <div className="table-wrap">
              <table className="data">
                <thead>
                  <tr>
                    <th>State</th>
                    <th>Job</th>
                    <th>Kind</th>
                    <th>Certificate</th>
                    <th className="num">Attempts</th>
                    <th>Due</th>
                    <th>Updated</th>
                    <th>Error</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {shown.map((j) => (
                    <tr key={j.name} data-job={j.name}>
                      <td>
                        <JobStateBadge state={j.state} />
                      </td>
                      <td>
                        <Link className="mono" to={`/jobs/${resourceId(j.name)}`}>
                          {resourceId(j.name)}
                        </Link>
                      </td>
                      <td>{jobKindLabel(j.kind)}</td>
                      <td className="truncate">
                        {j.certificate ? (
                          <Link className="mono" to={`/certificates/${resourceId(j.certificate)}`}>
                            {resourceId(j.certificate)}
                          </Link>
                        ) : (
                          <span className="faint">—</span>
                        )}
                      </td>
                      <td className="num">
                        {j.attempts}/{j.maxAttempts || "—"}
                      </td>
                      <td>
                        <RelTime at={tsDate(j.runTime)} now={now} />
                      </td>
                      <td>
                        <RelTime at={tsDate(j.updateTime)} now={now} />
                      </td>
                      <td className="truncate" title={j.error ? `${j.error.code}: ${j.error.message}` : undefined}>
                        {j.error?.code ? <code>{j.error.code}</code> : <span className="faint">—</span>}
                      </td>
                      <td style={{ textAlign: "right" }}>
                        <JobActions job={j} onAction={setAction} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager
              stack={stack}
              nextPageToken={q.data?.nextPageToken}
              shown={rows.length}
              fetching={q.isFetching}
              onPrevious={() => setStack(popPrevious(stack))}
              onNext={() => setStack(pushNext(stack, q.data?.nextPageToken ?? ""))}
            />
          </>
        )}
      </section>
      <ActionModal action={action} onClose={() => setAction(null)} />
    </>
  );
}

function Timeline({ name, version }: { name: string; version: string }) {
  const now = useNow();
  const q = useQuery({
    queryKey: [...keys.job(name), "events", version],
    queryFn: () => scheduler.listJobEvents({ parent: name, pageSize: 1000 }),
    placeholderData: keepPreviousData,
  });
  return (
    <section className="panel flush" aria-labelledby="timeline-h">
      <div className="panel-head">
        <h2 id="timeline-h">Timeline</h2>
        <span className="spacer" />
        {q.data?.nextPageToken && <span className="faint">first 1000 events</span>}
      </div>
      {q.isPending ? (
        <Loading what="job events" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list the job's events" />
        </div>
      ) : q.data.jobEvents.length === 0 ? (
        <Empty title="No state changes recorded yet" />
      ) : (
        <ol className="timeline-events">
          {q.data.jobEvents.map((e) => (
            <li key={e.sequence.toString()}>
              <span className="faint mono">{e.sequence.toString()}</span>
              <span className="row" style={{ gap: 6 }}>
                {e.fromState !== JobState.UNSPECIFIED && (
                  <>
                    <JobStateBadge state={e.fromState} /> →
                  </>
                )}
                <JobStateBadge state={e.toState} />
                {e.attempt > 0 && <span className="faint">attempt {e.attempt}</span>}
              </span>
              <RelTime at={tsDate(e.eventTime)} now={now} />
              {e.message && <span className="msg">{e.message}</span>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

export function JobDetail() {
  const { id = "" } = useParams();
  const name = `jobs/${id}`;
  useTitle(name);
  const now = useNow();
  const qc = useQueryClient();
  const [action, setAction] = useState<Action | null>(null);
  const q = useQuery({ queryKey: keys.job(name), queryFn: () => scheduler.getJob({ name }) });
  const fetched = q.data?.job;
  const watch = useWatchJobs(fetched && isOpenJob(fetched.state) ? [name] : [], (j) => {
    qc.setQueryData(keys.job(name), { job: j });
    if (!isOpenJob(j.state)) qc.invalidateQueries({ queryKey: [...keys.jobs, "list"] });
  });
  const job = watch.jobs[name] ?? fetched;
  const head = (
    <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
      <Link to="/jobs">Jobs</Link> / {id}
    </nav>
  );
  if (q.isPending) return <Loading what={name} />;
  if (q.isError)
    return (
      <>
        {head}
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
      </>
    );
  if (!job) return <Empty title="The server returned no job" />;
  const result = job.result && Object.keys(job.result).length > 0 ? job.result : undefined;
  const version = typeof result?.version === "string" ? result.version : undefined;
  return (
    <>
      {head}
      <div className="page-head">
        <h1>
          {jobKindLabel(job.kind)} <span className="mono faint">{id}</span>
        </h1>
        <JobStateBadge state={job.state} />
        <span className="spacer" />
        <JobActions job={job} onAction={setAction} />
      </div>
      <div className="grid-2" style={{ marginBottom: 12 }}>
        <section className="panel" aria-labelledby="job-h">
          <h2 id="job-h">Job</h2>
          <div style={{ marginBottom: 10 }}>
            <JobProgress job={job} live={watch.live} />
          </div>
          <dl className="props">
            <dt>Certificate</dt>
            <dd>{job.certificate ? <Link className="mono" to={`/certificates/${resourceId(job.certificate)}`}>{job.certificate}</Link> : "—"}</dd>
            <dt>Attempts</dt>
            <dd>
              {job.attempts} of {job.maxAttempts || "—"}
            </dd>
            <dt>Due</dt>
            <dd>
              <RelTime at={tsDate(job.runTime)} now={now} /> <span className="faint">{tsDate(job.runTime) ? formatExact(tsDate(job.runTime)!) : ""}</span>
            </dd>
            <dt>Worker</dt>
            <dd className="mono">{job.worker || <span className="faint">none</span>}</dd>
            <dt>Created</dt>
            <dd>
              <RelTime at={tsDate(job.createTime)} now={now} />
            </dd>
            <dt>Updated</dt>
            <dd>
              <RelTime at={tsDate(job.updateTime)} now={now} />
            </dd>
            <dt>Error code</dt>
            <dd>{job.error?.code ? <code data-testid="job-error-code">{job.error.code}</code> : <span className="faint">—</span>}</dd>
            <dt>Error message</dt>
            <dd data-testid="job-error-message">{job.error?.message || <span className="faint">—</span>}</dd>
          </dl>
        </section>
        <section className="panel" aria-labelledby="result-h">
          <h2 id="result-h">Result</h2>
          {result ? (
            <>
              {version && (
                <p style={{ marginTop: 0 }}>
                  Produced <Link className="mono" to={`/certificates/${resourceId(version.split("/versions/")[0] ?? "")}`}>{version}</Link>
                </p>
              )}
              <pre className="json">{JSON.stringify(result, null, 2)}</pre>
            </>
          ) : (
            <Empty title={job.state === JobState.SUCCEEDED ? "No result recorded" : "No result yet"}>
              <p>{isOpenJob(job.state) ? "This updates live while the job runs." : ""}</p>
            </Empty>
          )}
        </section>
      </div>
      <Timeline name={name} version={`${job.state}-${job.attempts}-${job.updateTime?.seconds ?? 0n}`} />
      <ActionModal action={action} onClose={() => setAction(null)} />
    </>
  );
}
