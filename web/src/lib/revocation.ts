// RFC 5280 revocation reasons: the enum the issuance API takes, the ASN.1
// names the inventory records on versions, and the words the GUI shows.
import { RevocationReason } from "../gen/certctl/issuance/v1/issuance_pb";

interface ReasonInfo {
  label: string;
  /** The RFC 5280 ASN.1 name, as recorded on inventory versions. */
  rfc: string;
  hint: string;
  /** Whether a revocation may use it (hold, removeFromCRL and aACompromise may not). */
  pickable: boolean;
}

export const REASONS: Record<RevocationReason, ReasonInfo> = {
  [RevocationReason.UNSPECIFIED]: { label: "Unspecified", rfc: "unspecified", hint: "No reason given", pickable: true },
  [RevocationReason.KEY_COMPROMISE]: { label: "Key compromise", rfc: "keyCompromise", hint: "The private key is known or suspected to be exposed", pickable: true },
  [RevocationReason.CA_COMPROMISE]: { label: "CA compromise", rfc: "cACompromise", hint: "The issuing CA's key is compromised", pickable: true },
  [RevocationReason.AFFILIATION_CHANGED]: { label: "Affiliation changed", rfc: "affiliationChanged", hint: "The subject's name or organisation changed", pickable: true },
  [RevocationReason.SUPERSEDED]: { label: "Superseded", rfc: "superseded", hint: "A newer certificate replaces it", pickable: true },
  [RevocationReason.CESSATION_OF_OPERATION]: { label: "Cessation of operation", rfc: "cessationOfOperation", hint: "The service it secured is gone", pickable: true },
  [RevocationReason.CERTIFICATE_HOLD]: { label: "Certificate hold", rfc: "certificateHold", hint: "Temporary suspension (not supported)", pickable: false },
  [RevocationReason.REMOVE_FROM_CRL]: { label: "Remove from CRL", rfc: "removeFromCRL", hint: "Delta-CRL only", pickable: false },
  [RevocationReason.PRIVILEGE_WITHDRAWN]: { label: "Privilege withdrawn", rfc: "privilegeWithdrawn", hint: "The subject may no longer hold it", pickable: true },
  [RevocationReason.AA_COMPROMISE]: { label: "AA compromise", rfc: "aACompromise", hint: "Attribute certificates only", pickable: false },
};

/** The reasons offered in the revoke dialog, in RFC order. */
export const PICKABLE_REASONS: RevocationReason[] = (Object.keys(REASONS).map(Number) as RevocationReason[])
  .filter((r) => REASONS[r].pickable)
  .sort((a, b) => a - b);

export function reasonLabel(r: RevocationReason): string {
  return REASONS[r]?.label ?? `Reason ${r}`;
}

/** Label for the ASN.1 name an inventory version carries ("keyCompromise" -> "Key compromise"). */
export function reasonLabelFromRfc(name: string): string {
  if (!name) return "";
  const hit = Object.values(REASONS).find((x) => x.rfc.toLowerCase() === name.toLowerCase());
  if (hit) return hit.label;
  // An unknown name: split the camelCase so it is still readable.
  const words = name.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
