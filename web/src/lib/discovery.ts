// Discovered certificates and deployments: state words, URL slugs and the
// small text helpers of the triage list. Pure, unit-tested.
import { DeploymentState, DiscoveryState } from "../gen/certctl/inventory/v1/inventory_pb";
import { resourceId } from "./names";

export const DISCOVERY_STATE_SLUGS: ReadonlyArray<readonly [string, DiscoveryState, string]> = [
  ["new", DiscoveryState.NEW, "New"],
  ["claimed", DiscoveryState.CLAIMED, "Claimed"],
  ["dismissed", DiscoveryState.DISMISSED, "Dismissed"],
];

export function discoveryStateLabel(s: DiscoveryState): string {
  return DISCOVERY_STATE_SLUGS.find(([, v]) => v === s)?.[2] ?? "Unknown";
}

/** The triage list shows NEW unless the URL says otherwise; `state=all` lists every state. */
export const ALL_STATES = "all";

export function discoveryStateFromParams(p: URLSearchParams): DiscoveryState {
  const slug = p.get("state");
  if (slug === null || slug === "") return DiscoveryState.NEW;
  return DISCOVERY_STATE_SLUGS.find(([s]) => s === slug)?.[1] ?? DiscoveryState.UNSPECIFIED;
}

export function discoveryStateToParams(s: DiscoveryState): URLSearchParams {
  const p = new URLSearchParams();
  if (s === DiscoveryState.NEW) return p;
  p.set("state", DISCOVERY_STATE_SLUGS.find(([, v]) => v === s)?.[0] ?? ALL_STATES);
  return p;
}

/** The CN of a DN such as `CN=www.example.com,O=Example`; "" when it has none. */
export function commonNameOf(dn: string): string {
  // RFC 4514 order is most specific last, OpenSSL's first: take the CN wherever it is.
  const m = /(?:^|[,/+]\s*)CN\s*=\s*((?:\\.|[^,+/])*)/i.exec(dn);
  return m?.[1] ? m[1].replace(/\\(.)/g, "$1").trim() : "";
}

/** `web-01:/etc/nginx/tls/site.pem`: the agent's id and the file. */
export function locationLabel(l: { agent: string; path: string }): string {
  return `${resourceId(l.agent) || "?"}:${l.path}`;
}

export const DEPLOYMENT_STATE_LABELS: Record<DeploymentState, string> = {
  [DeploymentState.UNSPECIFIED]: "Unknown",
  [DeploymentState.PENDING]: "Pending",
  [DeploymentState.DEPLOYED]: "Deployed",
  [DeploymentState.VERIFIED]: "Verified",
  [DeploymentState.MISMATCH]: "Mismatch",
  [DeploymentState.FAILED]: "Failed",
};

/** What each deployment state means, for the badge's tooltip. */
export const DEPLOYMENT_STATE_HINTS: Record<DeploymentState, string> = {
  [DeploymentState.UNSPECIFIED]: "",
  [DeploymentState.PENDING]: "Waiting to be deployed",
  [DeploymentState.DEPLOYED]: "Installed, not verified (the target has no endpoint to check)",
  [DeploymentState.VERIFIED]: "Installed, and the endpoint serves it",
  [DeploymentState.MISMATCH]: "Installed, but the endpoint serves another certificate",
  [DeploymentState.FAILED]: "The deployment failed",
};

/** The version number of `certificates/web/versions/3`, or "" for another name. */
export function versionNumber(name: string): string {
  return /\/versions\/([^/]+)$/.exec(name)?.[1] ?? "";
}

/** A long path cut to its last segments: `/tmp/x/certs/found.pem` -> `…/certs/found.pem`. */
export function shortPath(path: string, max = 32): string {
  if (path.length <= max) return path;
  const parts = path.split("/");
  let out = parts.pop() ?? "";
  while (parts.length > 0 && out.length + (parts[parts.length - 1]?.length ?? 0) + 3 <= max) out = `${parts.pop()}/${out}`;
  return `…/${out}`;
}
