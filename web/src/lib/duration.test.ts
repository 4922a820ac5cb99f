import { describe, expect, it } from "vitest";
import { durationFromSeconds, durationSeconds, formatDurationLong, formatDurationShort, parseDuration } from "./duration";

const DAY = 86_400;

describe("parseDuration", () => {
  it("reads the units operators type", () => {
    expect(parseDuration("90d")).toEqual({ seconds: 90 * DAY });
    expect(parseDuration("1y")).toEqual({ seconds: 365 * DAY });
    expect(parseDuration("2w")).toEqual({ seconds: 14 * DAY });
    expect(parseDuration("36h")).toEqual({ seconds: 36 * 3600 });
    expect(parseDuration("1d 12h")).toEqual({ seconds: DAY + 12 * 3600 });
    expect(parseDuration("1d12h30m15s")).toEqual({ seconds: DAY + 12 * 3600 + 30 * 60 + 15 });
    expect(parseDuration(" 10Y ")).toEqual({ seconds: 3650 * DAY });
  });
  it("takes a bare number as seconds", () => {
    expect(parseDuration("3600")).toEqual({ seconds: 3600 });
  });
  it("refuses what is not a duration, with a message", () => {
    for (const bad of ["", "abc", "90 days", "1mo", "-5d", "1d1d", "d"]) {
      const r = parseDuration(bad);
      expect("error" in r, bad).toBe(true);
    }
    expect(parseDuration("1d1d")).toEqual({ error: "“d” appears twice" });
  });
});

describe("formatDuration", () => {
  it("writes the shortest exact text", () => {
    expect(formatDurationShort(90 * DAY)).toBe("90d");
    expect(formatDurationShort(365 * DAY)).toBe("1y");
    expect(formatDurationShort(3650 * DAY)).toBe("10y");
    expect(formatDurationShort(400 * DAY)).toBe("400d");
    expect(formatDurationShort(DAY + 12 * 3600)).toBe("1d12h");
    expect(formatDurationShort(3600)).toBe("1h");
    expect(formatDurationShort(0)).toBe("0s");
  });
  it("round-trips through parseDuration", () => {
    for (const s of [90 * DAY, 825 * DAY, 365 * DAY, 3 * 3600 + 5, 59]) {
      expect(parseDuration(formatDurationShort(s))).toEqual({ seconds: s });
    }
  });
  it("says it in words", () => {
    expect(formatDurationLong(90 * DAY)).toBe("90 days");
    expect(formatDurationLong(365 * DAY)).toBe("1 year");
    expect(formatDurationLong(DAY + 3600)).toBe("1 day 1 hour");
  });
  it("converts protobuf durations", () => {
    expect(durationSeconds(undefined)).toBe(0);
    const d = durationFromSeconds(7_776_000);
    expect(d).toEqual({ seconds: 7_776_000n, nanos: 0 });
    expect(durationSeconds(d as never)).toBe(7_776_000);
  });
});
