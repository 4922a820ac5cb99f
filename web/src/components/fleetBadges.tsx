// One word, one colour and one icon per agent status, deployment state and
// discovery state (the API's enums), as StateBadge does for certificates.
import { AgentStatus, DeploymentState, DiscoveryState } from "../gen/certctl/inventory/v1/inventory_pb";
import { agentStatusLabel } from "../lib/agents";
import { DEPLOYMENT_STATE_HINTS, DEPLOYMENT_STATE_LABELS, discoveryStateLabel } from "../lib/discovery";
import { Icon, type IconName } from "./Icon";

type Style = { tone: string; icon: IconName };

export const AGENT_STATUS_STYLE: Record<AgentStatus, Style> = {
  [AgentStatus.UNSPECIFIED]: { tone: "neutral", icon: "question" },
  [AgentStatus.ONLINE]: { tone: "ok", icon: "dot" },
  [AgentStatus.STALE]: { tone: "warn", icon: "clock" },
  [AgentStatus.OFFLINE]: { tone: "crit", icon: "x" },
  [AgentStatus.RETIRED]: { tone: "neutral", icon: "ban" },
};

export const AGENT_STATUS_HINTS: Record<AgentStatus, string> = {
  [AgentStatus.UNSPECIFIED]: "",
  [AgentStatus.ONLINE]: "Seen within the last 90 seconds",
  [AgentStatus.STALE]: "Last seen between 90 seconds and 5 minutes ago",
  [AgentStatus.OFFLINE]: "Last seen more than 5 minutes ago, or never",
  [AgentStatus.RETIRED]: "Retired: its identity is refused",
};

export function AgentStatusBadge({ status }: { status: AgentStatus }) {
  const s = AGENT_STATUS_STYLE[status] ?? AGENT_STATUS_STYLE[AgentStatus.UNSPECIFIED];
  const label = agentStatusLabel(status);
  return (
    <span className={`badge ${s.tone}${status === AgentStatus.ONLINE ? " live" : ""}`} data-agent-status={label.toLowerCase()} title={AGENT_STATUS_HINTS[status] || undefined}>
      <Icon name={s.icon} size={12} />
      {label}
    </span>
  );
}

export const DEPLOYMENT_STATE_STYLE: Record<DeploymentState, Style> = {
  [DeploymentState.UNSPECIFIED]: { tone: "neutral", icon: "question" },
  [DeploymentState.PENDING]: { tone: "info", icon: "clock" },
  [DeploymentState.DEPLOYED]: { tone: "info", icon: "download" },
  [DeploymentState.VERIFIED]: { tone: "ok", icon: "check" },
  [DeploymentState.MISMATCH]: { tone: "warn", icon: "alert" },
  [DeploymentState.FAILED]: { tone: "crit", icon: "x" },
};

export function DeploymentStateBadge({ state }: { state: DeploymentState }) {
  const s = DEPLOYMENT_STATE_STYLE[state] ?? DEPLOYMENT_STATE_STYLE[DeploymentState.UNSPECIFIED];
  const label = DEPLOYMENT_STATE_LABELS[state] ?? "Unknown";
  return (
    <span className={`badge ${s.tone}`} data-deployment-state={label.toLowerCase()} title={DEPLOYMENT_STATE_HINTS[state] || undefined}>
      <Icon name={s.icon} size={12} />
      {label}
    </span>
  );
}

export const DISCOVERY_STATE_STYLE: Record<DiscoveryState, Style> = {
  [DiscoveryState.UNSPECIFIED]: { tone: "neutral", icon: "question" },
  [DiscoveryState.NEW]: { tone: "info", icon: "search" },
  [DiscoveryState.CLAIMED]: { tone: "ok", icon: "check" },
  [DiscoveryState.DISMISSED]: { tone: "neutral", icon: "ban" },
};

export function DiscoveryStateBadge({ state }: { state: DiscoveryState }) {
  const s = DISCOVERY_STATE_STYLE[state] ?? DISCOVERY_STATE_STYLE[DiscoveryState.UNSPECIFIED];
  const label = discoveryStateLabel(state);
  return (
    <span className={`badge ${s.tone}`} data-discovery-state={label.toLowerCase()}>
      <Icon name={s.icon} size={12} />
      {label}
    </span>
  );
}
