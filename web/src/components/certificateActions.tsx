// Certificate detail actions that reach the scheduler and issuance services:
// "Issue / Renew now" (a job followed live) and "Revoke current version".
import { useEffect, useRef } from "react";
import { Link } from "react-router";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Code, ConnectError } from "@connectrpc/connect";
import { issuance, scheduler } from "../api/client";
import { findInPages, keys } from "../api/queries";
import { useWatchJobs } from "../api/watch";
import { toApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "./states";
import { RelTime, tsDate, useNow } from "./time";
import { Modal } from "./Modal";
import { JobProgress } from "./JobProgress";
import { JobStateBadge } from "./JobBadge";
import { RevokeForm } from "./RevokeDialog";
import { Icon } from "./Icon";
import { useToast } from "./Toasts";
import type { Certificate } from "../gen/certctl/inventory/v1/inventory_pb";
import { JobState, type Job } from "../gen/certctl/scheduler/v1/scheduler_pb";
import { isOpenJob, jobKindLabel } from "../lib/jobs";
import { resourceId } from "../lib/names";

function notServed(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Unimplemented;
}

/** Confirms and enqueues RenewCertificates for one certificate; hands the job back. */
export function RenewDialog({ cert, open, onClose, onJob }: { cert: Certificate; open: boolean; onClose: () => void; onJob: (j: Job) => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const first = !cert.currentVersion;
  const m = useMutation({
    mutationFn: () => scheduler.renewCertificates({ certificates: [cert.name] }),
    onSuccess: (r) => {
      const job = r.jobs[0];
      qc.invalidateQueries({ queryKey: keys.jobs });
      if (job) {
        toast(`${jobKindLabel(job.kind)} job ${job.name} queued`);
        onJob(job);
      }
      onClose();
    },
  });
  return (
    <Modal title={`${first ? "Issue" : "Renew"} ${cert.displayName || resourceId(cert.name)} now?`} open={open} onClose={onClose}>
      <p style={{ marginTop: 0 }}>
        This queues a job that asks <code>{cert.issuer || "its issuer"}</code> for {first ? "the first version" : "the next version"} of{" "}
        <code>{cert.name}</code> under <code>{cert.profile || "the default profile"}</code>, whatever its renewal time.{" "}
        {cert.serverKeyed
          ? "The platform generates the key (it is server-keyed)."
          : "Its key stays with an agent or the caller, so the job waits for a CSR unless one is supplied."}{" "}
        If a job is already open for it, that job is shown instead. Progress appears on this page and under Jobs.
      </p>
      {m.error && <ErrorAlert error={m.error} title="The scheduler refused the request" />}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn primary" onClick={() => m.mutate()} disabled={m.isPending}>
          {m.isPending ? "Queueing…" : first ? "Issue now" : "Renew now"}
        </button>
      </div>
    </Modal>
  );
}

/** The certificate's recent jobs; open ones and the one just queued follow WatchJobs. */
export function CertificateJobs({ cert, focus }: { cert: Certificate; focus?: Job }) {
  const now = useNow();
  const qc = useQueryClient();
  const q = useQuery({
    queryKey: [...keys.jobs, "list", "certificate", cert.name],
    queryFn: () => scheduler.listJobs({ certificate: cert.name, pageSize: 5 }),
    retry: false,
  });
  const jobs = q.data?.jobs ?? [];
  const merged = focus && !jobs.some((j) => j.name === focus.name) ? [focus, ...jobs] : jobs;
  const watch = useWatchJobs(
    merged.filter((j) => isOpenJob(j.state)).map((j) => j.name),
    (j) => {
      if (!isOpenJob(j.state)) qc.invalidateQueries({ queryKey: [...keys.jobs, "list"] });
    },
  );
  const latest = (j: Job) => watch.jobs[j.name] ?? j;
  // A job seen open here that is now finished (by the stream or by a list
  // refresh, whichever came first) changed the certificate: load it again.
  const seenOpen = useRef(new Set<string>());
  const states = merged.map((j) => `${j.name}=${latest(j).state}`).join(",");
  useEffect(() => {
    let finished = false;
    for (const raw of merged) {
      const j = latest(raw);
      if (isOpenJob(j.state)) seenOpen.current.add(j.name);
      else if (seenOpen.current.delete(j.name) && j.state === JobState.SUCCEEDED) finished = true;
    }
    if (finished) {
      qc.invalidateQueries({ queryKey: keys.certificate(cert.name) });
      qc.invalidateQueries({ queryKey: keys.certificates });
      qc.invalidateQueries({ queryKey: keys.audit });
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [states]);
  const top = merged[0] ? latest(merged[0]) : undefined;
  return (
    <section className="panel flush" aria-labelledby="jobs-h">
      <div className="panel-head">
        <h2 id="jobs-h">Jobs</h2>
        <span className="spacer" />
        <Link to={`/jobs?certificate=${encodeURIComponent(resourceId(cert.name))}`}>All jobs for this certificate →</Link>
      </div>
      {q.isPending && !focus ? (
        <Loading what="jobs" />
      ) : q.isError && notServed(q.error) ? (
        <Empty title="The scheduler is not served by this server">
          <p className="faint">{toApiError(q.error).message}</p>
        </Empty>
      ) : q.isError && !focus ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list this certificate's jobs" />
        </div>
      ) : merged.length === 0 ? (
        <Empty title="No jobs for this certificate yet">
          <p>{cert.currentVersion ? "“Renew now” queues one." : "“Issue now” queues one."}</p>
        </Empty>
      ) : (
        <>
          {top && (
            <div style={{ padding: "10px 14px", borderBottom: "1px solid var(--border)" }}>
              <JobProgress job={top} live={!!watch.jobs[top.name] && watch.live} />
            </div>
          )}
          {merged.length > 1 && (
            <table className="data">
              <tbody>
                {merged.slice(1).map((raw) => {
                  const j = latest(raw);
                  return (
                    <tr key={j.name}>
                      <td>
                        <JobStateBadge state={j.state} />
                      </td>
                      <td>{jobKindLabel(j.kind)}</td>
                      <td>
                        <Link className="mono" to={`/jobs/${resourceId(j.name)}`}>
                          {resourceId(j.name)}
                        </Link>
                      </td>
                      <td className="truncate">{j.error?.code ? <code title={j.error.message}>{j.error.code}</code> : ""}</td>
                      <td>
                        <RelTime at={tsDate(j.updateTime)} now={now} />
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

/**
 * Finds the issued certificate behind the current version (ListIssuedCertificates
 * of the certificate's issuer) and offers RevokeCertificate.
 */
export function RevokeCurrentDialog({ cert, open, onClose }: { cert: Certificate; open: boolean; onClose: () => void }) {
  const q = useQuery({
    queryKey: [...keys.issued(cert.issuer), "find", cert.currentVersion],
    enabled: open && !!cert.issuer && !!cert.currentVersion,
    queryFn: () =>
      findInPages(
        async (pageToken) => {
          const r = await issuance.listIssuedCertificates({ parent: cert.issuer, pageSize: 1000, pageToken });
          return { items: r.issuedCertificates, next: r.nextPageToken };
        },
        (ic) => ic.certificateVersion === cert.currentVersion,
      ),
    staleTime: 0,
  });
  return (
    <Modal title={`Revoke the current version of ${cert.displayName || resourceId(cert.name)}?`} open={open} onClose={onClose}>
      {!cert.issuer ? (
        <Empty title="No issuer">
          <p>The certificate names no issuer, so certctl cannot revoke it; revoke it at the CA that signed it.</p>
        </Empty>
      ) : q.isPending ? (
        <Loading what={`the issued certificate in ${cert.issuer}`} />
      ) : q.isError ? (
        <ErrorAlert error={q.error} title={`Could not search the certificates ${cert.issuer} issued`} />
      ) : !q.data.item ? (
        <Empty title="Not issued by certctl">
          <p>
            <code>{cert.currentVersion}</code> is not among the certificates <code>{cert.issuer}</code> issued
            {q.data.exhausted ? "" : ` (searched the first ${q.data.pages} pages)`}. It was probably imported: revoke it at the CA that signed it.
          </p>
          <button type="button" className="btn" onClick={onClose}>
            Close
          </button>
        </Empty>
      ) : (
        <RevokeForm issued={q.data.item} onClose={onClose} />
      )}
    </Modal>
  );
}

export function RenewButton({ cert, onClick }: { cert: Certificate; onClick: () => void }) {
  return (
    <button type="button" className="btn primary" onClick={onClick} title="Queue issuance of the next version now (SchedulerService.RenewCertificates)">
      <Icon name="refresh" /> {cert.currentVersion ? "Renew now" : "Issue now"}
    </button>
  );
}
