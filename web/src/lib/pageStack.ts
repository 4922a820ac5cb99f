// Keyset pagination: the server hands back an opaque next_page_token; "Previous"
// needs the tokens of the pages already visited, kept as a stack. stack[0] is
// the first page (empty token); the top of the stack is the current page.

export interface PageStack {
  readonly tokens: readonly string[];
}

export const firstPage: PageStack = { tokens: [""] };

export function currentToken(s: PageStack): string {
  return s.tokens[s.tokens.length - 1] ?? "";
}

export function pageNumber(s: PageStack): number {
  return s.tokens.length;
}

export function hasPrevious(s: PageStack): boolean {
  return s.tokens.length > 1;
}

export function pushNext(s: PageStack, nextPageToken: string): PageStack {
  if (!nextPageToken) return s;
  return { tokens: [...s.tokens, nextPageToken] };
}

export function popPrevious(s: PageStack): PageStack {
  if (s.tokens.length <= 1) return s;
  return { tokens: s.tokens.slice(0, -1) };
}
