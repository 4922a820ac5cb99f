import { useQuery } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { audit, inventory, scheduler } from "../api/client";
import { toApiError } from "../api/errors";
import { JobState } from "../gen/certctl/scheduler/v1/scheduler_pb";
import { AgentStatus } from "../gen/certctl/inventory/v1/inventory_pb";
import { countLabel } from "../lib/jobs";
import { keys, listAll } from "../api/queries";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { Expiry, RelTime, tsDate, useNow } from "../components/time";
import { StateBadge } from "../components/StateBadge";
import { Icon } from "../components/Icon";
import { bucketByDay, type DayBucket } from "../lib/timeline";
import { resourceId } from "../lib/names";
import type { Certificate } from "../gen/certctl/inventory/v1/inventory_pb";
import { resourceLink } from "../components/audit";
import { useTitle } from "../lib/useTitle";

const HORIZON_DAYS = 90;

function SummaryCards() {
  const q = useQuery({ queryKey: [...keys.certificates, "summary"], queryFn: () => inventory.summarizeCertificates({}), refetchInterval: 60_000 });
  if (q.isPending) return <Loading what="summary" />;
  if (q.isError) return <ErrorAlert error={q.error} title="Could not load the certificate summary" />;
  const s = q.data;
  const cards: { label: string; value: bigint; tone: string; to: string; icon: Parameters<typeof Icon>[0]["name"] }[] = [
    { label: "Total", value: s.total, tone: "info", to: "/certificates", icon: "cert" },
    { label: "Expiring in 7 days", value: s.expiringWithin7Days, tone: s.expiringWithin7Days > 0n ? "crit" : "ok", to: "/certificates?expire_before=now%2B7d", icon: "alert" },
    { label: "Expiring in 30 days", value: s.expiringWithin30Days, tone: s.expiringWithin30Days > 0n ? "warn" : "ok", to: "/certificates?expire_before=now%2B30d", icon: "clock" },
    { label: "Expired", value: s.expired, tone: s.expired > 0n ? "crit" : "ok", to: "/certificates?state=expired", icon: "x" },
    { label: "Pending", value: s.pending, tone: "info", to: "/certificates?state=pending", icon: "clock" },
    { label: "Revoked", value: s.revoked, tone: "revoked", to: "/certificates?state=revoked", icon: "ban" },
  ];
  return (
    <section className="cards" aria-label="Certificate summary">
      {cards.map((c) => (
        <Link key={c.label} to={c.to} className={`card ${c.tone}`}>
          <span className="label">
            <Icon name={c.icon} size={12} /> {c.label}
          </span>
          <span className="value" data-testid={`summary-${c.label.toLowerCase().replace(/\s+/g, "-")}`}>
            {c.value.toString()}
          </span>
        </Link>
      ))}
      <FailedJobsCard />
      <AgentsCard />
    </section>
  );
}

const FAILED_PAGE = 50;

/** Failed jobs: the first page of ListJobs(state FAILED); "≥50" when there are more pages. */
function FailedJobsCard() {
  const q = useQuery({
    queryKey: ["jobs", "list", "failed-count"],
    queryFn: () => scheduler.listJobs({ state: JobState.FAILED, pageSize: FAILED_PAGE }),
    refetchInterval: 60_000,
    retry: false,
  });
  const n = q.data?.jobs.length ?? 0;
  const tone = q.isError ? "neutral" : n > 0 ? "crit" : "ok";
  return (
    <Link to="/jobs?state=failed" className={`card ${tone}`} title={q.isError ? toApiError(q.error).message : undefined}>
      <span className="label">
        <Icon name="x" size={12} /> Failed jobs
      </span>
      <span className="value" data-testid="summary-failed-jobs">
        {q.isPending ? "…" : q.isError ? "—" : countLabel(n, !!q.data.nextPageToken)}
      </span>
      {q.isError && <span className="faint" style={{ fontSize: "var(--fs-xs)" }}>unavailable: {toApiError(q.error).code}</span>}
    </Link>
  );
}

// ListAgents returns no total, so the card counts a bounded listing per status:
// one page of up to AGENT_PAGE agents each, shown as "≥1000" when the server has more.
const AGENT_PAGE = 1000;

async function countAgents(status: AgentStatus): Promise<{ n: number; more: boolean }> {
  const r = await inventory.listAgents({ status, pageSize: AGENT_PAGE });
  return { n: r.agents.length, more: !!r.nextPageToken };
}

/** Agents online, with how many are offline or stale; links to the fleet filtered by status. */
function AgentsCard() {
  const q = useQuery({
    queryKey: [...keys.agents, "count"],
    queryFn: async () => {
      const [online, stale, offline] = await Promise.all([countAgents(AgentStatus.ONLINE), countAgents(AgentStatus.STALE), countAgents(AgentStatus.OFFLINE)]);
      return { online, stale, offline };
    },
    refetchInterval: 30_000,
    retry: false,
  });
  const d = q.data;
  const tone = q.isError ? "neutral" : !d ? "info" : d.offline.n > 0 ? "crit" : d.stale.n > 0 ? "warn" : "ok";
  const to = d && d.offline.n > 0 ? "/agents?status=offline" : d && d.stale.n > 0 ? "/agents?status=stale" : "/agents";
  return (
    <Link to={to} className={`card ${tone}`} title={q.isError ? toApiError(q.error).message : "Agents seen within the last 90 seconds"}>
      <span className="label">
        <Icon name="agent" size={12} /> Agents online
      </span>
      <span className="value plain" data-testid="summary-agents-online">
        {q.isPending ? "…" : q.isError ? "—" : countLabel(d!.online.n, d!.online.more)}
      </span>
      {d && (
        <span className="sub" data-testid="summary-agents-offline">
          <span className={d.offline.n > 0 ? "expiry critical" : undefined}>{countLabel(d.offline.n, d.offline.more)} offline</span> ·{" "}
          <span className={d.stale.n > 0 ? "expiry warning" : undefined}>{countLabel(d.stale.n, d.stale.more)} stale</span>
        </span>
      )}
      {q.isError && <span className="faint" style={{ fontSize: "var(--fs-xs)" }}>unavailable: {toApiError(q.error).code}</span>}
    </Link>
  );
}

function isoDay(d: Date): string {
  return d.toISOString();
}

function TimelineChart({ buckets }: { buckets: DayBucket[] }) {
  const navigate = useNavigate();
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const W = 900;
  const H = 190;
  const top = 10;
  const bottom = 20;
  const left = 24;
  const bw = (W - left) / buckets.length;
  const y = (n: number) => H - bottom - ((H - bottom - top) * n) / max;
  const colour = (b: DayBucket) => (b.level === "critical" ? "var(--crit)" : b.level === "warning" ? "var(--warn)" : "var(--ok)");
  const ticks = [0, 7, 30, 60, buckets.length];
  const open = (b: DayBucket) => navigate(`/certificates?expire_before=${encodeURIComponent(isoDay(b.end))}`);
  return (
    <svg viewBox={`0 0 ${W} ${H}`} role="group" aria-label={`Certificates expiring per day over the next ${HORIZON_DAYS} days`}>
      {(max >= 4 ? [0, Math.round(max / 2), max] : [0, max]).map((n) => (
        <g key={n}>
          <line className="grid-line" x1={left} x2={W} y1={y(n)} y2={y(n)} />
          <text className="axis" x={0} y={y(n) + 3}>
            {n}
          </text>
        </g>
      ))}
      {buckets.map((b) =>
        b.count > 0 ? (
          <rect
            key={b.day}
            className="bar"
            x={left + b.day * bw + 1}
            width={Math.max(1, bw - 2)}
            y={y(b.count)}
            height={H - bottom - y(b.count)}
            fill={colour(b)}
            tabIndex={0}
            role="link"
            aria-label={`${b.count} expiring ${b.start.toLocaleDateString()}`}
            onClick={() => open(b)}
            onKeyDown={(e) => {
              if (e.key === "Enter" || e.key === " ") {
                e.preventDefault();
                open(b);
              }
            }}
          >
            <title>{`${b.count} certificate${b.count === 1 ? "" : "s"} expiring ${b.start.toLocaleDateString()}`}</title>
          </rect>
        ) : null,
      )}
      {ticks.map((d) => (
        <text key={d} className="axis" x={left + d * bw} y={H - 5} textAnchor={d === 0 ? "start" : d >= buckets.length ? "end" : "middle"}>
          {d === 0 ? "today" : `+${d}d`}
        </text>
      ))}
    </svg>
  );
}

function ExpiryTimeline() {
  const now = useNow(60_000);
  const q = useQuery({
    queryKey: [...keys.certificates, "timeline", HORIZON_DAYS],
    queryFn: async () => {
      const before = new Date(Date.now() + HORIZON_DAYS * 86_400_000);
      return listAll<Certificate>(async (pageToken) => {
        const r = await inventory.listCertificates({
          pageSize: 1000,
          pageToken,
          expireBefore: timestampFromDate(before),
          orderBy: "not_after",
        });
        return { items: r.certificates, next: r.nextPageToken };
      }, 50);
    },
  });
  const upcoming = (q.data ?? []).filter((c) => {
    const d = tsDate(c.notAfter);
    return d && d.getTime() > now.getTime();
  });
  const buckets = bucketByDay(
    upcoming.map((c) => tsDate(c.notAfter)!),
    now,
    HORIZON_DAYS,
  );
  return (
    <section className="panel flush" aria-labelledby="timeline-h">
      <div className="panel-head">
        <h2 id="timeline-h">Expiry timeline, next {HORIZON_DAYS} days</h2>
        <span className="spacer" />
        <div className="legend">
          <span style={{ ["--c" as string]: "var(--crit)" }}>under 7 days</span>
          <span style={{ ["--c" as string]: "var(--warn)" }}>under 30 days</span>
          <span style={{ ["--c" as string]: "var(--ok)" }}>later</span>
        </div>
      </div>
      <div className="timeline" style={{ padding: "10px 14px" }}>
        {q.isPending ? (
          <Loading what="expiry timeline" />
        ) : q.isError ? (
          <ErrorAlert error={q.error} title="Could not load expiring certificates" />
        ) : upcoming.length === 0 ? (
          <Empty title={`Nothing expires in the next ${HORIZON_DAYS} days`}>
            <p>
              <Link to="/certificates">Browse all certificates</Link>
            </p>
          </Empty>
        ) : (
          <TimelineChart buckets={buckets} />
        )}
      </div>
      {upcoming.length > 0 && (
        <table className="data" aria-label="Next to expire">
          <thead>
            <tr>
              <th>Next to expire</th>
              <th>State</th>
              <th>Expires</th>
            </tr>
          </thead>
          <tbody>
            {upcoming.slice(0, 8).map((c) => (
              <tr key={c.name}>
                <td>
                  <Link to={`/certificates/${resourceId(c.name)}`}>{c.displayName || c.commonName || c.name}</Link>
                </td>
                <td>
                  <StateBadge state={c.state} />
                </td>
                <td>
                  <Expiry at={tsDate(c.notAfter)} now={now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function RecentActivity() {
  const now = useNow();
  const q = useQuery({ queryKey: [...keys.audit, "recent"], queryFn: () => audit.listAuditEvents({ pageSize: 10 }), refetchInterval: 30_000 });
  return (
    <section className="panel flush" aria-labelledby="activity-h">
      <div className="panel-head">
        <h2 id="activity-h">Recent activity</h2>
        <span className="spacer" />
        <Link to="/audit">Audit trail →</Link>
      </div>
      {q.isPending ? (
        <Loading what="recent activity" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not load recent activity" />
        </div>
      ) : q.data.auditEvents.length === 0 ? (
        <Empty title="No activity recorded yet">
          <p>Changes to certificates, owners and policies appear here.</p>
        </Empty>
      ) : (
        <ul className="activity">
          {q.data.auditEvents.map((e) => (
            <li key={e.name}>
              <span>
                <code>{e.action}</code> {resourceLink(e.resource)}
              </span>
              <RelTime at={tsDate(e.eventTime)} now={now} />
              <span className="meta">
                by {e.actor || "unknown"} · #{e.sequence.toString()}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export function Dashboard() {
  useTitle("Dashboard");
  return (
    <>
      <div className="page-head">
        <h1>Dashboard</h1>
        <span className="spacer" />
        <Link className="btn primary" to="/certificates/new">
          <Icon name="plus" /> New certificate
        </Link>
      </div>
      <SummaryCards />
      <div className="grid-2-1">
        <ExpiryTimeline />
        <RecentActivity />
      </div>
    </>
  );
}
