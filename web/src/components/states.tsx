import type { ReactNode } from "react";
import { toApiError, type ApiError } from "../api/errors";

export function Loading({ what }: { what: string }) {
  return (
    <div className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <strong>{title}</strong>
      {children}
    </div>
  );
}

/** Shows the API's own message (and the fields it names), never a generic one. */
export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const e: ApiError = isApiError(error) ? error : toApiError(error);
  return (
    <div className="alert" role="alert">
      <strong>{title ?? "The server refused the request"}</strong> ({e.code}): {e.message}
      {e.violations.length > 0 && (
        <ul>
          {e.violations.map((v) => (
            <li key={v.field + v.description}>
              <code>{v.field}</code>: {v.description}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function isApiError(x: unknown): x is ApiError {
  return typeof x === "object" && x !== null && "violations" in x && "message" in x && "code" in x;
}
