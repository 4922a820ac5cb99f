// Agents and join tokens: status words and URL slugs, the enrol command, and
// what a join token's fields say about it. Pure, unit-tested.
import { AgentStatus } from "../gen/certctl/inventory/v1/inventory_pb";
import { formatRelative } from "./expiry";

/** [URL slug, API status, the word shown]; the order of the filter options. */
export const AGENT_STATUS_SLUGS: ReadonlyArray<readonly [string, AgentStatus, string]> = [
  ["online", AgentStatus.ONLINE, "Online"],
  ["stale", AgentStatus.STALE, "Stale"],
  ["offline", AgentStatus.OFFLINE, "Offline"],
  ["retired", AgentStatus.RETIRED, "Retired"],
];

export function agentStatusLabel(s: AgentStatus): string {
  return AGENT_STATUS_SLUGS.find(([, v]) => v === s)?.[2] ?? "Unknown";
}

export function agentStatusFromSlug(slug: string | null): AgentStatus {
  return AGENT_STATUS_SLUGS.find(([s]) => s === slug)?.[1] ?? AgentStatus.UNSPECIFIED;
}

export function agentStatusSlug(s: AgentStatus): string {
  return AGENT_STATUS_SLUGS.find(([, v]) => v === s)?.[0] ?? "";
}

/** "12 seconds ago", "just now", or "never" for an agent that never connected. */
export function lastSeenLabel(at: Date | undefined, now: Date): string {
  return at ? formatRelative(at, now) : "never";
}

/** The hub's agent port as agents reach it, guessed from the GUI's own host (the API does not say). */
export const DEFAULT_AGENT_PORT = 8444;

export function defaultAgentServer(hostname: string): string {
  const host = hostname || "127.0.0.1";
  // A bare IPv6 literal needs brackets in a URL (location.hostname already has them).
  const h = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `https://${h}:${DEFAULT_AGENT_PORT}`;
}

/** A SHA-256 fingerprint as the agent's --ca-fingerprint takes it: lower-case hex, no separators. */
export function normalizeFingerprint(fp: string): string {
  return fp.replace(/[\s:]/g, "").toLowerCase();
}

/** Quotes a word for a POSIX shell when it holds anything but safe characters. */
export function shellQuote(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./[\]-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface EnrollParts {
  /** The hub's agent URL, e.g. https://certctl.example.com:8444. */
  server: string;
  /** SHA-256 of the platform CA's root; empty shows a placeholder. */
  fingerprint: string;
  /** The join token's one-time secret. */
  secret: string;
}

/** `certctl-agent enroll --server … --ca-fingerprint … --token …`, as `certctl agent token create` prints it. */
export function enrollCommand({ server, fingerprint, secret }: EnrollParts): string {
  const fp = normalizeFingerprint(fingerprint);
  return [
    "certctl-agent enroll",
    `--server ${shellQuote(server.trim())}`,
    `--ca-fingerprint ${fp ? shellQuote(fp) : "<platform-ca-sha256>"}`,
    `--token ${shellQuote(secret)}`,
  ].join(" ");
}

/** The root's fingerprint among an issuer's authorities (role `root`), lower case; "" if there is none. */
export function rootFingerprint(authorities: { role: string; sha256Fingerprint: string }[]): string {
  const root = authorities.find((a) => a.role === "root");
  return root ? normalizeFingerprint(root.sha256Fingerprint) : "";
}

export type JoinTokenState = "used" | "expired" | "unused";

/** Used once redeemed; otherwise expired past its expire_time; otherwise still usable. */
export function joinTokenState(t: { redeemTime?: Date; expireTime?: Date }, now: Date): JoinTokenState {
  if (t.redeemTime) return "used";
  if (t.expireTime && t.expireTime.getTime() <= now.getTime()) return "expired";
  return "unused";
}

export const MAX_TTL_HOURS = 720;

/**
 * The TTL field in hours: a positive whole number up to 720 (the API's 30
 * days). Empty leaves it to the server (24 hours).
 */
export function parseTtlHours(text: string): { seconds?: bigint; error?: string } {
  const t = text.trim();
  if (!t) return {};
  if (!/^\d+$/.test(t)) return { error: `“${t}” is not a whole number of hours` };
  const h = Number(t);
  if (h < 1 || h > MAX_TTL_HOURS) return { error: `Between 1 and ${MAX_TTL_HOURS} hours (30 days)` };
  return { seconds: BigInt(h) * 3600n };
}

/** "ab12cd…9f0e" for a long hex string; short ones unchanged. */
export function shortFingerprint(fp: string, head = 8, tail = 4): string {
  return fp.length > head + tail + 1 ? `${fp.slice(0, head)}…${fp.slice(-tail)}` : fp;
}
