import { describe, expect, it } from "vitest";
import { CertificateState } from "../gen/certctl/inventory/v1/inventory_pb";
import {
  auditFiltersFromParams,
  auditFiltersToParams,
  auditFiltersToRequest,
  certificateFiltersFromParams,
  certificateFiltersToParams,
  certificateFiltersToRequest,
  emptyCertificateFilters,
  resolveExpireBefore,
} from "./filters";

describe("certificate filters <-> URL", () => {
  it("parses every filter from the query string", () => {
    const f = certificateFiltersFromParams(
      new URLSearchParams("q=api&owner=alice&team=platform&state=expiring&issuer=letsencrypt&environment=production&expire_before=now%2B30d&order_by=name+desc"),
    );
    expect(f).toEqual({
      search: "api",
      owner: "alice",
      team: "platform",
      state: CertificateState.EXPIRING,
      issuer: "letsencrypt",
      environment: "production",
      expireBefore: "now+30d",
      orderBy: "name desc",
    });
  });
  it("falls back to defaults for missing or unknown values", () => {
    const f = certificateFiltersFromParams(new URLSearchParams("state=bogus&order_by=drop+table"));
    expect(f).toEqual(emptyCertificateFilters);
  });
  it("round-trips and omits defaults", () => {
    expect(certificateFiltersToParams(emptyCertificateFilters).toString()).toBe("");
    const f = { ...emptyCertificateFilters, owner: "bob", state: CertificateState.EXPIRED, expireBefore: "now+7d" };
    const p = certificateFiltersToParams(f);
    expect(p.toString()).toBe("owner=bob&state=expired&expire_before=now%2B7d");
    expect(certificateFiltersFromParams(p)).toEqual(f);
  });
  it("maps ids to resource names in the request", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const r = certificateFiltersToRequest({ ...emptyCertificateFilters, owner: "alice", team: "teams/web", issuer: "le", search: "  api " }, now);
    expect(r.owner).toBe("owners/alice");
    expect(r.team).toBe("teams/web");
    expect(r.issuer).toBe("issuers/le");
    expect(r.search).toBe("api");
    expect(r.expireBefore).toBeUndefined();
    expect(r.orderBy).toBe("not_after");
  });
});

describe("resolveExpireBefore", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  it("resolves relative windows against now", () => {
    expect(resolveExpireBefore("now+30d", now)?.toISOString()).toBe("2026-01-31T00:00:00.000Z");
  });
  it("reads a date as local midnight and an ISO time as is", () => {
    const d = resolveExpireBefore("2026-03-04", now)!;
    expect([d.getFullYear(), d.getMonth(), d.getDate(), d.getHours()]).toEqual([2026, 2, 4, 0]);
    expect(resolveExpireBefore("2026-03-04T05:06:07Z", now)?.toISOString()).toBe("2026-03-04T05:06:07.000Z");
  });
  it("ignores garbage", () => {
    expect(resolveExpireBefore("", now)).toBeUndefined();
    expect(resolveExpireBefore("soon", now)).toBeUndefined();
  });
});

describe("audit filters <-> URL", () => {
  it("round-trips and converts times", () => {
    const p = new URLSearchParams("start=2026-01-01T00:00:00.000Z&actor=system&resource=certificates%2Fweb%2F");
    const f = auditFiltersFromParams(p);
    expect(f).toEqual({ start: "2026-01-01T00:00:00.000Z", end: "", actor: "system", action: "", resource: "certificates/web/" });
    expect(auditFiltersToParams(f).toString()).toBe(p.toString());
    const r = auditFiltersToRequest(f);
    expect(r.startTime?.toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(r.endTime).toBeUndefined();
    expect(r.resource).toBe("certificates/web/");
  });
});
