// Re-hosted MMS media (core/flows/media.ts): GET /media/<token>/<name>. No authentication on purpose: the
// clients that open these links (XMPP clients, browsers) have no gateway credentials. The 256-bit
// token is the key, as Twilio's own media links are; anything that is not exactly a stored token and
// its file name is a plain 404, so the route tells nothing about what exists.
import type { FastifyInstance } from "fastify";
import type { Readable } from "node:stream";
import type { StoredMedia } from "../core/flows/media.js";
import { sendProblem } from "./problem.js";

export interface MediaReader {
  open(token: string): Promise<{ meta: StoredMedia; stream: Readable } | undefined>;
}

export function mediaRoutes(app: FastifyInstance, media: MediaReader): void {
  app.get<{ Params: { token: string; name: string } }>("/media/:token/:name", async (request, reply) => {
    const found = await media.open(request.params.token);
    if (!found || found.meta.filename !== request.params.name) {
      found?.stream.destroy();
      return sendProblem(reply, { title: "Not Found", status: 404, detail: "No such media (the link is wrong, or it expired)." });
    }
    const { meta, stream } = found;
    const maxAge = Math.max(0, Math.floor((meta.expiresAt - Date.now()) / 1000));
    return reply
      .headers({
        "content-type": meta.contentType,
        "content-length": String(meta.size),
        // private: the link is the secret, so no shared cache should keep a copy; never past expiry.
        "cache-control": `private, max-age=${maxAge}`,
        "x-content-type-options": "nosniff",
        "content-disposition": `inline; filename="${meta.filename}"`,
        // Served from the gateway's own origin: nothing in it may run scripts or load anything.
        "content-security-policy": "default-src 'none'; sandbox",
        "referrer-policy": "no-referrer",
      })
      .send(stream);
  });
}
