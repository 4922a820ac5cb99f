import { describe, expect, it } from "vitest";
import { RevocationReason } from "../gen/certctl/issuance/v1/issuance_pb";
import { PICKABLE_REASONS, reasonLabel, reasonLabelFromRfc } from "./revocation";

describe("revocation reasons", () => {
  it("labels every API reason", () => {
    expect(reasonLabel(RevocationReason.KEY_COMPROMISE)).toBe("Key compromise");
    expect(reasonLabel(RevocationReason.CESSATION_OF_OPERATION)).toBe("Cessation of operation");
    expect(reasonLabel(RevocationReason.UNSPECIFIED)).toBe("Unspecified");
    expect(reasonLabel(77 as RevocationReason)).toBe("Reason 77");
  });
  it("offers only the reasons a revocation may use, in RFC order", () => {
    expect(PICKABLE_REASONS).toEqual([
      RevocationReason.UNSPECIFIED,
      RevocationReason.KEY_COMPROMISE,
      RevocationReason.CA_COMPROMISE,
      RevocationReason.AFFILIATION_CHANGED,
      RevocationReason.SUPERSEDED,
      RevocationReason.CESSATION_OF_OPERATION,
      RevocationReason.PRIVILEGE_WITHDRAWN,
    ]);
    expect(PICKABLE_REASONS).not.toContain(RevocationReason.CERTIFICATE_HOLD);
  });
  it("reads the RFC 5280 names the inventory records on versions", () => {
    expect(reasonLabelFromRfc("keyCompromise")).toBe("Key compromise");
    expect(reasonLabelFromRfc("cACompromise")).toBe("CA compromise");
    expect(reasonLabelFromRfc("removeFromCRL")).toBe("Remove from CRL");
    expect(reasonLabelFromRfc("")).toBe("");
    expect(reasonLabelFromRfc("somethingNew")).toBe("Something new");
  });
});
