import { describe, expect, it } from "vitest";
import { AgentStatus, DeploymentState, DiscoveryState } from "../gen/certctl/inventory/v1/inventory_pb";
import {
  AGENT_STATUS_SLUGS,
  agentStatusFromSlug,
  agentStatusLabel,
  agentStatusSlug,
  defaultAgentServer,
  enrollCommand,
  joinTokenState,
  lastSeenLabel,
  normalizeFingerprint,
  parseTtlHours,
  rootFingerprint,
  shellQuote,
  shortFingerprint,
} from "./agents";
import {
  DEPLOYMENT_STATE_LABELS,
  commonNameOf,
  discoveryStateFromParams,
  discoveryStateLabel,
  discoveryStateToParams,
  locationLabel,
  shortPath,
  versionNumber,
} from "./discovery";

const FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
const now = new Date("2026-06-01T12:00:00Z");
const ago = (ms: number) => new Date(now.getTime() - ms);

describe("agent status", () => {
  it("maps each API status to one word and a URL slug, both ways", () => {
    expect(agentStatusLabel(AgentStatus.ONLINE)).toBe("Online");
    expect(agentStatusLabel(AgentStatus.STALE)).toBe("Stale");
    expect(agentStatusLabel(AgentStatus.OFFLINE)).toBe("Offline");
    expect(agentStatusLabel(AgentStatus.RETIRED)).toBe("Retired");
    expect(agentStatusLabel(AgentStatus.UNSPECIFIED)).toBe("Unknown");
    for (const [slug, status] of AGENT_STATUS_SLUGS) {
      expect(agentStatusFromSlug(slug)).toBe(status);
      expect(agentStatusSlug(status)).toBe(slug);
    }
    expect(agentStatusFromSlug("bogus")).toBe(AgentStatus.UNSPECIFIED);
    expect(agentStatusFromSlug(null)).toBe(AgentStatus.UNSPECIFIED);
    expect(agentStatusSlug(AgentStatus.UNSPECIFIED)).toBe("");
  });

  it("says how long ago an agent was seen, or never", () => {
    expect(lastSeenLabel(undefined, now)).toBe("never");
    expect(lastSeenLabel(ago(2_000), now)).toBe("just now");
    expect(lastSeenLabel(ago(12_000), now)).toBe("12 seconds ago");
    expect(lastSeenLabel(ago(3 * 60_000), now)).toBe("3 minutes ago");
    expect(lastSeenLabel(ago(26 * 3_600_000), now)).toBe("26 hours ago");
    expect(lastSeenLabel(ago(3 * 86_400_000), now)).toBe("3 days ago");
  });
});

describe("enroll command", () => {
  it("is the command `certctl agent token create` prints", () => {
    expect(enrollCommand({ server: "https://certctl.example.com:8444", fingerprint: "abc123", secret: "cjt_s3cr3t-_x" })).toBe(
      "certctl-agent enroll --server https://certctl.example.com:8444 --ca-fingerprint abc123 --token cjt_s3cr3t-_x",
    );
  });
  it("normalises the fingerprint to lower-case hex without separators", () => {
    expect(normalizeFingerprint(FP)).toBe("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    expect(enrollCommand({ server: "https://h:8444", fingerprint: FP, secret: "cjt_x" })).toContain(
      "--ca-fingerprint abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 ",
    );
  });
  it("shows a placeholder while the fingerprint is unknown, and quotes what a shell would split", () => {
    expect(enrollCommand({ server: " https://h:8444 ", fingerprint: "", secret: "cjt_x" })).toBe(
      "certctl-agent enroll --server https://h:8444 --ca-fingerprint <platform-ca-sha256> --token cjt_x",
    );
    expect(shellQuote("https://h:8444/a b")).toBe("'https://h:8444/a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("https://[::1]:8444")).toBe("https://[::1]:8444");
  });
  it("defaults the agent server to this host on port 8444", () => {
    expect(defaultAgentServer("certctl.example.com")).toBe("https://certctl.example.com:8444");
    expect(defaultAgentServer("[::1]")).toBe("https://[::1]:8444");
    expect(defaultAgentServer("::1")).toBe("https://[::1]:8444");
    expect(defaultAgentServer("")).toBe("https://127.0.0.1:8444");
  });
  it("takes the root's fingerprint from the platform issuer's authorities", () => {
    expect(
      rootFingerprint([
        { role: "intermediate", sha256Fingerprint: "11" },
        { role: "root", sha256Fingerprint: "AA:BB" },
      ]),
    ).toBe("aabb");
    expect(rootFingerprint([{ role: "intermediate", sha256Fingerprint: "11" }])).toBe("");
  });
});

describe("join tokens", () => {
  it("are used, expired or unused", () => {
    expect(joinTokenState({ redeemTime: ago(1000), expireTime: ago(-1000) }, now)).toBe("used");
    expect(joinTokenState({ redeemTime: ago(1000), expireTime: ago(500) }, now)).toBe("used");
    expect(joinTokenState({ expireTime: ago(1) }, now)).toBe("expired");
    expect(joinTokenState({ expireTime: now }, now)).toBe("expired");
    expect(joinTokenState({ expireTime: ago(-60_000) }, now)).toBe("unused");
    expect(joinTokenState({}, now)).toBe("unused");
  });
  it("parse the TTL in whole hours up to 30 days", () => {
    expect(parseTtlHours("24")).toEqual({ seconds: 86_400n });
    expect(parseTtlHours(" 720 ")).toEqual({ seconds: 2_592_000n });
    expect(parseTtlHours("")).toEqual({});
    expect(parseTtlHours("0").error).toMatch(/Between 1 and 720/);
    expect(parseTtlHours("721").error).toMatch(/Between 1 and 720/);
    expect(parseTtlHours("1.5").error).toMatch(/whole number/);
    expect(parseTtlHours("abc").error).toMatch(/whole number/);
  });
  it("shorten fingerprints for tables", () => {
    const fp = normalizeFingerprint(FP);
    expect(shortFingerprint(fp)).toBe("abcdef01…6789");
    expect(shortFingerprint("abcd")).toBe("abcd");
  });
});

describe("discovery", () => {
  it("lists NEW by default; the URL names other states or all", () => {
    expect(discoveryStateFromParams(new URLSearchParams(""))).toBe(DiscoveryState.NEW);
    expect(discoveryStateFromParams(new URLSearchParams("state=claimed"))).toBe(DiscoveryState.CLAIMED);
    expect(discoveryStateFromParams(new URLSearchParams("state=dismissed"))).toBe(DiscoveryState.DISMISSED);
    expect(discoveryStateFromParams(new URLSearchParams("state=all"))).toBe(DiscoveryState.UNSPECIFIED);
    expect(discoveryStateToParams(DiscoveryState.NEW).toString()).toBe("");
    expect(discoveryStateToParams(DiscoveryState.DISMISSED).toString()).toBe("state=dismissed");
    expect(discoveryStateToParams(DiscoveryState.UNSPECIFIED).toString()).toBe("state=all");
    expect(discoveryStateLabel(DiscoveryState.NEW)).toBe("New");
  });
  it("finds the common name in either DN order", () => {
    expect(commonNameOf("CN=www.example.com,O=Example,C=FR")).toBe("www.example.com");
    expect(commonNameOf("C=FR, O=Example, CN=api.example.com")).toBe("api.example.com");
    expect(commonNameOf("/C=FR/O=Example/CN=old.example.com")).toBe("old.example.com");
    expect(commonNameOf("CN=Example\\, Inc. Root,O=Example")).toBe("Example, Inc. Root");
    expect(commonNameOf("O=No CN")).toBe("");
  });
  it("labels locations agent:path and versions by number", () => {
    expect(locationLabel({ agent: "agents/web-01", path: "/etc/nginx/tls/site.pem" })).toBe("web-01:/etc/nginx/tls/site.pem");
    expect(versionNumber("certificates/web/versions/3")).toBe("3");
    expect(versionNumber("")).toBe("");
    expect(DEPLOYMENT_STATE_LABELS[DeploymentState.MISMATCH]).toBe("Mismatch");
    expect(shortPath("/etc/ssl/site.pem")).toBe("/etc/ssl/site.pem");
    expect(shortPath("/tmp/certctl-e2e-fleet-UywNFU/certs/found.pem")).toBe("…/certs/found.pem");
    expect(shortPath("/a/very-long-directory-name-for-nothing/x.pem", 20)).toBe("…/x.pem");
  });
});
