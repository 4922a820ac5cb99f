import { describe, expect, it } from "vitest";
import { expiryLevel, formatRelative, humanDuration } from "./expiry";

const now = new Date("2026-06-01T12:00:00Z");
const plus = (ms: number) => new Date(now.getTime() + ms);
const H = 3_600_000;
const D = 24 * H;

describe("expiryLevel", () => {
  it("is red under 7 days, amber under 30, ok after", () => {
    expect(expiryLevel(plus(6 * D), now)).toBe("critical");
    expect(expiryLevel(plus(7 * D - 1), now)).toBe("critical");
    expect(expiryLevel(plus(7 * D), now)).toBe("warning");
    expect(expiryLevel(plus(29 * D), now)).toBe("warning");
    expect(expiryLevel(plus(30 * D), now)).toBe("ok");
    expect(expiryLevel(plus(400 * D), now)).toBe("ok");
  });
  it("marks the past as expired and a missing date as none", () => {
    expect(expiryLevel(now, now)).toBe("expired");
    expect(expiryLevel(plus(-D), now)).toBe("expired");
    expect(expiryLevel(undefined, now)).toBe("none");
  });
});

describe("formatRelative", () => {
  it("says 'in 6 days' for the future", () => {
    expect(formatRelative(plus(6 * D + 3 * H), now)).toBe("in 6 days");
    expect(formatRelative(plus(1 * D), now)).toBe("in 24 hours");
    expect(formatRelative(plus(3 * H + 10_000), now)).toBe("in 3 hours");
    expect(formatRelative(plus(90_000), now)).toBe("in 1 minute");
  });
  it("says 'ago' for the past", () => {
    expect(formatRelative(plus(-3 * D), now)).toBe("3 days ago");
    expect(formatRelative(plus(-45_000), now)).toBe("45 seconds ago");
  });
  it("uses months and years for long spans", () => {
    expect(formatRelative(plus(90 * D), now)).toBe("in 3 months");
    expect(formatRelative(plus(800 * D), now)).toBe("in 2 years");
  });
  it("says 'just now' within a few seconds", () => {
    expect(formatRelative(plus(2000), now)).toBe("just now");
  });
  it("singular units", () => {
    expect(humanDuration(1000)).toBe("1 second");
    expect(humanDuration(D * 2)).toBe("2 days");
  });
});
