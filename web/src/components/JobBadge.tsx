import { JobState } from "../gen/certctl/scheduler/v1/scheduler_pb";
import { jobStateLabel } from "../lib/jobs";
import { Icon, type IconName } from "./Icon";

// One word, one colour and one icon per job state (the API's JobState).
export const JOB_STATE_STYLE: Record<JobState, { tone: string; icon: IconName }> = {
  [JobState.UNSPECIFIED]: { tone: "neutral", icon: "question" },
  [JobState.PENDING]: { tone: "info", icon: "clock" },
  [JobState.RUNNING]: { tone: "accent", icon: "refresh" },
  [JobState.AWAITING_AGENT]: { tone: "revoked", icon: "agent" },
  [JobState.SUCCEEDED]: { tone: "ok", icon: "check" },
  [JobState.FAILED]: { tone: "crit", icon: "x" },
  [JobState.CANCELLED]: { tone: "neutral", icon: "ban" },
};

export function JobStateBadge({ state }: { state: JobState }) {
  const s = JOB_STATE_STYLE[state] ?? JOB_STATE_STYLE[JobState.UNSPECIFIED];
  const label = jobStateLabel(state);
  return (
    <span className={`badge ${s.tone}`} data-job-state={label.toLowerCase().replace(/ /g, "-")}>
      <Icon name={s.icon} size={12} />
      {label}
    </span>
  );
}
