// Buckets expiry dates into days from now for the dashboard timeline.
import { expiryLevel, type ExpiryLevel } from "./expiry";

export interface DayBucket {
  /** 0 = the 24 hours from now. */
  day: number;
  start: Date;
  end: Date;
  count: number;
  level: ExpiryLevel;
}

const DAY = 86_400_000;

export function bucketByDay(dates: Date[], now: Date, days = 90): DayBucket[] {
  const buckets: DayBucket[] = Array.from({ length: days }, (_, day) => {
    const start = new Date(now.getTime() + day * DAY);
    const end = new Date(now.getTime() + (day + 1) * DAY);
    // The level of a bucket is that of its earliest instant.
    return { day, start, end, count: 0, level: expiryLevel(new Date(start.getTime() + 1), now) };
  });
  for (const d of dates) {
    const diff = d.getTime() - now.getTime();
    if (diff <= 0) continue;
    const i = Math.floor(diff / DAY);
    const b = buckets[i];
    if (b) b.count++;
  }
  return buckets;
}
