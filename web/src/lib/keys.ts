import { KeyAlgorithm } from "../gen/certctl/type/v1/key_pb";

const LABELS: Record<KeyAlgorithm, string> = {
  [KeyAlgorithm.UNSPECIFIED]: "—",
  [KeyAlgorithm.ECDSA_P256]: "ECDSA P-256",
  [KeyAlgorithm.ECDSA_P384]: "ECDSA P-384",
  [KeyAlgorithm.RSA_2048]: "RSA 2048",
  [KeyAlgorithm.RSA_3072]: "RSA 3072",
  [KeyAlgorithm.RSA_4096]: "RSA 4096",
  [KeyAlgorithm.ED25519]: "Ed25519",
  [KeyAlgorithm.OTHER]: "Other",
};

export function keyAlgorithmLabel(k: KeyAlgorithm, size?: number): string {
  const base = LABELS[k] ?? "—";
  return k === KeyAlgorithm.OTHER && size ? `${base} (${size} bits)` : base;
}

/** The key types certctl can generate and sign (everything but OTHER), strongest-common first. */
export const GENERATABLE_KEYS: KeyAlgorithm[] = [
  KeyAlgorithm.ECDSA_P256,
  KeyAlgorithm.ECDSA_P384,
  KeyAlgorithm.RSA_2048,
  KeyAlgorithm.RSA_3072,
  KeyAlgorithm.RSA_4096,
  KeyAlgorithm.ED25519,
];
