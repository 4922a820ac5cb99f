import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { inventory } from "../api/client";
import { keys, labelFor, useAllOwners, useAllTeams } from "../api/queries";
import { toApiError } from "../api/errors";
import {
  activeFilterCount,
  certificateFiltersFromParams,
  certificateFiltersToParams,
  certificateFiltersToRequest,
  ORDER_BY_OPTIONS,
  STATE_SLUGS,
  stateFromSlug,
  stateSlug,
  type CertificateFilters,
} from "../lib/filters";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { resourceId, resourceName } from "../lib/names";
import { Empty, ErrorAlert } from "../components/states";
import { Expiry, tsDate, useNow } from "../components/time";
import { StateBadge, STATE_STYLE } from "../components/StateBadge";
import { Pager } from "../components/Pager";
import { Field } from "../components/Field";
import { Modal } from "../components/Modal";
import { Icon } from "../components/Icon";
import { useToast } from "../components/Toasts";
import { CertificateState, type Certificate, type ListCertificatesResponse } from "../gen/certctl/inventory/v1/inventory_pb";
import { useTitle } from "../lib/useTitle";

const PAGE_SIZE = 50;

const EXPIRY_PRESETS = [
  { value: "", label: "Any time" },
  { value: "now+7d", label: "Within 7 days" },
  { value: "now+30d", label: "Within 30 days" },
  { value: "now+90d", label: "Within 90 days" },
];

/** `/` focuses the search box unless the user is typing somewhere. */
export function useSlashFocus(ref: React.RefObject<HTMLInputElement | null>) {
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target as HTMLElement | null;
      if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
      e.preventDefault();
      ref.current?.focus();
      ref.current?.select();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [ref]);
}

function FilterBar({ filters, onChange }: { filters: CertificateFilters; onChange: (f: CertificateFilters) => void }) {
  const owners = useAllOwners();
  const teams = useAllTeams();
  const searchRef = useRef<HTMLInputElement>(null);
  useSlashFocus(searchRef);
  const [search, setSearch] = useState(filters.search);
  // Keep the box in step with the URL (back/forward, chip removal).
  useEffect(() => setSearch(filters.search), [filters.search]);
  // Debounce typing into the URL.
  useEffect(() => {
    if (search === filters.search) return;
    const id = setTimeout(() => onChange({ ...filters, search }), 300);
    return () => clearTimeout(id);
  }, [search, filters, onChange]);
  const custom = filters.expireBefore !== "" && !EXPIRY_PRESETS.some((p) => p.value === filters.expireBefore);
  return (
    <div className="filters" role="search">
      <Field label="Search" className="search-field" hint={<>Common name or SAN · press <kbd>/</kbd></>}>
        {(p) => (
          <input
            {...p}
            ref={searchRef}
            type="search"
            placeholder="example.com"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") onChange({ ...filters, search });
              if (e.key === "Escape") (e.target as HTMLInputElement).blur();
            }}
          />
        )}
      </Field>
      <Field label="Owner">
        {(p) => (
          <select {...p} value={filters.owner} onChange={(e) => onChange({ ...filters, owner: e.target.value })}>
            <option value="">All owners</option>
            {owners.data?.map((o) => (
              <option key={o.name} value={resourceId(o.name)}>
                {o.displayName || resourceId(o.name)}
              </option>
            ))}
            {filters.owner && !owners.data?.some((o) => resourceId(o.name) === filters.owner) && (
              <option value={filters.owner}>{filters.owner}</option>
            )}
          </select>
        )}
      </Field>
      <Field label="Team">
        {(p) => (
          <select {...p} value={filters.team} onChange={(e) => onChange({ ...filters, team: e.target.value })}>
            <option value="">All teams</option>
            {teams.data?.map((t) => (
              <option key={t.name} value={resourceId(t.name)}>
                {t.displayName || resourceId(t.name)}
              </option>
            ))}
            {filters.team && !teams.data?.some((t) => resourceId(t.name) === filters.team) && (
              <option value={filters.team}>{filters.team}</option>
            )}
          </select>
        )}
      </Field>
      <Field label="State">
        {(p) => (
          <select {...p} value={stateSlug(filters.state)} onChange={(e) => onChange({ ...filters, state: stateFromSlug(e.target.value) })}>
            <option value="">All states</option>
            {STATE_SLUGS.map(([slug, st]) => (
              <option key={slug} value={slug}>
                {STATE_STYLE[st].label}
              </option>
            ))}
          </select>
        )}
      </Field>
      <Field label="Environment">
        {(p) => (
          <input
            {...p}
            type="text"
            placeholder="production"
            defaultValue={filters.environment}
            key={`env-${filters.environment}`}
            onBlur={(e) => e.target.value !== filters.environment && onChange({ ...filters, environment: e.target.value.trim() })}
            onKeyDown={(e) => e.key === "Enter" && onChange({ ...filters, environment: (e.target as HTMLInputElement).value.trim() })}
          />
        )}
      </Field>
      <Field label="Issuer">
        {(p) => (
          <input
            {...p}
            type="text"
            placeholder="issuers/…"
            defaultValue={filters.issuer}
            key={`iss-${filters.issuer}`}
            onBlur={(e) => e.target.value !== filters.issuer && onChange({ ...filters, issuer: e.target.value.trim() })}
            onKeyDown={(e) => e.key === "Enter" && onChange({ ...filters, issuer: (e.target as HTMLInputElement).value.trim() })}
          />
        )}
      </Field>
      <Field label="Expires before">
        {(p) =>
          custom ? (
            <div className="row" style={{ flexWrap: "nowrap" }}>
              <input
                {...p}
                type="date"
                style={{ minWidth: 0, flex: 1 }}
                value={/^\d{4}-\d{2}-\d{2}$/.test(filters.expireBefore) ? filters.expireBefore : filters.expireBefore.slice(0, 10)}
                onChange={(e) => onChange({ ...filters, expireBefore: e.target.value })}
              />
              <button type="button" className="icon-btn" aria-label="Clear expiry filter" onClick={() => onChange({ ...filters, expireBefore: "" })}>
                ✕
              </button>
            </div>
          ) : (
            <select
              {...p}
              value={filters.expireBefore}
              onChange={(e) => {
                const v = e.target.value;
                if (v === "custom") {
                  const d = new Date(Date.now() + 14 * 86_400_000);
                  onChange({ ...filters, expireBefore: d.toISOString().slice(0, 10) });
                } else onChange({ ...filters, expireBefore: v });
              }}
            >
              {EXPIRY_PRESETS.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
              <option value="custom">Pick a date…</option>
            </select>
          )
        }
      </Field>
    </div>
  );
}

function FilterChips({ filters, onChange }: { filters: CertificateFilters; onChange: (f: CertificateFilters) => void }) {
  const owners = useAllOwners();
  const teams = useAllTeams();
  const chips: { label: string; clear: Partial<CertificateFilters> }[] = [];
  if (filters.search) chips.push({ label: `search: ${filters.search}`, clear: { search: "" } });
  if (filters.owner) chips.push({ label: `owner: ${labelFor(owners.data, resourceName("owners", filters.owner))}`, clear: { owner: "" } });
  if (filters.team) chips.push({ label: `team: ${labelFor(teams.data, resourceName("teams", filters.team))}`, clear: { team: "" } });
  if (filters.state !== CertificateState.UNSPECIFIED) chips.push({ label: `state: ${STATE_STYLE[filters.state].label}`, clear: { state: CertificateState.UNSPECIFIED } });
  if (filters.environment) chips.push({ label: `environment: ${filters.environment}`, clear: { environment: "" } });
  if (filters.issuer) chips.push({ label: `issuer: ${filters.issuer}`, clear: { issuer: "" } });
  if (filters.expireBefore) {
    const preset = EXPIRY_PRESETS.find((p) => p.value === filters.expireBefore);
    chips.push({ label: `expires: ${preset ? preset.label.toLowerCase() : `before ${filters.expireBefore}`}`, clear: { expireBefore: "" } });
  }
  if (chips.length === 0) return null;
  return (
    <div className="chips" aria-label="Active filters">
      {chips.map((c) => (
        <span className="chip" key={c.label}>
          {c.label}
          <button type="button" aria-label={`Remove filter ${c.label}`} onClick={() => onChange({ ...filters, ...c.clear })}>
            ✕
          </button>
        </span>
      ))}
      {chips.length > 1 && (
        <button
          type="button"
          className="btn small ghost"
          onClick={() => onChange({ ...filters, search: "", owner: "", team: "", state: CertificateState.UNSPECIFIED, environment: "", issuer: "", expireBefore: "" })}
        >
          Clear all
        </button>
      )}
    </div>
  );
}

function ChangeOwnerDialog({
  open,
  names,
  onClose,
  onDone,
}: {
  open: boolean;
  names: string[];
  onClose: () => void;
  onDone: () => void;
}) {
  const owners = useAllOwners();
  const qc = useQueryClient();
  const toast = useToast();
  const [owner, setOwner] = useState("");
  const [progress, setProgress] = useState<{ done: number; failed: { name: string; message: string }[] } | null>(null);
  const running = progress !== null && progress.done < names.length;

  useEffect(() => {
    if (open) {
      setProgress(null);
      setOwner("");
    }
  }, [open]);

  const run = async () => {
    // Optimistic: show the new owner in every cached list page at once, roll back on failure.
    const snapshots = qc.getQueriesData<ListCertificatesResponse>({ queryKey: [...keys.certificates, "list"] });
    const selected = new Set(names);
    qc.setQueriesData<ListCertificatesResponse>({ queryKey: [...keys.certificates, "list"] }, (old) =>
      old
        ? ({
            ...old,
            certificates: old.certificates.map((c) => (selected.has(c.name) ? { ...c, owner } : c)),
          } as ListCertificatesResponse)
        : old,
    );
    const failed: { name: string; message: string }[] = [];
    setProgress({ done: 0, failed });
    let done = 0;
    for (const name of names) {
      try {
        await inventory.updateCertificate({ certificate: { name, owner }, updateMask: { paths: ["owner"] } });
      } catch (err) {
        failed.push({ name, message: toApiError(err).message });
      }
      done++;
      setProgress({ done, failed: [...failed] });
    }
    if (failed.length > 0) {
      // Roll back the optimistic rows, then refetch the truth.
      for (const [key, data] of snapshots) qc.setQueryData(key, data);
    }
    await qc.invalidateQueries({ queryKey: keys.certificates });
    for (const name of names) qc.invalidateQueries({ queryKey: ["certificate", name] });
    if (failed.length === 0) {
      toast(`Owner of ${names.length} certificate${names.length === 1 ? "" : "s"} changed to ${labelFor(owners.data, owner)}`);
      onDone();
    } else {
      toast(`${failed.length} of ${names.length} updates failed`, "error");
    }
  };

  return (
    <Modal title={`Change owner of ${names.length} certificate${names.length === 1 ? "" : "s"}`} open={open} onClose={() => !running && onClose()}>
      <p className="subtle" style={{ marginTop: 0 }}>
        Sets the owner of each selected certificate with UpdateCertificate (update mask <code>owner</code>). Other fields are not touched.
      </p>
      <Field label="New owner" required>
        {(p) => (
          <select {...p} value={owner} onChange={(e) => setOwner(e.target.value)} disabled={running}>
            <option value="">Choose an owner…</option>
            {owners.data?.map((o) => (
              <option key={o.name} value={o.name}>
                {o.displayName || resourceId(o.name)} ({o.name})
              </option>
            ))}
          </select>
        )}
      </Field>
      {progress && (
        <div style={{ marginTop: 12 }} aria-live="polite">
          <div className="row">
            <div className="progress" style={{ flex: 1 }} role="progressbar" aria-valuemin={0} aria-valuemax={names.length} aria-valuenow={progress.done}>
              <div style={{ width: `${(100 * progress.done) / Math.max(1, names.length)}%` }} />
            </div>
            <span>
              {progress.done} / {names.length}
            </span>
          </div>
          {progress.failed.length > 0 && (
            <div className="alert" role="alert" style={{ marginTop: 8 }}>
              <strong>{progress.failed.length} failed</strong>
              <ul>
                {progress.failed.map((f) => (
                  <li key={f.name}>
                    <code>{f.name}</code>: {f.message}
                  </li>
                ))}
              </ul>
            </div>
          )}
        </div>
      )}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose} disabled={running}>
          {progress && !running ? "Close" : "Cancel"}
        </button>
        <button type="button" className="btn primary" onClick={run} disabled={!owner || running || (progress !== null && progress.failed.length === 0)}>
          {running ? "Updating…" : `Change owner of ${names.length}`}
        </button>
      </div>
    </Modal>
  );
}

export function CertificateList() {
  useTitle("Certificates");
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => certificateFiltersFromParams(params), [params]);
  const filterKey = certificateFiltersToParams(filters).toString();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const lastClicked = useRef<number | null>(null);
  const [bulkOpen, setBulkOpen] = useState(false);
  const now = useNow();
  const owners = useAllOwners();
  const teams = useAllTeams();

  // New filters start from the first page with nothing selected.
  useEffect(() => {
    setStack(firstPage);
    setSelected(new Set());
  }, [filterKey]);

  const setFilters = useCallback(
    (f: CertificateFilters) => setParams(certificateFiltersToParams(f), { replace: false }),
    [setParams],
  );

  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.certificates, "list", filterKey, token],
    queryFn: () => {
      const r = certificateFiltersToRequest(filters, new Date());
      return inventory.listCertificates({
        pageSize: PAGE_SIZE,
        pageToken: token,
        owner: r.owner,
        team: r.team,
        state: r.state,
        issuer: r.issuer,
        environment: r.environment,
        expireBefore: r.expireBefore ? timestampFromDate(r.expireBefore) : undefined,
        search: r.search,
        orderBy: r.orderBy,
      });
    },
    placeholderData: keepPreviousData,
  });

  const rows: Certificate[] = q.data?.certificates ?? [];
  const allSelected = rows.length > 0 && rows.every((c) => selected.has(c.name));

  const toggle = (index: number, shift: boolean) => {
    const row = rows[index];
    if (!row) return;
    const anchor = lastClicked.current;
    setSelected((prev) => {
      const next = new Set(prev);
      const on = !prev.has(row.name);
      if (shift && anchor !== null) {
        const [a, b] = [Math.min(anchor, index), Math.max(anchor, index)];
        for (let i = a; i <= b; i++) {
          const r = rows[i];
          if (r) (on ? next.add(r.name) : next.delete(r.name));
        }
      } else if (on) next.add(row.name);
      else next.delete(row.name);
      return next;
    });
    lastClicked.current = index;
  };

  const filterCount = activeFilterCount(filters);

  // Arrow keys (or j/k) move between rows; x toggles the focused row's selection.
  const onRowKey = (e: React.KeyboardEvent<HTMLTableSectionElement>) => {
    const t = e.target as HTMLElement;
    const tr = t.closest("tr");
    if (!tr || (t.tagName === "INPUT" && e.key !== "ArrowDown" && e.key !== "ArrowUp")) return;
    const trs = [...e.currentTarget.querySelectorAll("tr")];
    const i = trs.indexOf(tr);
    let to: HTMLTableRowElement | undefined;
    if (e.key === "ArrowDown" || e.key === "j") to = trs[i + 1];
    else if (e.key === "ArrowUp" || e.key === "k") to = trs[i - 1];
    else if (e.key === "x") {
      e.preventDefault();
      toggle(i, e.shiftKey);
      return;
    } else return;
    e.preventDefault();
    to?.querySelector<HTMLElement>("td a")?.focus();
  };

  return (
    <>
      <div className="page-head">
        <h1>Certificates</h1>
        <span className="faint" style={{ alignSelf: "flex-end", fontSize: 12 }}>
          <kbd>/</kbd> search · <kbd>↑</kbd>
          <kbd>↓</kbd> move · <kbd>x</kbd> select · shift-click a range
        </span>
        <span className="spacer" />
        <Field label="Sort by">
          {(p) => (
            <select {...p} value={filters.orderBy} onChange={(e) => setFilters({ ...filters, orderBy: e.target.value })}>
              {ORDER_BY_OPTIONS.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Link className="btn primary" to="/certificates/new" style={{ alignSelf: "flex-end" }}>
          <Icon name="plus" /> New certificate
        </Link>
      </div>
      <FilterBar filters={filters} onChange={setFilters} />
      <FilterChips filters={filters} onChange={setFilters} />
      {q.isError && <ErrorAlert error={q.error} title="Could not list certificates" />}
      <section className="panel flush" aria-label="Certificate list">
        {selected.size > 0 && (
          <div className="panel-head" role="region" aria-label="Bulk actions">
            <strong>{selected.size} selected</strong>
            <button type="button" className="btn small" onClick={() => setBulkOpen(true)}>
              <Icon name="user" /> Change owner…
            </button>
            <button type="button" className="btn small ghost" onClick={() => setSelected(new Set())}>
              Clear selection
            </button>
          </div>
        )}
        <div className="table-wrap">
          <table className="data">
            <thead>
              <tr>
                <th className="check">
                  <input
                    type="checkbox"
                    aria-label="Select all on this page"
                    checked={allSelected}
                    onChange={() =>
                      setSelected((prev) => {
                        const next = new Set(prev);
                        for (const c of rows) (allSelected ? next.delete(c.name) : next.add(c.name));
                        return next;
                      })
                    }
                  />
                </th>
                <th>Name</th>
                <th>Common name</th>
                <th>State</th>
                <th>Expires</th>
                <th>Owner · team</th>
                <th>Environment</th>
                <th>Issuer</th>
              </tr>
            </thead>
            <tbody onKeyDown={onRowKey}>
              {q.isPending &&
                Array.from({ length: 8 }, (_, i) => (
                  <tr key={i} className="skeleton-row" aria-hidden="true">
                    {Array.from({ length: 8 }, (__, j) => (
                      <td key={j}>…</td>
                    ))}
                  </tr>
                ))}
              {rows.map((c, i) => (
                <tr key={c.name} className={selected.has(c.name) ? "selected" : undefined}>
                  <td className="check">
                    <input
                      type="checkbox"
                      aria-label={`Select ${c.name}`}
                      checked={selected.has(c.name)}
                      onChange={() => {}}
                      onClick={(e) => toggle(i, e.shiftKey)}
                    />
                  </td>
                  <td className="truncate">
                    <Link to={`/certificates/${resourceId(c.name)}`}>{c.displayName || resourceId(c.name)}</Link>
                  </td>
                  <td className="truncate mono cn" title={c.subjectAltNames.join(", ")}>
                    {c.commonName}
                    {c.subjectAltNames.length > 1 && <span className="faint"> +{c.subjectAltNames.length - 1}</span>}
                  </td>
                  <td>
                    <StateBadge state={c.state} />
                  </td>
                  <td>
                    <Expiry at={tsDate(c.notAfter)} now={now} />
                  </td>
                  <td className="truncate narrow">
                    {c.owner ? labelFor(owners.data, c.owner) : <span className="faint">unassigned</span>}
                    {c.team && <span className="faint"> · {labelFor(teams.data, c.team)}</span>}
                  </td>
                  <td>{c.environment || <span className="faint">—</span>}</td>
                  <td className="truncate">{c.issuer ? resourceId(c.issuer) : <span className="faint">—</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {q.isSuccess && rows.length === 0 && (
          <Empty title={filterCount > 0 ? "No certificates match these filters" : "No certificates yet"}>
            {filterCount > 0 ? (
              <p>Remove a filter above, or search for another name.</p>
            ) : (
              <p>
                <Link to="/certificates/new">Create a certificate</Link> or import existing ones with <code>certctl import</code>.
              </p>
            )}
          </Empty>
        )}
        <Pager
          stack={stack}
          nextPageToken={q.data?.nextPageToken}
          shown={rows.length}
          fetching={q.isFetching && !q.isPending}
          onPrevious={() => setStack(popPrevious)}
          onNext={() => q.data && setStack((s) => pushNext(s, q.data.nextPageToken))}
        />
      </section>
      <ChangeOwnerDialog
        open={bulkOpen}
        names={[...selected]}
        onClose={() => setBulkOpen(false)}
        onDone={() => {
          setBulkOpen(false);
          setSelected(new Set());
        }}
      />
    </>
  );
}
