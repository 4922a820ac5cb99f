// What a target is and where it writes, in words (shared by the targets and agents views).
import type { Target } from "../gen/certctl/inventory/v1/inventory_pb";

/** What the form says about one server type: its usual paths, its defaults, how it is checked. */
export interface ServerKind {
  certificatePath: string;
  keyPath: string;
  /** Whether the key may go into the certificate file (key path left empty). */
  keyOptional: boolean;
  /** What the certificate path receives. */
  certificateHint: string;
  verifyPort: number;
  /** How the live check reaches the TLS handshake. */
  verifyHint: string;
  /** The agent's defaults when the commands are left empty. */
  validate: string;
  reload: string;
}

export interface TargetKind {
  value: TargetCase;
  label: string;
  server?: ServerKind;
}

export type TargetCase = NonNullable<Target["config"]["case"]>;
export type ServerCase = Exclude<TargetCase, "file">;

const TLS = "TLS handshake after the deploy; 0 skips the check";

export const TARGET_KINDS: TargetKind[] = [
  { value: "file", label: "Files in a directory" },
  {
    value: "nginx",
    label: "nginx",
    server: {
      certificatePath: "/etc/nginx/tls/site.crt",
      keyPath: "/etc/nginx/tls/site.key",
      keyOptional: false,
      certificateHint: "ssl_certificate: the leaf and the chain",
      verifyPort: 443,
      verifyHint: TLS,
      validate: "nginx -t",
      reload: "nginx -s reload",
    },
  },
  {
    value: "apache",
    label: "Apache httpd",
    server: {
      certificatePath: "/etc/apache2/tls/site.crt",
      keyPath: "/etc/apache2/tls/site.key",
      keyOptional: false,
      certificateHint: "SSLCertificateFile: the leaf and the chain",
      verifyPort: 443,
      verifyHint: TLS,
      validate: "apachectl configtest",
      reload: "apachectl graceful",
    },
  },
  {
    value: "haproxy",
    label: "HAProxy",
    server: {
      certificatePath: "/etc/haproxy/tls/site.pem",
      keyPath: "/etc/haproxy/tls/site.pem.key",
      keyOptional: true,
      certificateHint: "crt: the leaf, the chain and, without a key path, the key",
      verifyPort: 443,
      verifyHint: TLS,
      validate: "haproxy -c -f /etc/haproxy/haproxy.cfg",
      reload: "systemctl reload haproxy",
    },
  },
  {
    value: "caddy",
    label: "Caddy",
    server: {
      certificatePath: "/etc/caddy/tls/site.crt",
      keyPath: "/etc/caddy/tls/site.key",
      keyOptional: false,
      certificateHint: "tls <cert_file> <key_file>: the leaf and the chain",
      verifyPort: 443,
      verifyHint: TLS,
      validate: "caddy validate --config /etc/caddy/Caddyfile",
      reload: "caddy reload --config /etc/caddy/Caddyfile --force",
    },
  },
  {
    value: "lighttpd",
    label: "lighttpd",
    server: {
      certificatePath: "/etc/lighttpd/tls/site.pem",
      keyPath: "/etc/lighttpd/tls/site.key",
      keyOptional: true,
      certificateHint: "ssl.pemfile: the leaf, the chain and, without a key path (ssl.privkey), the key",
      verifyPort: 443,
      verifyHint: TLS,
      validate: "lighttpd -tt -f /etc/lighttpd/lighttpd.conf",
      reload: "systemctl restart lighttpd",
    },
  },
  {
    value: "postfix",
    label: "Postfix (SMTP)",
    server: {
      certificatePath: "/etc/postfix/tls/mail.pem",
      keyPath: "/etc/postfix/tls/mail.key",
      keyOptional: true,
      certificateHint: "smtpd_tls_cert_file, or without a key path smtpd_tls_chain_files: the key, then the leaf and the chain",
      verifyPort: 25,
      verifyHint: "SMTP STARTTLS, then the handshake (465: TLS from the start); 0 skips the check",
      validate: "postfix check",
      reload: "postfix reload",
    },
  },
  {
    value: "dovecot",
    label: "Dovecot (IMAP)",
    server: {
      certificatePath: "/etc/dovecot/tls/mail.crt",
      keyPath: "/etc/dovecot/tls/mail.key",
      keyOptional: false,
      certificateHint: "ssl_cert = <file: the leaf and the chain",
      verifyPort: 143,
      verifyHint: "IMAP STARTTLS, then the handshake (993: TLS from the start); 0 skips the check",
      validate: "doveconf -n -x >/dev/null",
      reload: "doveadm reload",
    },
  },
];

/** The server types (every type but file), in the form's order. */
export const SERVER_KINDS = TARGET_KINDS.filter((k): k is TargetKind & { value: ServerCase; server: ServerKind } => k.server !== undefined);

export function isServerCase(kind: string | undefined): kind is ServerCase {
  return SERVER_KINDS.some((k) => k.value === kind);
}

export function targetKindLabel(t: Target): string {
  return TARGET_KINDS.find((k) => k.value === t.config.case)?.label ?? "not configured";
}

export function targetWhere(t: Target): string {
  if (t.config.case === undefined) return "";
  if (t.config.case === "file") return t.config.value.directory;
  const c = t.config.value;
  const port = c.verifyPort || SERVER_KINDS.find((k) => k.value === t.config.case)?.server.verifyPort;
  return c.verifyHost ? `${c.certificatePath} → ${c.verifyHost}:${port}` : c.certificatePath;
}
