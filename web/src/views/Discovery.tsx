// Discovery triage: certificates agents found on their hosts. Claim one into
// the inventory, or dismiss it (one, or a selection, with progress).
import { useMemo, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { inventory } from "../api/client";
import { keys, useAllOwners, useAllTeams } from "../api/queries";
import { isUnimplemented, toApiError, violationFor, type ApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { Expiry, RelTime, tsDate, useNow } from "../components/time";
import { Copyable } from "../components/CopyButton";
import { Field } from "../components/Field";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Pager } from "../components/Pager";
import { useToast } from "../components/Toasts";
import { DiscoveryStateBadge } from "../components/fleetBadges";
import { DiscoveryState, type DiscoveredCertificate, type ListDiscoveredCertificatesResponse } from "../gen/certctl/inventory/v1/inventory_pb";
import { ALL_STATES, DISCOVERY_STATE_SLUGS, commonNameOf, discoveryStateFromParams, discoveryStateToParams, locationLabel, shortPath } from "../lib/discovery";
import { ID_PATTERN, resourceId, suggestId } from "../lib/names";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { useTitle } from "../lib/useTitle";

const PAGE_SIZE = 50;
const SHOWN_NAMES = 3;
const SHOWN_LOCATIONS = 2;

const listKey = [...keys.discovered, "list"] as const;

function subjectLabel(d: DiscoveredCertificate): string {
  return commonNameOf(d.subject) || d.dnsNames[0] || d.subject || resourceId(d.name);
}

// ---------------- claim ----------------

function ClaimForm({ item, onClose }: { item: DiscoveredCertificate; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const owners = useAllOwners();
  const teams = useAllTeams();
  const [certificateId, setCertificateId] = useState("");
  const [owner, setOwner] = useState("");
  const [team, setTeam] = useState("");
  const suggested = suggestId(commonNameOf(item.subject) || item.dnsNames[0] || "");
  const m = useMutation({
    mutationFn: () => inventory.claimDiscoveredCertificate({ name: item.name, certificateId: certificateId.trim(), owner, team }),
    onSuccess: (r) => {
      qc.invalidateQueries({ queryKey: keys.discovered });
      qc.invalidateQueries({ queryKey: keys.certificates });
      qc.invalidateQueries({ queryKey: keys.audit });
      const cert = r.discoveredCertificate?.certificate;
      toast(cert ? `Claimed ${subjectLabel(item)} as ${cert}` : `Claimed ${subjectLabel(item)}`);
      onClose();
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const fieldErr = {
    certificateId: violationFor(err, "certificate_id"),
    owner: violationFor(err, "owner"),
    team: violationFor(err, "team"),
  };
  const named = !!(fieldErr.certificateId || fieldErr.owner || fieldErr.team);
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      <p className="subtle" style={{ marginTop: 0 }}>
        Imports this certificate into the inventory as a managed certificate without an issuer (as <code>certctl import</code> does), and marks it
        Claimed. Naming an existing certificate adds it as that certificate’s next version.
      </p>
      <dl className="props" style={{ marginBottom: 10 }}>
        <dt>Subject</dt>
        <dd className="mono">{item.subject || "—"}</dd>
        <dt>SHA-256</dt>
        <dd>
          <Copyable text={item.fingerprint} label="fingerprint" />
        </dd>
        <dt>Serial</dt>
        <dd className="mono">{item.serialNumber || "—"}</dd>
      </dl>
      {err && <ErrorAlert error={err} title={named ? "Claim refused; see the fields below" : "Claim refused"} />}
      <div className="form-grid">
        <Field
          label="Certificate ID"
          className="span-2"
          error={fieldErr.certificateId}
          hint={<>Optional; empty: derived from the common name{suggested ? <> (about <code>{suggested}</code>)</> : null}, made unique</>}
        >
          {(p) => (
            <input
              {...p}
              type="text"
              className="mono"
              pattern={ID_PATTERN}
              maxLength={63}
              autoComplete="off"
              value={certificateId}
              onChange={(e) => setCertificateId(e.target.value)}
              placeholder={suggested || "web"}
            />
          )}
        </Field>
        <Field label="Owner" error={fieldErr.owner}>
          {(p) => (
            <select {...p} value={owner} onChange={(e) => setOwner(e.target.value)}>
              <option value="">Unassigned</option>
              {owners.data?.map((o) => (
                <option key={o.name} value={o.name}>
                  {o.displayName || resourceId(o.name)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Team" error={fieldErr.team}>
          {(p) => (
            <select {...p} value={team} onChange={(e) => setTeam(e.target.value)}>
              <option value="">None</option>
              {teams.data?.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.displayName || resourceId(t.name)}
                </option>
              ))}
            </select>
          )}
        </Field>
      </div>
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending}>
          {m.isPending ? "Claiming…" : "Claim certificate"}
        </button>
      </div>
    </form>
  );
}

// ---------------- dismiss (one or many) ----------------

interface Progress {
  done: number;
  failed: { name: string; message: string }[];
}

/**
 * Dismisses `names` one by one. The rows show Dismissed at once; if any call
 * fails, the cached pages are put back and the server's answer reloaded.
 */
function useDismiss() {
  const qc = useQueryClient();
  const toast = useToast();
  const [progress, setProgress] = useState<Progress | null>(null);
  const run = async (names: string[]): Promise<Progress> => {
    const snapshots = qc.getQueriesData<ListDiscoveredCertificatesResponse>({ queryKey: listKey });
    const chosen = new Set(names);
    qc.setQueriesData<ListDiscoveredCertificatesResponse>({ queryKey: listKey }, (old) =>
      old
        ? ({
            ...old,
            discoveredCertificates: old.discoveredCertificates.map((d) => (chosen.has(d.name) ? { ...d, state: DiscoveryState.DISMISSED } : d)),
          } as ListDiscoveredCertificatesResponse)
        : old,
    );
    const failed: Progress["failed"] = [];
    let done = 0;
    setProgress({ done, failed });
    for (const name of names) {
      try {
        await inventory.dismissDiscoveredCertificate({ name });
      } catch (err) {
        failed.push({ name, message: toApiError(err).message });
      }
      done++;
      setProgress({ done, failed: [...failed] });
    }
    if (failed.length > 0) for (const [key, data] of snapshots) qc.setQueryData(key, data);
    await qc.invalidateQueries({ queryKey: keys.discovered });
    qc.invalidateQueries({ queryKey: keys.audit });
    if (failed.length === 0) toast(`Dismissed ${names.length} discovered certificate${names.length === 1 ? "" : "s"}`);
    else toast(`${failed.length} of ${names.length} dismissals failed`, "error");
    return { done, failed };
  };
  return { run, progress, reset: () => setProgress(null) };
}

function BulkDismissDialog({ names, open, onClose, onDone }: { names: string[]; open: boolean; onClose: () => void; onDone: () => void }) {
  const d = useDismiss();
  const running = d.progress !== null && d.progress.done < names.length;
  const finished = d.progress !== null && !running;
  const close = () => {
    if (running) return;
    d.reset();
    onClose();
  };
  return (
    <Modal title={`Dismiss ${names.length} discovered certificate${names.length === 1 ? "" : "s"}?`} open={open} onClose={close}>
      <p style={{ marginTop: 0 }}>
        Marks each selected certificate as needing no management. They leave the New list, later reports from agents keep them dismissed, and they can
        still be claimed from the Dismissed list.
      </p>
      {d.progress && (
        <div style={{ marginTop: 12 }} aria-live="polite">
          <div className="row">
            <div className="progress" style={{ flex: 1 }} role="progressbar" aria-label="Dismissal progress" aria-valuemin={0} aria-valuemax={names.length} aria-valuenow={d.progress.done}>
              <div style={{ width: `${(100 * d.progress.done) / Math.max(1, names.length)}%` }} />
            </div>
            <span>
              {d.progress.done} / {names.length}
            </span>
          </div>
          {d.progress.failed.length > 0 && (
            <div className="alert" role="alert" style={{ marginTop: 8 }}>
              <strong>{d.progress.failed.length} failed</strong>
              <ul>
                {d.progress.failed.map((f) => (
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
        <button type="button" className="btn" onClick={close} disabled={running}>
          {finished ? "Close" : "Cancel"}
        </button>
        {!finished && (
          <button
            type="button"
            className="btn danger"
            disabled={running || names.length === 0}
            onClick={async () => {
              const r = await d.run(names);
              if (r.failed.length === 0) {
                d.reset();
                onDone();
              }
            }}
          >
            {running ? "Dismissing…" : `Dismiss ${names.length}`}
          </button>
        )}
      </div>
    </Modal>
  );
}

// ---------------- list ----------------

function Names({ names }: { names: string[] }) {
  if (names.length === 0) return <span className="faint">—</span>;
  return (
    <span title={names.join(", ")}>
      {names.slice(0, SHOWN_NAMES).map((n) => (
        <span className="tag" key={n}>
          {n}
        </span>
      ))}
      {names.length > SHOWN_NAMES && <span className="faint">+{names.length - SHOWN_NAMES}</span>}
    </span>
  );
}

function Locations({ d }: { d: DiscoveredCertificate }) {
  if (d.locations.length === 0) return <span className="faint">—</span>;
  const all = d.locations.map(locationLabel);
  return (
    <span className="locations" title={all.join("\n")}>
      {d.locations.slice(0, SHOWN_LOCATIONS).map((l) => (
        <span key={`${l.agent}:${l.path}`}>
          <Link to={`/agents/${resourceId(l.agent)}`}>{resourceId(l.agent)}</Link>:{shortPath(l.path, 22)}
        </span>
      ))}
      {d.locations.length > SHOWN_LOCATIONS && <span className="faint">+{d.locations.length - SHOWN_LOCATIONS} more</span>}
    </span>
  );
}

export function DiscoveryView() {
  useTitle("Discovery");
  const now = useNow();
  const [params, setParams] = useSearchParams();
  const state = discoveryStateFromParams(params);
  const stateKey = discoveryStateToParams(state).toString();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [claiming, setClaiming] = useState<DiscoveredCertificate | null>(null);
  const [bulkOpen, setBulkOpen] = useState(false);
  const lastClicked = useRef<number | null>(null);
  const single = useDismiss();
  const token = currentToken(stack);
  const setState = (s: DiscoveryState) => {
    setParams(discoveryStateToParams(s), { replace: true });
    setStack(firstPage);
    setSelected(new Set());
  };
  const q = useQuery({
    queryKey: [...listKey, stateKey, token],
    queryFn: () => inventory.listDiscoveredCertificates({ pageSize: PAGE_SIZE, pageToken: token, state }),
    placeholderData: keepPreviousData,
    retry: false,
  });
  const rows = useMemo(() => q.data?.discoveredCertificates ?? [], [q.data]);
  const dismissable = rows.filter((d) => d.state === DiscoveryState.NEW);
  const allSelected = dismissable.length > 0 && dismissable.every((d) => selected.has(d.name));
  const toggle = (i: number, shift: boolean) => {
    const row = rows[i];
    if (!row) return;
    // Read the anchor now: the updater runs later, after it moves.
    const anchor = shift ? lastClicked.current : null;
    const from = anchor !== null ? Math.min(anchor, i) : i;
    const to = anchor !== null ? Math.max(anchor, i) : i;
    setSelected((prev) => {
      const next = new Set(prev);
      const on = !prev.has(row.name);
      for (let k = from; k <= to; k++) {
        const r = rows[k];
        if (r && r.state === DiscoveryState.NEW) (on ? next.add(r.name) : next.delete(r.name));
      }
      return next;
    });
    lastClicked.current = i;
  };
  const stateSelect = state === DiscoveryState.UNSPECIFIED ? ALL_STATES : (DISCOVERY_STATE_SLUGS.find(([, v]) => v === state)?.[0] ?? "new");
  const notServed = q.isError && isUnimplemented(q.error);
  return (
    <>
      <div className="page-head">
        <h1>Discovery</h1>
        <span className="subtle">Certificates agents found on their hosts: claim them into the inventory, or dismiss them</span>
        <span className="spacer" />
        {q.isFetching && !q.isPending && <span className="spinner" aria-label="Refreshing" />}
      </div>
      <form className="filters fleet" role="search" aria-label="Discovery filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="State">
          {(p) => (
            <select
              {...p}
              value={stateSelect}
              onChange={(e) => setState(e.target.value === ALL_STATES ? DiscoveryState.UNSPECIFIED : (DISCOVERY_STATE_SLUGS.find(([s]) => s === e.target.value)?.[1] ?? DiscoveryState.NEW))}
            >
              {DISCOVERY_STATE_SLUGS.map(([slug, , label]) => (
                <option key={slug} value={slug}>
                  {label}
                </option>
              ))}
              <option value={ALL_STATES}>Any state</option>
            </select>
          )}
        </Field>
      </form>
      {q.isError && !notServed && <ErrorAlert error={q.error} title="Could not list discovered certificates" />}
      <section className="panel flush" aria-label="Discovered certificates">
        {selected.size > 0 && (
          <div className="panel-head" role="region" aria-label="Bulk actions">
            <strong>{selected.size} selected</strong>
            <button type="button" className="btn small danger" onClick={() => setBulkOpen(true)}>
              <Icon name="ban" /> Dismiss {selected.size}…
            </button>
            <button type="button" className="btn small ghost" onClick={() => setSelected(new Set())}>
              Clear selection
            </button>
          </div>
        )}
        {q.isPending ? (
          <Loading what="discovered certificates" />
        ) : notServed ? (
          <Empty title="Discovery is not served by this server yet">
            <p className="faint">{toApiError(q.error).message}</p>
          </Empty>
        ) : q.isSuccess && rows.length === 0 && !token ? (
          <Empty title={state === DiscoveryState.NEW ? "Nothing new to triage" : "No discovered certificates in this state"}>
            {state === DiscoveryState.NEW ? (
              <p>
                Agents report the certificates they find when started with <code>certctl-agent run --discover /etc/ssl</code>. No agent yet?{" "}
                <Link to="/agents">Add one</Link>.
              </p>
            ) : (
              <p>Choose another state above.</p>
            )}
          </Empty>
        ) : q.isSuccess ? (
          <>
            <div className="table-wrap">
              <table className="data discovery">
                <thead>
                  <tr>
                    <th className="check">
                      <input
                        type="checkbox"
                        aria-label="Select all new on this page"
                        checked={allSelected}
                        disabled={dismissable.length === 0}
                        onChange={() =>
                          setSelected((prev) => {
                            const next = new Set(prev);
                            for (const d of dismissable) (allSelected ? next.delete(d.name) : next.add(d.name));
                            return next;
                          })
                        }
                      />
                    </th>
                    <th>State</th>
                    <th>Subject</th>
                    <th>DNS names</th>
                    <th>Issuer</th>
                    <th>Expires</th>
                    <th title="Where agents found it, as agent:path">Found at</th>
                    <th>Last seen</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((d, i) => (
                    <tr key={d.name} className={selected.has(d.name) ? "selected" : undefined} data-discovered={d.name}>
                      <td className="check">
                        <input
                          type="checkbox"
                          aria-label={`Select ${d.name}`}
                          checked={selected.has(d.name)}
                          disabled={d.state !== DiscoveryState.NEW}
                          onChange={() => {}}
                          onClick={(e) => toggle(i, e.shiftKey)}
                        />
                      </td>
                      <td>
                        <DiscoveryStateBadge state={d.state} />
                      </td>
                      <td className="truncate mono subject" title={`${d.subject}\nSHA-256 ${d.fingerprint}\nserial ${d.serialNumber}`}>
                        {subjectLabel(d)}
                      </td>
                      <td className="names">
                        <Names names={d.dnsNames} />
                      </td>
                      <td className="truncate issuer" title={d.issuer}>
                        {commonNameOf(d.issuer) || d.issuer || <span className="faint">—</span>}
                      </td>
                      <td>
                        <Expiry at={tsDate(d.notAfter)} now={now} />
                      </td>
                      <td className="found">
                        <Locations d={d} />
                      </td>
                      <td>
                        <RelTime at={tsDate(d.lastSeenTime)} now={now} />
                      </td>
                      <td style={{ textAlign: "right" }}>
                        {d.state === DiscoveryState.CLAIMED ? (
                          d.certificate ? (
                            <Link className="btn small" to={`/certificates/${resourceId(d.certificate)}`}>
                              <Icon name="cert" /> {resourceId(d.certificate)}
                            </Link>
                          ) : (
                            <span className="faint">managed</span>
                          )
                        ) : (
                          <>
                            <button type="button" className="btn small primary" onClick={() => setClaiming(d)} aria-label={`Claim ${d.name}`}>
                              <Icon name="plus" /> Claim
                            </button>{" "}
                            {d.state === DiscoveryState.NEW && (
                              <button
                                type="button"
                                className="btn small"
                                title="Dismiss: needs no management; later reports keep it dismissed"
                                aria-label={`Dismiss ${d.name}`}
                                disabled={single.progress !== null && single.progress.done < 1}
                                onClick={async () => {
                                  await single.run([d.name]);
                                  single.reset();
                                  setSelected((prev) => {
                                    const next = new Set(prev);
                                    next.delete(d.name);
                                    return next;
                                  });
                                }}
                              >
                                <Icon name="ban" />
                                <span className="sr-only">Dismiss</span>
                              </button>
                            )}
                          </>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager
              stack={stack}
              nextPageToken={q.data.nextPageToken}
              shown={rows.length}
              fetching={q.isFetching && !q.isPending}
              onPrevious={() => setStack(popPrevious)}
              onNext={() => setStack((s) => pushNext(s, q.data.nextPageToken))}
            />
          </>
        ) : null}
      </section>
      <Modal title={claiming ? `Claim ${subjectLabel(claiming)}` : ""} open={!!claiming} onClose={() => setClaiming(null)}>
        {claiming && <ClaimForm key={claiming.name} item={claiming} onClose={() => setClaiming(null)} />}
      </Modal>
      <BulkDismissDialog
        names={[...selected]}
        open={bulkOpen}
        onClose={() => setBulkOpen(false)}
        onDone={() => {
          setBulkOpen(false);
          setSelected(new Set());
        }}
      />
    </>
  );
}
