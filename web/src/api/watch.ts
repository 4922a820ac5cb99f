// WatchJobs (server streaming) as a React hook: the latest state of each named
// job, as the server pushes it. The stream ends by itself once every job has
// finished; it is reopened after a transient failure.
import { useEffect, useRef, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { scheduler } from "./client";
import type { Job } from "../gen/certctl/scheduler/v1/scheduler_pb";

export interface JobWatch {
  jobs: Record<string, Job>;
  /** The stream is open. */
  live: boolean;
  error: unknown;
}

const RETRY_MS = 3_000;

export function useWatchJobs(names: string[], onUpdate?: (job: Job) => void): JobWatch {
  const key = [...new Set(names.filter(Boolean))].sort().join(",");
  const [jobs, setJobs] = useState<Record<string, Job>>({});
  const [live, setLive] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const cb = useRef(onUpdate);
  cb.current = onUpdate;

  useEffect(() => {
    if (!key) return;
    const list = key.split(",");
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      setLive(true);
      try {
        for await (const r of scheduler.watchJobs({ names: list }, { signal: abort.signal })) {
          const job = r.job;
          if (!job) continue;
          setError(undefined);
          setJobs((old) => ({ ...old, [job.name]: job }));
          cb.current?.(job);
        }
        setLive(false);
      } catch (e) {
        if (abort.signal.aborted) return;
        setLive(false);
        setError(e);
        const transient = e instanceof ConnectError && [Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal].includes(e.code);
        if (transient) timer = setTimeout(run, RETRY_MS);
      }
    };
    void run();
    return () => {
      abort.abort();
      if (timer) clearTimeout(timer);
      setLive(false);
    };
  }, [key]);

  return { jobs, live, error };
}
