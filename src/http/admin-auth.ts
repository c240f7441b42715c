// Bearer-token check for the admin API, in constant time (hashing first makes lengths equal). Failed
// checks are counted per client address: past the limit, the address gets 429 until its window ends,
// whatever it sends, so the token cannot be guessed at speed.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { UsageCounter } from "../core/limits.js";
import { sendProblem } from "./problem.js";

export interface AuthFailureLimit {
  counter: UsageCounter;
  onRefused?(): void;
}

export function bearerAuth(token: string, failures?: AuthFailureLimit) {
  const expected = createHash("sha256").update(token).digest();
  const tooMany = (reply: FastifyReply, retryAfterMs: number) => {
    failures?.onRefused?.();
    reply.header("retry-after", String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
    return sendProblem(reply, { title: "Too Many Requests", status: 429, detail: "Too many failed admin-token checks from this address; wait before trying again." });
  };
  return async function checkBearer(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A Redis outage must not lock the operator out: the count is skipped when it cannot be read.
    const counted = failures ? await failures.counter.peek(request.ip).catch(() => undefined) : undefined;
    if (failures && counted && counted.used >= failures.counter.limit) return void (await tooMany(reply, counted.resetInMs));
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = createHash("sha256").update(match?.[1]?.trim() ?? "").digest();
    if (!match || !timingSafeEqual(given, expected)) {
      const taken = failures ? await failures.counter.take(request.ip, 1).catch(() => undefined) : undefined;
      if (taken && !taken.ok) return void (await tooMany(reply, taken.retryAfterMs));
      reply.header("www-authenticate", 'Bearer realm="switchboard"');
      await sendProblem(reply, { title: "Unauthorized", status: 401, detail: "A valid admin token is required: Authorization: Bearer <ADMIN_TOKEN>." });
    }
  };
}
