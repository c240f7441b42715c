// One error type for everything a user can be told. Each code maps to an HTTP status and an RFC 6120
// stanza condition; `userText` is what the user sees, `message` what the log sees.

export type StanzaErrorType = "cancel" | "modify" | "auth" | "wait" | "continue";

interface CodeInfo {
  http: number;
  title: string;
  condition: string;
  type: StanzaErrorType;
}

const CODES = {
  bad_request: { http: 400, title: "Bad Request", condition: "bad-request", type: "modify" },
  jid_malformed: { http: 400, title: "Bad Request", condition: "jid-malformed", type: "modify" },
  not_acceptable: { http: 400, title: "Bad Request", condition: "not-acceptable", type: "modify" },
  unauthorized: { http: 401, title: "Unauthorized", condition: "not-authorized", type: "auth" },
  forbidden: { http: 403, title: "Forbidden", condition: "forbidden", type: "auth" },
  registration_required: { http: 403, title: "Forbidden", condition: "registration-required", type: "auth" },
  not_allowed: { http: 403, title: "Forbidden", condition: "not-allowed", type: "cancel" },
  not_found: { http: 404, title: "Not Found", condition: "item-not-found", type: "cancel" },
  conflict: { http: 409, title: "Conflict", condition: "conflict", type: "cancel" },
  rate_limited: { http: 429, title: "Too Many Requests", condition: "policy-violation", type: "wait" },
  // A local policy refuses this message (a destination country, a short code, a number type): sending it
  // again will not help, so it is no 429; RFC 6120 §8.3.3.12 policy-violation, modify (another destination).
  policy_violation: { http: 403, title: "Forbidden", condition: "policy-violation", type: "modify" },
  resource_constraint: { http: 503, title: "Service Unavailable", condition: "resource-constraint", type: "wait" },
  unavailable: { http: 503, title: "Service Unavailable", condition: "service-unavailable", type: "cancel" },
  internal: { http: 500, title: "Internal Server Error", condition: "internal-server-error", type: "cancel" },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof CODES;

export class GatewayError extends Error {
  override name = "GatewayError";
  constructor(
    readonly code: ErrorCode,
    /** Shown to the user (stanza <text/>, problem detail). */
    readonly userText: string,
    opts?: { cause?: unknown; logText?: string; field?: string; retryAfterMs?: number },
  ) {
    super(opts?.logText ?? userText, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.field = opts?.field;
    this.retryAfterMs = opts?.retryAfterMs;
  }
  readonly field: string | undefined;
  /** When trying again makes sense (rate limits): HTTP answers carry it as Retry-After. */
  readonly retryAfterMs: number | undefined;

  get httpStatus(): number {
    return CODES[this.code].http;
  }
  get title(): string {
    return CODES[this.code].title;
  }
  get condition(): string {
    return CODES[this.code].condition;
  }
  get stanzaType(): StanzaErrorType {
    return CODES[this.code].type;
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}
