// The certificate detail's Deployments panel: the latest state of the
// certificate on each of its targets (ListDeployments), and the targets it
// lists that have no record yet.
import { useState } from "react";
import { Link } from "react-router";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { inventory } from "../api/client";
import { keys, labelFor, useAllTargets } from "../api/queries";
import { isUnimplemented, toApiError } from "../api/errors";
import { DeploymentState, type Certificate, type Deployment } from "../gen/certctl/inventory/v1/inventory_pb";
import { shortFingerprint } from "../lib/agents";
import { versionNumber } from "../lib/discovery";
import { resourceId } from "../lib/names";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { CopyButton } from "./CopyButton";
import { DeploymentStateBadge } from "./fleetBadges";
import { Icon } from "./Icon";
import { Pager } from "./Pager";
import { Empty, ErrorAlert, Loading } from "./states";
import { RelTime, tsDate, useNow } from "./time";

const PAGE_SIZE = 100;

function ServedFingerprint({ d, expected }: { d: Deployment; expected: string }) {
  if (!d.servedFingerprint) return <span className="faint">—</span>;
  const fp = d.servedFingerprint.toLowerCase();
  const other = !!expected && fp !== expected.toLowerCase();
  return (
    <span className="copyable" data-testid="served-fingerprint">
      <code title={fp}>{shortFingerprint(fp)}</code>
      <CopyButton text={fp} label={`served fingerprint on ${resourceId(d.target)}`} />
      {other && (
        <span className="badge warn" title={`The current version's fingerprint is ${expected}`}>
          <Icon name="alert" size={12} /> not the current version
        </span>
      )}
    </span>
  );
}

/** Open deployments change state on the server; look again while any is pending. */
function anyPending(ds: Deployment[]): boolean {
  return ds.some((d) => d.state === DeploymentState.PENDING);
}

export function CertificateDeployments({ cert }: { cert: Certificate }) {
  const now = useNow();
  const targets = useAllTargets();
  const [stack, setStack] = useState<PageStack>(firstPage);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.deployments(cert.name), token],
    queryFn: () => inventory.listDeployments({ parent: cert.name, pageSize: PAGE_SIZE, pageToken: token }),
    placeholderData: keepPreviousData,
    retry: false,
    refetchInterval: (query) => (query.state.data && anyPending(query.state.data.deployments) ? 5_000 : 60_000),
  });
  const rows = q.data?.deployments ?? [];
  // Targets the certificate lists with no deployment record (on the first page only: the
  // API has no "targets without a deployment" filter, so later pages cannot tell).
  const recorded = new Set(rows.map((d) => d.target));
  const missing = token === "" && !q.data?.nextPageToken ? cert.targets.filter((t) => !recorded.has(t)) : [];
  const currentVersion = versionNumber(cert.currentVersion);
  return (
    <section className="panel flush" aria-labelledby="deployments-h">
      <div className="panel-head">
        <h2 id="deployments-h">Deployments</h2>
        <span className="faint">the latest outcome on each target</span>
        <span className="spacer" />
        <Link to="/targets">Targets →</Link>
      </div>
      {q.isPending ? (
        <Loading what="deployments" />
      ) : q.isError && isUnimplemented(q.error) ? (
        <Empty title="Deployments are not served by this server yet">
          <p className="faint">{toApiError(q.error).message}</p>
        </Empty>
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list this certificate's deployments" />
        </div>
      ) : rows.length === 0 && missing.length === 0 && !token ? (
        <Empty title="Not deployed anywhere">
          <p>
            Add a target to the certificate (<Link to={`/certificates/${resourceId(cert.name)}/edit`}>Edit</Link>); its agent deploys each new version there.
          </p>
        </Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table className="data">
              <thead>
                <tr>
                  <th>Target</th>
                  <th>State</th>
                  <th>Version</th>
                  <th>Served fingerprint</th>
                  <th>Message</th>
                  <th>Deployed</th>
                  <th>Verified</th>
                  <th>Updated</th>
                  <th>Job</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((d) => {
                  const v = versionNumber(d.version);
                  return (
                    <tr key={d.name} data-deployment={d.name}>
                      <td className="truncate" title={d.target}>
                        {labelFor(targets.data, d.target)}
                      </td>
                      <td>
                        <DeploymentStateBadge state={d.state} />
                      </td>
                      <td>
                        {v ? (
                          <>
                            #{v}
                            {v !== currentVersion && currentVersion && <span className="faint" title={`The current version is #${currentVersion}`}> (old)</span>}
                          </>
                        ) : (
                          <span className="faint">—</span>
                        )}
                      </td>
                      <td>
                        <ServedFingerprint d={d} expected={d.version === cert.currentVersion ? cert.sha256Fingerprint : ""} />
                      </td>
                      <td className="wrap" data-testid="deployment-message">
                        {d.message || <span className="faint">—</span>}
                      </td>
                      <td>
                        <RelTime at={tsDate(d.deployTime)} now={now} />
                      </td>
                      <td>
                        <RelTime at={tsDate(d.verifyTime)} now={now} />
                      </td>
                      <td>
                        <RelTime at={tsDate(d.updateTime)} now={now} />
                      </td>
                      <td>
                        {d.job ? (
                          <Link className="mono" to={`/jobs/${resourceId(d.job)}`} title={d.job}>
                            {resourceId(d.job).length > 14 ? `${resourceId(d.job).slice(0, 12)}…` : resourceId(d.job)}
                          </Link>
                        ) : (
                          <span className="faint">—</span>
                        )}
                      </td>
                    </tr>
                  );
                })}
                {missing.map((t) => (
                  <tr key={t} data-deployment-missing={t}>
                    <td className="truncate" title={t}>
                      {labelFor(targets.data, t)}
                    </td>
                    <td>
                      <span className="badge neutral" title="The certificate lists this target, and no deployment is recorded yet">
                        <Icon name="question" size={12} /> No record
                      </span>
                    </td>
                    <td colSpan={7} className="faint">
                      not deployed yet
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {(token !== "" || !!q.data?.nextPageToken) && (
            <Pager
              stack={stack}
              nextPageToken={q.data?.nextPageToken}
              shown={rows.length}
              fetching={q.isFetching && !q.isPending}
              onPrevious={() => setStack(popPrevious)}
              onNext={() => q.data && setStack((s) => pushNext(s, q.data.nextPageToken))}
            />
          )}
        </>
      )}
    </section>
  );
}
