import { useEffect, useMemo, useState } from "react";
import { useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery } from "@tanstack/react-query";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { audit } from "../api/client";
import { keys } from "../api/queries";
import { Empty, ErrorAlert } from "../components/states";
import { Pager } from "../components/Pager";
import { Field } from "../components/Field";
import { AuditTable } from "../components/audit";
import { Icon } from "../components/Icon";
import { auditFiltersFromParams, auditFiltersToParams, auditFiltersToRequest, type AuditFilters } from "../lib/filters";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { downloadText } from "../lib/download";
import { formatExact } from "../lib/expiry";
import { ExportFormat } from "../gen/certctl/audit/v1/audit_pb";
import { useTitle } from "../lib/useTitle";

const PAGE_SIZE = 50;

/** "2026-12-03T10:00" (datetime-local) from an ISO string or empty. */
function toLocalInput(iso: string): string {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "";
  const d = new Date(t);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(v: string): string {
  if (!v) return "";
  const t = Date.parse(v);
  return Number.isNaN(t) ? "" : new Date(t).toISOString();
}

const RANGES: [string, number][] = [
  ["Last hour", 3_600_000],
  ["Last 24 h", 86_400_000],
  ["Last 7 days", 7 * 86_400_000],
  ["Last 30 days", 30 * 86_400_000],
];

function AuditFilterForm({ filters, onApply }: { filters: AuditFilters; onApply: (f: AuditFilters) => void }) {
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [filters]);
  const set = (k: keyof AuditFilters, v: string) => setDraft((d) => ({ ...d, [k]: v }));
  return (
    <form
      className="panel"
      style={{ marginBottom: 10 }}
      role="search"
      onSubmit={(e) => {
        e.preventDefault();
        onApply(draft);
      }}
    >
      <div className="filters" style={{ gridTemplateColumns: "repeat(5, minmax(0, 1fr)) auto", marginBottom: 6 }}>
        <Field label="From">
          {(p) => <input {...p} type="datetime-local" value={toLocalInput(draft.start)} onChange={(e) => set("start", fromLocalInput(e.target.value))} />}
        </Field>
        <Field label="To">
          {(p) => <input {...p} type="datetime-local" value={toLocalInput(draft.end)} onChange={(e) => set("end", fromLocalInput(e.target.value))} />}
        </Field>
        <Field label="Actor">
          {(p) => <input {...p} type="text" value={draft.actor} onChange={(e) => set("actor", e.target.value)} placeholder="apiKeys/… or system" />}
        </Field>
        <Field label="Action">
          {(p) => <input {...p} type="text" value={draft.action} onChange={(e) => set("action", e.target.value)} placeholder="inventory.CreateCertificate" />}
        </Field>
        <Field label="Resource">
          {(p) => (
            <input
              {...p}
              type="text"
              value={draft.resource}
              onChange={(e) => set("resource", e.target.value)}
              placeholder="certificates/web or certificates/web/"
              title="An exact resource name, or a prefix ending in / for everything under it"
            />
          )}
        </Field>
        <div className="row" style={{ alignSelf: "start", paddingTop: 18 }}>
          <button type="submit" className="btn primary">
            Apply
          </button>
        </div>
      </div>
      <div className="row">
        <span className="subtle">Quick range:</span>
        {RANGES.map(([label, ms]) => (
          <button
            type="button"
            key={label}
            className="btn small"
            onClick={() => onApply({ ...draft, start: new Date(Date.now() - ms).toISOString(), end: "" })}
          >
            {label}
          </button>
        ))}
        <button type="button" className="btn small ghost" onClick={() => onApply({ start: "", end: "", actor: "", action: "", resource: "" })}>
          Clear filters
        </button>
        <span className="faint" style={{ marginLeft: "auto" }}>
          Resource: an exact name, or a prefix ending in <code>/</code> for everything under it
        </span>
      </div>
    </form>
  );
}

function VerifyChain() {
  const m = useMutation({ mutationFn: () => audit.verifyChain({}) });
  return (
    <>
      <button type="button" className="btn" onClick={() => m.mutate()} disabled={m.isPending}>
        <Icon name="shield" /> {m.isPending ? "Verifying…" : "Verify chain"}
      </button>
      {(m.data || m.error) && (
        <div style={{ flexBasis: "100%" }}>
          {m.error && <ErrorAlert error={m.error} title="Verification could not run" />}
          {m.data &&
            (m.data.valid ? (
              <div className="alert success" role="status" data-testid="verify-result">
                <strong>Chain valid.</strong> {m.data.eventsChecked.toString()} events checked; every hash and link verifies.
              </div>
            ) : (
              <div className="alert" role="alert" data-testid="verify-result">
                <strong>Chain broken</strong> at event #{m.data.firstBrokenSequence.toString()} after checking {m.data.eventsChecked.toString()} events:{" "}
                {m.data.problem || "no reason given"}.
              </div>
            ))}
        </div>
      )}
    </>
  );
}

function ExportButtons({ filters }: { filters: AuditFilters }) {
  const [state, setState] = useState<{ format: string; bytes: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const run = async (format: ExportFormat) => {
    const label = format === ExportFormat.CSV ? "CSV" : "JSON";
    setError(null);
    setState({ format: label, bytes: 0 });
    const r = auditFiltersToRequest(filters);
    const parts: string[] = [];
    let bytes = 0;
    try {
      for await (const chunk of audit.exportAuditEvents({
        format,
        startTime: r.startTime ? timestampFromDate(r.startTime) : undefined,
        endTime: r.endTime ? timestampFromDate(r.endTime) : undefined,
        actor: r.actor,
        action: r.action,
        resource: r.resource,
      })) {
        parts.push(chunk.data);
        bytes += chunk.data.length;
        setState({ format: label, bytes });
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
      if (format === ExportFormat.CSV) downloadText(`certctl-audit-${stamp}.csv`, parts.join(""), "text/csv");
      else downloadText(`certctl-audit-${stamp}.jsonl`, parts.join(""), "application/x-ndjson");
    } catch (err) {
      setError(err);
    } finally {
      setState(null);
    }
  };
  return (
    <>
      <button type="button" className="btn" disabled={!!state} onClick={() => run(ExportFormat.CSV)}>
        <Icon name="download" /> Export CSV
      </button>
      <button type="button" className="btn" disabled={!!state} onClick={() => run(ExportFormat.JSON)}>
        <Icon name="download" /> Export JSON
      </button>
      {state && (
        <span className="subtle" role="status">
          <span className="spinner" aria-hidden="true" /> Exporting {state.format}… {(state.bytes / 1024).toFixed(1)} KB
        </span>
      )}
      {error ? (
        <div style={{ flexBasis: "100%" }}>
          <ErrorAlert error={error} title="Export failed" />
        </div>
      ) : null}
    </>
  );
}

export function AuditTrail() {
  useTitle("Audit trail");
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => auditFiltersFromParams(params), [params]);
  const filterKey = auditFiltersToParams(filters).toString();
  const [stack, setStack] = useState<PageStack>(firstPage);
  useEffect(() => setStack(firstPage), [filterKey]);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.audit, "list", filterKey, token],
    queryFn: () => {
      const r = auditFiltersToRequest(filters);
      return audit.listAuditEvents({
        pageSize: PAGE_SIZE,
        pageToken: token,
        startTime: r.startTime ? timestampFromDate(r.startTime) : undefined,
        endTime: r.endTime ? timestampFromDate(r.endTime) : undefined,
        actor: r.actor,
        action: r.action,
        resource: r.resource,
      });
    },
    placeholderData: keepPreviousData,
  });
  const events = q.data?.auditEvents ?? [];
  const anyFilter = filterKey !== "";
  return (
    <>
      <div className="page-head">
        <h1>Audit trail</h1>
        <span className="subtle">Append-only and hash-chained</span>
        <span className="spacer" />
        <ExportButtons filters={filters} />
        <VerifyChain />
      </div>
      <AuditFilterForm filters={filters} onApply={(f) => setParams(auditFiltersToParams(f))} />
      {anyFilter && (filters.start || filters.end) && (
        <p className="subtle" style={{ marginTop: 0 }}>
          {filters.start ? `From ${formatExact(new Date(filters.start))}` : "From the beginning"} {filters.end ? `to ${formatExact(new Date(filters.end))}` : "to now"}
        </p>
      )}
      {q.isError && <ErrorAlert error={q.error} title="Could not list audit events" />}
      <section className="panel flush" aria-label="Audit events">
        {q.isPending ? (
          <div className="loading" role="status">
            <span className="spinner" aria-hidden="true" /> Loading audit events…
          </div>
        ) : events.length === 0 && q.isSuccess ? (
          <Empty title={anyFilter ? "No events match these filters" : "No audit events yet"}>
            <p>{anyFilter ? "Widen the time range or clear a filter." : "Every change made through the API is recorded here."}</p>
          </Empty>
        ) : (
          <AuditTable events={events} />
        )}
        <Pager
          stack={stack}
          nextPageToken={q.data?.nextPageToken}
          shown={events.length}
          fetching={q.isFetching && !q.isPending}
          onPrevious={() => setStack(popPrevious)}
          onNext={() => q.data && setStack((s) => pushNext(s, q.data.nextPageToken))}
        />
      </section>
    </>
  );
}
