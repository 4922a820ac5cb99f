import { useState, type ReactNode } from "react";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { issuance } from "../api/client";
import { keys } from "../api/queries";
import { toApiError, violationFor } from "../api/errors";
import { RevocationReason, type IssuedCertificate } from "../gen/certctl/issuance/v1/issuance_pb";
import { PICKABLE_REASONS, REASONS, reasonLabel } from "../lib/revocation";
import { Field } from "./Field";
import { ErrorAlert } from "./states";
import { useToast } from "./Toasts";

/**
 * Reason picker and confirmation for RevokeCertificate. The dialog itself is
 * the confirmation: it says what will happen and the button names the action.
 */
export function RevokeForm({
  issued,
  intro,
  onClose,
  onRevoked,
}: {
  issued: IssuedCertificate;
  intro?: ReactNode;
  onClose: () => void;
  onRevoked?: (r: IssuedCertificate) => void;
}) {
  const [reason, setReason] = useState<RevocationReason>(RevocationReason.UNSPECIFIED);
  const qc = useQueryClient();
  const toast = useToast();
  const m = useMutation({
    mutationFn: () => issuance.revokeCertificate({ name: issued.name, reason }),
    onSuccess: (r) => {
      const issuer = issued.name.split("/issuedCertificates/")[0] ?? "";
      qc.invalidateQueries({ queryKey: keys.issued(issuer) });
      qc.invalidateQueries({ queryKey: keys.certificates });
      qc.invalidateQueries({ queryKey: ["certificate"] });
      qc.invalidateQueries({ queryKey: keys.audit });
      // The issuer tells the inventory in the background; look again shortly so
      // the certificate's state and its version's reason catch up on screen.
      if (issued.certificateVersion)
        for (const ms of [1_000, 2_500, 5_000, 10_000]) {
          setTimeout(() => {
            qc.invalidateQueries({ queryKey: ["certificate"] });
            qc.invalidateQueries({ queryKey: keys.certificates });
          }, ms);
        }
      toast(`Revoked serial ${issued.serialNumber} (${reasonLabel(reason)})`);
      if (r.issuedCertificate) onRevoked?.(r.issuedCertificate);
      onClose();
    },
  });
  const err = m.error ? toApiError(m.error) : undefined;
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        m.mutate();
      }}
    >
      {intro}
      <dl className="props" style={{ marginBottom: 10 }}>
        <dt>Serial</dt>
        <dd className="mono">{issued.serialNumber}</dd>
        <dt>Common name</dt>
        <dd className="mono">{issued.commonName || "—"}</dd>
        {issued.certificateVersion && (
          <>
            <dt>Version</dt>
            <dd className="mono">{issued.certificateVersion}</dd>
          </>
        )}
      </dl>
      <p className="subtle" style={{ marginTop: 0 }}>
        Revocation cannot be undone. The serial goes on the issuing authority’s CRL and OCSP answers “revoked”; a managed certificate whose current version
        this is becomes Revoked until a new version is issued.
      </p>
      {err && <ErrorAlert error={err} title="Revocation refused" />}
      <Field label="Reason" error={violationFor(err, "reason")} hint={REASONS[reason]?.hint}>
        {(p) => (
          <select {...p} value={reason} onChange={(e) => setReason(Number(e.target.value) as RevocationReason)}>
            {PICKABLE_REASONS.map((r) => (
              <option key={r} value={r}>
                {reasonLabel(r)}
              </option>
            ))}
          </select>
        )}
      </Field>
      <div className="form-actions">
        <button type="button" className="btn" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" className="btn danger" disabled={m.isPending}>
          {m.isPending ? "Revoking…" : "Revoke certificate"}
        </button>
      </div>
    </form>
  );
}
