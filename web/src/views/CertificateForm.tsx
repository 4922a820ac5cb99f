import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { inventory } from "../api/client";
import { keys, useAllIssuers, useAllOwners, useAllProfiles, useAllRenewalPolicies, useAllTargets, useAllTeams } from "../api/queries";
import { KeyAlgorithm } from "../gen/certctl/type/v1/key_pb";
import { GENERATABLE_KEYS, keyAlgorithmLabel } from "../lib/keys";
import { toApiError, violationFor, type ApiError } from "../api/errors";
import { ErrorAlert, Loading } from "../components/states";
import { Field } from "../components/Field";
import { useToast } from "../components/Toasts";
import { ID_PATTERN, resourceId, suggestId } from "../lib/names";
import { changedFields, formatLabels, newRequestId, parseLabels, splitList } from "../lib/form";
import type { Certificate } from "../gen/certctl/inventory/v1/inventory_pb";
import { useTitle } from "../lib/useTitle";

interface FormValues {
  certificate_id: string;
  display_name: string;
  common_name: string;
  subject_alt_names: string[];
  owner: string;
  team: string;
  environment: string;
  issuer: string;
  profile: string;
  renewal_policy: string;
  targets: string[];
  labels: Record<string, string>;
  server_keyed: boolean;
  key_algorithm: KeyAlgorithm;
}

const EDITABLE: (keyof FormValues & string)[] = [
  "display_name",
  "common_name",
  "subject_alt_names",
  "owner",
  "team",
  "environment",
  "issuer",
  "profile",
  "renewal_policy",
  "targets",
  "labels",
  "server_keyed",
  "key_algorithm",
];

function fromCertificate(c: Certificate): FormValues {
  return {
    certificate_id: resourceId(c.name),
    display_name: c.displayName,
    common_name: c.commonName,
    subject_alt_names: [...c.subjectAltNames],
    owner: c.owner,
    team: c.team,
    environment: c.environment,
    issuer: c.issuer,
    profile: c.profile,
    renewal_policy: c.renewalPolicy,
    targets: [...c.targets],
    labels: { ...c.labels },
    server_keyed: c.serverKeyed,
    key_algorithm: c.keyAlgorithm,
  };
}

const EMPTY: FormValues = {
  certificate_id: "",
  display_name: "",
  common_name: "",
  subject_alt_names: [],
  owner: "",
  team: "",
  environment: "",
  issuer: "",
  profile: "",
  renewal_policy: "",
  targets: [],
  labels: {},
  server_keyed: false,
  key_algorithm: KeyAlgorithm.UNSPECIFIED,
};

function CertificateFormBody({ mode, initial }: { mode: "create" | "edit"; initial: FormValues }) {
  const owners = useAllOwners();
  const teams = useAllTeams();
  const targets = useAllTargets();
  const policies = useAllRenewalPolicies();
  const issuers = useAllIssuers();
  const profiles = useAllProfiles();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const [v, setV] = useState<FormValues>(initial);
  const [sanText, setSanText] = useState(initial.subject_alt_names.join("\n"));
  const [labelText, setLabelText] = useState(formatLabels(initial.labels));
  const [idTouched, setIdTouched] = useState(mode === "edit");
  const requestId = useMemo(newRequestId, []);
  const labelParse = parseLabels(labelText);

  const set = <K extends keyof FormValues>(k: K, value: FormValues[K]) => setV((old) => ({ ...old, [k]: value }));

  useEffect(() => {
    if (!idTouched && mode === "create") set("certificate_id", suggestId(v.common_name));
  }, [v.common_name, idTouched, mode]);

  const current: FormValues = { ...v, subject_alt_names: splitList(sanText), labels: labelParse.labels };
  const mask = mode === "edit" ? changedFields(initial, current, EDITABLE) : [];

  const m = useMutation({
    mutationFn: async () => {
      const certificate = {
        name: mode === "edit" ? `certificates/${initial.certificate_id}` : "",
        displayName: current.display_name.trim(),
        commonName: current.common_name.trim(),
        subjectAltNames: current.subject_alt_names,
        owner: current.owner,
        team: current.team,
        environment: current.environment.trim(),
        issuer: current.issuer.trim(),
        profile: current.profile.trim(),
        renewalPolicy: current.renewal_policy,
        targets: current.targets,
        labels: current.labels,
        serverKeyed: current.server_keyed,
        keyAlgorithm: current.key_algorithm,
      };
      if (mode === "create") {
        const r = await inventory.createCertificate({ certificate, certificateId: current.certificate_id.trim(), requestId });
        return r.certificate;
      }
      const r = await inventory.updateCertificate({ certificate, updateMask: { paths: mask } });
      return r.certificate;
    },
    onSuccess: (c) => {
      qc.invalidateQueries({ queryKey: keys.certificates });
      qc.invalidateQueries({ queryKey: keys.audit });
      if (c) qc.setQueryData(keys.certificate(c.name), { certificate: c });
      toast(mode === "create" ? `Created ${c?.name ?? "certificate"}` : `Saved ${c?.name ?? "certificate"} (${mask.join(", ")})`);
      navigate(`/certificates/${c ? resourceId(c.name) : initial.certificate_id}`);
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const fe = (k: string) => violationFor(err, k);
  const listHint = "One per line, or comma-separated";

  return (
    <form
      className="panel"
      style={{ maxWidth: 980 }}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (labelParse.error) return;
        m.mutate();
      }}
    >
      {err && <ErrorAlert error={err} title={mode === "create" ? "The server refused to create the certificate" : "The server refused the change"} />}
      <div className="form-grid">
        {mode === "create" ? (
          <Field label="ID" required error={fe("certificate_id")} hint={<>Becomes <code>certificates/{v.certificate_id || "…"}</code>: lower-case letters, digits, - and ., at most 63</>}>
            {(p) => (
              <input
                {...p}
                type="text"
                pattern={ID_PATTERN}
                maxLength={63}
                value={v.certificate_id}
                onChange={(e) => {
                  setIdTouched(true);
                  set("certificate_id", e.target.value);
                }}
                autoComplete="off"
              />
            )}
          </Field>
        ) : (
          <Field label="Name" hint="The resource name cannot change">
            {(p) => <input {...p} type="text" value={`certificates/${initial.certificate_id}`} readOnly />}
          </Field>
        )}
        <Field label="Display name" error={fe("display_name")}>
          {(p) => <input {...p} type="text" value={v.display_name} onChange={(e) => set("display_name", e.target.value)} placeholder="Public API" />}
        </Field>
        <Field label="Common name" required error={fe("common_name")}>
          {(p) => <input {...p} type="text" className="mono" value={v.common_name} onChange={(e) => set("common_name", e.target.value)} placeholder="api.example.com" autoComplete="off" />}
        </Field>
        <Field label="Environment" error={fe("environment")} hint="For example production, staging">
          {(p) => <input {...p} type="text" value={v.environment} onChange={(e) => set("environment", e.target.value)} list="env-suggestions" />}
        </Field>
        <datalist id="env-suggestions">
          <option value="production" />
          <option value="staging" />
          <option value="development" />
        </datalist>
        <Field label="Subject alternative names" className="span-2" error={fe("subject_alt_names")} hint={listHint}>
          {(p) => (
            <textarea {...p} style={{ minHeight: 70 }} value={sanText} onChange={(e) => setSanText(e.target.value)} placeholder={"api.example.com\nwww.api.example.com"} spellCheck={false} />
          )}
        </Field>
        <Field label="Owner" error={fe("owner")}>
          {(p) => (
            <select {...p} value={v.owner} onChange={(e) => set("owner", e.target.value)}>
              <option value="">Unassigned</option>
              {owners.data?.map((o) => (
                <option key={o.name} value={o.name}>
                  {o.displayName || resourceId(o.name)}
                </option>
              ))}
              {v.owner && !owners.data?.some((o) => o.name === v.owner) && <option value={v.owner}>{v.owner}</option>}
            </select>
          )}
        </Field>
        <Field label="Team" error={fe("team")}>
          {(p) => (
            <select {...p} value={v.team} onChange={(e) => set("team", e.target.value)}>
              <option value="">None</option>
              {teams.data?.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.displayName || resourceId(t.name)}
                </option>
              ))}
              {v.team && !teams.data?.some((t) => t.name === v.team) && <option value={v.team}>{v.team}</option>}
            </select>
          )}
        </Field>
        <Field label="Issuer" error={fe("issuer")} hint={<>Resource name, e.g. <code>issuers/letsencrypt</code></>}>
          {(p) => <input {...p} type="text" className="mono" value={v.issuer} onChange={(e) => set("issuer", e.target.value)} list="issuer-options" autoComplete="off" />}
        </Field>
        <Field label="Profile" error={fe("profile")} hint={<>Resource name, e.g. <code>profiles/web-server</code></>}>
          {(p) => <input {...p} type="text" className="mono" value={v.profile} onChange={(e) => set("profile", e.target.value)} list="profile-options" autoComplete="off" />}
        </Field>
        <datalist id="issuer-options">
          {issuers.data?.map((i) => (
            <option key={i.name} value={i.name}>
              {i.displayName}
            </option>
          ))}
        </datalist>
        <datalist id="profile-options">
          {profiles.data?.map((pr) => (
            <option key={pr.name} value={pr.name}>
              {pr.displayName}
            </option>
          ))}
        </datalist>
        <Field label="Key custody" error={fe("server_keyed")} hint={v.server_keyed ? "certctl generates the key and keeps it encrypted until it is exported once" : "The key stays with the agent or the caller that sends the CSR"}>
          {(p) => (
            <label className="toggle" style={{ minHeight: 30 }}>
              <input {...p} type="checkbox" checked={v.server_keyed} onChange={(e) => set("server_keyed", e.target.checked)} /> Server-keyed (the platform generates the private key)
            </label>
          )}
        </Field>
        <Field label="Key algorithm" error={fe("key_algorithm")} hint="For new keys, agent- or server-generated">
          {(p) => (
            <select {...p} value={v.key_algorithm} onChange={(e) => set("key_algorithm", Number(e.target.value) as KeyAlgorithm)}>
              <option value={KeyAlgorithm.UNSPECIFIED}>Profile default</option>
              {GENERATABLE_KEYS.map((k) => (
                <option key={k} value={k}>
                  {keyAlgorithmLabel(k)}
                </option>
              ))}
              {v.key_algorithm === KeyAlgorithm.OTHER && <option value={KeyAlgorithm.OTHER}>Other (refused)</option>}
            </select>
          )}
        </Field>
        <Field label="Renewal policy" error={fe("renewal_policy")}>
          {(p) => (
            <select {...p} value={v.renewal_policy} onChange={(e) => set("renewal_policy", e.target.value)}>
              <option value="">Built-in defaults (alerts at 30, 14, 7, 0 days)</option>
              {policies.data?.map((rp) => (
                <option key={rp.name} value={rp.name}>
                  {rp.displayName || resourceId(rp.name)}
                </option>
              ))}
              {v.renewal_policy && !policies.data?.some((rp) => rp.name === v.renewal_policy) && <option value={v.renewal_policy}>{v.renewal_policy}</option>}
            </select>
          )}
        </Field>
        <Field label="Targets" error={fe("targets")} hint={targets.data?.length ? "Ctrl/⌘-click to choose several" : "No targets defined yet"}>
          {(p) => (
            <select
              {...p}
              multiple
              size={Math.min(5, Math.max(2, targets.data?.length ?? 2))}
              value={v.targets}
              onChange={(e) => set("targets", [...e.target.selectedOptions].map((o) => o.value))}
            >
              {targets.data?.map((t) => (
                <option key={t.name} value={t.name}>
                  {t.displayName || resourceId(t.name)}
                </option>
              ))}
              {v.targets
                .filter((t) => !targets.data?.some((x) => x.name === t))
                .map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
            </select>
          )}
        </Field>
        <Field label="Labels" className="span-2" error={labelParse.error ?? fe("labels")} hint="key=value, one per line">
          {(p) => <textarea {...p} style={{ minHeight: 60 }} value={labelText} onChange={(e) => setLabelText(e.target.value)} placeholder="tier=frontend" spellCheck={false} />}
        </Field>
      </div>
      <div className="form-actions">
        {mode === "edit" && <span className="subtle" style={{ marginRight: "auto", alignSelf: "center" }}>{mask.length ? `Will update: ${mask.join(", ")}` : "No changes yet"}</span>}
        <Link className="btn" to={mode === "edit" ? `/certificates/${initial.certificate_id}` : "/certificates"}>
          Cancel
        </Link>
        <button type="submit" className="btn primary" disabled={m.isPending || (mode === "edit" && mask.length === 0) || !!labelParse.error}>
          {m.isPending ? "Saving…" : mode === "create" ? "Create certificate" : "Save changes"}
        </button>
      </div>
    </form>
  );
}

export function CertificateForm({ mode }: { mode: "create" | "edit" }) {
  const { id = "" } = useParams();
  const name = `certificates/${id}`;
  useTitle(mode === "create" ? "New certificate" : `Edit ${id}`);
  const q = useQuery({ queryKey: keys.certificate(name), queryFn: () => inventory.getCertificate({ name }), enabled: mode === "edit" });
  return (
    <>
      <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
        <Link to="/certificates">Certificates</Link> / {mode === "create" ? "new" : <Link to={`/certificates/${id}`}>{id}</Link>}
      </nav>
      <div className="page-head">
        <h1>{mode === "create" ? "New certificate" : `Edit ${id}`}</h1>
      </div>
      {mode === "create" ? (
        <CertificateFormBody mode="create" initial={EMPTY} />
      ) : q.isPending ? (
        <Loading what={name} />
      ) : q.isError ? (
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
      ) : q.data.certificate ? (
        <CertificateFormBody key={q.data.certificate.updateTime?.seconds.toString()} mode="edit" initial={fromCertificate(q.data.certificate)} />
      ) : null}
    </>
  );
}
