// Bearer-token check for the admin API, in constant time (hashing first makes lengths equal). Failed
// checks are counted per client address: past the limit, the address gets 429 until its window ends,
// whatever it sends, so the token cannot be guessed at speed.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { UsageCounter } from "../core/policy/limits.js";
import { sendProblem, setRetryAfter } from "./problem.js";

export interface AuthFailureLimit {
  counter: UsageCounter;
  onRefused?(): void;
}

export type TokenCheck =
  | { ok: true }
  /** No valid token: none, a wrong one, or (`locked`) this address has failed too often to be heard. */
  | { ok: false; locked: false }
  | { ok: false; locked: true; retryAfterMs: number };

/**
 * Checks the request's bearer token against `token`, counting failures per client address. Shared by
 * the admin routes and /readyz (whose details need the token), so both draw on one failure count.
 */
export function adminTokenCheck(token: string, failures?: AuthFailureLimit) {
  const expected = createHash("sha256").update(token).digest();
  /** `count: false`: the token is compared but the failure count is neither read nor charged (Redis is known to be away). */
  return async function check(request: FastifyRequest, opts: { count?: boolean } = {}): Promise<TokenCheck> {
    const limit = opts.count === false ? undefined : failures;
    // A Redis outage must not lock the operator out: the count is skipped when it cannot be read.
    const counted = limit ? await limit.counter.peek(request.ip).catch(() => undefined) : undefined;
    if (limit && counted && counted.used >= limit.counter.limit) {
      limit.onRefused?.();
      return { ok: false, locked: true, retryAfterMs: counted.resetInMs };
    }
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = createHash("sha256")
      .update(match?.[1]?.trim() ?? "")
      .digest();
    if (match && timingSafeEqual(given, expected)) return { ok: true };
    const taken = limit ? await limit.counter.take(request.ip, 1).catch(() => undefined) : undefined;
    if (limit && taken && !taken.ok) {
      limit.onRefused?.();
      return { ok: false, locked: true, retryAfterMs: taken.retryAfterMs };
    }
    return { ok: false, locked: false };
  };
}

export function bearerAuth(token: string, failures?: AuthFailureLimit) {
  const check = adminTokenCheck(token, failures);
  return async function checkBearer(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const r = await check(request);
    if (r.ok) return;
    if (r.locked) {
      setRetryAfter(reply, r.retryAfterMs);
      return void (await sendProblem(reply, { title: "Too Many Requests", status: 429, detail: "Too many failed admin-token checks from this address; wait before trying again." }));
    }
    reply.header("www-authenticate", 'Bearer realm="switchboard"');
    await sendProblem(reply, { title: "Unauthorized", status: 401, detail: "A valid admin token is required: Authorization: Bearer <ADMIN_TOKEN>." });
  };
}
