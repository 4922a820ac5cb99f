import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { decodeBadRequest, toApiError, violationFor } from "./errors";

function badRequest(violations: [string, string][]): Uint8Array {
  const w = new BinaryWriter();
  for (const [field, description] of violations) {
    w.uint32((1 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).string(field);
    w.uint32((2 << 3) | 2).string(description);
    w.join();
  }
  return w.finish();
}

describe("API errors", () => {
  it("decodes google.rpc.BadRequest field violations", () => {
    expect(decodeBadRequest(badRequest([["certificate.common_name", "must not be empty"]]))).toEqual([
      { field: "certificate.common_name", description: "must not be empty" },
    ]);
  });
  it("keeps the server's message and the fields it names", () => {
    const err = new ConnectError("common_name must not be empty", Code.InvalidArgument, undefined, [
      { type: "google.rpc.BadRequest", value: badRequest([["certificate.common_name", "must not be empty"]]) } as never,
    ]);
    const e = toApiError(err);
    expect(e.message).toBe("common_name must not be empty");
    expect(e.code).toBe("invalid argument");
    expect(violationFor(e, "common_name")).toBe("must not be empty");
    expect(violationFor(e, "owner")).toBeUndefined();
  });
  it("matches camelCase field paths too", () => {
    const e = { code: "invalid argument", message: "bad", violations: [{ field: "certificate.subjectAltNames[2]", description: "not a DNS name" }] };
    expect(violationFor(e, "subject_alt_names")).toBe("not a DNS name");
  });
  it("explains an unreachable server", () => {
    expect(toApiError(new ConnectError("", Code.Unavailable)).message).toMatch(/cannot be reached/);
  });
});

describe("violationsFor", () => {
  it("returns every indexed violation of a repeated field", async () => {
    const { violationsFor } = await import("./errors");
    const e = {
      code: "invalid argument",
      message: "bad profile",
      violations: [
        { field: "profile.allowed_dns_patterns[1]", description: "a wildcard must be the first label" },
        { field: "profile.max_lifetime", description: "too long" },
        { field: "profile.allowed_dns_patterns[3]", description: "not a DNS name" },
      ],
    };
    expect(violationsFor(e, "allowed_dns_patterns")).toEqual([
      { index: 1, description: "a wildcard must be the first label" },
      { index: 3, description: "not a DNS name" },
    ]);
    expect(violationsFor(e, "max_lifetime")).toEqual([{ index: undefined, description: "too long" }]);
    expect(violationsFor(undefined, "x")).toEqual([]);
  });
});
