import type { ReactNode } from "react";
import { Link } from "react-router";
import { RelTime, tsDate, useNow } from "./time";
import { CopyButton } from "./CopyButton";
import type { AuditEvent } from "../gen/certctl/audit/v1/audit_pb";

const ROUTES: [string, string][] = [
  ["certificates/", "/certificates/"],
  ["owners/", "/owners"],
  ["teams/", "/teams"],
  ["targets/", "/targets"],
  ["agents/", "/agents/"],
  ["joinTokens/", "/agents"],
  ["discoveredCertificates/", "/discovery?state=all"],
  ["renewalPolicies/", "/renewal-policies"],
];

/** A link to the GUI page of a resource name, when there is one. */
export function resourceLink(resource: string): ReactNode {
  if (!resource) return <span className="faint">—</span>;
  for (const [prefix, path] of ROUTES) {
    if (resource.startsWith(prefix)) {
      const to = path.endsWith("/") ? path + resource.slice(prefix.length).split("/")[0] : path;
      return (
        <Link to={to} className="mono">
          {resource}
        </Link>
      );
    }
  }
  return <code>{resource}</code>;
}

function Details({ e }: { e: AuditEvent }) {
  const text = e.details && Object.keys(e.details).length > 0 ? JSON.stringify(e.details, null, 2) : "";
  if (!text) return <span className="faint">—</span>;
  return (
    <details>
      <summary>
        {Object.keys(e.details ?? {}).length} field{Object.keys(e.details ?? {}).length === 1 ? "" : "s"}
      </summary>
      <pre className="json">{text}</pre>
    </details>
  );
}

export function AuditTable({ events }: { events: AuditEvent[] }) {
  const now = useNow();
  return (
    <div className="table-wrap">
      <table className="data">
        <thead>
          <tr>
            <th className="num">#</th>
            <th>When</th>
            <th>Actor</th>
            <th>Action</th>
            <th>Resource</th>
            <th>Details</th>
            <th>Hash</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.name || e.sequence.toString()} style={{ verticalAlign: "top" }}>
              <td className="num">{e.sequence.toString()}</td>
              <td>
                <RelTime at={tsDate(e.eventTime)} now={now} />
              </td>
              <td className="truncate">{e.actor || <span className="faint">—</span>}</td>
              <td>
                <code>{e.action}</code>
              </td>
              <td className="truncate">{resourceLink(e.resource)}</td>
              <td style={{ whiteSpace: "normal" }}>
                <Details e={e} />
              </td>
              <td>
                {e.hash ? (
                  <span className="copyable">
                    <code title={e.hash}>{e.hash.slice(0, 12)}…</code>
                    <CopyButton text={e.hash} label={`hash of event ${e.sequence}`} />
                  </span>
                ) : (
                  <span className="faint">—</span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

