// Relative, coloured expiry: "in 6 days" is red under 7 days, amber under 30.

export type ExpiryLevel = "none" | "expired" | "critical" | "warning" | "ok";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const CRITICAL_DAYS = 7;
export const WARNING_DAYS = 30;

export function expiryLevel(notAfter: Date | undefined, now: Date): ExpiryLevel {
  if (!notAfter) return "none";
  const left = notAfter.getTime() - now.getTime();
  if (left <= 0) return "expired";
  if (left < CRITICAL_DAYS * DAY) return "critical";
  if (left < WARNING_DAYS * DAY) return "warning";
  return "ok";
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** A short English duration for |ms|: "45 seconds", "3 hours", "6 days", "4 months", "2 years". */
export function humanDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < MINUTE) return plural(Math.floor(abs / 1000), "second");
  if (abs < HOUR) return plural(Math.floor(abs / MINUTE), "minute");
  if (abs < 2 * DAY) return plural(Math.floor(abs / HOUR), "hour");
  if (abs < 60 * DAY) return plural(Math.floor(abs / DAY), "day");
  if (abs < 2 * 365 * DAY) return plural(Math.floor(abs / (30 * DAY)), "month");
  return plural(Math.floor(abs / (365 * DAY)), "year");
}

/** "in 6 days", "3 hours ago", "just now". */
export function formatRelative(target: Date, now: Date): string {
  const diff = target.getTime() - now.getTime();
  if (Math.abs(diff) < 5_000) return "just now";
  return diff > 0 ? `in ${humanDuration(diff)}` : `${humanDuration(diff)} ago`;
}

/** Exact time for tooltips and detail pages: local time plus the ISO UTC form. */
export function formatExact(d: Date): string {
  return `${d.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  })} (${d.toISOString()})`;
}
