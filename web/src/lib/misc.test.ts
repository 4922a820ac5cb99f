import { describe, expect, it } from "vitest";
import { changedFields, parseLabels, splitList } from "./form";
import { resourceId, resourceName, suggestId } from "./names";
import { bucketByDay } from "./timeline";

describe("names", () => {
  it("maps ids and names", () => {
    expect(resourceId("certificates/web/versions/3")).toBe("3");
    expect(resourceName("owners", "alice")).toBe("owners/alice");
    expect(resourceName("owners", "owners/alice")).toBe("owners/alice");
    expect(resourceName("owners", "")).toBe("");
  });
  it("suggests valid ids", () => {
    expect(suggestId("API Gateway (prod)")).toBe("api-gateway-prod");
    expect(suggestId("*.example.com")).toBe("wildcard.example.com");
  });
});

describe("form helpers", () => {
  it("splits SAN lists", () => {
    expect(splitList("a.example.com, b.example.com\n a.example.com\n\nc")).toEqual(["a.example.com", "b.example.com", "c"]);
  });
  it("parses labels and reports the bad line", () => {
    expect(parseLabels("tier=web\n env = prod ")).toEqual({ labels: { tier: "web", env: "prod" } });
    expect(parseLabels("oops").error).toContain("oops");
  });
  it("lists changed fields for the update mask", () => {
    expect(changedFields({ a: "1", b: ["x"], c: {} }, { a: "1", b: ["x", "y"], c: { k: "v" } }, ["a", "b", "c"])).toEqual(["b", "c"]);
  });
});

describe("timeline buckets", () => {
  it("counts expiries per day from now and skips the past and beyond the horizon", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const d = (days: number) => new Date(now.getTime() + days * 86_400_000);
    const b = bucketByDay([d(0.5), d(0.6), d(6.9), d(45), d(-1), d(120)], now, 90);
    expect(b).toHaveLength(90);
    expect(b[0]?.count).toBe(2);
    expect(b[6]?.count).toBe(1);
    expect(b[45]?.count).toBe(1);
    expect(b.reduce((n, x) => n + x.count, 0)).toBe(4);
    expect(b[0]?.level).toBe("critical");
    expect(b[10]?.level).toBe("warning");
    expect(b[40]?.level).toBe("ok");
  });
});
