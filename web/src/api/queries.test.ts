import { describe, expect, it } from "vitest";
import { findInPages, listAll } from "./queries";

// Three pages of numbers; tokens are opaque strings handed back by the "server".
const PAGES: Record<string, { items: number[]; next: string }> = {
  "": { items: [1, 2], next: "tok-a" },
  "tok-a": { items: [3, 4], next: "tok-b" },
  "tok-b": { items: [5], next: "" },
};

function server() {
  const seen: string[] = [];
  const fetchPage = async (token: string) => {
    seen.push(token);
    const p = PAGES[token];
    if (!p) throw new Error(`unknown token ${token}`);
    return p;
  };
  return { seen, fetchPage };
}

describe("page-token walking", () => {
  it("listAll follows next_page_token until it is empty", async () => {
    const s = server();
    expect(await listAll(s.fetchPage)).toEqual([1, 2, 3, 4, 5]);
    expect(s.seen).toEqual(["", "tok-a", "tok-b"]);
  });
  it("listAll stops at maxPages", async () => {
    const s = server();
    expect(await listAll(s.fetchPage, 2)).toEqual([1, 2, 3, 4]);
  });
  it("findInPages stops at the page holding the match", async () => {
    const s = server();
    expect(await findInPages(s.fetchPage, (n) => n === 3)).toEqual({ item: 3, pages: 2, exhausted: false });
    expect(s.seen).toEqual(["", "tok-a"]);
  });
  it("findInPages reports a miss after the last page, or when it gave up", async () => {
    expect(await findInPages(server().fetchPage, (n) => n === 9)).toEqual({ item: undefined, pages: 3, exhausted: true });
    expect(await findInPages(server().fetchPage, (n) => n === 9, 1)).toEqual({ item: undefined, pages: 1, exhausted: false });
  });
});
