// Bearer-token check for the admin API, in constant time (hashing first makes lengths equal).
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { sendProblem } from "./problem.js";

export function bearerAuth(token: string) {
  const expected = createHash("sha256").update(token).digest();
  return async function checkBearer(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = createHash("sha256").update(match?.[1]?.trim() ?? "").digest();
    if (!match || !timingSafeEqual(given, expected)) {
      reply.header("www-authenticate", 'Bearer realm="switchboard"');
      await sendProblem(reply, { title: "Unauthorized", status: 401, detail: "A valid admin token is required: Authorization: Bearer <ADMIN_TOKEN>." });
    }
  };
}
