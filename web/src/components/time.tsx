import { useEffect, useState } from "react";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { expiryLevel, formatExact, formatRelative } from "../lib/expiry";

/** The current time, refreshed every `intervalMs` so relative times stay true. */
export function useNow(intervalMs = 30_000): Date {
  const [now, setNow] = useState(() => new Date());
  useEffect(() => {
    const id = setInterval(() => setNow(new Date()), intervalMs);
    return () => clearInterval(id);
  }, [intervalMs]);
  return now;
}

export function tsDate(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

/** "in 6 days" coloured by urgency, exact timestamp on hover. */
export function Expiry({ at, now }: { at: Date | undefined; now: Date }) {
  const level = expiryLevel(at, now);
  if (!at) return <span className="expiry none">no version</span>;
  return (
    <time className={`expiry ${level}`} dateTime={at.toISOString()} title={formatExact(at)} data-level={level}>
      {level === "expired" ? `expired ${formatRelative(at, now)}` : formatRelative(at, now)}
    </time>
  );
}

/** Relative time ("3 hours ago"), exact on hover, not coloured. */
export function RelTime({ at, now }: { at: Date | undefined; now: Date }) {
  if (!at) return <span className="faint">—</span>;
  return (
    <time dateTime={at.toISOString()} title={formatExact(at)}>
      {formatRelative(at, now)}
    </time>
  );
}
