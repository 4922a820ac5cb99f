// google.protobuf.Duration <-> the short text operators type: "90d", "1y",
// "36h", "1d12h", "825d". A year is 365 days and a week 7 days; months are not
// accepted because their length varies.
import type { Duration } from "@bufbuild/protobuf/wkt";

const UNITS: readonly [string, number][] = [
  ["y", 365 * 86_400],
  ["w", 7 * 86_400],
  ["d", 86_400],
  ["h", 3_600],
  ["m", 60],
  ["s", 1],
];

const PART = /(\d+)\s*([ywdhms])/gy;

/**
 * Parses "90d", "1y", "1d 12h", "3600s" or a bare number of seconds into
 * seconds. Returns an error message for anything else.
 */
export function parseDuration(text: string): { seconds: number } | { error: string } {
  const t = text.trim().toLowerCase();
  if (!t) return { error: "empty" };
  if (/^\d+$/.test(t)) return { seconds: Number(t) };
  let total = 0;
  let pos = 0;
  const seen = new Set<string>();
  PART.lastIndex = 0;
  while (pos < t.length) {
    while (t[pos] === " ") pos++;
    if (pos >= t.length) break;
    PART.lastIndex = pos;
    const m = PART.exec(t);
    if (!m) return { error: `“${text.trim()}” is not a duration such as 90d, 1y or 12h` };
    const unit = m[2]!;
    if (seen.has(unit)) return { error: `“${unit}” appears twice` };
    seen.add(unit);
    total += Number(m[1]) * UNITS.find(([u]) => u === unit)![1];
    pos = PART.lastIndex;
  }
  if (!Number.isSafeInteger(total)) return { error: "too long" };
  return { seconds: total };
}

/** Seconds as the shortest exact text: 7776000 -> "90d", 31536000 -> "1y", 129600 -> "1d12h". */
export function formatDurationShort(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return "0s";
  let left = Math.floor(seconds);
  // Years only when exact, so "400d" stays readable rather than "1y35d".
  const units = left % UNITS[0]![1] === 0 ? UNITS : UNITS.slice(1);
  // Weeks read worse than days for certificate lifetimes ("13w" vs "91d").
  const out: string[] = [];
  for (const [u, n] of units) {
    if (u === "w") continue;
    if (left >= n) {
      out.push(`${Math.floor(left / n)}${u}`);
      left %= n;
    }
  }
  return out.join("");
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** Seconds for people: "90 days", "10 years", "1 day 12 hours", "45 minutes". */
export function formatDurationLong(seconds: number): string {
  const short = formatDurationShort(seconds);
  const words: Record<string, string> = { y: "year", d: "day", h: "hour", m: "minute", s: "second" };
  return [...short.matchAll(/(\d+)([ydhms])/g)].map((m) => plural(Number(m[1]), words[m[2]!]!)).join(" ");
}

export function durationSeconds(d: Duration | undefined): number {
  return d ? Number(d.seconds) : 0;
}

export function durationFromSeconds(seconds: number): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(Math.floor(seconds)), nanos: 0 };
}
