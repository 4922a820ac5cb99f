// Issuers and their CA certificates; creating a Local CA; the certificates an issuer signed.
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { issuance } from "../api/client";
import { keys } from "../api/queries";
import { toApiError, violationFor, type ApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { Expiry, RelTime, tsDate, useNow } from "../components/time";
import { CopyButton, Copyable } from "../components/CopyButton";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Field } from "../components/Field";
import { Pager } from "../components/Pager";
import { useToast } from "../components/Toasts";
import { RevokeForm } from "../components/RevokeDialog";
import { IssuerType, type Authority, type IssuedCertificate, type Issuer } from "../gen/certctl/issuance/v1/issuance_pb";
import { KeyAlgorithm } from "../gen/certctl/type/v1/key_pb";
import { GENERATABLE_KEYS, keyAlgorithmLabel } from "../lib/keys";
import { ID_PATTERN, resourceId, suggestId } from "../lib/names";
import { downloadText } from "../lib/download";
import { formatExact } from "../lib/expiry";
import { durationFromSeconds, formatDurationLong, parseDuration } from "../lib/duration";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { reasonLabel } from "../lib/revocation";
import { useTitle } from "../lib/useTitle";

function issuerTypeLabel(t: IssuerType): string {
  return t === IssuerType.LOCAL_CA ? "Local CA" : "Unknown type";
}

function issuerSource(i: Issuer): string {
  if (i.config.case !== "localCa") return "";
  const src = i.config.value.source;
  if (src.case === "generate") return `generated hierarchy, ${keyAlgorithmLabel(src.value.keyAlgorithm)}`;
  if (src.case === "import") return "imported CA";
  return "";
}

function AuthorityCard({ a }: { a: Authority }) {
  const now = useNow();
  const nb = tsDate(a.notBefore);
  const na = tsDate(a.notAfter);
  return (
    <article className="authority" aria-label={`${a.role} authority ${resourceId(a.name)}`} data-role={a.role}>
      <div className="row" style={{ marginBottom: 6 }}>
        <strong style={{ textTransform: "capitalize" }}>{a.role}</strong>
        {a.issuing ? (
          <span className="badge ok" title="Signs leaf certificates">
            <Icon name="check" size={12} /> Issuing
          </span>
        ) : (
          <span className="badge neutral" title="Does not sign leaves">
            <Icon name="shield" size={12} /> Not issuing
          </span>
        )}
        <span style={{ flex: 1 }} />
        <button
          type="button"
          className="btn small"
          disabled={!a.certificatePem}
          onClick={() => downloadText(`${a.name.replace(/^issuers\//, "").replace(/\/authorities\//, "-")}.pem`, a.certificatePem, "application/x-pem-file")}
          aria-label={`Download ${a.role} CA certificate PEM`}
        >
          <Icon name="download" /> CA certificate PEM
        </button>
      </div>
      <dl className="props">
        <dt>Subject</dt>
        <dd className="mono">{a.subject || "—"}</dd>
        <dt>Serial</dt>
        <dd>
          <Copyable text={a.serialNumber} label={`${a.role} serial number`} />
        </dd>
        <dt>SHA-256</dt>
        <dd>
          <Copyable text={a.sha256Fingerprint} label={`${a.role} SHA-256 fingerprint`} />
        </dd>
        <dt>Key</dt>
        <dd>{keyAlgorithmLabel(a.keyAlgorithm)}</dd>
        <dt>Valid</dt>
        <dd>
          <span title={nb ? formatExact(nb) : undefined}>{nb ? nb.toISOString().slice(0, 10) : "—"}</span> →{" "}
          <span title={na ? formatExact(na) : undefined}>{na ? na.toISOString().slice(0, 10) : "—"}</span> <Expiry at={na} now={now} />
        </dd>
        <dt>CRL</dt>
        <dd>{a.crlUrl ? <Copyable text={a.crlUrl} label={`${a.role} CRL URL`} /> : <span className="faint">not published</span>}</dd>
        <dt>OCSP</dt>
        <dd>{a.ocspUrl ? <Copyable text={a.ocspUrl} label={`${a.role} OCSP URL`} /> : <span className="faint">not published</span>}</dd>
      </dl>
    </article>
  );
}

function Authorities({ issuer }: { issuer: string }) {
  const q = useQuery({ queryKey: keys.authorities(issuer), queryFn: () => issuance.listAuthorities({ parent: issuer }) });
  if (q.isPending) return <Loading what="CA certificates" />;
  if (q.isError)
    return (
      <div style={{ padding: 10 }}>
        <ErrorAlert error={q.error} title={`Could not list the CA certificates of ${issuer}`} />
      </div>
    );
  if (q.data.authorities.length === 0) return <Empty title="No CA certificates">The issuer has no authority yet.</Empty>;
  return (
    <div className="authorities">
      {q.data.authorities.map((a) => (
        <AuthorityCard key={a.name} a={a} />
      ))}
    </div>
  );
}

function IssuerPanel({ issuer }: { issuer: Issuer }) {
  const now = useNow();
  const id = resourceId(issuer.name);
  return (
    <section className="panel flush" aria-labelledby={`issuer-${id}`} data-issuer={issuer.name}>
      <div className="panel-head">
        <h2 id={`issuer-${id}`}>{issuer.displayName || id}</h2>
        <code>{issuer.name}</code>
        <span className="badge info">{issuerTypeLabel(issuer.type)}</span>
        <span className="faint">{issuerSource(issuer)}</span>
        <span className="spacer" />
        <span className="faint">
          created <RelTime at={tsDate(issuer.createTime)} now={now} />
        </span>
        <Link className="btn small" to={`/issuers/${id}/issued`}>
          <Icon name="list" /> Issued certificates
        </Link>
        <Link className="btn small" to={`/certificates?issuer=${encodeURIComponent(id)}`}>
          <Icon name="cert" /> Managed certificates
        </Link>
      </div>
      <Authorities issuer={issuer.name} />
    </section>
  );
}

type Source = "generate" | "import";

function CreateLocalCa({ onClose }: { onClose: () => void }) {
  const qc = useQueryClient();
  const toast = useToast();
  const [id, setId] = useState("");
  const [idTouched, setIdTouched] = useState(false);
  const [displayName, setDisplayName] = useState("");
  const [source, setSource] = useState<Source>("generate");
  const [commonName, setCommonName] = useState("");
  const [organization, setOrganization] = useState("");
  const [key, setKey] = useState<KeyAlgorithm>(KeyAlgorithm.UNSPECIFIED);
  const [lifetime, setLifetime] = useState("");
  const [chain, setChain] = useState("");
  const [privateKey, setPrivateKey] = useState("");
  const parsedLifetime = lifetime.trim() ? parseDuration(lifetime) : undefined;
  const lifetimeError = parsedLifetime && "error" in parsedLifetime ? parsedLifetime.error : undefined;

  const m = useMutation({
    mutationFn: async () => {
      const src =
        source === "generate"
          ? {
              case: "generate" as const,
              value: {
                commonName: commonName.trim(),
                organization: organization.trim(),
                keyAlgorithm: key,
                rootLifetime: parsedLifetime && "seconds" in parsedLifetime ? durationFromSeconds(parsedLifetime.seconds) : undefined,
              },
            }
          : { case: "import" as const, value: { certificateChainPem: chain, privateKeyPem: privateKey } };
      const r = await issuance.createIssuer({
        issuerId: id.trim(),
        issuer: { displayName: displayName.trim(), config: { case: "localCa", value: { source: src } } },
      });
      return r.issuer;
    },
    onSuccess: (i) => {
      qc.invalidateQueries({ queryKey: keys.issuers });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Created ${i?.name ?? "the issuer"}`);
      onClose();
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const fe = (k: string) => violationFor(err, k);
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (lifetimeError) return;
        m.mutate();
      }}
    >
      {err && <ErrorAlert error={err} title="The server refused to create the issuer" />}
      <div className="form-grid">
        <Field label="ID" required error={fe("issuer_id")} hint={<>Becomes <code>issuers/{id || "…"}</code></>}>
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
        <Field label="Display name" error={fe("display_name")}>
          {(p) => (
            <input
              {...p}
              type="text"
              value={displayName}
              placeholder="Internal services CA"
              onChange={(e) => {
                setDisplayName(e.target.value);
                if (!idTouched) setId(suggestId(e.target.value));
              }}
            />
          )}
        </Field>
        <fieldset className="span-2" style={{ border: "none", padding: 0, margin: 0 }}>
          <legend className="subtle" style={{ fontSize: "var(--fs-sm)", marginBottom: 4 }}>
            CA keys
          </legend>
          <div className="checks">
            <label>
              <input type="radio" name="ca-source" checked={source === "generate"} onChange={() => setSource("generate")} /> Generate a new root and
              intermediate
            </label>
            <label>
              <input type="radio" name="ca-source" checked={source === "import"} onChange={() => setSource("import")} /> Import an existing CA
              certificate and key
            </label>
          </div>
        </fieldset>
        {source === "generate" ? (
          <>
            <Field label="Common name" error={fe("common_name")} hint="Subject CN prefix; defaults to the display name">
              {(p) => <input {...p} type="text" value={commonName} onChange={(e) => setCommonName(e.target.value)} />}
            </Field>
            <Field label="Organisation" error={fe("organization")} hint="Defaults to certctl">
              {(p) => <input {...p} type="text" value={organization} onChange={(e) => setOrganization(e.target.value)} />}
            </Field>
            <Field label="Key algorithm" error={fe("key_algorithm")}>
              {(p) => (
                <select {...p} value={key} onChange={(e) => setKey(Number(e.target.value) as KeyAlgorithm)}>
                  <option value={KeyAlgorithm.UNSPECIFIED}>Default (ECDSA P-256)</option>
                  {GENERATABLE_KEYS.map((k) => (
                    <option key={k} value={k}>
                      {keyAlgorithmLabel(k)}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            <Field
              label="Root lifetime"
              error={lifetimeError ?? fe("root_lifetime")}
              hint={parsedLifetime && "seconds" in parsedLifetime ? `${formatDurationLong(parsedLifetime.seconds)}; the intermediate gets half` : "For example 10y or 3650d; defaults to 10 years, the intermediate gets half"}
            >
              {(p) => <input {...p} type="text" className="mono" value={lifetime} placeholder="10y" onChange={(e) => setLifetime(e.target.value)} />}
            </Field>
          </>
        ) : (
          <>
            <Field label="CA certificate chain (PEM)" className="span-2" required error={fe("certificate_chain_pem") ?? fe("import")} hint="The CA certificate first, then its chain up to the root">
              {(p) => <textarea {...p} rows={6} value={chain} onChange={(e) => setChain(e.target.value)} spellCheck={false} placeholder="-----BEGIN CERTIFICATE-----" />}
            </Field>
            <Field label="CA private key (PKCS#8 PEM)" className="span-2" required error={fe("private_key_pem")} hint="Sealed under the master key; never returned by the API">
              {(p) => <textarea {...p} rows={5} value={privateKey} onChange={(e) => setPrivateKey(e.target.value)} spellCheck={false} placeholder="-----BEGIN PRIVATE KEY-----" />}
            </Field>
          </>
        )}
      </div>
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn primary" disabled={m.isPending || !!lifetimeError}>
          {m.isPending ? (source === "generate" ? "Generating keys…" : "Importing…") : "Create Local CA"}
        </button>
      </div>
    </form>
  );
}

export function IssuersView() {
  useTitle("Issuers & CAs");
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [creating, setCreating] = useState(false);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.issuers, "page", token],
    queryFn: () => issuance.listIssuers({ pageSize: 20, pageToken: token }),
    placeholderData: keepPreviousData,
  });
  return (
    <>
      <div className="page-head">
        <h1>Issuers &amp; CAs</h1>
        <span className="spacer" />
        <button type="button" className="btn primary" onClick={() => setCreating(true)}>
          <Icon name="plus" /> New Local CA
        </button>
      </div>
      {q.isPending ? (
        <Loading what="issuers" />
      ) : q.isError ? (
        <ErrorAlert error={q.error} title="Could not list issuers" />
      ) : q.data.issuers.length === 0 && !token ? (
        <section className="panel">
          <Empty title="No issuers yet">
            <p>Create a Local CA to start issuing certificates.</p>
          </Empty>
        </section>
      ) : (
        <div className="stack">
          {q.data.issuers.map((i) => (
            <IssuerPanel key={i.name} issuer={i} />
          ))}
          {(stack.tokens.length > 1 || q.data.nextPageToken) && (
            <section className="panel flush">
              <Pager
                stack={stack}
                nextPageToken={q.data.nextPageToken}
                shown={q.data.issuers.length}
                fetching={q.isFetching}
                onPrevious={() => setStack(popPrevious(stack))}
                onNext={() => setStack(pushNext(stack, q.data.nextPageToken))}
              />
            </section>
          )}
        </div>
      )}
      <Modal title="New Local CA" open={creating} onClose={() => setCreating(false)}>
        <CreateLocalCa onClose={() => setCreating(false)} />
      </Modal>
    </>
  );
}

function IssuedStatus({ c, now }: { c: IssuedCertificate; now: Date }) {
  if (c.revoked)
    return (
      <span className="badge revoked" data-state="revoked" title={c.revokeTime ? `Revoked ${formatExact(tsDate(c.revokeTime)!)}` : undefined}>
        <Icon name="ban" size={12} /> Revoked <span style={{ fontWeight: 400 }}>· {reasonLabel(c.revocationReason)}</span>
      </span>
    );
  const na = tsDate(c.notAfter);
  if (na && na.getTime() <= now.getTime())
    return (
      <span className="badge crit" data-state="expired">
        <Icon name="x" size={12} /> Expired
      </span>
    );
  return (
    <span className="badge ok" data-state="valid">
      <Icon name="check" size={12} /> Valid
    </span>
  );
}

export function IssuedCertificatesView() {
  const { id = "" } = useParams();
  const issuer = `issuers/${id}`;
  useTitle(`Issued by ${id}`);
  const now = useNow();
  const [params, setParams] = useSearchParams();
  const revokedOnly = params.get("revoked") === "1";
  const [stack, setStack] = useState<PageStack>(firstPage);
  const [revoking, setRevoking] = useState<IssuedCertificate | null>(null);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.issued(issuer), revokedOnly, token],
    queryFn: () => issuance.listIssuedCertificates({ parent: issuer, pageSize: 50, pageToken: token, revokedOnly }),
    placeholderData: keepPreviousData,
  });
  const items = q.data?.issuedCertificates ?? [];
  return (
    <>
      <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
        <Link to="/issuers">Issuers &amp; CAs</Link> / {id}
      </nav>
      <div className="page-head">
        <h1>Issued by {id}</h1>
        <span className="spacer" />
        <label className="toggle">
          <input
            type="checkbox"
            checked={revokedOnly}
            onChange={(e) => {
              const p = new URLSearchParams(params);
              if (e.target.checked) p.set("revoked", "1");
              else p.delete("revoked");
              setParams(p, { replace: true });
              setStack(firstPage);
            }}
          />{" "}
          Revoked only
        </label>
      </div>
      {q.isError && <ErrorAlert error={q.error} title={`Could not list the certificates ${issuer} issued`} />}
      <section className="panel flush" aria-label="Issued certificates">
        {q.isPending ? (
          <Loading what="issued certificates" />
        ) : q.isSuccess && items.length === 0 && !token ? (
          <Empty title={revokedOnly ? "Nothing revoked" : "Nothing issued yet"}>
            <p>
              {revokedOnly ? (
                "No certificate from this issuer has been revoked."
              ) : (
                <>
                  Certificates appear here once a managed certificate with issuer <code>{issuer}</code> is issued: use “Issue now” on its page.
                </>
              )}
            </p>
          </Empty>
        ) : (
          <>
            <div className="table-wrap">
              <table className="data">
                <thead>
                  <tr>
                    <th>Status</th>
                    <th>Serial</th>
                    <th>Common name</th>
                    <th>Managed version</th>
                    <th>Profile</th>
                    <th title="Who holds the private key">Key</th>
                    <th>Not after</th>
                    <th>
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {items.map((c) => {
                    const cert = c.certificateVersion.split("/versions/")[0] ?? "";
                    return (
                      <tr key={c.name} data-serial={c.serialNumber}>
                        <td>
                          <IssuedStatus c={c} now={now} />
                        </td>
                        <td>
                          <span className="copyable">
                            <code title={c.serialNumber}>{c.serialNumber.length > 14 ? `${c.serialNumber.slice(0, 12)}…` : c.serialNumber}</code>
                            <CopyButton text={c.serialNumber} label={`serial ${c.serialNumber}`} />
                          </span>
                        </td>
                        <td className="truncate narrow mono" title={c.subjectAltNames.join(", ")}>
                          {c.commonName || c.subjectAltNames[0] || "—"}
                          {c.subjectAltNames.length > 1 && <span className="faint"> +{c.subjectAltNames.length - 1}</span>}
                        </td>
                        <td className="truncate">
                          {c.certificateVersion ? (
                            <Link className="mono" to={`/certificates/${resourceId(cert)}`}>
                              {resourceId(cert)} #{resourceId(c.certificateVersion)}
                            </Link>
                          ) : (
                            <span className="faint">not managed</span>
                          )}
                        </td>
                        <td className="mono">{c.profile ? <Link to={`/profiles/${resourceId(c.profile)}`}>{resourceId(c.profile)}</Link> : "—"}</td>
                        <td>{c.serverKeyed ? <span title="The platform holds the private key until it is exported">server</span> : <span className="faint">caller</span>}</td>
                        <td>
                          <Expiry at={tsDate(c.notAfter)} now={now} />
                        </td>
                        <td style={{ textAlign: "right" }}>
                          <button type="button" className="btn small danger" disabled={c.revoked} onClick={() => setRevoking(c)} aria-label={`Revoke ${c.serialNumber}`}>
                            <Icon name="ban" /> Revoke
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
              shown={items.length}
              fetching={q.isFetching}
              onPrevious={() => setStack(popPrevious(stack))}
              onNext={() => setStack(pushNext(stack, q.data?.nextPageToken ?? ""))}
            />
          </>
        )}
      </section>
      <Modal title={revoking ? `Revoke ${revoking.commonName || revoking.serialNumber}?` : "Revoke"} open={!!revoking} onClose={() => setRevoking(null)}>
        {revoking && <RevokeForm issued={revoking} onClose={() => setRevoking(null)} />}
      </Modal>
    </>
  );
}
