// The agent fleet: live status, one agent's targets and identity, retiring it,
// and enrolling new ones with a join token (its secret shown once).
import { useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { audit, inventory } from "../api/client";
import { keys, usePlatformAuthorities, PLATFORM_ISSUER } from "../api/queries";
import { toApiError, violationFor, type ApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { Expiry, RelTime, tsDate, useNow } from "../components/time";
import { CopyButton, Copyable } from "../components/CopyButton";
import { Field } from "../components/Field";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Pager } from "../components/Pager";
import { useToast } from "../components/Toasts";
import { AgentStatusBadge } from "../components/fleetBadges";
import { AuditTable } from "../components/audit";
import { AgentStatus, type Agent, type JoinToken } from "../gen/certctl/inventory/v1/inventory_pb";
import {
  AGENT_STATUS_SLUGS,
  MAX_TTL_HOURS,
  agentStatusFromSlug,
  agentStatusSlug,
  defaultAgentServer,
  enrollCommand,
  joinTokenState,
  lastSeenLabel,
  parseTtlHours,
  rootFingerprint,
} from "../lib/agents";
import { formatExact } from "../lib/expiry";
import { formatLabels, parseLabels } from "../lib/form";
import { ID_PATTERN, resourceId } from "../lib/names";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { targetKindLabel, targetWhere } from "../lib/targets";
import { useTitle } from "../lib/useTitle";

const PAGE_SIZE = 50;
// Status is derived from last_seen_time when read (online < 90 s < stale < 5 min < offline),
// so the list is read again often enough to show a change within seconds.
const REFRESH_MS = 10_000;

function LabelTags({ labels }: { labels: Record<string, string> }) {
  const e = Object.entries(labels);
  return e.length ? (
    <>
      {e.map(([k, v]) => (
        <span className="tag" key={k}>{`${k}=${v}`}</span>
      ))}
    </>
  ) : (
    <span className="faint">—</span>
  );
}

function Capabilities({ agent }: { agent: Agent }) {
  return agent.capabilities.length ? (
    <>
      {agent.capabilities.map((c) => (
        <span className="tag" key={c}>
          {c}
        </span>
      ))}
    </>
  ) : (
    <span className="faint">—</span>
  );
}

function LastSeen({ agent, now }: { agent: Agent; now: Date }) {
  const at = tsDate(agent.lastSeenTime);
  if (!at) return <span className="faint">{lastSeenLabel(at, now)}</span>;
  return (
    <time dateTime={at.toISOString()} title={formatExact(at)} data-testid="last-seen">
      {lastSeenLabel(at, now)}
    </time>
  );
}

// ---------------- add an agent (join token) ----------------

interface Created {
  token: JoinToken;
  secret: string;
}

function JoinTokenForm({ onCreated, onCancel }: { onCreated: (c: Created) => void; onCancel: () => void }) {
  const qc = useQueryClient();
  const [ttl, setTtl] = useState("24");
  const [agentId, setAgentId] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [labels, setLabels] = useState("");
  const ttlParsed = parseTtlHours(ttl);
  const labelsParsed = parseLabels(labels);
  const [tried, setTried] = useState(false);
  const m = useMutation({
    mutationFn: async () => {
      const r = await inventory.createJoinToken({
        joinToken: {
          displayName: displayName.trim(),
          agentId: agentId.trim(),
          labels: labelsParsed.labels,
          ttl: ttlParsed.seconds !== undefined ? { seconds: ttlParsed.seconds, nanos: 0 } : undefined,
        },
      });
      if (!r.joinToken) throw new Error("The server answered without the join token");
      return { token: r.joinToken, secret: r.secret };
    },
    onSuccess: (c) => {
      qc.invalidateQueries({ queryKey: keys.joinTokens });
      qc.invalidateQueries({ queryKey: keys.audit });
      onCreated(c);
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const fieldErr = {
    ttl: (tried ? ttlParsed.error : undefined) ?? violationFor(err, "ttl") ?? violationFor(err, "expire_time"),
    agentId: violationFor(err, "agent_id"),
    labels: (tried ? labelsParsed.error : undefined) ?? violationFor(err, "labels"),
    displayName: violationFor(err, "display_name"),
  };
  const named = !!(fieldErr.ttl || fieldErr.agentId || fieldErr.labels || fieldErr.displayName);
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        if (ttlParsed.error || labelsParsed.error) return;
        m.mutate();
      }}
    >
      <p className="subtle" style={{ marginTop: 0 }}>
        A join token is a one-time credential: the agent trades it for its identity certificate from <code>{PLATFORM_ISSUER}</code> and shows up in
        this list. The token works once, until it expires.
      </p>
      {err && !named && <ErrorAlert error={err} title="Could not create the join token" />}
      <div className="form-grid">
        <Field label="Valid for (hours)" required error={fieldErr.ttl} hint={`1 to ${MAX_TTL_HOURS} (30 days); it works once`}>
          {(p) => <input {...p} type="number" min={1} max={MAX_TTL_HOURS} step={1} value={ttl} onChange={(e) => setTtl(e.target.value)} />}
        </Field>
        <Field label="Agent ID" error={fieldErr.agentId} hint={<>Optional; empty: derived from the host name. Becomes <code>agents/{agentId.trim() || "…"}</code></>}>
          {(p) => <input {...p} type="text" className="mono" pattern={ID_PATTERN} maxLength={63} autoComplete="off" value={agentId} onChange={(e) => setAgentId(e.target.value)} placeholder="web-01" />}
        </Field>
        <Field label="Description" error={fieldErr.displayName} className="span-2" hint="Optional; shown in the token list">
          {(p) => <input {...p} type="text" value={displayName} onChange={(e) => setDisplayName(e.target.value)} placeholder="web-01 in eu-west" />}
        </Field>
        <Field label="Labels" error={fieldErr.labels} className="span-2" hint="key=value, one per line; copied onto the agent">
          {(p) => <textarea {...p} style={{ minHeight: 60 }} spellCheck={false} value={labels} onChange={(e) => setLabels(e.target.value)} placeholder={"env=production\nregion=eu-west"} />}
        </Field>
      </div>
      <div className="form-actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending}>
          {m.isPending ? "Creating…" : "Create join token"}
        </button>
      </div>
    </form>
  );
}

/** The secret, once, with the enrol command around it. */
export function EnrollInstructions({ created, onDone }: { created: Created; onDone: () => void }) {
  const now = useNow();
  const [server, setServer] = useState(() => defaultAgentServer(typeof window === "undefined" ? "" : window.location.hostname));
  const ca = usePlatformAuthorities();
  const fingerprint = ca.data ? rootFingerprint(ca.data.authorities) : "";
  const command = enrollCommand({ server, fingerprint, secret: created.secret });
  const expires = tsDate(created.token.expireTime);
  return (
    <div className="stack" style={{ gap: 10 }}>
      <div className="alert warn" role="note" style={{ marginBottom: 0 }}>
        <strong>Shown once.</strong> Copy the command (or the token) now: certctl keeps only the token’s hash, and closing this dialog forgets it.
      </div>
      <dl className="props">
        <dt>Token</dt>
        <dd className="mono">{created.token.name}</dd>
        <dt>Valid until</dt>
        <dd>
          {expires ? (
            <>
              <RelTime at={expires} now={now} /> <span className="faint">{formatExact(expires)}</span>
            </>
          ) : (
            <span className="faint">24 hours (server default)</span>
          )}
        </dd>
        <dt>Agent ID</dt>
        <dd className="mono">{created.token.agentId ? `agents/${created.token.agentId}` : <span className="faint">from the host name</span>}</dd>
        <dt>Secret</dt>
        <dd data-testid="join-token-secret">
          <Copyable text={created.secret} label="join token secret" />
        </dd>
      </dl>
      <Field label="Agent server URL" hint="The hub’s agent port (mTLS) as the agent’s host reaches it; default port 8444">
        {(p) => <input {...p} type="url" className="mono" value={server} onChange={(e) => setServer(e.target.value)} spellCheck={false} />}
      </Field>
      {ca.isError ? (
        <ErrorAlert error={ca.error} title={`Could not read the platform CA (${PLATFORM_ISSUER}); put its root’s SHA-256 in the command yourself`} />
      ) : ca.isSuccess && !fingerprint ? (
        <div className="alert" role="alert">
          <strong>{PLATFORM_ISSUER} has no root authority.</strong> The agent cannot pin the platform CA; see <Link to="/issuers">Issuers &amp; CAs</Link>.
        </div>
      ) : null}
      <div>
        <div className="subtle" style={{ marginBottom: 4 }}>
          Run on the agent’s host {ca.isPending && <span className="faint">(loading the platform CA fingerprint…)</span>}
        </div>
        <div className="command-box">
          <pre className="command" data-testid="enroll-command">
            {command}
          </pre>
          <CopyButton text={command} label="enroll command" />
        </div>
        <p className="faint" style={{ margin: "6px 0 0" }}>
          Then start it with <code>certctl-agent run</code>. It appears in the agent list as Online within seconds.
        </p>
      </div>
      <div className="form-actions" style={{ marginTop: 4 }}>
        <button type="button" className="btn primary" onClick={onDone}>
          I have copied it, close
        </button>
      </div>
    </div>
  );
}

export function AddAgentDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
  const [created, setCreated] = useState<Created | null>(null);
  const close = () => {
    setCreated(null);
    onClose();
  };
  return (
    <Modal title={created ? "Enrol the agent" : "Add an agent"} open={open} onClose={close}>
      {created ? <EnrollInstructions created={created} onDone={close} /> : <JoinTokenForm onCreated={setCreated} onCancel={close} />}
    </Modal>
  );
}

// ---------------- join tokens ----------------

const TOKEN_BADGE = {
  used: { tone: "neutral", icon: "check", label: "Used" },
  expired: { tone: "warn", icon: "clock", label: "Expired" },
  unused: { tone: "ok", icon: "key", label: "Unused" },
} as const;

function DeleteTokenDialog({ token, onClose }: { token: JoinToken | null; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const now = useNow();
  const state = token ? joinTokenState({ redeemTime: tsDate(token.redeemTime), expireTime: tsDate(token.expireTime) }, now) : "unused";
  const m = useMutation({
    mutationFn: () => inventory.deleteJoinToken({ name: token!.name }),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: keys.joinTokens });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`${state === "unused" ? "Revoked" : "Removed"} ${token!.name}`);
      onClose();
    },
  });
  return (
    <Modal title={state === "unused" ? "Revoke join token?" : "Remove join token?"} open={!!token} onClose={onClose}>
      {token && (
        <>
          <p style={{ marginTop: 0 }}>
            {state === "unused" ? (
              <>
                Revoke <code>{token.name}</code>? No agent can enrol with it any more.
              </>
            ) : (
              <>
                Remove the record of <code>{token.name}</code>?{" "}
                {token.agent ? (
                  <>
                    The agent it enrolled (<code>{token.agent}</code>) keeps its identity; retire the agent to refuse it.
                  </>
                ) : (
                  "It has expired and cannot be used."
                )}
              </>
            )}
          </p>
          {m.error && <ErrorAlert error={m.error} title="Refused" />}
          <div className="form-actions">
            <button type="button" className="btn" onClick={onClose}>
              Cancel
            </button>
            <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
              {m.isPending ? "Working…" : state === "unused" ? "Revoke token" : "Remove token"}
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}

function JoinTokensPanel({ onAdd }: { onAdd: () => void }) {
  const now = useNow();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [deleting, setDeleting] = useState<JoinToken | null>(null);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.joinTokens, "list", token],
    queryFn: () => inventory.listJoinTokens({ pageSize: PAGE_SIZE, pageToken: token }),
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
  });
  const rows = q.data?.joinTokens ?? [];
  return (
    <section className="panel flush" aria-labelledby="tokens-h">
      <div className="panel-head">
        <h2 id="tokens-h">Join tokens</h2>
        <span className="faint">one-time credentials agents enrol with; the secret is shown only when created</span>
        <span className="spacer" />
        <button type="button" className="btn small" onClick={onAdd}>
          <Icon name="plus" /> New join token
        </button>
      </div>
      {q.isPending ? (
        <Loading what="join tokens" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list join tokens" />
        </div>
      ) : rows.length === 0 && !token ? (
        <Empty title="No join tokens">
          <p>“Add an agent” creates one and shows the command that enrols the agent.</p>
        </Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table className="data">
              <thead>
                <tr>
                  <th>State</th>
                  <th>Token</th>
                  <th>Description</th>
                  <th>Agent</th>
                  <th>Labels</th>
                  <th>Created</th>
                  <th>Expires</th>
                  <th>Used</th>
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((t) => {
                  const st = joinTokenState({ redeemTime: tsDate(t.redeemTime), expireTime: tsDate(t.expireTime) }, now);
                  const b = TOKEN_BADGE[st];
                  return (
                    <tr key={t.name} data-token={t.name}>
                      <td>
                        <span className={`badge ${b.tone}`} data-token-state={st}>
                          <Icon name={b.icon} size={12} />
                          {b.label}
                        </span>
                      </td>
                      <td className="mono">{resourceId(t.name)}</td>
                      <td className="truncate">{t.displayName || <span className="faint">—</span>}</td>
                      <td className="truncate">
                        {t.agent ? (
                          <Link className="mono" to={`/agents/${resourceId(t.agent)}`}>
                            {resourceId(t.agent)}
                          </Link>
                        ) : t.agentId ? (
                          <span className="mono" title="The id the agent will get">
                            {t.agentId} <span className="faint">(reserved)</span>
                          </span>
                        ) : (
                          <span className="faint">from host name</span>
                        )}
                      </td>
                      <td className="truncate">
                        <LabelTags labels={t.labels} />
                      </td>
                      <td>
                        <RelTime at={tsDate(t.createTime)} now={now} />
                      </td>
                      <td>
                        <RelTime at={tsDate(t.expireTime)} now={now} />
                      </td>
                      <td>
                        <RelTime at={tsDate(t.redeemTime)} now={now} />
                      </td>
                      <td style={{ textAlign: "right" }}>
                        <button type="button" className="btn small danger" onClick={() => setDeleting(t)} aria-label={`${st === "unused" ? "Revoke" : "Remove"} ${t.name}`}>
                          <Icon name="trash" /> {st === "unused" ? "Revoke" : "Remove"}
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <Pager
            stack={stack}
            nextPageToken={q.data?.nextPageToken}
            shown={rows.length}
            fetching={q.isFetching && !q.isPending}
            onPrevious={() => setStack(popPrevious)}
            onNext={() => q.data && setStack((s) => pushNext(s, q.data.nextPageToken))}
          />
        </>
      )}
      <DeleteTokenDialog token={deleting} onClose={() => setDeleting(null)} />
    </section>
  );
}

// ---------------- agent list ----------------

export function AgentsView() {
  useTitle("Agents");
  const now = useNow(5_000);
  const [params, setParams] = useSearchParams();
  const status = agentStatusFromSlug(params.get("status"));
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [adding, setAdding] = useState(false);
  const token = currentToken(stack);
  const setStatus = (s: AgentStatus) => {
    const p = new URLSearchParams();
    if (s !== AgentStatus.UNSPECIFIED) p.set("status", agentStatusSlug(s));
    setParams(p, { replace: true });
    setStack(firstPage);
  };
  const q = useQuery({
    queryKey: [...keys.agents, "list", agentStatusSlug(status), token],
    queryFn: () => inventory.listAgents({ pageSize: PAGE_SIZE, pageToken: token, status }),
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
  });
  const rows = q.data?.agents ?? [];
  const filtered = status !== AgentStatus.UNSPECIFIED;
  return (
    <>
      <div className="page-head">
        <h1>Agents</h1>
        <span className="subtle">The hosts that keep keys and deploy certificates; status refreshes every {REFRESH_MS / 1000} s</span>
        <span className="spacer" />
        {q.isFetching && !q.isPending && <span className="spinner" aria-label="Refreshing" />}
        <button type="button" className="btn primary" onClick={() => setAdding(true)}>
          <Icon name="plus" /> Add an agent
        </button>
      </div>
      <form className="filters fleet" role="search" aria-label="Agent filters" onSubmit={(e) => e.preventDefault()}>
        <Field label="Status">
          {(p) => (
            <select {...p} value={agentStatusSlug(status)} onChange={(e) => setStatus(agentStatusFromSlug(e.target.value))}>
              <option value="">Any status</option>
              {AGENT_STATUS_SLUGS.map(([slug, , label]) => (
                <option key={slug} value={slug}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <div />
        <div>
          {filtered && (
            <button type="button" className="btn" onClick={() => setStatus(AgentStatus.UNSPECIFIED)}>
              Clear filter
            </button>
          )}
        </div>
      </form>
      {q.isError && <ErrorAlert error={q.error} title="Could not list agents" />}
      <section className="panel flush" aria-label="Agents" style={{ marginBottom: 12 }}>
        {q.isPending ? (
          <Loading what="agents" />
        ) : q.isSuccess && rows.length === 0 && !token ? (
          <Empty title={filtered ? "No agents in this status" : "No agents yet"}>
            {filtered ? (
              <p>Clear the filter to see every agent.</p>
            ) : (
              <>
                <p>Create a join token, then run the command it shows on the host.</p>
                <button type="button" className="btn primary" onClick={() => setAdding(true)}>
                  <Icon name="plus" /> Add an agent
                </button>
              </>
            )}
          </Empty>
        ) : (
          <>
            <div className="table-wrap">
              <table className="data">
                <thead>
                  <tr>
                    <th>Status</th>
                    <th>Agent</th>
                    <th>Host</th>
                    <th>Version</th>
                    <th>Target types</th>
                    <th>Last seen</th>
                    <th>Hub</th>
                    <th>Identity expires</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((a) => (
                    <tr key={a.name} data-agent={a.name}>
                      <td>
                        <AgentStatusBadge status={a.status} />
                      </td>
                      <td className="truncate">
                        <Link to={`/agents/${resourceId(a.name)}`}>{a.displayName || resourceId(a.name)}</Link>
                        {a.displayName && a.displayName !== resourceId(a.name) && <span className="faint mono"> {resourceId(a.name)}</span>}
                      </td>
                      <td className="mono truncate">{a.hostname || <span className="faint">—</span>}</td>
                      <td className="mono">{a.version || <span className="faint">—</span>}</td>
                      <td className="truncate">
                        <Capabilities agent={a} />
                      </td>
                      <td>
                        <LastSeen agent={a} now={now} />
                      </td>
                      <td className="mono truncate narrow" title={a.hub || undefined}>
                        {a.hub || <span className="faint">—</span>}
                      </td>
                      <td>{a.identityExpireTime ? <Expiry at={tsDate(a.identityExpireTime)} now={now} /> : <span className="faint">no identity</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <Pager
              stack={stack}
              nextPageToken={q.data?.nextPageToken}
              shown={rows.length}
              fetching={q.isFetching && !q.isPending}
              onPrevious={() => setStack(popPrevious)}
              onNext={() => q.data && setStack((s) => pushNext(s, q.data.nextPageToken))}
            />
          </>
        )}
      </section>
      <JoinTokensPanel onAdd={() => setAdding(true)} />
      <AddAgentDialog open={adding} onClose={() => setAdding(false)} />
    </>
  );
}

// ---------------- one agent ----------------

function RetireDialog({ agent, open, onClose }: { agent: Agent; open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => inventory.retireAgent({ name: agent.name }),
    onSuccess: (r) => {
      if (r.agent) qc.setQueryData(keys.agent(agent.name), { agent: r.agent });
      qc.invalidateQueries({ queryKey: keys.agents });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Retired ${agent.name}`);
      onClose();
    },
  });
  return (
    <Modal title={`Retire ${agent.displayName || resourceId(agent.name)}?`} open={open} onClose={onClose}>
      <p style={{ marginTop: 0 }}>
        Retire <code>{agent.name}</code>
        {agent.hostname ? (
          <>
            {" "}
            on <code>{agent.hostname}</code>
          </>
        ) : null}
        ? <strong>Its identity is refused from now on</strong>: the hub turns the agent away when it next connects, and its heartbeats no longer
        count. This cannot be undone. Its targets keep pointing at it until you change them; to bring the host back, enrol it again with a new join
        token.
      </p>
      {m.error && <ErrorAlert error={m.error} title="Retire refused" />}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
          {m.isPending ? "Retiring…" : "Retire agent"}
        </button>
      </div>
    </Modal>
  );
}

function EditAgentDialog({ agent, open, onClose }: { agent: Agent; open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const [displayName, setDisplayName] = useState(agent.displayName);
  const [labels, setLabels] = useState(formatLabels(agent.labels));
  const parsed = parseLabels(labels);
  const mask = [
    ...(displayName !== agent.displayName ? ["display_name"] : []),
    ...(labels !== formatLabels(agent.labels) ? ["labels"] : []),
  ];
  const m = useMutation({
    mutationFn: () => inventory.updateAgent({ agent: { name: agent.name, displayName, labels: parsed.labels }, updateMask: { paths: mask } }),
    onSuccess: (r) => {
      if (r.agent) qc.setQueryData(keys.agent(agent.name), { agent: r.agent });
      qc.invalidateQueries({ queryKey: keys.agents });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Saved ${agent.name}`);
      onClose();
    },
  });
  const err = m.error ? toApiError(m.error) : undefined;
  const labelsErr = parsed.error ?? violationFor(err, "labels");
  const nameErr = violationFor(err, "display_name");
  return (
    <Modal title={`Edit ${agent.name}`} open={open} onClose={onClose}>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!parsed.error) m.mutate();
        }}
      >
        {err && !labelsErr && !nameErr && <ErrorAlert error={err} />}
        <div className="form-grid">
          <Field label="Display name" error={nameErr} className="span-2">
            {(p) => <input {...p} type="text" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />}
          </Field>
          <Field label="Labels" error={labelsErr} className="span-2" hint="key=value, one per line">
            {(p) => <textarea {...p} style={{ minHeight: 60 }} spellCheck={false} value={labels} onChange={(e) => setLabels(e.target.value)} />}
          </Field>
        </div>
        <div className="form-actions">
          <span className="subtle" style={{ marginRight: "auto", alignSelf: "center" }}>
            {mask.length ? `Will update: ${mask.join(", ")}` : "No changes yet"}
          </span>
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn primary" disabled={m.isPending || mask.length === 0}>
            {m.isPending ? "Saving…" : "Save changes"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function DeleteAgentDialog({ agent, open, onClose }: { agent: Agent; open: boolean; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const navigate = useNavigate();
  const m = useMutation({
    mutationFn: () => inventory.deleteAgent({ name: agent.name }),
    onSuccess: () => {
      qc.removeQueries({ queryKey: keys.agent(agent.name) });
      qc.invalidateQueries({ queryKey: keys.agents });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Deleted ${agent.name}`);
      navigate("/agents");
    },
  });
  return (
    <Modal title={`Delete ${agent.name}?`} open={open} onClose={onClose}>
      <p style={{ marginTop: 0 }}>
        Delete the record of <code>{agent.name}</code>? Targets that point at it keep the name until changed.{" "}
        {agent.status !== AgentStatus.RETIRED && "Retire it first if its host should not connect again."}
      </p>
      {m.error && <ErrorAlert error={m.error} title="Delete refused" />}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
          {m.isPending ? "Deleting…" : "Delete agent"}
        </button>
      </div>
    </Modal>
  );
}

function AgentTargets({ agent }: { agent: Agent }) {
  const [stack, setStack] = useState<PageStack>(firstPage);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.targets, "agent", agent.name, token],
    queryFn: () => inventory.listTargets({ agent: agent.name, pageSize: PAGE_SIZE, pageToken: token }),
    placeholderData: keepPreviousData,
  });
  const rows = q.data?.targets ?? [];
  const caps = new Set(agent.capabilities);
  return (
    <section className="panel flush" aria-labelledby="agent-targets-h">
      <div className="panel-head">
        <h2 id="agent-targets-h">Targets</h2>
        <span className="faint">where this agent deploys</span>
        <span className="spacer" />
        <Link to="/targets">All targets →</Link>
      </div>
      {q.isPending ? (
        <Loading what="targets" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list this agent's targets" />
        </div>
      ) : rows.length === 0 && !token ? (
        <Empty title="No targets point at this agent">
          <p>
            Create a target under <Link to="/targets">Targets</Link> and choose this agent.
          </p>
        </Empty>
      ) : (
        <>
          <table className="data">
            <thead>
              <tr>
                <th>Target</th>
                <th>Kind</th>
                <th>Where</th>
                <th>Labels</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.name}>
                  <td className="truncate">
                    <span className="mono">{resourceId(t.name)}</span> {t.displayName && <span className="faint">{t.displayName}</span>}
                  </td>
                  <td>
                    {targetKindLabel(t)}{" "}
                    {t.config.case && caps.size > 0 && !caps.has(t.config.case) && (
                      <span className="badge warn" title={`The agent reported target types ${agent.capabilities.join(", ")}`}>
                        <Icon name="alert" size={12} /> not supported by this agent
                      </span>
                    )}
                  </td>
                  <td className="mono truncate">{targetWhere(t) || "—"}</td>
                  <td className="truncate">
                    <LabelTags labels={t.labels} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Pager
            stack={stack}
            nextPageToken={q.data?.nextPageToken}
            shown={rows.length}
            fetching={q.isFetching && !q.isPending}
            onPrevious={() => setStack(popPrevious)}
            onNext={() => q.data && setStack((s) => pushNext(s, q.data.nextPageToken))}
          />
        </>
      )}
    </section>
  );
}

function AgentAudit({ name }: { name: string }) {
  const q = useQuery({ queryKey: [...keys.audit, "resource", name], queryFn: () => audit.listAuditEvents({ resource: name, pageSize: 50 }) });
  return (
    <section className="panel flush" aria-labelledby="agent-history-h">
      <div className="panel-head">
        <h2 id="agent-history-h">Audit history</h2>
        <span className="spacer" />
        <Link to={`/audit?resource=${encodeURIComponent(name)}`}>Open in audit trail →</Link>
      </div>
      {q.isPending ? (
        <Loading what="audit history" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not load the audit history" />
        </div>
      ) : q.data.auditEvents.length === 0 ? (
        <Empty title="No audit events for this agent" />
      ) : (
        <AuditTable events={q.data.auditEvents} />
      )}
    </section>
  );
}

export function AgentDetail() {
  const { id = "" } = useParams();
  const name = `agents/${id}`;
  useTitle(name);
  const now = useNow(5_000);
  const [dialog, setDialog] = useState<"retire" | "edit" | "delete" | null>(null);
  const q = useQuery({ queryKey: keys.agent(name), queryFn: () => inventory.getAgent({ name }), refetchInterval: REFRESH_MS });
  const a = q.data?.agent;
  const labels = useMemo(() => Object.entries(a?.labels ?? {}), [a]);
  const head = (
    <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
      <Link to="/agents">Agents</Link> / {id}
    </nav>
  );
  if (q.isPending) return <Loading what={name} />;
  if (q.isError)
    return (
      <>
        {head}
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
        <Link to="/agents">← Back to agents</Link>
      </>
    );
  if (!a) return <Empty title="The server returned no agent" />;
  const retired = a.status === AgentStatus.RETIRED || !!a.retireTime;
  const close = () => setDialog(null);
  return (
    <>
      {head}
      <div className="page-head">
        <h1>{a.displayName || id}</h1>
        <AgentStatusBadge status={a.status} />
        <span className="subtle">
          last seen <LastSeen agent={a} now={now} />
        </span>
        <span className="spacer" />
        <button type="button" className="btn" onClick={() => setDialog("edit")}>
          <Icon name="edit" /> Edit
        </button>
        {!retired && (
          <button type="button" className="btn danger" onClick={() => setDialog("retire")}>
            <Icon name="ban" /> Retire
          </button>
        )}
        <button type="button" className="btn danger" onClick={() => setDialog("delete")} aria-label="Delete agent">
          <Icon name="trash" /> Delete
        </button>
      </div>
      <div className="grid-2" style={{ marginBottom: 12 }}>
        <section className="panel" aria-labelledby="agent-h">
          <h2 id="agent-h">Agent</h2>
          <dl className="props">
            <dt>Name</dt>
            <dd>
              <Copyable text={a.name} label="resource name" />
            </dd>
            <dt>Host</dt>
            <dd className="mono">{a.hostname || "—"}</dd>
            <dt>Version</dt>
            <dd className="mono">{a.version || <span className="faint">not reported</span>}</dd>
            <dt>Target types</dt>
            <dd>
              <Capabilities agent={a} />
            </dd>
            <dt>Hub</dt>
            <dd className="mono">{a.hub || <span className="faint">—</span>}</dd>
            <dt>Labels</dt>
            <dd>{labels.length ? labels.map(([k, v]) => <span className="tag" key={k}>{`${k}=${v}`}</span>) : <span className="faint">—</span>}</dd>
            <dt>Created</dt>
            <dd>
              <RelTime at={tsDate(a.createTime)} now={now} />
            </dd>
            {a.retireTime && (
              <>
                <dt>Retired</dt>
                <dd>
                  <RelTime at={tsDate(a.retireTime)} now={now} /> <span className="faint">{formatExact(tsDate(a.retireTime)!)}</span>
                </dd>
              </>
            )}
          </dl>
        </section>
        <section className="panel" aria-labelledby="identity-h">
          <h2 id="identity-h">Identity</h2>
          {a.identitySerial || a.identityExpireTime ? (
            <dl className="props">
              <dt>Serial number</dt>
              <dd>
                <Copyable text={a.identitySerial} label="identity serial number" />
              </dd>
              <dt>Expires</dt>
              <dd data-testid="identity-expiry">
                <Expiry at={tsDate(a.identityExpireTime)} now={now} />{" "}
                <span className="faint">{a.identityExpireTime ? formatExact(tsDate(a.identityExpireTime)!) : ""}</span>
              </dd>
              <dt>Issued by</dt>
              <dd className="mono">
                <Link to="/issuers">{PLATFORM_ISSUER}</Link>
              </dd>
              <dt>Accepted</dt>
              <dd>{retired ? <span className="badge neutral"><Icon name="ban" size={12} /> Refused: retired</span> : <span className="subtle">Yes; the agent renews it before it expires</span>}</dd>
            </dl>
          ) : (
            <Empty title="No identity recorded">
              <p>The agent has not enrolled with a join token, so it cannot connect.</p>
            </Empty>
          )}
        </section>
      </div>
      <div className="stack">
        <AgentTargets agent={a} />
        <AgentAudit name={a.name} />
      </div>
      <RetireDialog agent={a} open={dialog === "retire"} onClose={close} />
      {dialog === "edit" && <EditAgentDialog agent={a} open onClose={close} />}
      <DeleteAgentDialog agent={a} open={dialog === "delete"} onClose={close} />
    </>
  );
}
