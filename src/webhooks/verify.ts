// Signing of webhook requests, and its check for receivers. Self-contained on purpose (node:crypto
// only): a receiver may copy this file, or import it as `switchboard/verify`.
//
//   X-Switchboard-Timestamp: <unix seconds>
//   X-Switchboard-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//
// The timestamp is inside the MAC so that a captured request cannot be replayed later: receivers
// reject timestamps outside a tolerance window (the scheme Stripe and Slack use).
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "X-Switchboard-Signature";
export const TIMESTAMP_HEADER = "X-Switchboard-Timestamp";

/** `sha256=<hex>` over `<timestamp>.<body>`; `body` must be the exact bytes sent. */
export function signPayload(secret: string, timestamp: string | number, body: string | Buffer): string {
  const mac = createHmac("sha256", secret).update(`${timestamp}.`).update(body);
  return `sha256=${mac.digest("hex")}`;
}

export interface VerifyOptions {
  /** The target's signing secret. */
  secret: string;
  /** The X-Switchboard-Timestamp header (unix seconds). */
  timestamp: string;
  /** The raw request body, exactly as received (not re-serialized JSON). */
  body: string | Buffer;
  /** The X-Switchboard-Signature header. */
  signature: string;
  /** Largest accepted age (and clock skew), in seconds; default 300. */
  toleranceS?: number;
  /** The current time in unix seconds (tests); default the clock. */
  now?: number;
}

/** True when the signature is ours over this body and timestamp, and the timestamp is fresh. */
export function verifySignature(opts: VerifyOptions): boolean {
  const { secret, timestamp, body, signature } = opts;
  // Headers arrive as whatever the receiver's framework makes of them (undefined, arrays): never throw.
  if (typeof secret !== "string" || typeof timestamp !== "string" || typeof signature !== "string") return false;
  if (typeof body !== "string" && !Buffer.isBuffer(body)) return false;
  if (!secret || !/^\d{1,12}$/.test(timestamp)) return false;
  const now = opts.now ?? Date.now() / 1000;
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceS ?? 300)) return false;
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim());
  if (!m?.[1]) return false;
  const expected = Buffer.from(signPayload(secret, timestamp, body).slice("sha256=".length), "hex");
  // Constant-time: a plain comparison would leak how many leading bytes of a forgery are right.
  return timingSafeEqual(expected, Buffer.from(m[1], "hex"));
}
