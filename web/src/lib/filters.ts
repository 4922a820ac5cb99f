// Filters live in the URL so a view can be shared. These functions map the
// query string to typed filters and the typed filters to API requests.

import { CertificateState } from "../gen/certctl/inventory/v1/inventory_pb";
import { resourceName } from "./names";

// ---------- certificate list ----------

export interface CertificateFilters {
  owner: string; // owner id ("alice"), not the full name
  team: string;
  state: CertificateState;
  issuer: string;
  environment: string;
  /** `now+7d` style relative window, or an ISO date / date-time. */
  expireBefore: string;
  search: string;
  orderBy: string;
}

export const ORDER_BY_OPTIONS = [
  { value: "not_after", label: "Expiry (soonest first)" },
  { value: "not_after desc", label: "Expiry (latest first)" },
  { value: "name", label: "Name (A–Z)" },
  { value: "name desc", label: "Name (Z–A)" },
  { value: "create_time desc", label: "Newest" },
  { value: "create_time", label: "Oldest" },
] as const;

export const DEFAULT_ORDER_BY = "not_after";

export const STATE_SLUGS: ReadonlyArray<readonly [string, CertificateState]> = [
  ["pending", CertificateState.PENDING],
  ["active", CertificateState.ACTIVE],
  ["expiring", CertificateState.EXPIRING],
  ["expired", CertificateState.EXPIRED],
  ["revoked", CertificateState.REVOKED],
];

export function stateFromSlug(slug: string | null): CertificateState {
  const hit = STATE_SLUGS.find(([s]) => s === slug);
  return hit ? hit[1] : CertificateState.UNSPECIFIED;
}

export function stateSlug(state: CertificateState): string {
  return STATE_SLUGS.find(([, v]) => v === state)?.[0] ?? "";
}

export const emptyCertificateFilters: CertificateFilters = {
  owner: "",
  team: "",
  state: CertificateState.UNSPECIFIED,
  issuer: "",
  environment: "",
  expireBefore: "",
  search: "",
  orderBy: DEFAULT_ORDER_BY,
};

export function certificateFiltersFromParams(p: URLSearchParams): CertificateFilters {
  const orderBy = p.get("order_by") ?? "";
  return {
    owner: p.get("owner") ?? "",
    team: p.get("team") ?? "",
    state: stateFromSlug(p.get("state")),
    issuer: p.get("issuer") ?? "",
    environment: p.get("environment") ?? "",
    expireBefore: p.get("expire_before") ?? "",
    search: p.get("q") ?? "",
    orderBy: ORDER_BY_OPTIONS.some((o) => o.value === orderBy) ? orderBy : DEFAULT_ORDER_BY,
  };
}

/** Only non-default values are written, in a stable order. */
export function certificateFiltersToParams(f: CertificateFilters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.search) p.set("q", f.search);
  if (f.owner) p.set("owner", f.owner);
  if (f.team) p.set("team", f.team);
  if (f.state !== CertificateState.UNSPECIFIED) p.set("state", stateSlug(f.state));
  if (f.issuer) p.set("issuer", f.issuer);
  if (f.environment) p.set("environment", f.environment);
  if (f.expireBefore) p.set("expire_before", f.expireBefore);
  if (f.orderBy && f.orderBy !== DEFAULT_ORDER_BY) p.set("order_by", f.orderBy);
  return p;
}

const RELATIVE = /^now\+(\d{1,4})d$/;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Resolves an expire_before value: `now+30d` is relative to `now`; `2026-12-31`
 * is the start of that day in local time; any other ISO date-time is parsed as is.
 * Returns undefined for empty or unparseable values.
 */
export function resolveExpireBefore(value: string, now: Date): Date | undefined {
  if (!value) return undefined;
  const rel = RELATIVE.exec(value);
  if (rel) return new Date(now.getTime() + Number(rel[1]) * 86_400_000);
  if (DATE_ONLY.test(value)) {
    const [y, m, d] = value.split("-").map(Number) as [number, number, number];
    const date = new Date(y, m - 1, d);
    return Number.isNaN(date.getTime()) ? undefined : date;
  }
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t);
}

export interface ListCertificatesFilterFields {
  owner: string;
  team: string;
  state: CertificateState;
  issuer: string;
  environment: string;
  expireBefore?: Date;
  search: string;
  orderBy: string;
}

/** The filter fields of a ListCertificatesRequest (timestamps as Dates; the caller converts). */
export function certificateFiltersToRequest(f: CertificateFilters, now: Date): ListCertificatesFilterFields {
  return {
    owner: resourceName("owners", f.owner),
    team: resourceName("teams", f.team),
    state: f.state,
    issuer: f.issuer ? resourceName("issuers", f.issuer) : "",
    environment: f.environment,
    expireBefore: resolveExpireBefore(f.expireBefore, now),
    search: f.search.trim(),
    orderBy: f.orderBy,
  };
}

export function activeFilterCount(f: CertificateFilters): number {
  let n = 0;
  if (f.search) n++;
  if (f.owner) n++;
  if (f.team) n++;
  if (f.state !== CertificateState.UNSPECIFIED) n++;
  if (f.issuer) n++;
  if (f.environment) n++;
  if (f.expireBefore) n++;
  return n;
}

// ---------- audit trail ----------

export interface AuditFilters {
  /** ISO date-time strings (from datetime-local inputs or links), empty for open ends. */
  start: string;
  end: string;
  actor: string;
  action: string;
  /** Exact resource name, or a prefix ending in `/`. */
  resource: string;
}

export const emptyAuditFilters: AuditFilters = { start: "", end: "", actor: "", action: "", resource: "" };

export function auditFiltersFromParams(p: URLSearchParams): AuditFilters {
  return {
    start: p.get("start") ?? "",
    end: p.get("end") ?? "",
    actor: p.get("actor") ?? "",
    action: p.get("action") ?? "",
    resource: p.get("resource") ?? "",
  };
}

export function auditFiltersToParams(f: AuditFilters): URLSearchParams {
  const p = new URLSearchParams();
  for (const key of ["start", "end", "actor", "action", "resource"] as const) {
    if (f[key]) p.set(key, f[key]);
  }
  return p;
}

export interface AuditRequestFields {
  startTime?: Date;
  endTime?: Date;
  actor: string;
  action: string;
  resource: string;
}

function parseTime(s: string): Date | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : new Date(t);
}

export function auditFiltersToRequest(f: AuditFilters): AuditRequestFields {
  return {
    startTime: parseTime(f.start),
    endTime: parseTime(f.end),
    actor: f.actor.trim(),
    action: f.action.trim(),
    resource: f.resource.trim(),
  };
}
