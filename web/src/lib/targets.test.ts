import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TargetSchema, WebServerTargetConfigSchema } from "../gen/certctl/inventory/v1/inventory_pb";
import { SERVER_KINDS, TARGET_KINDS, isServerCase, targetKindLabel, targetWhere } from "./targets";

describe("target kinds", () => {
  it("offers every type of the proto's Target.config oneof, once", () => {
    const oneof = TargetSchema.oneofs.find((o) => o.name === "config");
    const cases = oneof?.fields.map((f) => f.localName) ?? [];
    expect(cases).toContain("dovecot");
    expect(TARGET_KINDS.map((k) => k.value).sort()).toEqual([...cases].sort());
  });

  it("gives every server type its own defaults", () => {
    expect(SERVER_KINDS.map((k) => k.value)).toEqual(["nginx", "apache", "haproxy", "caddy", "lighttpd", "postfix", "dovecot"]);
    for (const { value, server } of SERVER_KINDS) {
      expect(server.certificatePath, value).toMatch(/^\//);
      expect(server.validate, value).not.toBe("");
      expect(server.reload, value).not.toBe("");
    }
    const postfix = SERVER_KINDS.find((k) => k.value === "postfix")?.server;
    expect(postfix?.verifyPort).toBe(25);
    expect(postfix?.keyOptional).toBe(true);
    expect(SERVER_KINDS.find((k) => k.value === "dovecot")?.server.verifyHint).toMatch(/IMAP STARTTLS/);
    expect(isServerCase("lighttpd")).toBe(true);
    expect(isServerCase("file")).toBe(false);
    expect(isServerCase(undefined)).toBe(false);
  });

  it("describes a mail target with its usual port", () => {
    const t = create(TargetSchema, {
      name: "targets/mx",
      config: { case: "postfix", value: create(WebServerTargetConfigSchema, { certificatePath: "/etc/postfix/tls/mail.pem", verifyHost: "127.0.0.1" }) },
    });
    expect(targetKindLabel(t)).toBe("Postfix (SMTP)");
    expect(targetWhere(t)).toBe("/etc/postfix/tls/mail.pem → 127.0.0.1:25");
  });
});
