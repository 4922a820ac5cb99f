// What a target is and where it writes, in words (shared by the targets and agents views).
import type { Target } from "../gen/certctl/inventory/v1/inventory_pb";

export const TARGET_KINDS = [
  { value: "file", label: "Files in a directory" },
  { value: "nginx", label: "nginx" },
  { value: "apache", label: "Apache httpd" },
  { value: "haproxy", label: "HAProxy" },
];

export function targetKindLabel(t: Target): string {
  return TARGET_KINDS.find((k) => k.value === t.config.case)?.label ?? "not configured";
}

export function targetWhere(t: Target): string {
  switch (t.config.case) {
    case "file":
      return t.config.value.directory;
    case "nginx":
    case "apache":
    case "haproxy": {
      const c = t.config.value;
      return c.verifyHost ? `${c.certificatePath} → ${c.verifyHost}:${c.verifyPort || 443}` : c.certificatePath;
    }
    default:
      return "";
  }
}
