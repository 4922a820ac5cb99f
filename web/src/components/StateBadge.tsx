import { CertificateState } from "../gen/certctl/inventory/v1/inventory_pb";
import { Icon, type IconName } from "./Icon";

// One word, one colour and one icon per API state, used everywhere.
export const STATE_STYLE: Record<CertificateState, { label: string; tone: string; icon: IconName }> = {
  [CertificateState.UNSPECIFIED]: { label: "Unknown", tone: "neutral", icon: "question" },
  [CertificateState.PENDING]: { label: "Pending", tone: "info", icon: "clock" },
  [CertificateState.ACTIVE]: { label: "Active", tone: "ok", icon: "check" },
  [CertificateState.EXPIRING]: { label: "Expiring", tone: "warn", icon: "alert" },
  [CertificateState.EXPIRED]: { label: "Expired", tone: "crit", icon: "x" },
  [CertificateState.REVOKED]: { label: "Revoked", tone: "revoked", icon: "ban" },
};

export function StateBadge({ state }: { state: CertificateState }) {
  const s = STATE_STYLE[state] ?? STATE_STYLE[CertificateState.UNSPECIFIED];
  return (
    <span className={`badge ${s.tone}`} data-state={s.label.toLowerCase()}>
      <Icon name={s.icon} size={12} />
      {s.label}
    </span>
  );
}
