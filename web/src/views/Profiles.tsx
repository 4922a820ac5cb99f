// Issuance profiles: what an issuer may sign (keys, lifetime, usages, names).
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { issuance } from "../api/client";
import { keys } from "../api/queries";
import { toApiError, violationFor, violationsFor, type ApiError } from "../api/errors";
import { Empty, ErrorAlert, Loading } from "../components/states";
import { RelTime, tsDate, useNow } from "../components/time";
import { Icon } from "../components/Icon";
import { Modal } from "../components/Modal";
import { Field } from "../components/Field";
import { Pager } from "../components/Pager";
import { useToast } from "../components/Toasts";
import { ExtendedKeyUsage, type Profile } from "../gen/certctl/issuance/v1/issuance_pb";
import { KeyAlgorithm } from "../gen/certctl/type/v1/key_pb";
import { GENERATABLE_KEYS, keyAlgorithmLabel } from "../lib/keys";
import { ID_PATTERN, resourceId, suggestId } from "../lib/names";
import { changedFields } from "../lib/form";
import { durationFromSeconds, durationSeconds, formatDurationLong, formatDurationShort, parseDuration } from "../lib/duration";
import { currentToken, firstPage, popPrevious, pushNext, type PageStack } from "../lib/pageStack";
import { useTitle } from "../lib/useTitle";

const EKUS: [ExtendedKeyUsage, string][] = [
  [ExtendedKeyUsage.SERVER_AUTH, "Server authentication"],
  [ExtendedKeyUsage.CLIENT_AUTH, "Client authentication"],
];

export function ekuLabel(e: ExtendedKeyUsage): string {
  return EKUS.find(([v]) => v === e)?.[1] ?? "Unknown";
}

function keysText(p: Profile): string {
  return p.allowedKeyAlgorithms.length ? p.allowedKeyAlgorithms.map((k) => keyAlgorithmLabel(k)).join(", ") : "any signable key";
}

function ProfileTable({ items }: { items: Profile[] }) {
  const now = useNow();
  return (
    <div className="table-wrap">
      <table className="data">
        <thead>
          <tr>
            <th>Name</th>
            <th>Display name</th>
            <th>Max lifetime</th>
            <th>Keys</th>
            <th>Usages</th>
            <th>DNS patterns</th>
            <th>IPs</th>
            <th>Updated</th>
          </tr>
        </thead>
        <tbody>
          {items.map((p) => (
            <tr key={p.name}>
              <td>
                <Link className="mono" to={`/profiles/${resourceId(p.name)}`}>
                  {p.name}
                </Link>
              </td>
              <td className="truncate">{p.displayName || <span className="faint">—</span>}</td>
              <td title={formatDurationLong(durationSeconds(p.maxLifetime))}>{formatDurationShort(durationSeconds(p.maxLifetime))}</td>
              <td className="truncate">{keysText(p)}</td>
              <td>{p.extendedKeyUsages.map((e) => ekuLabel(e).split(" ")[0]).join(", ")}</td>
              <td className="truncate">{p.allowedDnsPatterns.length ? p.allowedDnsPatterns.join(", ") : <span className="faint">any name</span>}</td>
              <td>{p.allowIpAddresses ? "allowed" : <span className="faint">no</span>}</td>
              <td>
                <RelTime at={tsDate(p.updateTime ?? p.createTime)} now={now} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ProfilesView() {
  useTitle("Profiles");
  const [stack, setStack] = useState<PageStack>(firstPage);
  const token = currentToken(stack);
  const q = useQuery({
    queryKey: [...keys.profiles, "page", token],
    queryFn: () => issuance.listProfiles({ pageSize: 50, pageToken: token }),
    placeholderData: keepPreviousData,
  });
  const items = q.data?.profiles ?? [];
  return (
    <>
      <div className="page-head">
        <h1>Profiles</h1>
        <span className="subtle">What an issuer may sign: key types, lifetime, usages and names</span>
        <span className="spacer" />
        <Link className="btn primary" to="/profiles/new">
          <Icon name="plus" /> New profile
        </Link>
      </div>
      {q.isError && <ErrorAlert error={q.error} title="Could not list profiles" />}
      <section className="panel flush" aria-label="Profiles">
        {q.isPending ? (
          <Loading what="profiles" />
        ) : q.isSuccess && items.length === 0 && !token ? (
          <Empty title="No profiles yet">
            <p>
              <Link to="/profiles/new">Create a profile</Link> to bound what certificates may contain.
            </p>
          </Empty>
        ) : (
          <>
            <ProfileTable items={items} />
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
    </>
  );
}

interface Values {
  display_name: string;
  allowed_key_algorithms: KeyAlgorithm[];
  default_key_algorithm: KeyAlgorithm;
  max_lifetime: string;
  extended_key_usages: ExtendedKeyUsage[];
  allowed_dns_patterns: string[];
  allow_ip_addresses: boolean;
}

const FIELDS: (keyof Values & string)[] = [
  "display_name",
  "allowed_key_algorithms",
  "default_key_algorithm",
  "max_lifetime",
  "extended_key_usages",
  "allowed_dns_patterns",
  "allow_ip_addresses",
];

function toValues(p: Profile | undefined): Values {
  if (!p)
    return {
      display_name: "",
      allowed_key_algorithms: [],
      default_key_algorithm: KeyAlgorithm.UNSPECIFIED,
      max_lifetime: "90d",
      extended_key_usages: [ExtendedKeyUsage.SERVER_AUTH],
      allowed_dns_patterns: [],
      allow_ip_addresses: false,
    };
  return {
    display_name: p.displayName,
    allowed_key_algorithms: [...p.allowedKeyAlgorithms],
    default_key_algorithm: p.defaultKeyAlgorithm,
    max_lifetime: formatDurationShort(durationSeconds(p.maxLifetime)),
    extended_key_usages: [...p.extendedKeyUsages],
    allowed_dns_patterns: [...p.allowedDnsPatterns],
    allow_ip_addresses: p.allowIpAddresses,
  };
}

function toggle<T>(list: T[], v: T, on: boolean): T[] {
  return on ? (list.includes(v) ? list : [...list, v]) : list.filter((x) => x !== v);
}

function ProfileForm({ profile }: { profile?: Profile }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const initial = toValues(profile);
  const [v, setV] = useState<Values>(initial);
  const [id, setId] = useState("");
  const [idTouched, setIdTouched] = useState(false);
  const [dnsText, setDnsText] = useState(initial.allowed_dns_patterns.join("\n"));
  const set = <K extends keyof Values>(k: K, value: Values[K]) => setV((old) => ({ ...old, [k]: value }));
  const lifetime = parseDuration(v.max_lifetime);
  const lifetimeError = "error" in lifetime ? lifetime.error : undefined;
  // Keep the order the operator typed so that indexed violations point at the right line.
  const dns = dnsText
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean);
  const current: Values = { ...v, allowed_dns_patterns: dns };
  // The lifetime compares by value, so "90d" and "2160h" are no change.
  const normalised = (x: Values) => {
    const d = parseDuration(x.max_lifetime);
    return { ...x, max_lifetime: "seconds" in d ? String(d.seconds) : x.max_lifetime };
  };
  const mask = profile ? changedFields(normalised(initial), normalised(current), FIELDS) : [];

  const m = useMutation({
    mutationFn: async () => {
      const body = {
        name: profile?.name ?? "",
        displayName: current.display_name.trim(),
        allowedKeyAlgorithms: current.allowed_key_algorithms,
        defaultKeyAlgorithm: current.default_key_algorithm,
        maxLifetime: "seconds" in lifetime ? durationFromSeconds(lifetime.seconds) : undefined,
        extendedKeyUsages: current.extended_key_usages,
        allowedDnsPatterns: current.allowed_dns_patterns,
        allowIpAddresses: current.allow_ip_addresses,
      };
      if (profile) return (await issuance.updateProfile({ profile: body, updateMask: { paths: mask } })).profile;
      return (await issuance.createProfile({ profile: body, profileId: id.trim() })).profile;
    },
    onSuccess: (p) => {
      qc.invalidateQueries({ queryKey: keys.profiles });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(profile ? `Saved ${p?.name ?? profile.name} (${mask.join(", ")})` : `Created ${p?.name ?? "the profile"}`);
      navigate(`/profiles/${resourceId(p?.name ?? profile?.name ?? id)}`);
    },
  });
  const err: ApiError | undefined = m.error ? toApiError(m.error) : undefined;
  const fe = (k: string) => violationFor(err, k);
  const dnsErrors = violationsFor(err, "allowed_dns_patterns").map((x) => (x.index !== undefined && dns.length > 1 ? `line ${x.index + 1}: ${x.description}` : x.description));
  const keyErrors = violationsFor(err, "allowed_key_algorithms").map((x) => x.description);
  const listId = profile ? resourceId(profile.name) : "";

  return (
    <form
      className="panel"
      style={{ maxWidth: 980 }}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (lifetimeError) return;
        m.mutate();
      }}
    >
      {err && <ErrorAlert error={err} title={profile ? "The server refused the change" : "The server refused to create the profile"} />}
      <div className="form-grid">
        {profile ? (
          <Field label="Name" hint="The resource name cannot change">
            {(p) => <input {...p} type="text" value={profile.name} readOnly />}
          </Field>
        ) : (
          <Field label="ID" required error={fe("profile_id") ?? fe("name")} hint={<>Becomes <code>profiles/{id || "…"}</code></>}>
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
        <Field label="Display name" error={fe("display_name")}>
          {(p) => (
            <input
              {...p}
              type="text"
              value={v.display_name}
              placeholder="Internal web servers (30 days)"
              onChange={(e) => {
                set("display_name", e.target.value);
                if (!profile && !idTouched) setId(suggestId(e.target.value));
              }}
            />
          )}
        </Field>
        <Field
          label="Max lifetime"
          required
          error={lifetimeError ?? fe("max_lifetime")}
          hint={"seconds" in lifetime ? `${formatDurationLong(lifetime.seconds)}; also the default lifetime` : "For example 90d, 2160h or 1y"}
        >
          {(p) => <input {...p} type="text" className="mono" value={v.max_lifetime} onChange={(e) => set("max_lifetime", e.target.value)} />}
        </Field>
        <Field label="Default key algorithm" error={fe("default_key_algorithm")} hint="Generated for server-keyed certificates">
          {(p) => (
            <select {...p} value={v.default_key_algorithm} onChange={(e) => set("default_key_algorithm", Number(e.target.value) as KeyAlgorithm)}>
              <option value={KeyAlgorithm.UNSPECIFIED}>Default (ECDSA P-256)</option>
              {GENERATABLE_KEYS.map((k) => (
                <option key={k} value={k}>
                  {keyAlgorithmLabel(k)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <fieldset className={`field span-2${keyErrors.length ? " has-error" : ""}`} style={{ border: "none", padding: 0, margin: 0 }}>
          <legend>Allowed key algorithms</legend>
          <div className="checks" role="group" aria-label="Allowed key algorithms">
            {GENERATABLE_KEYS.map((k) => (
              <label key={k}>
                <input
                  type="checkbox"
                  checked={v.allowed_key_algorithms.includes(k)}
                  onChange={(e) => set("allowed_key_algorithms", toggle(v.allowed_key_algorithms, k, e.target.checked))}
                />
                {keyAlgorithmLabel(k)}
              </label>
            ))}
          </div>
          {keyErrors.length ? <span className="error-text">{keyErrors.join("; ")}</span> : <span className="hint">None ticked allows every signable key</span>}
        </fieldset>
        <fieldset className={`field span-2${fe("extended_key_usages") ? " has-error" : ""}`} style={{ border: "none", padding: 0, margin: 0 }}>
          <legend>Extended key usages</legend>
          <div className="checks" role="group" aria-label="Extended key usages">
            {EKUS.map(([e, label]) => (
              <label key={e}>
                <input type="checkbox" checked={v.extended_key_usages.includes(e)} onChange={(ev) => set("extended_key_usages", toggle(v.extended_key_usages, e, ev.target.checked))} />
                {label}
              </label>
            ))}
          </div>
          {fe("extended_key_usages") && <span className="error-text">{fe("extended_key_usages")}</span>}
        </fieldset>
        <Field
          label="Allowed DNS patterns"
          className="span-2"
          error={dnsErrors.length ? dnsErrors.join("; ") : undefined}
          hint={
            <>
              One per line: <code>example.com</code> exactly, <code>*.example.com</code> one label, <code>**.example.com</code> the name and any depth below.
              Empty allows any valid name.
            </>
          }
        >
          {(p) => <textarea {...p} style={{ minHeight: 80 }} value={dnsText} onChange={(e) => setDnsText(e.target.value)} placeholder={"**.internal.example.com"} spellCheck={false} />}
        </Field>
        <label className="toggle span-2">
          <input type="checkbox" checked={v.allow_ip_addresses} onChange={(e) => set("allow_ip_addresses", e.target.checked)} /> Allow IP address SANs
        </label>
      </div>
      <div className="form-actions">
        {profile && <span className="subtle" style={{ marginRight: "auto", alignSelf: "center" }}>{mask.length ? `Will update: ${mask.join(", ")}` : "No changes yet"}</span>}
        <Link className="btn" to={profile ? `/profiles/${listId}` : "/profiles"}>
          Cancel
        </Link>
        <button type="submit" className="btn primary" disabled={m.isPending || !!lifetimeError || (!!profile && mask.length === 0)}>
          {m.isPending ? "Saving…" : profile ? "Save changes" : "Create profile"}
        </button>
      </div>
    </form>
  );
}

function useProfile(name: string, enabled = true) {
  return useQuery({ queryKey: keys.profile(name), queryFn: () => issuance.getProfile({ name }), enabled });
}

export function ProfileFormView({ mode }: { mode: "create" | "edit" }) {
  const { id = "" } = useParams();
  const name = `profiles/${id}`;
  useTitle(mode === "create" ? "New profile" : `Edit ${id}`);
  const q = useProfile(name, mode === "edit");
  return (
    <>
      <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
        <Link to="/profiles">Profiles</Link> / {mode === "create" ? "new" : <Link to={`/profiles/${id}`}>{id}</Link>}
      </nav>
      <div className="page-head">
        <h1>{mode === "create" ? "New profile" : `Edit ${id}`}</h1>
      </div>
      {mode === "create" ? (
        <ProfileForm />
      ) : q.isPending ? (
        <Loading what={name} />
      ) : q.isError ? (
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
      ) : q.data.profile ? (
        <ProfileForm key={q.data.profile.updateTime?.seconds.toString()} profile={q.data.profile} />
      ) : (
        <Empty title="The server returned no profile" />
      )}
    </>
  );
}

function DeleteProfile({ profile, onClose }: { profile: Profile; onClose: () => void }) {
  const qc = useQueryClient();
  const navigate = useNavigate();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => issuance.deleteProfile({ name: profile.name }),
    onSuccess: () => {
      qc.invalidateQueries({ queryKey: keys.profiles });
      qc.invalidateQueries({ queryKey: keys.audit });
      toast(`Deleted ${profile.name}`);
      navigate("/profiles");
    },
  });
  return (
    <>
      <p style={{ marginTop: 0 }}>
        Delete <code>{profile.name}</code>? The server refuses while the profile still governs valid certificates; certificates that name it can no longer be
        issued until they name another profile.
      </p>
      {m.error && <ErrorAlert error={m.error} title="Delete refused" />}
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className="btn danger" onClick={() => m.mutate()} disabled={m.isPending}>
          {m.isPending ? "Deleting…" : "Delete profile"}
        </button>
      </div>
    </>
  );
}

export function ProfileDetail() {
  const { id = "" } = useParams();
  const name = `profiles/${id}`;
  useTitle(id);
  const now = useNow();
  const [deleting, setDeleting] = useState(false);
  const q = useProfile(name);
  const head = (
    <nav aria-label="Breadcrumb" className="subtle" style={{ marginBottom: 4 }}>
      <Link to="/profiles">Profiles</Link> / {id}
    </nav>
  );
  if (q.isPending) return <Loading what={name} />;
  if (q.isError)
    return (
      <>
        {head}
        <ErrorAlert error={q.error} title={`Could not load ${name}`} />
      </>
    );
  const p = q.data.profile;
  if (!p) return <Empty title="The server returned no profile" />;
  const life = durationSeconds(p.maxLifetime);
  return (
    <>
      {head}
      <div className="page-head">
        <h1>{p.displayName || id}</h1>
        <code>{p.name}</code>
        <span className="spacer" />
        <Link className="btn" to={`/profiles/${id}/edit`}>
          <Icon name="edit" /> Edit
        </Link>
        <button type="button" className="btn danger" onClick={() => setDeleting(true)}>
          <Icon name="trash" /> Delete
        </button>
      </div>
      <section className="panel" style={{ maxWidth: 980 }} aria-label="Profile">
        <dl className="props">
          <dt>Max lifetime</dt>
          <dd>
            {formatDurationLong(life)} <span className="faint">({formatDurationShort(life)}; also the default)</span>
          </dd>
          <dt>Allowed keys</dt>
          <dd>{keysText(p)}</dd>
          <dt>Default key</dt>
          <dd>{p.defaultKeyAlgorithm ? keyAlgorithmLabel(p.defaultKeyAlgorithm) : "ECDSA P-256 (default)"}</dd>
          <dt>Key usages</dt>
          <dd>{p.extendedKeyUsages.map((e) => ekuLabel(e)).join(", ") || "—"}</dd>
          <dt>DNS patterns</dt>
          <dd>{p.allowedDnsPatterns.length ? p.allowedDnsPatterns.map((d) => <span className="tag" key={d}>{d}</span>) : <span className="faint">any valid name</span>}</dd>
          <dt>IP addresses</dt>
          <dd>{p.allowIpAddresses ? "allowed" : "not allowed"}</dd>
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
          <Link to={`/audit?resource=${encodeURIComponent(p.name)}`}>Audit events for this profile →</Link>
        </p>
      </section>
      <Modal title={`Delete ${p.name}?`} open={deleting} onClose={() => setDeleting(false)}>
        <DeleteProfile profile={p} onClose={() => setDeleting(false)} />
      </Modal>
    </>
  );
}
