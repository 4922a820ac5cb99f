// Certificate policies: one word, colour and icon per severity (the API's
// enum), how each rule kind reads, the violations table, and the certificate
// detail's "Policy violations" panel (ListPolicyViolations(certificate)).
import { useState } from "react";
import { Link } from "react-router";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { inventory } from "../api/client";
import { keys, useAllPolicies } from "../api/queries";
import { isUnimplemented, toApiError } from "../api/errors";
import { PolicySeverity, type Certificate, type Policy, type PolicyRule, type PolicySelector, type PolicyViolation } from "../gen/certctl/inventory/v1/inventory_pb";
import { durationSeconds, formatDurationLong } from "../lib/duration";
import { keyAlgorithmLabel } from "../lib/keys";
import { resourceId } from "../lib/names";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { Icon, type IconName } from "./Icon";
import { Pager } from "./Pager";
import { Empty, ErrorAlert, Loading } from "./states";

// ---------------- severity ----------------

/** URL slug, enum value and label, least severe first. */
export const SEVERITY_SLUGS: ReadonlyArray<readonly [string, PolicySeverity, string]> = [
  ["warning", PolicySeverity.WARNING, "Warning"],
  ["error", PolicySeverity.ERROR, "Error"],
  ["critical", PolicySeverity.CRITICAL, "Critical"],
];

export function severityFromSlug(slug: string | null): PolicySeverity {
  return SEVERITY_SLUGS.find(([s]) => s === slug)?.[1] ?? PolicySeverity.UNSPECIFIED;
}

export function severitySlug(s: PolicySeverity): string {
  return SEVERITY_SLUGS.find(([, v]) => v === s)?.[0] ?? "";
}

export function severityLabel(s: PolicySeverity): string {
  return SEVERITY_SLUGS.find(([, v]) => v === s)?.[2] ?? "Unknown";
}

const SEVERITY_STYLE: Record<PolicySeverity, { tone: string; icon: IconName; hint: string }> = {
  [PolicySeverity.UNSPECIFIED]: { tone: "neutral", icon: "question", hint: "" },
  [PolicySeverity.WARNING]: { tone: "warn", icon: "alert", hint: "Reported only; issuance goes ahead" },
  [PolicySeverity.ERROR]: { tone: "crit", icon: "x", hint: "Issuance is refused" },
  [PolicySeverity.CRITICAL]: { tone: "crit critical", icon: "ban", hint: "Issuance is refused" },
};

export function SeverityBadge({ severity }: { severity: PolicySeverity }) {
  const s = SEVERITY_STYLE[severity] ?? SEVERITY_STYLE[PolicySeverity.UNSPECIFIED];
  const label = severityLabel(severity);
  return (
    <span className={`badge ${s.tone}`} data-severity={label.toLowerCase()} title={s.hint || undefined}>
      <Icon name={s.icon} size={12} />
      {label}
    </span>
  );
}

// ---------------- rules ----------------

export type RuleKindCase = NonNullable<PolicyRule["kind"]["case"]>;

/** Each rule kind: its label and the rule id it defaults to (the kind's name). */
export const RULE_KINDS: ReadonlyArray<readonly [RuleKindCase, string, string]> = [
  ["allowedIssuers", "Allowed issuers", "allowed-issuers"],
  ["allowedDomains", "Allowed domains", "allowed-domains"],
  ["requiredMetadataKeys", "Required metadata keys", "required-metadata-keys"],
  ["allowedEnvironments", "Allowed environments", "allowed-environments"],
  ["maxLifetime", "Maximum lifetime", "max-lifetime"],
  ["keyAlgorithms", "Key algorithms and strength", "key-algorithms"],
  ["minRenewalLead", "Minimum renewal lead", "min-renewal-lead"],
];

export function ruleKindLabel(k: RuleKindCase | undefined): string {
  return RULE_KINDS.find(([c]) => c === k)?.[1] ?? "Unknown rule";
}

/** What the rule asks, in a few words: "*.example.com, .internal.example.com". */
export function ruleSummary(r: PolicyRule): string {
  const k = r.kind;
  switch (k.case) {
    case "allowedIssuers":
      return k.value.issuers.join(", ");
    case "allowedDomains":
      return k.value.patterns.join(", ");
    case "requiredMetadataKeys":
      return k.value.keys.join(", ");
    case "allowedEnvironments":
      return k.value.environments.join(", ");
    case "maxLifetime":
      return `at most ${formatDurationLong(durationSeconds(k.value.maxLifetime))}`;
    case "minRenewalLead":
      return `renewed at least ${formatDurationLong(durationSeconds(k.value.minLead))} before expiry`;
    case "keyAlgorithms": {
      const parts: string[] = [];
      if (k.value.allowed.length) parts.push(k.value.allowed.map((a) => keyAlgorithmLabel(a)).join(", "));
      if (k.value.minStrengthBits) parts.push(`≥ ${k.value.minStrengthBits} security bits`);
      return parts.join("; ");
    }
    default:
      return "";
  }
}

/** Which certificates a policy judges: every one, or its selector's parts. */
export function SelectorSummary({ selector }: { selector: PolicySelector | undefined }) {
  const labels = Object.entries(selector?.labels ?? {});
  const envs = selector?.environments ?? [];
  const teams = selector?.teams ?? [];
  if (!labels.length && !envs.length && !teams.length) return <span className="faint">every certificate</span>;
  return (
    <span className="selector">
      {envs.length > 0 && (
        <span title="One of these environments">
          <span className="faint">env </span>
          {envs.map((e) => (
            <span className="tag" key={e}>
              {e}
            </span>
          ))}
        </span>
      )}
      {teams.length > 0 && (
        <span title="One of these teams">
          <span className="faint">team </span>
          {teams.map((t) => (
            <span className="tag" key={t}>
              {resourceId(t)}
            </span>
          ))}
        </span>
      )}
      {labels.length > 0 && (
        <span title="Every one of these labels">
          <span className="faint">labels </span>
          {labels.map(([k, v]) => (
            <span className="tag" key={k}>{`${k}=${v}`}</span>
          ))}
        </span>
      )}
    </span>
  );
}

export function policyLabel(p: Policy | undefined, name: string): string {
  return p?.displayName || resourceId(name);
}

// ---------------- violations ----------------

/** Violations as rows; `hide` leaves out a column the page already fixes. */
export function ViolationsTable({ violations, hide, policies }: { violations: PolicyViolation[]; hide?: "certificate" | "policy"; policies?: Policy[] }) {
  return (
    <div className="table-wrap">
      <table className="data violations">
        <thead>
          <tr>
            <th>Severity</th>
            {hide !== "certificate" && <th>Certificate</th>}
            {hide !== "policy" && <th>Policy</th>}
            <th>Rule</th>
            <th>Why</th>
          </tr>
        </thead>
        <tbody>
          {violations.map((v, i) => (
            <tr key={`${v.certificate}|${v.policy}|${v.rule}|${i}`} data-violation={`${v.certificate}|${v.policy}|${v.rule}`}>
              <td>
                <SeverityBadge severity={v.severity} />
              </td>
              {hide !== "certificate" && (
                <td className="truncate">
                  {v.certificate ? (
                    <Link className="mono" to={`/certificates/${resourceId(v.certificate)}`}>
                      {resourceId(v.certificate)}
                    </Link>
                  ) : (
                    <span className="faint">—</span>
                  )}
                </td>
              )}
              {hide !== "policy" && (
                <td className="truncate">
                  <Link to={`/policies/${resourceId(v.policy)}`}>{policyLabel(policies?.find((p) => p.name === v.policy), v.policy)}</Link>
                </td>
              )}
              <td className="mono">{v.rule}</td>
              <td className="wrap message">{v.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const CERT_PAGE = 100;

/** The certificate detail's panel: what this certificate breaks now, under every policy that selects it. */
export function CertificateViolations({ cert }: { cert: Certificate }) {
  const policies = useAllPolicies();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.violations, "certificate", cert.name, token],
    queryFn: () => inventory.listPolicyViolations({ certificate: cert.name, pageSize: CERT_PAGE, pageToken: token }),
    placeholderData: keepPreviousData,
    retry: false,
  });
  const rows = q.data?.violations ?? [];
  const id = resourceId(cert.name);
  return (
    <section className="panel flush" aria-labelledby="violations-h">
      <div className="panel-head">
        <h2 id="violations-h">Policy violations</h2>
        <span className="faint">judged now against every policy that selects it</span>
        <span className="spacer" />
        <Link to={`/policy-violations?certificate=${encodeURIComponent(id)}`}>All violations →</Link>
      </div>
      {q.isPending ? (
        <Loading what="policy violations" />
      ) : q.isError && isUnimplemented(q.error) ? (
        <Empty title="Policies are not served by this server yet">
          <p className="faint">{toApiError(q.error).message}</p>
        </Empty>
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list this certificate's policy violations" />
        </div>
      ) : rows.length === 0 && !token && !q.data.nextPageToken ? (
        <Empty title="No policy violations">
          <p>
            It keeps every rule of the <Link to="/policies">policies</Link> that select it.
          </p>
        </Empty>
      ) : (
        <>
          <ViolationsTable violations={rows} hide="certificate" policies={policies.data} />
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
