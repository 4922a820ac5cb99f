// Certificate policies: rules the certificates a selector picks must keep,
// with their violation counts; one policy with its violations; the create/edit
// form (each rule kind with its own fields, the API's violations under the
// field they name); and the inventory-wide violations list with filters.
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { inventory } from "../api/client";
import { keys, useAllIssuers, useAllPolicies, useAllTeams, usePolicyViolationCount } from "../api/queries";
import { isUnimplemented, toApiError, type ApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { RelTime, tsDate, useNow } from "../components/time";
import { Field } from "../components/Field";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Pager } from "../components/Pager";
import { useToast } from "../components/Toasts";
import {
  RULE_KINDS,
  SEVERITY_SLUGS,
  SelectorSummary,
  SeverityBadge,
  ViolationsTable,
  policyLabel,
  ruleKindLabel,
  ruleSummary,
  severityFromSlug,
  severitySlug,
  type RuleKindCase,
} from "../components/policies";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { PolicySeverity, type Policy, type PolicyRule, type PolicyRuleSchema } from "../gen/certctl/inventory/v1/inventory_pb";
import { KeyAlgorithm } from "../gen/certctl/type/v1/key_pb";
import { GENERATABLE_KEYS, keyAlgorithmLabel } from "../lib/keys";
import { durationFromSeconds, durationSeconds, formatDurationLong, formatDurationShort, parseDuration } from "../lib/duration";
import { formatLabels, parseLabels } from "../lib/form";
import { ID_PATTERN, resourceId, resourceName, suggestId } from "../lib/names";
import { countLabel } from "../lib/jobs";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { useTitle } from "../lib/useTitle";

const PAGE_SIZE = 50;
const VIOLATIONS_PAGE = 100;

// ---------------- counts ----------------

/** A policy's violations now: per severity, linking to the list filtered by policy (and severity). */
function ViolationCounts({ policy }: { policy: string }) {
  const q = usePolicyViolationCount(policy);
  const id = resourceId(policy);
  if (q.isPending) return <span className="faint">counting…</span>;
  if (q.isError)
    return (
      <span className="faint" title={toApiError(q.error).message}>
        — ({toApiError(q.error).code})
      </span>
    );
  const c = q.data;
  const more = !c.complete;
  const title = more
    ? `At least this many: counted over the first ${c.examined} certificates (the API gives no total)`
    : `Over all ${c.examined} certificates`;
  if (c.total === 0 && !more)
    return (
      <span className="violation-counts" data-testid="violation-count" data-count="0" title={title}>
        <span className="badge ok">
          <Icon name="check" size={12} /> None
        </span>
      </span>
    );
  const parts: [number, PolicySeverity][] = (
    [
      [c.critical, PolicySeverity.CRITICAL],
      [c.error, PolicySeverity.ERROR],
      [c.warning, PolicySeverity.WARNING],
    ] as [number, PolicySeverity][]
  ).filter(([n]) => n > 0);
  return (
    <span className="violation-counts" data-testid="violation-count" data-count={c.total} title={title}>
      <Link to={`/policy-violations?policy=${encodeURIComponent(id)}`} className="count-total" aria-label={`${countLabel(c.total, more)} violation${c.total === 1 && !more ? "" : "s"} of ${policy}`}>
        {countLabel(c.total, more)}
      </Link>
      {parts.map(([n, s]) => (
        <Link key={s} to={`/policy-violations?policy=${encodeURIComponent(id)}&severity=${severitySlug(s)}`} className="count-part" data-severity-count={severitySlug(s)}>
          <SeverityBadge severity={s} /> {countLabel(n, more)}
        </Link>
      ))}
    </span>
  );
}

// ---------------- list ----------------

function RuleList({ rules }: { rules: PolicyRule[] }) {
  return (
    <ul className="rule-list">
      {rules.map((r, i) => (
        <li key={`${i}:${r.id}`}>
          <SeverityBadge severity={r.severity} /> <span className="mono">{r.id}</span>{" "}
          <span className="subtle">
            {ruleKindLabel(r.kind.case)}: {ruleSummary(r)}
          </span>
        </li>
      ))}
    </ul>
  );
}

export function PoliciesView() {
  useTitle("Policies");
  const now = useNow();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [deleting, setDeleting] = useState<Policy | null>(null);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.certPolicies, "page", token],
    queryFn: () => inventory.listPolicies({ pageSize: PAGE_SIZE, pageToken: token }),
    placeholderData: keepPreviousData,
    retry: false,
  });
  const rows = q.data?.policies ?? [];
  const notServed = q.isError && isUnimplemented(q.error);
  return (
    <>
      <div className="page-head">
        <h1>Policies</h1>
        <span className="subtle">Rules certificates must keep; an Error or Critical rule refuses issuance</span>
        <span className="spacer" />
        {q.isFetching && !q.isPending && <span className="spinner" aria-label="Refreshing" />}
        <Link className="btn" to="/policy-violations">
          <Icon name="alert" /> All violations
        </Link>
        <Link className="btn primary" to="/policies/new">
          <Icon name="plus" /> New policy
        </Link>
      </div>
      {q.isError && !notServed && <ErrorAlert error={q.error} title="Could not list policies" />}
      <section className="panel flush" aria-label="Policies">
        {q.isPending ? (
          <Loading what="policies" />
        ) : notServed ? (
          <Empty title="Policies are not served by this server yet">
            <p className="faint">{toApiError(q.error).message}</p>
          </Empty>
        ) : q.isSuccess && rows.length === 0 && !token ? (
          <Empty title="No policies yet">
            <p>
              <Link to="/policies/new">Create a policy</Link>: for example allowed domains, a maximum lifetime or a minimum key strength.
            </p>
          </Empty>
        ) : q.isSuccess ? (
          <>
            <div className="table-wrap">
              <table className="data policies">
                <thead>
                  <tr>
                    <th>Policy</th>
                    <th>Rules</th>
                    <th>Selects</th>
                    <th>Violations</th>
                    <th>Updated</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((p) => (
                    <tr key={p.name} data-policy={p.name}>
                      <td className="truncate">
                        <Link to={`/policies/${resourceId(p.name)}`}>{p.displayName || resourceId(p.name)}</Link>
                        {p.displayName && <div className="faint mono">{resourceId(p.name)}</div>}
                      </td>
                      <td className="wrap rules">
                        <RuleList rules={p.rules} />
                      </td>
                      <td className="wrap selects">
                        <SelectorSummary selector={p.selector} />
                      </td>
                      <td className="wrap counts">
                        <ViolationCounts policy={p.name} />
                      </td>
                      <td>
                        <RelTime at={tsDate(p.updateTime ?? p.createTime)} now={now} />
                      </td>
                      <td style={{ textAlign: "right" }}>
                        <Link className="btn small" to={`/policies/${resourceId(p.name)}/edit`} aria-label={`Edit ${p.name}`}>
                          <Icon name="edit" /> Edit
                        </Link>{" "}
                        <button type="button" className="btn small danger" onClick={() => setDeleting(p)} aria-label={`Delete ${p.name}`}>
                          <Icon name="trash" />
                          <span className="sr-only">Delete</span>
                        </button>
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
      <DeletePolicyDialog policy={deleting} onClose={() => setDeleting(null)} />
    </>
  );
}

// ---------------- delete ----------------

function DeletePolicyDialog({ policy, onClose, onDeleted }: { policy: Policy | null; onClose: () => void; onDeleted?: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => inventory.deletePolicy({ name: policy!.name }),
    onSuccess: () => {
      qc.removeQueries({ queryKey: keys.certPolicy(policy!.name) });
      qc.invalidateQueries({ queryKey: keys.certPolicies });
      qc.invalidateQueries({ queryKey: keys.violations });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Deleted ${policy!.name}`);
      m.reset();
      onClose();
      onDeleted?.();
    },
  });
  const close = () => {
    m.reset();
    onClose();
  };
  return (
    <Modal title={policy ? `Delete ${policy.name}?` : ""} open={!!policy} onClose={close}>
      {policy && (
        <>
          <p style={{ marginTop: 0 }}>
            Delete <code>{policy.name}</code> and its {policy.rules.length} rule{policy.rules.length === 1 ? "" : "s"}? Its violations disappear from the
            listing at once, and issuance no longer checks its rules. The deletion is recorded in the audit trail.
          </p>
          {m.error && <ErrorAlert error={m.error} title="Delete refused" />}
          <div className="form-actions">
            <button type="button" className="btn" onClick={close}>
              Cancel
            </button>
            <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
              {m.isPending ? "Deleting…" : "Delete policy"}
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}

// ---------------- one policy ----------------

function usePolicy(name: string, enabled = true) {
  return useQuery({ queryKey: keys.certPolicy(name), queryFn: () => inventory.getPolicy({ name }), enabled });
}

/** A page of violations (with the page's examined count) for the given filters. */
function ViolationsPanel({ policy, severity, certificate, hide }: { policy: string; severity: PolicySeverity; certificate: string; hide?: "policy" | "certificate" }) {
  const policies = useAllPolicies();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.violations, "list", policy, severity, certificate, token],
    queryFn: () => inventory.listPolicyViolations({ policy, severity, certificate, pageSize: VIOLATIONS_PAGE, pageToken: token }),
    placeholderData: keepPreviousData,
    retry: false,
  });
  const rows = q.data?.violations ?? [];
  const filtered = !!(policy || severity !== PolicySeverity.UNSPECIFIED || certificate);
  return (
    <section className="panel flush" aria-label="Violations">
      {q.isPending ? (
        <Loading what="violations" />
      ) : q.isError && isUnimplemented(q.error) ? (
        <Empty title="Policies are not served by this server yet">
          <p className="faint">{toApiError(q.error).message}</p>
        </Empty>
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list violations" />
        </div>
      ) : rows.length === 0 && !token && !q.data.nextPageToken ? (
        <Empty title={filtered ? "No violations match" : "No violations"}>
          <p>{filtered ? "Every certificate these filters pick keeps its policies' rules." : "Every certificate keeps the rules of the policies that select it."}</p>
        </Empty>
      ) : (
        <>
          {rows.length === 0 ? (
            <Empty title="None on this page">
              <p>This page examined {q.data.examinedCertificateCount} certificates and found no violation; more certificates follow on the next page.</p>
            </Empty>
          ) : (
            <ViolationsTable violations={rows} hide={hide} policies={policies.data} />
          )}
          <Pager
            stack={stack}
            nextPageToken={q.data.nextPageToken}
            shown={rows.length}
            fetching={q.isFetching && !q.isPending}
            onPrevious={() => setStack(popPrevious)}
            onNext={() => setStack((s) => pushNext(s, q.data.nextPageToken))}
          />
        </>
      )}
    </section>
  );
}

export function PolicyDetail() {
  const { id = "" } = useParams();
  const name = `policies/${id}`;
  useTitle(id);
  const now = useNow();
  const navigate = useNavigate();
  const [deleting, setDeleting] = useState(false);
  const q = usePolicy(name);
  const head = (
    <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
      <Link to="/policies">Policies</Link> / {id}
    </nav>
  );
  if (q.isPending) return <Loading what={name} />;
  if (q.isError)
    return (
      <>
        {head}
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
        <Link to="/policies">← Back to policies</Link>
      </>
    );
  const p = q.data.policy;
  if (!p) return <Empty title="The server returned no policy" />;
  return (
    <>
      {head}
      <div className="page-head">
        <h1>{p.displayName || id}</h1>
        <code>{p.name}</code>
        <span className="spacer" />
        <Link className="btn" to={`/policies/${id}/edit`}>
          <Icon name="edit" /> Edit
        </Link>
        <button type="button" className="btn danger" onClick={() => setDeleting(true)}>
          <Icon name="trash" /> Delete
        </button>
      </div>
      <div className="grid-2" style={{ marginBottom: 12 }}>
        <section className="panel" aria-labelledby="policy-h">
          <h2 id="policy-h">Policy</h2>
          <dl className="props">
            <dt>Selects</dt>
            <dd>
              <SelectorSummary selector={p.selector} />
            </dd>
            <dt>Violations now</dt>
            <dd>
              <ViolationCounts policy={p.name} />
            </dd>
            <dt>Created</dt>
            <dd>
              <RelTime at={tsDate(p.createTime)} now={now} />
            </dd>
            <dt>Updated</dt>
            <dd>
              <RelTime at={tsDate(p.updateTime)} now={now} />
            </dd>
          </dl>
          <p style={{ marginBottom: 0 }}>
            <Link to={`/audit?resource=${encodeURIComponent(p.name)}`}>Audit events for this policy →</Link>
          </p>
        </section>
        <section className="panel flush" aria-labelledby="rules-h">
          <div className="panel-head">
            <h2 id="rules-h">Rules</h2>
          </div>
          <table className="data">
            <thead>
              <tr>
                <th>Rule</th>
                <th>Severity</th>
                <th>Checks</th>
              </tr>
            </thead>
            <tbody>
              {p.rules.map((r, i) => (
                <tr key={`${i}:${r.id}`}>
                  <td className="mono">{r.id}</td>
                  <td>
                    <SeverityBadge severity={r.severity} />
                  </td>
                  <td className="wrap">
                    {ruleKindLabel(r.kind.case)}: <span className="subtle">{ruleSummary(r)}</span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>
      <h2>Violations</h2>
      <ViolationsPanel policy={p.name} severity={PolicySeverity.UNSPECIFIED} certificate="" hide="policy" />
      <DeletePolicyDialog policy={deleting ? p : null} onClose={() => setDeleting(false)} onDeleted={() => navigate("/policies")} />
    </>
  );
}

// ---------------- violations list ----------------

export function PolicyViolationsView() {
  useTitle("Policy violations");
  const [params, setParams] = useSearchParams();
  const policyId = params.get("policy") ?? "";
  const severity = severityFromSlug(params.get("severity"));
  const certificateId = params.get("certificate") ?? "";
  const policies = useAllPolicies();
  const [certText, setCertText] = useState(certificateId);
  const update = (k: "policy" | "severity" | "certificate", v: string) => {
    const p = new URLSearchParams(params);
    if (v) p.set(k, v);
    else p.delete(k);
    setParams(p, { replace: true });
  };
  const commitCertificate = (e?: FormEvent) => {
    e?.preventDefault();
    const v = resourceId(certText.trim());
    if (v !== certificateId) update("certificate", v);
  };
  const filtered = !!(policyId || severity !== PolicySeverity.UNSPECIFIED || certificateId);
  const policy = resourceName("policies", policyId);
  const certificate = resourceName("certificates", certificateId);
  return (
    <>
      <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
        <Link to="/policies">Policies</Link> / violations
      </nav>
      <div className="page-head">
        <h1>Policy violations</h1>
        <span className="subtle">Judged when read, against the policies and certificates as they are now</span>
      </div>
      <form className="filters violations" role="search" aria-label="Violation filters" onSubmit={commitCertificate}>
        <Field label="Policy">
          {(p) => (
            <select {...p} value={policyId} onChange={(e) => update("policy", e.target.value)}>
              <option value="">Any policy</option>
              {policies.data?.map((x) => (
                <option key={x.name} value={resourceId(x.name)}>
                  {policyLabel(x, x.name)}
                </option>
              ))}
              {policyId && !policies.data?.some((x) => resourceId(x.name) === policyId) && <option value={policyId}>{policyId}</option>}
            </select>
          )}
        </Field>
        <Field label="Severity">
          {(p) => (
            <select {...p} value={severitySlug(severity)} onChange={(e) => update("severity", e.target.value)}>
              <option value="">Any severity</option>
              {SEVERITY_SLUGS.map(([slug, , label]) => (
                <option key={slug} value={slug}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Certificate" hint="Its ID, e.g. www; Enter to apply">
          {(p) => (
            <input
              {...p}
              type="text"
              className="mono"
              autoComplete="off"
              value={certText}
              onChange={(e) => setCertText(e.target.value)}
              onBlur={() => commitCertificate()}
              placeholder="any certificate"
            />
          )}
        </Field>
        <div>
          {filtered && (
            <button
              type="button"
              className="btn"
              onClick={() => {
                setCertText("");
                setParams(new URLSearchParams(), { replace: true });
              }}
            >
              Clear filters
            </button>
          )}
        </div>
      </form>
      <ViolationsPanel key={`${policy}|${severity}|${certificate}`} policy={policy} severity={severity} certificate={certificate} />
    </>
  );
}

// ---------------- create / edit ----------------

interface RuleDraft {
  /** Stable React key; rules have no identity until they are saved. */
  key: number;
  id: string;
  severity: PolicySeverity;
  kind: RuleKindCase | "";
  /** The list kinds' entries, one per line or comma-separated. */
  list: string;
  /** maxLifetime and minRenewalLead, as "90d". */
  duration: string;
  allowed: KeyAlgorithm[];
  minStrengthBits: string;
}

const LIST_KINDS: Partial<Record<RuleKindCase, { field: string; label: string; placeholder: string; hint: string }>> = {
  allowedIssuers: {
    field: "issuers",
    label: "Allowed issuers",
    placeholder: "issuers/local",
    hint: "Resource names (issuers/…), one per line; a certificate with no issuer breaks the rule",
  },
  allowedDomains: {
    field: "patterns",
    label: "Allowed domains",
    placeholder: "*.example.com\n.internal.example.com",
    hint: "One per line: web.example.com itself, *.example.com one label below, .example.com any depth below (not the apex)",
  },
  requiredMetadataKeys: {
    field: "keys",
    label: "Required metadata keys",
    placeholder: "cost-center",
    hint: "Each must be in the certificate's metadata with a non-blank value",
  },
  allowedEnvironments: {
    field: "environments",
    label: "Allowed environments",
    placeholder: "production\nstaging",
    hint: "A certificate with no environment breaks the rule",
  },
};

let nextKey = 1;

function emptyRule(): RuleDraft {
  return { key: nextKey++, id: "", severity: PolicySeverity.ERROR, kind: "", list: "", duration: "", allowed: [], minStrengthBits: "" };
}

function draftOf(r: PolicyRule): RuleDraft {
  const d: RuleDraft = { ...emptyRule(), id: r.id, severity: r.severity, kind: r.kind.case ?? "" };
  const k = r.kind;
  switch (k.case) {
    case "allowedIssuers":
      d.list = k.value.issuers.join("\n");
      break;
    case "allowedDomains":
      d.list = k.value.patterns.join("\n");
      break;
    case "requiredMetadataKeys":
      d.list = k.value.keys.join("\n");
      break;
    case "allowedEnvironments":
      d.list = k.value.environments.join("\n");
      break;
    case "maxLifetime":
      d.duration = formatDurationShort(durationSeconds(k.value.maxLifetime));
      break;
    case "minRenewalLead":
      d.duration = formatDurationShort(durationSeconds(k.value.minLead));
      break;
    case "keyAlgorithms":
      d.allowed = [...k.value.allowed];
      d.minStrengthBits = k.value.minStrengthBits ? String(k.value.minStrengthBits) : "";
      break;
  }
  return d;
}

/** Entries in the order typed (the API's indexed violations point into this list). */
function entries(text: string): string[] {
  return text
    .split(/[\n,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

interface RuleCheck {
  kind?: string;
  list?: string;
  duration?: string;
  keys?: string;
  minStrength?: string;
}

/** What the form can tell before sending: the rule kind's own fields are filled in and well-formed. */
function checkRule(d: RuleDraft): RuleCheck {
  const c: RuleCheck = {};
  if (!d.kind) c.kind = "Choose what the rule checks";
  else if (LIST_KINDS[d.kind]) {
    if (entries(d.list).length === 0) c.list = "List at least one value";
  } else if (d.kind === "maxLifetime" || d.kind === "minRenewalLead") {
    const p = parseDuration(d.duration);
    if ("error" in p) c.duration = p.error === "empty" ? "Required, for example 90d" : p.error;
    else if (p.seconds <= 0) c.duration = "Must be positive";
  } else if (d.kind === "keyAlgorithms") {
    const bits = d.minStrengthBits.trim();
    if (bits && !/^\d+$/.test(bits)) c.minStrength = "A whole number of bits";
    else if (bits && Number(bits) > 256) c.minStrength = "At most 256 bits";
    if (d.allowed.length === 0 && !(Number(bits) > 0)) c.keys = "Tick allowed algorithms, set a minimum strength, or both";
  }
  return c;
}

type RuleInit = MessageInitShape<typeof PolicyRuleSchema>;

/** The rule as the API takes it. */
function ruleMessage(d: RuleDraft): RuleInit {
  const list = entries(d.list);
  const secs = (() => {
    const p = parseDuration(d.duration);
    return "seconds" in p ? durationFromSeconds(p.seconds) : undefined;
  })();
  const base = { id: d.id.trim(), severity: d.severity };
  switch (d.kind) {
    case "allowedIssuers":
      return { ...base, kind: { case: "allowedIssuers", value: { issuers: list.map((s) => resourceName("issuers", s)) } } };
    case "allowedDomains":
      return { ...base, kind: { case: "allowedDomains", value: { patterns: list } } };
    case "requiredMetadataKeys":
      return { ...base, kind: { case: "requiredMetadataKeys", value: { keys: list } } };
    case "allowedEnvironments":
      return { ...base, kind: { case: "allowedEnvironments", value: { environments: list } } };
    case "maxLifetime":
      return { ...base, kind: { case: "maxLifetime", value: { maxLifetime: secs } } };
    case "minRenewalLead":
      return { ...base, kind: { case: "minRenewalLead", value: { minLead: secs } } };
    case "keyAlgorithms":
      return { ...base, kind: { case: "keyAlgorithms", value: { allowed: d.allowed, minStrengthBits: Number(d.minStrengthBits.trim() || 0) } } };
    default:
      return { ...base, kind: { case: undefined } };
  }
}

function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/** The kind's field name as the API names it in violations: allowedDomains -> allowed_domains. */
function kindField(k: RuleKindCase | ""): string {
  return k ? snake(k) : "";
}

interface RuleErrors {
  id?: string;
  severity?: string;
  kind?: string;
  value?: string;
  keys?: string;
  minStrength?: string;
}

/**
 * The API's violations of rule `i`, by the form field they belong to:
 * `policy.rules[1].allowed_domains[0]` is the first entry of rule 2's list.
 */
function ruleErrors(err: ApiError | undefined, i: number, d: RuleDraft): RuleErrors {
  const out: RuleErrors = {};
  if (!err) return out;
  const add = (k: keyof RuleErrors, text: string) => (out[k] = out[k] ? `${out[k]}; ${text}` : text);
  const list = entries(d.list);
  const kf = kindField(d.kind);
  for (const v of err.violations) {
    const m = /^policy\.rules\[(\d+)\](?:\.(.*))?$/.exec(snake(v.field));
    if (!m || Number(m[1]) !== i) continue;
    const rest = m[2] ?? "";
    const text = v.description || err.message;
    if (rest === "") add("kind", text);
    else if (rest === "id") add("id", text);
    else if (rest === "severity") add("severity", text);
    else if (kf === "key_algorithms" && rest.startsWith("key_algorithms.min_strength_bits")) add("minStrength", text);
    else if (kf === "key_algorithms" && rest.startsWith("key_algorithms")) add("keys", text);
    else if (kf && rest.startsWith(kf)) {
      const j = /^[a-z_]+\[(\d+)\]$/.exec(rest);
      const entry = j ? list[Number(j[1])] : undefined;
      add("value", j && list.length > 1 ? `entry ${Number(j[1]) + 1}${entry ? ` (${entry})` : ""}: ${text}` : text);
    } else add("kind", text);
  }
  return out;
}

/** The API's violation for a top-level field (`policy_id`, `policy.display_name`, `policy.selector.teams[0]`). */
function fieldErrors(err: ApiError | undefined, ...fields: string[]): string | undefined {
  if (!err) return undefined;
  const texts = err.violations
    .filter((v) => {
      // `policy.selector.teams[0]`, `policy.selector.labels[tier]`: the field, whatever the entry.
      const f = snake(v.field).replace(/\[[^\]]*\]$/, "");
      return fields.some((want) => f === want || f === `policy.${want}`);
    })
    .map((v) => v.description || err.message);
  return texts.length ? texts.join("; ") : undefined;
}

function toggle<T>(list: T[], v: T, on: boolean): T[] {
  return on ? (list.includes(v) ? list : [...list, v]) : list.filter((x) => x !== v);
}

function RuleFields({
  index,
  rule,
  count,
  errors,
  check,
  onChange,
  onRemove,
  onMove,
}: {
  index: number;
  rule: RuleDraft;
  count: number;
  errors: RuleErrors;
  check: RuleCheck;
  onChange: (r: RuleDraft) => void;
  onRemove: () => void;
  onMove: (by: -1 | 1) => void;
}) {
  const set = <K extends keyof RuleDraft>(k: K, v: RuleDraft[K]) => onChange({ ...rule, [k]: v });
  const listKind = rule.kind ? LIST_KINDS[rule.kind] : undefined;
  const defaultId = RULE_KINDS.find(([c]) => c === rule.kind)?.[2] ?? "";
  const durationParsed = parseDuration(rule.duration);
  const keyErr = check.keys ?? errors.keys;
  return (
    <fieldset className="rule" aria-label={`Rule ${index + 1}`}>
      <legend>
        Rule {index + 1}
        {rule.kind ? <span className="faint"> · {ruleKindLabel(rule.kind)}</span> : null}
      </legend>
      <div className="rule-tools">
        <button type="button" className="btn small ghost" onClick={() => onMove(-1)} disabled={index === 0} aria-label={`Move rule ${index + 1} up`}>
          ↑
        </button>
        <button type="button" className="btn small ghost" onClick={() => onMove(1)} disabled={index === count - 1} aria-label={`Move rule ${index + 1} down`}>
          ↓
        </button>
        <button type="button" className="btn small danger" onClick={onRemove} aria-label={`Remove rule ${index + 1}`}>
          <Icon name="trash" /> Remove
        </button>
      </div>
      <div className="form-grid rule-grid">
        <Field label="Checks" required error={check.kind ?? errors.kind}>
          {(p) => (
            <select {...p} value={rule.kind} onChange={(e) => set("kind", e.target.value as RuleKindCase | "")}>
              <option value="">Choose a rule type…</option>
              {RULE_KINDS.map(([c, label]) => (
                <option key={c} value={c}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Severity" required error={errors.severity} hint={rule.severity === PolicySeverity.WARNING ? "Reported only" : "Refuses issuance"}>
          {(p) => (
            <select {...p} value={rule.severity} onChange={(e) => set("severity", Number(e.target.value) as PolicySeverity)}>
              {SEVERITY_SLUGS.map(([slug, v, label]) => (
                <option key={slug} value={v}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Rule ID" error={errors.id} hint={<>Unique in the policy; empty: {defaultId ? <code>{defaultId}</code> : "the type’s name"}</>}>
          {(p) => <input {...p} type="text" className="mono" pattern={ID_PATTERN} maxLength={63} autoComplete="off" value={rule.id} onChange={(e) => set("id", e.target.value)} placeholder={defaultId} />}
        </Field>
        {listKind && (
          <Field label={listKind.label} required className="span-3" error={check.list ?? errors.value} hint={listKind.hint}>
            {(p) => <textarea {...p} style={{ minHeight: 60 }} spellCheck={false} value={rule.list} onChange={(e) => set("list", e.target.value)} placeholder={listKind.placeholder} />}
          </Field>
        )}
        {(rule.kind === "maxLifetime" || rule.kind === "minRenewalLead") && (
          <Field
            label={rule.kind === "maxLifetime" ? "Maximum lifetime" : "Minimum renewal lead"}
            required
            error={check.duration ?? errors.value}
            hint={
              "seconds" in durationParsed && durationParsed.seconds > 0
                ? `${formatDurationLong(durationParsed.seconds)}${rule.kind === "maxLifetime" ? ": a version valid longer breaks the rule" : " before expiry, at least"}`
                : rule.kind === "maxLifetime"
                  ? "For example 90d or 1y"
                  : "For example 14d: the renewal policy must renew at least this early"
            }
          >
            {(p) => <input {...p} type="text" className="mono" value={rule.duration} onChange={(e) => set("duration", e.target.value)} placeholder={rule.kind === "maxLifetime" ? "90d" : "14d"} />}
          </Field>
        )}
        {rule.kind === "keyAlgorithms" && (
          <>
            <fieldset className={`field span-2${keyErr ? " has-error" : ""}`} style={{ border: "none", padding: 0, margin: 0 }}>
              <legend>Allowed key algorithms</legend>
              <div className="checks" role="group" aria-label="Allowed key algorithms">
                {GENERATABLE_KEYS.map((k) => (
                  <label key={k}>
                    <input type="checkbox" checked={rule.allowed.includes(k)} onChange={(e) => set("allowed", toggle(rule.allowed, k, e.target.checked))} />
                    {keyAlgorithmLabel(k)}
                  </label>
                ))}
              </div>
              {keyErr ? <span className="error-text">{keyErr}</span> : <span className="hint">None ticked: any algorithm of the minimum strength</span>}
            </fieldset>
            <Field
              label="Minimum strength (bits)"
              error={check.minStrength ?? errors.minStrength}
              hint="NIST security bits: RSA 2048 is 112; RSA 3072, P-256, Ed25519 128; RSA 4096 140; P-384 192"
            >
              {(p) => <input {...p} type="number" min={0} max={256} step={1} value={rule.minStrengthBits} onChange={(e) => set("minStrengthBits", e.target.value)} placeholder="0: any" />}
            </Field>
          </>
        )}
      </div>
    </fieldset>
  );
}

interface PolicyDraft {
  id: string;
  displayName: string;
  rules: RuleDraft[];
  environments: string;
  teams: string[];
  labels: string;
}

function draftOfPolicy(p: Policy | undefined): PolicyDraft {
  if (!p) return { id: "", displayName: "", rules: [emptyRule()], environments: "", teams: [], labels: "" };
  return {
    id: resourceId(p.name),
    displayName: p.displayName,
    rules: p.rules.map(draftOf),
    environments: (p.selector?.environments ?? []).join("\n"),
    teams: [...(p.selector?.teams ?? [])],
    labels: formatLabels(p.selector?.labels ?? {}),
  };
}

function same(a: unknown, b: unknown): boolean {
  const j = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  return j(a) === j(b);
}

function PolicyForm({ policy }: { policy?: Policy }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const teams = useAllTeams();
  const issuers = useAllIssuers();
  const [initial] = useState(() => draftOfPolicy(policy));
  const [v, setV] = useState<PolicyDraft>(initial);
  const [idTouched, setIdTouched] = useState(false);
  const [tried, setTried] = useState(false);
  const set = <K extends keyof PolicyDraft>(k: K, value: PolicyDraft[K]) => setV((old) => ({ ...old, [k]: value }));
  const setRule = (i: number, r: RuleDraft) => setV((old) => ({ ...old, rules: old.rules.map((x, j) => (j === i ? r : x)) }));
  const labels = parseLabels(v.labels);
  const checks = v.rules.map(checkRule);
  const invalid = checks.some((c) => Object.keys(c).length > 0) || !!labels.error || v.rules.length === 0;

  const body = (d: PolicyDraft) => ({
    displayName: d.displayName.trim(),
    rules: d.rules.map(ruleMessage),
    selector: { environments: entries(d.environments), teams: d.teams, labels: parseLabels(d.labels).labels },
  });
  const now = body(v);
  const before = body(initial);
  const mask = policy
    ? [
        ...(now.displayName !== before.displayName ? ["display_name"] : []),
        ...(!same(now.rules, before.rules) ? ["rules"] : []),
        ...(!same(now.selector, before.selector) ? ["selector"] : []),
      ]
    : [];

  const m = useMutation({
    mutationFn: async () => {
      if (policy) return (await inventory.updatePolicy({ policy: { name: policy.name, ...now }, updateMask: { paths: mask } })).policy;
      return (await inventory.createPolicy({ policy: now, policyId: v.id.trim() })).policy;
    },
    onSuccess: (p) => {
      qc.invalidateQueries({ queryKey: keys.certPolicies });
      qc.invalidateQueries({ queryKey: keys.violations });
      qc.invalidateQueries({ queryKey: keys.audit });
      if (p) qc.setQueryData(keys.certPolicy(p.name), { policy: p });
      toast(policy ? `Saved ${p?.name ?? policy.name} (${mask.join(", ")})` : `Created ${p?.name ?? "the policy"}`);
      navigate(`/policies/${resourceId(p?.name ?? policy?.name ?? v.id)}`);
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const rulesErr = (tried && v.rules.length === 0 ? "Add at least one rule" : undefined) ?? fieldErrors(err, "policy.rules");
  const issuerNames = issuers.data?.map((i) => i.name) ?? [];
  return (
    <form
      className="panel policy-form"
      style={{ maxWidth: 1040 }}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setTried(true);
        if (invalid) return;
        m.mutate();
      }}
    >
      {err && <ErrorAlert error={err} title={policy ? "The server refused the change" : "The server refused to create the policy"} />}
      <div className="form-grid">
        {policy ? (
          <Field label="Name" hint="The resource name cannot change">
            {(p) => <input {...p} type="text" value={policy.name} readOnly />}
          </Field>
        ) : (
          <Field label="ID" required error={fieldErrors(err, "policy_id", "policy.name")} hint={<>Becomes <code>policies/{v.id || "…"}</code>: lower-case letters, digits, - and .</>}>
            {(p) => (
              <input
                {...p}
                type="text"
                className="mono"
                pattern={ID_PATTERN}
                maxLength={63}
                value={v.id}
                autoComplete="off"
                onChange={(e) => {
                  setIdTouched(true);
                  set("id", e.target.value);
                }}
              />
            )}
          </Field>
        )}
        <Field label="Display name" error={fieldErrors(err, "policy.display_name")}>
          {(p) => (
            <input
              {...p}
              type="text"
              value={v.displayName}
              placeholder="Production web"
              onChange={(e) => {
                set("displayName", e.target.value);
                if (!policy && !idTouched) set("id", suggestId(e.target.value));
              }}
            />
          )}
        </Field>
      </div>
      <h3 className="form-section">Selects</h3>
      <p className="subtle" style={{ marginTop: 0 }}>
        Which certificates the policy judges. Every part left empty matches every certificate.
      </p>
      <div className="form-grid three">
        <Field label="Environments" error={fieldErrors(err, "policy.selector.environments")} hint="One of these; one per line or comma-separated">
          {(p) => <textarea {...p} style={{ minHeight: 60 }} spellCheck={false} value={v.environments} onChange={(e) => set("environments", e.target.value)} placeholder="production" />}
        </Field>
        <Field label="Teams" error={fieldErrors(err, "policy.selector.teams")} hint={teams.data?.length ? "One of these; Ctrl/⌘-click to choose several" : "No teams defined yet"}>
          {(p) => (
            <select {...p} multiple size={Math.min(5, Math.max(3, teams.data?.length ?? 3))} value={v.teams} onChange={(e) => set("teams", [...e.target.selectedOptions].map((o) => o.value))}>
              {teams.data?.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.displayName || resourceId(t.name)}
                </option>
              ))}
              {v.teams
                .filter((t) => !teams.data?.some((x) => x.name === t))
                .map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
            </select>
          )}
        </Field>
        <Field label="Labels" error={(tried ? labels.error : undefined) ?? fieldErrors(err, "policy.selector.labels")} hint="Every one of these; key=value, one per line">
          {(p) => <textarea {...p} style={{ minHeight: 60 }} spellCheck={false} value={v.labels} onChange={(e) => set("labels", e.target.value)} placeholder="tier=frontend" />}
        </Field>
      </div>
      <h3 className="form-section">Rules</h3>
      {rulesErr && (
        <p className="error-text" role="alert">
          {rulesErr}
        </p>
      )}
      {issuerNames.length > 0 && v.rules.some((r) => r.kind === "allowedIssuers") && (
        <p className="faint" style={{ marginTop: 0 }}>
          Issuers: {issuerNames.map((n) => <code key={n} style={{ marginRight: 6 }}>{n}</code>)}
        </p>
      )}
      <div className="stack" style={{ gap: 10 }}>
        {v.rules.map((r, i) => (
          <RuleFields
            key={r.key}
            index={i}
            rule={r}
            count={v.rules.length}
            errors={ruleErrors(err, i, r)}
            check={tried ? checks[i]! : {}}
            onChange={(x) => setRule(i, x)}
            onRemove={() => set("rules", v.rules.filter((_, j) => j !== i))}
            onMove={(by) =>
              setV((old) => {
                const rules = [...old.rules];
                const [moved] = rules.splice(i, 1);
                rules.splice(i + by, 0, moved!);
                return { ...old, rules };
              })
            }
          />
        ))}
      </div>
      <div style={{ marginTop: 10 }}>
        <button type="button" className="btn" onClick={() => set("rules", [...v.rules, emptyRule()])} disabled={v.rules.length >= 64}>
          <Icon name="plus" /> Add a rule
        </button>
      </div>
      <div className="form-actions">
        {policy && <span className="subtle" style={{ marginRight: "auto", alignSelf: "center" }}>{mask.length ? `Will update: ${mask.join(", ")}` : "No changes yet"}</span>}
        <Link className="btn" to={policy ? `/policies/${resourceId(policy.name)}` : "/policies"}>
          Cancel
        </Link>
        <button type="submit" className="btn primary" disabled={m.isPending || (!!policy && mask.length === 0)}>
          {m.isPending ? "Saving…" : policy ? "Save changes" : "Create policy"}
        </button>
      </div>
    </form>
  );
}

export function PolicyFormView({ mode }: { mode: "create" | "edit" }) {
  const { id = "" } = useParams();
  const name = `policies/${id}`;
  useTitle(mode === "create" ? "New policy" : `Edit ${id}`);
  const q = usePolicy(name, mode === "edit");
  return (
    <>
      <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
        <Link to="/policies">Policies</Link> / {mode === "create" ? "new" : <Link to={`/policies/${id}`}>{id}</Link>}
      </nav>
      <div className="page-head">
        <h1>{mode === "create" ? "New policy" : `Edit ${id}`}</h1>
      </div>
      {mode === "create" ? (
        <PolicyForm />
      ) : q.isPending ? (
        <Loading what={name} />
      ) : q.isError ? (
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
      ) : q.data.policy ? (
        <PolicyForm key={q.data.policy.updateTime?.seconds.toString()} policy={q.data.policy} />
      ) : (
        <Empty title="The server returned no policy" />
      )}
    </>
  );
}
