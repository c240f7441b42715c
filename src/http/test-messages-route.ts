// Admin API: a test message either way (the `switchboard send` command), through the very paths real
// traffic takes. From a linked user's bare JID to a number: queued as if that user had written to the
// contact over XMPP (core/flows/xmpp-out.ts accept: access, limits, opt-outs, segments, the provider). From a
// number to a linked user's bare JID: accepted as if that SMS had reached the user's number (the same
// inbound path as POST /twilio/sms and POST /sandbox/sms), so it arrives in the user's client.
import { randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { parseUserBareJid, toE164 } from "../core/model/addresses.js";
import type { Inbound } from "../core/flows/sms-in.js";
import type { Outbound } from "../core/flows/xmpp-out.js";
import type { LinkStore } from "../core/ports.js";
import { sendProblem } from "./problem.js";

export interface TestMessagesDeps {
  domain: string;
  links: Pick<LinkStore, "phoneOf">;
  outbound: Pick<Outbound, "accept">;
  inbound: Pick<Inbound, "accept">;
}

const body = z.object({
  from: z.string().trim().min(1).max(3071).describe("A linked user's bare JID (a text to a number), or the phone number an SMS comes from (a text to a user)"),
  to: z.string().trim().min(1).max(3071).describe("The phone number to text (international format), or the linked user's bare JID"),
  body: z.string().min(1, "must not be empty").max(1600),
});

const answer = z.object({
  id: z.string(),
  direction: z.enum(["to-sms", "to-xmpp"]),
  from: z.string(),
  to: z.string(),
  status: z.string(),
  note: z.string().optional(),
});

const bad = (field: string, detail: string) => ({ title: "Bad Request", status: 400, detail: `${field}: ${detail}`, field });

export function testMessagesRoute(app: FastifyInstance, deps: TestMessagesDeps): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post("/api/v1/test-messages", { schema: { body, response: { 202: answer } } }, async (request, reply) => {
    const { from, to, body: text } = request.body;

    if (from.includes("@")) {
      // XMPP → SMS, as if `from` had written to +…@domain.
      const jid = parseUserBareJid(from);
      if (!jid) return sendProblem(reply, bad("body.from", "must be a bare JID such as alice@example.com (no resource)"));
      const phone = to.startsWith("+") ? toE164(to) : undefined;
      if (!phone) return sendProblem(reply, bad("body.to", "must be a phone number in international format, e.g. +15552223333"));
      // Errors (unlinked sender: 403, refused destination, limits…) are GatewayErrors: the problem handler renders them.
      const res = await deps.outbound.accept({
        from: jid,
        fromBare: jid,
        toLocal: phone,
        to: `${phone}@${deps.domain}`,
        type: "chat",
        body: text,
        oobUrls: [],
        encrypted: false,
        receiptRequested: false,
      });
      if (res.outcome === "ignored") {
        return sendProblem(reply, { title: "Unprocessable Content", status: 422, detail: `Nothing was sent: ${res.notice ?? res.reason}.` });
      }
      request.log.info({ msgId: res.id }, "test message queued (XMPP → SMS)");
      return reply.code(202).send({ id: res.id, direction: "to-sms", from: jid, to: phone, status: "queued" });
    }

    // SMS → XMPP, as if `from` had texted the number linked to `to`.
    const sender = from.startsWith("+") ? toE164(from) : /^[0-9]{3,8}$/.test(from) ? from : undefined;
    if (!sender) {
      return sendProblem(reply, bad("body.from", "must be a linked user's bare JID (a text to a number) or a phone number in international format (a text to a user)"));
    }
    const jid = parseUserBareJid(to);
    if (!jid) return sendProblem(reply, bad("body.to", "must be the bare JID of a linked user, e.g. alice@example.com"));
    const number = await deps.links.phoneOf(jid);
    if (!number) {
      return sendProblem(reply, { title: "Not Found", status: 404, detail: `${jid} is not linked to a number, so no SMS can reach it; link it first (PUT /api/v1/users/${jid}).`, field: "body.to" });
    }
    const res = await deps.inbound.accept({ providerId: `SM${randomBytes(16).toString("hex")}`, from: sender, to: number, body: text, media: [] });
    if (res.outcome === "unrouted") {
      return sendProblem(reply, { title: "Conflict", status: 409, detail: `${number} was unlinked meanwhile; nothing was delivered.` });
    }
    request.log.info({ msgId: res.id }, "test message accepted (SMS → XMPP)");
    return reply.code(202).send({
      id: res.id,
      direction: "to-xmpp",
      from: sender,
      to: jid,
      status: res.outcome === "journaled" ? "journaled" : "queued",
      ...(res.outcome === "journaled" ? { note: "Redis is unreachable: kept in the local journal, delivered once Redis is back" } : {}),
    });
  });
}
