import { useQuery } from "@tanstack/react-query";
import { inventory, issuance } from "./client";

/** Reads every page of a list (for pickers); stops after `maxPages` pages. */
export async function listAll<T>(
  fetchPage: (pageToken: string) => Promise<{ items: T[]; next: string }>,
  maxPages = 20,
): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  for (let i = 0; i < maxPages; i++) {
    const { items, next } = await fetchPage(token);
    out.push(...items);
    if (!next) break;
    token = next;
  }
  return out;
}

export const keys = {
  owners: ["owners"] as const,
  teams: ["teams"] as const,
  targets: ["targets"] as const,
  agents: ["agents"] as const,
  policies: ["renewalPolicies"] as const,
  certificates: ["certificates"] as const,
  certificate: (name: string) => ["certificate", name] as const,
  audit: ["auditEvents"] as const,
  issuers: ["issuers"] as const,
  authorities: (issuer: string) => ["issuers", issuer, "authorities"] as const,
  issued: (issuer: string) => ["issuers", issuer, "issued"] as const,
  profiles: ["profiles"] as const,
  profile: (name: string) => ["profiles", name] as const,
  jobs: ["jobs"] as const,
  job: (name: string) => ["jobs", name] as const,
  agent: (name: string) => ["agents", name] as const,
  joinTokens: ["joinTokens"] as const,
  deployments: (certificate: string) => ["deployments", certificate] as const,
  discovered: ["discoveredCertificates"] as const,
  // Certificate policies (rules certificates must keep); `policies` above is renewal policies.
  certPolicies: ["policies"] as const,
  certPolicy: (name: string) => ["policies", name] as const,
  violations: ["policyViolations"] as const,
};

/** The issuer of agents' identities; its root's SHA-256 is what `certctl-agent enroll` pins. */
export const PLATFORM_ISSUER = "issuers/platform";

export function usePlatformAuthorities(enabled = true) {
  return useQuery({
    queryKey: keys.authorities(PLATFORM_ISSUER),
    queryFn: () => issuance.listAuthorities({ parent: PLATFORM_ISSUER }),
    enabled,
    staleTime: 300_000,
  });
}

export function useAllOwners() {
  return useQuery({
    queryKey: [...keys.owners, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await inventory.listOwners({ pageSize: 1000, pageToken });
        return { items: r.owners, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllTeams() {
  return useQuery({
    queryKey: [...keys.teams, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await inventory.listTeams({ pageSize: 1000, pageToken });
        return { items: r.teams, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllTargets() {
  return useQuery({
    queryKey: [...keys.targets, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await inventory.listTargets({ pageSize: 1000, pageToken });
        return { items: r.targets, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllAgents() {
  return useQuery({
    queryKey: [...keys.agents, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await inventory.listAgents({ pageSize: 1000, pageToken });
        return { items: r.agents, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllRenewalPolicies() {
  return useQuery({
    queryKey: [...keys.policies, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await inventory.listRenewalPolicies({ pageSize: 1000, pageToken });
        return { items: r.renewalPolicies, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllIssuers() {
  return useQuery({
    queryKey: [...keys.issuers, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await issuance.listIssuers({ pageSize: 1000, pageToken });
        return { items: r.issuers, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllProfiles() {
  return useQuery({
    queryKey: [...keys.profiles, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await issuance.listProfiles({ pageSize: 1000, pageToken });
        return { items: r.profiles, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

export function useAllPolicies() {
  return useQuery({
    queryKey: [...keys.certPolicies, "all"],
    queryFn: () =>
      listAll(async (pageToken) => {
        const r = await inventory.listPolicies({ pageSize: 1000, pageToken });
        return { items: r.policies, next: r.nextPageToken };
      }),
    staleTime: 60_000,
  });
}

/** One policy's violations by severity, summed over the pages read. */
export interface ViolationCount {
  warning: number;
  error: number;
  critical: number;
  total: number;
  /** Certificates the pages examined. */
  examined: number;
  /** Every page was read: the count is the inventory's, not a lower bound. */
  complete: boolean;
}

/** Pages of ListPolicyViolations(policy) read for a count: each examines at most 1000 certificates. */
export const VIOLATION_COUNT_PAGES = 5;

/**
 * Counts a policy's violations. The API has no total: each page carries the
 * counts of its own violations, and their sums over every page are the
 * inventory's. Reads at most `maxPages` pages, then reports a lower bound.
 */
export async function countPolicyViolations(
  fetchPage: (pageToken: string) => Promise<{ counts: { policy: string; warningCount: number; errorCount: number; criticalCount: number }[]; examinedCertificateCount: number; nextPageToken: string }>,
  policy: string,
  maxPages = VIOLATION_COUNT_PAGES,
): Promise<ViolationCount> {
  const out: ViolationCount = { warning: 0, error: 0, critical: 0, total: 0, examined: 0, complete: false };
  let token = "";
  for (let i = 0; i < maxPages; i++) {
    const r = await fetchPage(token);
    for (const c of r.counts) {
      if (c.policy !== policy) continue;
      out.warning += c.warningCount;
      out.error += c.errorCount;
      out.critical += c.criticalCount;
    }
    out.examined += r.examinedCertificateCount;
    if (!r.nextPageToken) {
      out.complete = true;
      break;
    }
    token = r.nextPageToken;
  }
  out.total = out.warning + out.error + out.critical;
  return out;
}

export function usePolicyViolationCount(policy: string) {
  return useQuery({
    queryKey: [...keys.violations, "count", policy],
    queryFn: () => countPolicyViolations((pageToken) => inventory.listPolicyViolations({ policy, pageSize: 1000, pageToken }), policy),
    staleTime: 30_000,
    retry: false,
  });
}

/**
 * Walks the pages of a list until `match` finds an item; stops after
 * `maxPages` pages. Returns the item, or undefined with the number of pages read.
 */
export async function findInPages<T>(
  fetchPage: (pageToken: string) => Promise<{ items: T[]; next: string }>,
  match: (item: T) => boolean,
  maxPages = 50,
): Promise<{ item: T | undefined; pages: number; exhausted: boolean }> {
  let token = "";
  for (let i = 1; i <= maxPages; i++) {
    const { items, next } = await fetchPage(token);
    const hit = items.find(match);
    if (hit) return { item: hit, pages: i, exhausted: false };
    if (!next) return { item: undefined, pages: i, exhausted: true };
    token = next;
  }
  return { item: undefined, pages: maxPages, exhausted: false };
}

/** Display label for a resource name using a loaded list, falling back to the id. */
export function labelFor(list: { name: string; displayName: string }[] | undefined, name: string): string {
  if (!name) return "";
  const hit = list?.find((x) => x.name === name);
  return hit?.displayName || name.slice(name.indexOf("/") + 1);
}
