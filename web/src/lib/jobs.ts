// Jobs: state words and slugs, URL filters, progress and counts.
import { JobKind, JobState } from "../gen/certctl/scheduler/v1/scheduler_pb";
import { resourceId, resourceName } from "./names";

export const JOB_STATE_SLUGS: ReadonlyArray<readonly [string, JobState, string]> = [
  ["pending", JobState.PENDING, "Pending"],
  ["running", JobState.RUNNING, "Running"],
  ["awaiting-agent", JobState.AWAITING_AGENT, "Awaiting agent"],
  ["succeeded", JobState.SUCCEEDED, "Succeeded"],
  ["failed", JobState.FAILED, "Failed"],
  ["cancelled", JobState.CANCELLED, "Cancelled"],
];

export const JOB_KIND_SLUGS: ReadonlyArray<readonly [string, JobKind, string]> = [
  ["issuance", JobKind.ISSUANCE, "Issuance"],
  ["renewal", JobKind.RENEWAL, "Renewal"],
  ["deployment", JobKind.DEPLOYMENT, "Deployment"],
  ["validation", JobKind.VALIDATION, "Validation"],
];

export function jobStateLabel(s: JobState): string {
  return JOB_STATE_SLUGS.find(([, v]) => v === s)?.[2] ?? "Unknown";
}

export function jobKindLabel(k: JobKind): string {
  return JOB_KIND_SLUGS.find(([, v]) => v === k)?.[2] ?? "Unknown";
}

/** A job still has work ahead of it (it can be cancelled, and a watch keeps going). */
export function isOpenJob(s: JobState): boolean {
  return s === JobState.PENDING || s === JobState.RUNNING || s === JobState.AWAITING_AGENT;
}

/** A finished job that RetryJob accepts. */
export function isRetryable(s: JobState): boolean {
  return s === JobState.FAILED || s === JobState.CANCELLED;
}

/**
 * How far along a job is, 0..1, for a progress bar: queued, running,
 * waiting for an agent, finished (whatever the outcome).
 */
export function jobProgress(s: JobState): number {
  switch (s) {
    case JobState.PENDING:
      return 0.15;
    case JobState.RUNNING:
      return 0.5;
    case JobState.AWAITING_AGENT:
      return 0.75;
    case JobState.SUCCEEDED:
    case JobState.FAILED:
    case JobState.CANCELLED:
      return 1;
    default:
      return 0;
  }
}

/** "12", or "≥50" when the server says there are more pages than we read. */
export function countLabel(shown: number, more: boolean): string {
  return more ? `≥${shown}` : String(shown);
}

export interface JobFilters {
  state: JobState;
  kind: JobKind;
  /** The certificate id ("web"), not the full name. */
  certificate: string;
}

export const emptyJobFilters: JobFilters = { state: JobState.UNSPECIFIED, kind: JobKind.UNSPECIFIED, certificate: "" };

export function jobFiltersFromParams(p: URLSearchParams): JobFilters {
  const state = JOB_STATE_SLUGS.find(([s]) => s === p.get("state"))?.[1] ?? JobState.UNSPECIFIED;
  const kind = JOB_KIND_SLUGS.find(([s]) => s === p.get("kind"))?.[1] ?? JobKind.UNSPECIFIED;
  return { state, kind, certificate: resourceId(p.get("certificate") ?? "") };
}

export function jobFiltersToParams(f: JobFilters): URLSearchParams {
  const p = new URLSearchParams();
  const state = JOB_STATE_SLUGS.find(([, v]) => v === f.state)?.[0];
  const kind = JOB_KIND_SLUGS.find(([, v]) => v === f.kind)?.[0];
  if (state) p.set("state", state);
  if (kind) p.set("kind", kind);
  if (f.certificate.trim()) p.set("certificate", resourceId(f.certificate.trim()));
  return p;
}

export function jobFiltersToRequest(f: JobFilters): { state: JobState; kind: JobKind; certificate: string } {
  return { state: f.state, kind: f.kind, certificate: resourceName("certificates", resourceId(f.certificate.trim())) };
}
