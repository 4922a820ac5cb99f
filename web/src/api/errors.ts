// Turns gRPC errors into what the user needs: the server's message and the
// fields it names (google.rpc.BadRequest details).
import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export interface FieldViolation {
  field: string;
  description: string;
}

export interface ApiError {
  code: string;
  message: string;
  violations: FieldViolation[];
}

const BAD_REQUEST = "google.rpc.BadRequest";

// google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }
// FieldViolation { string field = 1; string description = 2; ... }
function decodeViolation(bytes: Uint8Array): FieldViolation {
  const r = new BinaryReader(bytes);
  const v: FieldViolation = { field: "", description: "" };
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.LengthDelimited) v.field = r.string();
    else if (no === 2 && wt === WireType.LengthDelimited) v.description = r.string();
    else r.skip(wt);
  }
  return v;
}

export function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const r = new BinaryReader(bytes);
  const out: FieldViolation[] = [];
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.LengthDelimited) out.push(decodeViolation(r.bytes()));
    else r.skip(wt);
  }
  return out;
}

function codeName(code: Code): string {
  // Code[code] is the enum key, e.g. "InvalidArgument" -> "invalid argument".
  const key = Code[code] ?? "unknown";
  return key.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

export function toApiError(err: unknown): ApiError {
  if (err instanceof ConnectError) {
    const violations: FieldViolation[] = [];
    for (const d of err.details) {
      if ("type" in d && d.type === BAD_REQUEST && d.value instanceof Uint8Array) {
        try {
          violations.push(...decodeBadRequest(d.value));
        } catch {
          // A malformed detail is ignored; the message still says what went wrong.
        }
      }
    }
    let message = err.rawMessage;
    if (!message) {
      message =
        err.code === Code.Unavailable
          ? "The certctl server cannot be reached."
          : `The server answered ${codeName(err.code)} without a message.`;
    }
    return { code: codeName(err.code), message, violations };
  }
  if (err instanceof Error) return { code: "client", message: err.message, violations: [] };
  return { code: "client", message: String(err), violations: [] };
}

function snake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * The violation for a form field. `key` is the proto field name of the form
 * field ("common_name"); the server may name it with its message path
 * ("certificate.common_name") or in camelCase ("certificate.commonName").
 */
export function violationFor(error: ApiError | undefined, key: string): string | undefined {
  if (!error) return undefined;
  const want = snake(key);
  for (const v of error.violations) {
    const f = snake(v.field).replace(/\[\d+\]/g, "");
    if (f === want || f.endsWith(`.${want}`)) return v.description || error.message;
  }
  return undefined;
}

/**
 * Every violation for a repeated field, with the element index the server
 * named (`profile.allowed_dns_patterns[2]` -> index 2), in the server's order.
 */
export function violationsFor(error: ApiError | undefined, key: string): { index?: number; description: string }[] {
  if (!error) return [];
  const want = snake(key);
  const out: { index?: number; description: string }[] = [];
  for (const v of error.violations) {
    const m = /\[(\d+)\]$/.exec(v.field);
    const f = snake(v.field).replace(/\[\d+\]/g, "");
    if (f === want || f.endsWith(`.${want}`)) out.push({ index: m ? Number(m[1]) : undefined, description: v.description || error.message });
  }
  return out;
}

/** The server does not serve this RPC (yet): views say so and the rest of the GUI works. */
export function isUnimplemented(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Unimplemented;
}
