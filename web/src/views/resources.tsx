// Owners, teams, targets and renewal policies share one list/create/edit/delete page
// (agents have their own view: they enrol with a join token).
import { useEffect, useState, type ReactNode } from "react";
import { Link } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { inventory } from "../api/client";
import { keys, labelFor, useAllAgents, useAllTeams } from "../api/queries";
import { toApiError, violationFor, type ApiError } from "../api/errors";
import { Empty, ErrorAlert } from "../components/states";
import { RelTime, tsDate, useNow } from "../components/time";
import { Pager } from "../components/Pager";
import { Field } from "../components/Field";
import { Modal } from "../components/Modal";
import { Icon } from "../components/Icon";
import { useToast } from "../components/Toasts";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { ID_PATTERN, resourceId, suggestId } from "../lib/names";
import { formatLabels, parseLabels } from "../lib/form";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Owner, RenewalPolicy, Target, Team } from "../gen/certctl/inventory/v1/inventory_pb";
import { useTitle } from "../lib/useTitle";
import { SERVER_KINDS, TARGET_KINDS, isServerCase, targetKindLabel, targetWhere } from "../lib/targets";

type Values = Record<string, string>;

interface FieldSpec {
  /** Proto field path, also the key in Values and the match for API field violations. */
  key: string;
  label: string;
  kind?: "text" | "email" | "number" | "textarea" | "select";
  options?: { value: string; label: string }[];
  hint?: ReactNode;
  required?: boolean;
  placeholder?: string;
  /** Show only when this returns true (for oneof configs). */
  when?: (v: Values) => boolean;
  span?: boolean;
}

interface Base {
  name: string;
  displayName: string;
  createTime?: Timestamp;
  updateTime?: Timestamp;
}

interface ResourceConfig<T extends Base> {
  title: string;
  noun: string;
  collection: string;
  queryKey: readonly string[];
  list: (pageToken: string) => Promise<{ items: T[]; next: string }>;
  columns: { header: string; cell: (item: T) => ReactNode }[];
  fields: FieldSpec[];
  toValues: (item: T | undefined) => Values;
  create: (id: string, v: Values) => Promise<unknown>;
  update: (name: string, v: Values, mask: string[]) => Promise<unknown>;
  remove: (name: string) => Promise<unknown>;
  /** Mask paths from changed value keys (defaults to the keys themselves). */
  maskFor?: (changed: string[], before: Values, after: Values) => string[];
  empty: ReactNode;
  deleteNote?: string;
}

function ResourceForm<T extends Base>({
  cfg,
  item,
  onDone,
  onCancel,
}: {
  cfg: ResourceConfig<T>;
  item?: T;
  onDone: () => void;
  onCancel: () => void;
}) {
  const initial = cfg.toValues(item);
  const [v, setV] = useState<Values>(initial);
  const [id, setId] = useState("");
  const [idTouched, setIdTouched] = useState(false);
  const qc = useQueryClient();
  const toast = useToast();
  useEffect(() => {
    if (!item && !idTouched) setId(suggestId(v.display_name ?? ""));
  }, [v.display_name, idTouched, item]);
  const changed = Object.keys(v).filter((k) => v[k] !== initial[k]);
  const mask = cfg.maskFor ? cfg.maskFor(changed, initial, v) : changed;
  const m = useMutation({
    mutationFn: () => (item ? cfg.update(item.name, v, mask) : cfg.create(id.trim(), v)),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: cfg.queryKey });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(item ? `Saved ${item.name}` : `Created ${cfg.collection}/${id.trim()}`);
      onDone();
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const idKey = `${cfg.noun.toLowerCase().replace(/ /g, "_")}_id`;
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      {err && <ErrorAlert error={err} />}
      <div className="form-grid">
        {!item && (
          <Field label="ID" required error={violationFor(err, idKey)} hint={<>Becomes <code>{cfg.collection}/{id || "…"}</code></>}>
            {(p) => (
              <input
                {...p}
                type="text"
                pattern={ID_PATTERN}
                maxLength={63}
                value={id}
                autoComplete="off"
                onChange={(e) => {
                  setIdTouched(true);
                  setId(e.target.value);
                }}
              />
            )}
          </Field>
        )}
        {cfg.fields
          .filter((f) => !f.when || f.when(v))
          .map((f) => (
            <Field key={f.key} label={f.label} required={f.required} hint={f.hint} error={violationFor(err, f.key.replace(/^web\./, `${v.kind ?? "nginx"}.`))} className={f.span || f.kind === "textarea" ? "span-2" : undefined}>
              {(p) =>
                f.kind === "select" ? (
                  <select {...p} value={v[f.key] ?? ""} onChange={(e) => setV({ ...v, [f.key]: e.target.value })}>
                    {f.options?.map((o) => (
                      <option key={o.value} value={o.value}>
                        {o.label}
                      </option>
                    ))}
                  </select>
                ) : f.kind === "textarea" ? (
                  <textarea {...p} style={{ minHeight: 60 }} value={v[f.key] ?? ""} placeholder={f.placeholder} onChange={(e) => setV({ ...v, [f.key]: e.target.value })} spellCheck={false} />
                ) : (
                  <input {...p} type={f.kind ?? "text"} value={v[f.key] ?? ""} placeholder={f.placeholder} onChange={(e) => setV({ ...v, [f.key]: e.target.value })} />
                )
              }
            </Field>
          ))}
      </div>
      <div className="form-actions">
        {item && <span className="subtle" style={{ marginRight: "auto", alignSelf: "center" }}>{mask.length ? `Will update: ${mask.join(", ")}` : "No changes yet"}</span>}
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending || (!!item && mask.length === 0)}>
          {m.isPending ? "Saving…" : item ? "Save changes" : `Create ${cfg.noun.toLowerCase()}`}
        </button>
      </div>
    </form>
  );
}

function DeleteConfirm<T extends Base>({ cfg, item, onClose }: { cfg: ResourceConfig<T>; item: T; onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => cfg.remove(item.name),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: cfg.queryKey });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Deleted ${item.name}`);
      onClose();
    },
  });
  return (
    <>
      <p style={{ marginTop: 0 }}>
        Delete <code>{item.name}</code>
        {item.displayName ? ` (${item.displayName})` : ""}? {cfg.deleteNote}
      </p>
      {m.error && <ErrorAlert error={m.error} title="Delete refused" />}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
          {m.isPending ? "Deleting…" : `Delete ${cfg.noun.toLowerCase()}`}
        </button>
      </div>
    </>
  );
}

function ResourcePage<T extends Base>({ cfg }: { cfg: ResourceConfig<T> }) {
  useTitle(cfg.title);
  const now = useNow();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [dialog, setDialog] = useState<{ mode: "create" } | { mode: "edit"; item: T } | { mode: "delete"; item: T } | null>(null);
  const token = currentToken(stack);
  const q = useQuery({ queryKey: [...cfg.queryKey, "page", token], queryFn: () => cfg.list(token), placeholderData: keepPreviousData });
  const items = q.data?.items ?? [];
  const close = () => setDialog(null);
  return (
    <>
      <div className="page-head">
        <h1>{cfg.title}</h1>
        <span className="spacer" />
        <button type="button" className="btn primary" onClick={() => setDialog({ mode: "create" })}>
          <Icon name="plus" /> New {cfg.noun.toLowerCase()}
        </button>
      </div>
      {q.isError && <ErrorAlert error={q.error} title={`Could not list ${cfg.title.toLowerCase()}`} />}
      <section className="panel flush" aria-label={cfg.title}>
        {q.isPending ? (
          <div className="loading" role="status">
            <span className="spinner" aria-hidden="true" /> Loading {cfg.title.toLowerCase()}…
          </div>
        ) : q.isSuccess && items.length === 0 && !currentToken(stack) ? (
          <Empty title={`No ${cfg.title.toLowerCase()} yet`}>{cfg.empty}</Empty>
        ) : (
          <div className="table-wrap">
            <table className="data">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Display name</th>
                  {cfg.columns.map((c) => (
                    <th key={c.header}>{c.header}</th>
                  ))}
                  <th>Updated</th>
                  <th>
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {items.map((it) => (
                  <tr key={it.name}>
                    <td className="mono">{it.name}</td>
                    <td className="truncate">{it.displayName || <span className="faint">—</span>}</td>
                    {cfg.columns.map((c) => (
                      <td key={c.header} className="truncate">
                        {c.cell(it)}
                      </td>
                    ))}
                    <td>
                      <RelTime at={tsDate(it.updateTime ?? it.createTime)} now={now} />
                    </td>
                    <td style={{ textAlign: "right" }}>
                      <button type="button" className="btn small" onClick={() => setDialog({ mode: "edit", item: it })} aria-label={`Edit ${it.name}`}>
                        <Icon name="edit" /> Edit
                      </button>{" "}
                      <button type="button" className="btn small danger" onClick={() => setDialog({ mode: "delete", item: it })} aria-label={`Delete ${it.name}`}>
                        <Icon name="trash" />
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager
          stack={stack}
          nextPageToken={q.data?.next}
          shown={items.length}
          fetching={q.isFetching && !q.isPending}
          onPrevious={() => setStack(popPrevious)}
          onNext={() => q.data && setStack((s) => pushNext(s, q.data.next))}
        />
      </section>
      <Modal
        open={dialog !== null}
        onClose={close}
        title={dialog?.mode === "create" ? `New ${cfg.noun.toLowerCase()}` : dialog?.mode === "edit" ? `Edit ${dialog.item.name}` : dialog?.mode === "delete" ? `Delete ${cfg.noun.toLowerCase()}` : ""}
      >
        {dialog?.mode === "create" && <ResourceForm cfg={cfg} onDone={close} onCancel={close} />}
        {dialog?.mode === "edit" && <ResourceForm key={dialog.item.name} cfg={cfg} item={dialog.item} onDone={close} onCancel={close} />}
        {dialog?.mode === "delete" && <DeleteConfirm cfg={cfg} item={dialog.item} onClose={close} />}
      </Modal>
    </>
  );
}

function certLink(param: string, name: string) {
  return <Link to={`/certificates?${param}=${encodeURIComponent(resourceId(name))}`}>certificates</Link>;
}

function labelsCell(labels: Record<string, string>) {
  const e = Object.entries(labels);
  return e.length ? e.map(([k, v]) => <span className="tag" key={k}>{`${k}=${v}`}</span>) : <span className="faint">—</span>;
}

function parseLabelsOrThrow(text: string): Record<string, string> {
  const r = parseLabels(text);
  if (r.error) throw new Error(`Labels: ${r.error}`);
  return r.labels;
}

// ---------------- owners ----------------

export function OwnersView() {
  const teams = useAllTeams();
  const cfg: ResourceConfig<Owner> = {
    title: "Owners",
    noun: "Owner",
    collection: "owners",
    queryKey: keys.owners,
    list: async (pageToken) => {
      const r = await inventory.listOwners({ pageSize: 50, pageToken });
      return { items: r.owners, next: r.nextPageToken };
    },
    columns: [
      { header: "Email", cell: (o) => (o.email ? <a href={`mailto:${o.email}`}>{o.email}</a> : <span className="faint">—</span>) },
      { header: "Team", cell: (o) => (o.team ? labelFor(teams.data, o.team) : <span className="faint">—</span>) },
      { header: "Certificates", cell: (o) => certLink("owner", o.name) },
    ],
    fields: [
      { key: "display_name", label: "Display name", required: true, placeholder: "Alice Example" },
      { key: "email", label: "Email", kind: "email", placeholder: "alice@example.com" },
      {
        key: "team",
        label: "Team",
        kind: "select",
        options: [{ value: "", label: "None" }, ...(teams.data ?? []).map((t) => ({ value: t.name, label: t.displayName || t.name }))],
      },
    ],
    toValues: (o) => ({ display_name: o?.displayName ?? "", email: o?.email ?? "", team: o?.team ?? "" }),
    create: (id, v) => inventory.createOwner({ ownerId: id, owner: { displayName: v.display_name, email: v.email, team: v.team } }),
    update: (name, v, mask) => inventory.updateOwner({ owner: { name, displayName: v.display_name, email: v.email, team: v.team }, updateMask: { paths: mask } }),
    remove: (name) => inventory.deleteOwner({ name }),
    empty: <p>Create an owner so every certificate has someone who answers for it.</p>,
    deleteNote: "Certificates owned by it keep the name until reassigned.",
  };
  return <ResourcePage cfg={cfg} />;
}

// ---------------- teams ----------------

export function TeamsView() {
  const cfg: ResourceConfig<Team> = {
    title: "Teams",
    noun: "Team",
    collection: "teams",
    queryKey: keys.teams,
    list: async (pageToken) => {
      const r = await inventory.listTeams({ pageSize: 50, pageToken });
      return { items: r.teams, next: r.nextPageToken };
    },
    columns: [
      { header: "Email", cell: (t) => (t.email ? <a href={`mailto:${t.email}`}>{t.email}</a> : <span className="faint">—</span>) },
      { header: "Certificates", cell: (t) => certLink("team", t.name) },
    ],
    fields: [
      { key: "display_name", label: "Display name", required: true, placeholder: "Platform" },
      { key: "email", label: "Email", kind: "email", placeholder: "platform@example.com" },
    ],
    toValues: (t) => ({ display_name: t?.displayName ?? "", email: t?.email ?? "" }),
    create: (id, v) => inventory.createTeam({ teamId: id, team: { displayName: v.display_name, email: v.email } }),
    update: (name, v, mask) => inventory.updateTeam({ team: { name, displayName: v.display_name, email: v.email }, updateMask: { paths: mask } }),
    remove: (name) => inventory.deleteTeam({ name }),
    empty: <p>Create a team to group owners and certificates.</p>,
  };
  return <ResourcePage cfg={cfg} />;
}

// ---------------- targets ----------------

const isFile = (v: Values) => v.kind === "file";

// Each server type gets its own set of the shared fields, with its own paths, defaults and checks.
const serverFields: FieldSpec[] = SERVER_KINDS.flatMap(({ value, server: s }) => {
  const when = (v: Values) => v.kind === value;
  return [
    { key: "web.certificate_path", label: "Certificate path", required: true, when, placeholder: s.certificatePath, hint: s.certificateHint },
    {
      key: "web.key_path",
      label: "Key path",
      required: !s.keyOptional,
      when,
      placeholder: s.keyPath,
      hint: s.keyOptional ? "Optional: empty puts the key into the certificate file" : undefined,
    },
    { key: "web.verify_host", label: "Verify host", when, placeholder: "127.0.0.1", hint: "Endpoint checked after a deploy" },
    { key: "web.verify_port", label: "Verify port", kind: "number", when, placeholder: String(s.verifyPort), hint: s.verifyHint },
    { key: "web.verify_server_name", label: "Verify server name (SNI)", when, placeholder: "www.example.com" },
    { key: "web.validate_command", label: "Validate command", when, placeholder: s.validate, hint: `Checks the configuration after the files are written; empty: ${s.validate}` },
    { key: "web.reload_command", label: "Reload command", when, placeholder: s.reload, hint: `Loads the new files; empty: ${s.reload}` },
  ] satisfies FieldSpec[];
});

function targetConfig(v: Values): Target["config"] {
  if (v.kind === "file") {
    return {
      case: "file",
      value: {
        $typeName: "certctl.inventory.v1.FileTargetConfig",
        directory: v["file.directory"] ?? "",
        mode: v["file.mode"] ?? "",
        owner: v["file.owner"] ?? "",
        group: v["file.group"] ?? "",
        postDeployCommand: v["file.post_deploy_command"] ?? "",
      },
    };
  }
  const kind = isServerCase(v.kind) ? v.kind : "nginx";
  return {
    case: kind,
    value: {
      $typeName: "certctl.inventory.v1.WebServerTargetConfig",
      certificatePath: v["web.certificate_path"] ?? "",
      keyPath: v["web.key_path"] ?? "",
      verifyHost: v["web.verify_host"] ?? "",
      verifyPort: Number(v["web.verify_port"] || 0),
      verifyServerName: v["web.verify_server_name"] ?? "",
      validateCommand: v["web.validate_command"] ?? "",
      reloadCommand: v["web.reload_command"] ?? "",
    },
  };
}

export function TargetsView() {
  const agents = useAllAgents();
  const cfg: ResourceConfig<Target> = {
    title: "Targets",
    noun: "Target",
    collection: "targets",
    queryKey: keys.targets,
    list: async (pageToken) => {
      const r = await inventory.listTargets({ pageSize: 50, pageToken });
      return { items: r.targets, next: r.nextPageToken };
    },
    columns: [
      { header: "Kind", cell: targetKindLabel },
      { header: "Where", cell: (t) => <span className="mono">{targetWhere(t) || "—"}</span> },
      { header: "Agent", cell: (t) => (t.agent ? <Link to={`/agents/${resourceId(t.agent)}`}>{labelFor(agents.data, t.agent)}</Link> : <span className="faint">none</span>) },
      { header: "Labels", cell: (t) => labelsCell(t.labels) },
    ],
    fields: [
      { key: "display_name", label: "Display name", required: true, placeholder: "web-01 nginx" },
      {
        key: "agent",
        label: "Agent",
        kind: "select",
        hint: "The agent that deploys to this target",
        options: [{ value: "", label: "None" }, ...(agents.data ?? []).map((a) => ({ value: a.name, label: a.displayName || a.name }))],
      },
      { key: "kind", label: "Kind", kind: "select", options: TARGET_KINDS },
      { key: "file.directory", label: "Directory", required: true, when: isFile, placeholder: "/etc/ssl/certctl" },
      { key: "file.mode", label: "File mode", when: isFile, placeholder: "0644", hint: "Octal" },
      { key: "file.owner", label: "File owner", when: isFile, placeholder: "root" },
      { key: "file.group", label: "File group", when: isFile, placeholder: "root" },
      { key: "file.post_deploy_command", label: "Post-deploy command", when: isFile, span: true, placeholder: "systemctl reload myapp" },
      ...serverFields,
      { key: "labels", label: "Labels", kind: "textarea", hint: "key=value, one per line" },
    ],
    toValues: (t) => {
      const v: Values = { display_name: t?.displayName ?? "", agent: t?.agent ?? "", kind: t?.config.case ?? "file", labels: formatLabels(t?.labels ?? {}) };
      const c = t?.config;
      if (c?.case === "file") {
        Object.assign(v, {
          "file.directory": c.value.directory,
          "file.mode": c.value.mode,
          "file.owner": c.value.owner,
          "file.group": c.value.group,
          "file.post_deploy_command": c.value.postDeployCommand,
        });
      } else if (c?.case) {
        Object.assign(v, {
          "web.certificate_path": c.value.certificatePath,
          "web.key_path": c.value.keyPath,
          "web.verify_host": c.value.verifyHost,
          "web.verify_port": c.value.verifyPort ? String(c.value.verifyPort) : "",
          "web.verify_server_name": c.value.verifyServerName,
          "web.validate_command": c.value.validateCommand,
          "web.reload_command": c.value.reloadCommand,
        });
      }
      return v;
    },
    // Config fields live in a oneof: the mask names the chosen case (and the old one when it changes).
    maskFor: (changed, before, after) => {
      const out = new Set<string>();
      for (const k of changed) {
        if (k === "kind" || k.startsWith("file.") || k.startsWith("web.")) {
          out.add(after.kind ?? "file");
          if (k === "kind" && before.kind) out.add(before.kind);
        } else out.add(k);
      }
      return [...out];
    },
    create: (id, v) =>
      inventory.createTarget({
        targetId: id,
        target: { displayName: v.display_name, agent: v.agent, labels: parseLabelsOrThrow(v.labels ?? ""), config: targetConfig(v) },
      }),
    update: (name, v, mask) =>
      inventory.updateTarget({
        target: { name, displayName: v.display_name, agent: v.agent, labels: parseLabelsOrThrow(v.labels ?? ""), config: targetConfig(v) },
        updateMask: { paths: mask },
      }),
    remove: (name) => inventory.deleteTarget({ name }),
    empty: <p>Create a target for each place a certificate is deployed: a directory, or a web server (nginx, Apache, HAProxy, Caddy, lighttpd) or mail server (Postfix, Dovecot).</p>,
  };
  return <ResourcePage cfg={cfg} />;
}

// ---------------- renewal policies ----------------

const DAY_S = 86_400n;

function formatDays(p: RenewalPolicy): string {
  return p.alertThresholdDays.length ? p.alertThresholdDays.join(", ") : "default (30, 14, 7, 0)";
}

function renewBeforeDays(p: RenewalPolicy | undefined): string {
  if (!p?.renewBefore) return "";
  const s = p.renewBefore.seconds;
  return s % DAY_S === 0n ? String(s / DAY_S) : (Number(s) / 86_400).toFixed(2);
}

function policyInit(v: Values) {
  const days = (v.alert_threshold_days ?? "")
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((d) => {
      const n = Number(d);
      if (!Number.isInteger(n)) throw new Error(`Alert thresholds: “${d}” is not a whole number of days`);
      return n;
    });
  const rb = (v.renew_before ?? "").trim();
  const rbDays = rb ? Number(rb) : NaN;
  if (rb && Number.isNaN(rbDays)) throw new Error(`Renew before: “${rb}” is not a number of days`);
  return {
    displayName: v.display_name,
    alertThresholdDays: days,
    renewBeforeLifetimeFraction: v.renew_before_lifetime_fraction ? Number(v.renew_before_lifetime_fraction) : 0,
    renewBefore: rb ? { seconds: BigInt(Math.round(rbDays * 86_400)), nanos: 0 } : undefined,
  };
}

export function RenewalPoliciesView() {
  const cfg: ResourceConfig<RenewalPolicy> = {
    title: "Renewal policies",
    noun: "Renewal policy",
    collection: "renewalPolicies",
    queryKey: keys.policies,
    list: async (pageToken) => {
      const r = await inventory.listRenewalPolicies({ pageSize: 50, pageToken });
      return { items: r.renewalPolicies, next: r.nextPageToken };
    },
    columns: [
      { header: "Alerts at (days)", cell: formatDays },
      { header: "Renew at lifetime left", cell: (p) => (p.renewBeforeLifetimeFraction ? `${Math.round(p.renewBeforeLifetimeFraction * 100)}%` : <span className="faint">—</span>) },
      { header: "Renew before", cell: (p) => (p.renewBefore ? `${renewBeforeDays(p)} days` : <span className="faint">—</span>) },
    ],
    fields: [
      { key: "display_name", label: "Display name", required: true, placeholder: "Short-lived web certificates" },
      { key: "alert_threshold_days", label: "Alert thresholds (days before expiry)", placeholder: "30, 14, 7, 0", hint: "Empty means the default 30, 14, 7, 0" },
      { key: "renew_before_lifetime_fraction", label: "Renew when this fraction of lifetime remains", kind: "number", placeholder: "0.33", hint: "Between 0 and 1; empty for none" },
      { key: "renew_before", label: "Renew this many days before expiry", kind: "number", placeholder: "30", hint: "Empty for no fixed lead time" },
    ],
    toValues: (p) => ({
      display_name: p?.displayName ?? "",
      alert_threshold_days: p?.alertThresholdDays.join(", ") ?? "",
      renew_before_lifetime_fraction: p?.renewBeforeLifetimeFraction ? String(p.renewBeforeLifetimeFraction) : "",
      renew_before: renewBeforeDays(p),
    }),
    create: (id, v) => inventory.createRenewalPolicy({ renewalPolicyId: id, renewalPolicy: policyInit(v) }),
    update: (name, v, mask) => inventory.updateRenewalPolicy({ renewalPolicy: { name, ...policyInit(v) }, updateMask: { paths: mask } }),
    remove: (name) => inventory.deleteRenewalPolicy({ name }),
    empty: <p>Without a policy, certificates alert at 30, 14, 7 and 0 days. Create one to change when they alert and renew.</p>,
  };
  return <ResourcePage cfg={cfg} />;
}
