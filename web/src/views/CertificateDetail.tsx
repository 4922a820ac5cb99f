import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { audit, inventory } from "../api/client";
import { keys, labelFor, useAllOwners, useAllTeams } from "../api/queries";
import { toApiError, violationFor, type ApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { Expiry, RelTime, tsDate, useNow } from "../components/time";
import { StateBadge } from "../components/StateBadge";
import { Copyable } from "../components/CopyButton";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Field } from "../components/Field";
import { useToast } from "../components/Toasts";
import { CertificateState, type Certificate } from "../gen/certctl/inventory/v1/inventory_pb";
import type { AuditEvent } from "../gen/certctl/audit/v1/audit_pb";
import { formatExact, humanDuration } from "../lib/expiry";
import { resourceId } from "../lib/names";
import { downloadText } from "../lib/download";
import { keyAlgorithmLabel } from "../lib/keys";
import { AuditTable } from "../components/audit";
import { useTitle } from "../lib/useTitle";
import { reasonLabelFromRfc } from "../lib/revocation";
import { CertificateJobs, RenewButton, RenewDialog, RevokeCurrentDialog } from "../components/certificateActions";
import { CertificateDeployments } from "../components/Deployments";
import { CertificateViolations } from "../components/policies";
import type { Job } from "../gen/certctl/scheduler/v1/scheduler_pb";

/** Why the certificate is in its state, in one sentence. */
export function stateReason(c: Certificate, now: Date): string {
  const na = tsDate(c.notAfter);
  switch (c.state) {
    case CertificateState.PENDING:
      return "No version has been issued or imported yet. Use “Issue now” to have its issuer sign one, or import a PEM.";
    case CertificateState.ACTIVE:
      return na ? `Valid for another ${humanDuration(na.getTime() - now.getTime())}, outside its renewal policy's first alert threshold.` : "Valid.";
    case CertificateState.EXPIRING:
      return na
        ? `Expires in ${humanDuration(na.getTime() - now.getTime())}, inside its renewal policy's first alert threshold${c.renewalPolicy ? "" : " (default 30 days)"}.`
        : "Inside its renewal policy's first alert threshold.";
    case CertificateState.EXPIRED:
      return na ? `The current version expired ${humanDuration(now.getTime() - na.getTime())} ago (${formatExact(na)}).` : "The current version has expired.";
    case CertificateState.REVOKED:
      return "The current version was revoked.";
    default:
      return "";
  }
}

function ImportVersionDialog({ open, parent, onClose }: { open: boolean; parent: string; onClose: () => void }) {
  const [pem, setPem] = useState("");
  const qc = useQueryClient();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => inventory.createCertificateVersion({ parent, pemChain: pem }),
    onSuccess: (r) => {
      toast(`Imported ${r.certificateVersion?.name ?? "a new version"}`);
      qc.invalidateQueries({ queryKey: keys.certificate(parent) });
      qc.invalidateQueries({ queryKey: keys.certificates });
      qc.invalidateQueries({ queryKey: keys.audit });
      setPem("");
      onClose();
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const fieldErr = violationFor(err, "pem_chain");
  return (
    <Modal title="Import a new version" open={open} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          m.mutate();
        }}
      >
        <p className="subtle" style={{ marginTop: 0 }}>
          Paste the leaf certificate in PEM, optionally followed by its chain. It becomes the current version of <code>{parent}</code>.
        </p>
        {err && !fieldErr && <ErrorAlert error={err} title="Import refused" />}
        <Field label="PEM chain" required error={fieldErr}>
          {(p) => (
            <textarea
              {...p}
              value={pem}
              onChange={(e) => setPem(e.target.value)}
              placeholder={"-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----"}
              spellCheck={false}
              rows={12}
            />
          )}
        </Field>
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn primary" disabled={!pem.trim() || m.isPending}>
            {m.isPending ? "Importing…" : "Import version"}
          </button>
        </div>
      </form>
    </Modal>
  );
}

function DeleteDialog({ open, cert, onClose }: { open: boolean; cert: Certificate; onClose: () => void }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => inventory.deleteCertificate({ name: cert.name }),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: keys.certificates });
      qc.removeQueries({ queryKey: keys.certificate(cert.name) });
      toast(`Deleted ${cert.name}`);
      navigate("/certificates");
    },
  });
  return (
    <Modal title={`Delete ${cert.name}?`} open={open} onClose={onClose}>
      <p style={{ marginTop: 0 }}>
        This removes the certificate and its versions from the inventory. Deployed copies on targets are not touched. The deletion is recorded in the
        audit trail.
      </p>
      {m.error && <ErrorAlert error={m.error} title="Delete refused" />}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
          {m.isPending ? "Deleting…" : "Delete certificate"}
        </button>
      </div>
    </Modal>
  );
}

function VersionsPanel({ cert }: { cert: Certificate }) {
  const now = useNow();
  const q = useQuery({
    queryKey: [...keys.certificate(cert.name), "versions"],
    queryFn: () => inventory.listCertificateVersions({ parent: cert.name, pageSize: 100 }),
  });
  return (
    <section className="panel flush" aria-labelledby="versions-h">
      <div className="panel-head">
        <h2 id="versions-h">Versions</h2>
      </div>
      {q.isPending ? (
        <Loading what="versions" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not list versions" />
        </div>
      ) : q.data.certificateVersions.length === 0 ? (
        <Empty title="No versions yet">
          <p>Use “Import version” to add the certificate’s PEM.</p>
        </Empty>
      ) : (
        <table className="data">
          <thead>
            <tr>
              <th>Version</th>
              <th>Serial</th>
              <th>Not before</th>
              <th>Not after</th>
              <th>Added</th>
              <th>Revoked</th>
              <th>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {q.data.certificateVersions.map((v) => (
              <tr key={v.name}>
                <td>
                  {resourceId(v.name)}
                  {v.name === cert.currentVersion && <span className="badge info" style={{ marginLeft: 6 }}>current</span>}
                </td>
                <td className="mono truncate" title={v.serialNumber}>
                  {v.serialNumber}
                </td>
                <td>
                  <RelTime at={tsDate(v.notBefore)} now={now} />
                </td>
                <td>
                  <Expiry at={tsDate(v.notAfter)} now={now} />
                </td>
                <td>
                  <RelTime at={tsDate(v.createTime)} now={now} />
                </td>
                <td data-testid="version-revoked">
                  {v.revokeTime ? (
                    <span className="badge revoked" title={formatExact(tsDate(v.revokeTime)!)}>
                      <Icon name="ban" size={12} /> {reasonLabelFromRfc(v.revocationReason) || "Revoked"} · <RelTime at={tsDate(v.revokeTime)} now={now} />
                    </span>
                  ) : (
                    <span className="faint">—</span>
                  )}
                </td>
                <td>
                  <button
                    type="button"
                    className="btn small"
                    disabled={!v.pemChain}
                    onClick={() => downloadText(`${resourceId(cert.name)}-v${resourceId(v.name)}.pem`, v.pemChain, "application/x-pem-file")}
                  >
                    <Icon name="download" /> PEM
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function CurrentVersion({ cert }: { cert: Certificate }) {
  const now = useNow();
  const q = useQuery({
    queryKey: [...keys.certificate(cert.name), "version", cert.currentVersion],
    queryFn: () => inventory.getCertificateVersion({ name: cert.currentVersion }),
    enabled: !!cert.currentVersion,
  });
  const v = q.data?.certificateVersion;
  return (
    <section className="panel" aria-labelledby="current-h">
      <div className="row" style={{ marginBottom: 8 }}>
        <h2 id="current-h" style={{ margin: 0, flex: 1 }}>
          Current version {cert.currentVersion ? <span className="faint">#{resourceId(cert.currentVersion)}</span> : null}
        </h2>
        {v?.pemChain && (
          <button type="button" className="btn small" onClick={() => downloadText(`${resourceId(cert.name)}-chain.pem`, v.pemChain, "application/x-pem-file")}>
            <Icon name="download" /> Download chain PEM
          </button>
        )}
      </div>
      {!cert.currentVersion ? (
        <Empty title="Pending: no version yet">
          <p>Use “Issue now”, or import the certificate’s PEM, to make it active.</p>
        </Empty>
      ) : (
        <>
          {q.isError && <ErrorAlert error={q.error} title="Could not load the current version" />}
          <dl className="props">
            <dt>Serial number</dt>
            <dd>
              <Copyable text={v?.serialNumber || cert.serialNumber} label="serial number" />
            </dd>
            <dt>SHA-256 fingerprint</dt>
            <dd>
              <Copyable text={v?.sha256Fingerprint || cert.sha256Fingerprint} label="SHA-256 fingerprint" />
            </dd>
            <dt>Not before</dt>
            <dd>{tsDate(cert.notBefore) ? formatExact(tsDate(cert.notBefore)!) : "—"}</dd>
            <dt>Not after</dt>
            <dd>
              <Expiry at={tsDate(cert.notAfter)} now={now} /> <span className="faint">{tsDate(cert.notAfter) ? formatExact(tsDate(cert.notAfter)!) : ""}</span>
            </dd>
            <dt>Next renewal</dt>
            <dd>
              {tsDate(cert.renewTime) ? (
                <>
                  <RelTime at={tsDate(cert.renewTime)} now={now} />{" "}
                  <span className="faint">{formatExact(tsDate(cert.renewTime)!)}</span>
                </>
              ) : (
                <span className="faint">{cert.issuer ? "none: the current version is revoked" : "none: certctl does not issue this certificate"}</span>
              )}
            </dd>
            {q.isPending ? (
              <>
                <dt>Subject</dt>
                <dd className="faint">loading…</dd>
              </>
            ) : v ? (
              <>
                <dt>Subject</dt>
                <dd className="mono">{v.subject || "—"}</dd>
                <dt>Issuer</dt>
                <dd className="mono">{v.issuer || "—"}</dd>
                <dt>Key</dt>
                <dd>
                  {keyAlgorithmLabel(v.keyAlgorithm, v.keySize)}
                  {v.keySize ? <span className="faint"> · {v.keySize} bits</span> : null}
                </dd>
                {v.revokeTime && (
                  <>
                    <dt>Revoked</dt>
                    <dd>
                      <span className="badge revoked">
                        <Icon name="ban" size={12} /> {reasonLabelFromRfc(v.revocationReason) || "Revoked"}
                      </span>{" "}
                      <span className="faint">{formatExact(tsDate(v.revokeTime)!)}</span>
                    </dd>
                  </>
                )}
                <dt>SANs in certificate</dt>
                <dd>{v.subjectAltNames.length ? v.subjectAltNames.map((s) => <span className="tag" key={s}>{s}</span>) : "—"}</dd>
              </>
            ) : null}
          </dl>
          {v?.pemChain && (
            <details style={{ marginTop: 8 }}>
              <summary>PEM chain</summary>
              <pre className="pem">{v.pemChain}</pre>
            </details>
          )}
        </>
      )}
    </section>
  );
}

function AuditHistory({ name }: { name: string }) {
  // Events on the certificate itself and on its sub-resources (versions).
  const q = useQuery({
    queryKey: [...keys.audit, "resource", name],
    queryFn: async () => {
      const [own, children] = await Promise.all([
        audit.listAuditEvents({ resource: name, pageSize: 100 }),
        audit.listAuditEvents({ resource: `${name}/`, pageSize: 100 }),
      ]);
      const seen = new Map<bigint, AuditEvent>();
      for (const e of [...own.auditEvents, ...children.auditEvents]) seen.set(e.sequence, e);
      return {
        events: [...seen.values()].sort((a, b) => (a.sequence < b.sequence ? 1 : -1)),
        more: !!own.nextPageToken || !!children.nextPageToken,
      };
    },
  });
  return (
    <section className="panel flush" aria-labelledby="history-h">
      <div className="panel-head">
        <h2 id="history-h">Audit history</h2>
        <span className="spacer" />
        <Link to={`/audit?resource=${encodeURIComponent(name)}`}>Open in audit trail →</Link>
      </div>
      {q.isPending ? (
        <Loading what="audit history" />
      ) : q.isError ? (
        <div style={{ padding: 10 }}>
          <ErrorAlert error={q.error} title="Could not load the audit history" />
        </div>
      ) : q.data.events.length === 0 ? (
        <Empty title="No audit events for this certificate" />
      ) : (
        <AuditTable events={q.data.events} />
      )}
    </section>
  );
}

export function CertificateDetail() {
  const { id = "" } = useParams();
  const name = `certificates/${id}`;
  useTitle(id);
  const now = useNow();
  const owners = useAllOwners();
  const teams = useAllTeams();
  const [importOpen, setImportOpen] = useState(false);
  const [deleteOpen, setDeleteOpen] = useState(false);
  const [renewOpen, setRenewOpen] = useState(false);
  const [revokeOpen, setRevokeOpen] = useState(false);
  const [queued, setQueued] = useState<Job | undefined>(undefined);
  const q = useQuery({ queryKey: keys.certificate(name), queryFn: () => inventory.getCertificate({ name }) });

  if (q.isPending) return <Loading what={name} />;
  if (q.isError)
    return (
      <>
        <div className="page-head">
          <h1>{name}</h1>
        </div>
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
        <Link to="/certificates">← Back to certificates</Link>
      </>
    );
  const c = q.data.certificate;
  if (!c) return <Empty title="The server returned no certificate" />;
  const labels = Object.entries(c.labels);
  const metadata = Object.entries(c.metadata);
  return (
    <>
      <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
        <Link to="/certificates">Certificates</Link> / {id}
      </nav>
      <div className="page-head">
        <h1>{c.displayName || id}</h1>
        <StateBadge state={c.state} />
        <Expiry at={tsDate(c.notAfter)} now={now} />
        <span className="spacer" />
        <RenewButton cert={c} onClick={() => setRenewOpen(true)} />
        <Link className="btn" to={`/certificates/${id}/edit`}>
          <Icon name="edit" /> Edit
        </Link>
        <button type="button" className="btn" onClick={() => setImportOpen(true)}>
          <Icon name="plus" /> Import version
        </button>
        {c.currentVersion && c.issuer && c.state !== CertificateState.REVOKED && (
          <button type="button" className="btn danger" onClick={() => setRevokeOpen(true)} aria-label="Revoke current version" title="Revoke the current version at its issuer">
            <Icon name="ban" /> Revoke
          </button>
        )}
        <button type="button" className="btn danger" onClick={() => setDeleteOpen(true)}>
          <Icon name="trash" /> Delete
        </button>
      </div>
      <p className="subtle" style={{ marginTop: -4 }} data-testid="state-reason">
        {stateReason(c, now)}
      </p>
      <div className="grid-2" style={{ marginBottom: 12 }}>
        <section className="panel" aria-labelledby="props-h">
          <h2 id="props-h">Certificate</h2>
          <dl className="props">
            <dt>Name</dt>
            <dd>
              <Copyable text={c.name} label="resource name" />
            </dd>
            <dt>Common name</dt>
            <dd className="mono">{c.commonName || "—"}</dd>
            <dt>SANs</dt>
            <dd>{c.subjectAltNames.length ? c.subjectAltNames.map((s) => <span className="tag" key={s}>{s}</span>) : <span className="faint">none</span>}</dd>
            <dt>Owner</dt>
            <dd>{c.owner ? <Link to={`/certificates?owner=${resourceId(c.owner)}`}>{labelFor(owners.data, c.owner)}</Link> : <span className="faint">unassigned</span>}</dd>
            <dt>Team</dt>
            <dd>{c.team ? <Link to={`/certificates?team=${resourceId(c.team)}`}>{labelFor(teams.data, c.team)}</Link> : <span className="faint">none</span>}</dd>
            <dt>Environment</dt>
            <dd>{c.environment ? <Link to={`/certificates?environment=${encodeURIComponent(c.environment)}`}>{c.environment}</Link> : <span className="faint">—</span>}</dd>
            <dt>Issuer</dt>
            <dd className="mono">{c.issuer ? <Link to={`/issuers/${resourceId(c.issuer)}/issued`}>{c.issuer}</Link> : <span className="faint">—</span>}</dd>
            <dt>Profile</dt>
            <dd className="mono">{c.profile ? <Link to={`/profiles/${resourceId(c.profile)}`}>{c.profile}</Link> : <span className="faint">—</span>}</dd>
            <dt>Key custody</dt>
            <dd data-testid="key-custody">
              {c.serverKeyed ? (
                <span title="The platform generates the private key and keeps it, encrypted, until it is exported once">
                  <Icon name="key" /> Server-keyed
                </span>
              ) : (
                <span className="subtle">Agent or caller (CSR)</span>
              )}
            </dd>
            <dt>Key algorithm</dt>
            <dd>{c.keyAlgorithm ? keyAlgorithmLabel(c.keyAlgorithm) : <span className="faint">profile default</span>}</dd>
            <dt>Renewal policy</dt>
            <dd>{c.renewalPolicy ? <code>{c.renewalPolicy}</code> : <span className="faint">built-in defaults</span>}</dd>
            <dt>Targets</dt>
            <dd>{c.targets.length ? c.targets.map((t) => <span className="tag" key={t}>{t}</span>) : <span className="faint">not deployed anywhere</span>}</dd>
            <dt>Labels</dt>
            <dd>{labels.length ? labels.map(([k, v]) => <span className="tag" key={k}>{`${k}=${v}`}</span>) : <span className="faint">—</span>}</dd>
            {metadata.length > 0 && (
              <>
                <dt>Metadata</dt>
                <dd>
                  {metadata.map(([k, v]) => (
                    <span className="tag" key={k}>{`${k}: ${v}`}</span>
                  ))}
                </dd>
              </>
            )}
            <dt>Created</dt>
            <dd>
              <RelTime at={tsDate(c.createTime)} now={now} />
            </dd>
            <dt>Updated</dt>
            <dd>
              <RelTime at={tsDate(c.updateTime)} now={now} />
            </dd>
          </dl>
        </section>
        <CurrentVersion cert={c} />
      </div>
      <div className="stack">
        <CertificateJobs cert={c} focus={queued} />
        <CertificateDeployments cert={c} />
        <CertificateViolations cert={c} />
        <VersionsPanel cert={c} />
        <AuditHistory name={c.name} />
      </div>
      <ImportVersionDialog open={importOpen} parent={c.name} onClose={() => setImportOpen(false)} />
      <DeleteDialog open={deleteOpen} cert={c} onClose={() => setDeleteOpen(false)} />
      <RenewDialog open={renewOpen} cert={c} onClose={() => setRenewOpen(false)} onJob={setQueued} />
      <RevokeCurrentDialog open={revokeOpen} cert={c} onClose={() => setRevokeOpen(false)} />
    </>
  );
}
