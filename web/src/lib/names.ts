// AIP-122 resource names: `certificates/web`, `certificates/web/versions/3`, `owners/alice`.

export function resourceId(name: string): string {
  const i = name.lastIndexOf("/");
  return i < 0 ? name : name.slice(i + 1);
}

export function resourceName(collection: string, id: string): string {
  if (!id) return "";
  return id.startsWith(`${collection}/`) ? id : `${collection}/${id}`;
}

/** Rules from the API: lower-case letters, digits, `-` and `.`, at most 63 characters. */
export const ID_PATTERN = "[a-z0-9]([a-z0-9.\\-]{0,61}[a-z0-9])?";

/** A suggested id from a display name or common name: "API Gateway" -> "api-gateway". */
export function suggestId(text: string): string {
  return text
    .toLowerCase()
    .replace(/^\*\./, "wildcard.")
    .replace(/[^a-z0-9.-]+/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 63)
    .replace(/[-.]+$/g, "");
}
