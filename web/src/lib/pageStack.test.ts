import { describe, expect, it } from "vitest";
import { currentToken, firstPage, hasPrevious, pageNumber, popPrevious, pushNext } from "./pageStack";

describe("page-token stack", () => {
  it("starts on page 1 with the empty token", () => {
    expect(currentToken(firstPage)).toBe("");
    expect(pageNumber(firstPage)).toBe(1);
    expect(hasPrevious(firstPage)).toBe(false);
  });
  it("Next pushes the server's token, Previous pops back to the earlier token", () => {
    let s = pushNext(firstPage, "t2");
    s = pushNext(s, "t3");
    expect(currentToken(s)).toBe("t3");
    expect(pageNumber(s)).toBe(3);
    s = popPrevious(s);
    expect(currentToken(s)).toBe("t2");
    s = popPrevious(s);
    expect(currentToken(s)).toBe("");
    expect(hasPrevious(s)).toBe(false);
  });
  it("ignores an empty next token and a pop on the first page", () => {
    expect(pushNext(firstPage, "")).toBe(firstPage);
    expect(popPrevious(firstPage)).toBe(firstPage);
  });
  it("does not mutate earlier stacks", () => {
    const a = pushNext(firstPage, "x");
    pushNext(a, "y");
    expect(a.tokens).toEqual(["", "x"]);
  });
});
