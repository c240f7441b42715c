// The sandbox's webhooks: Twilio-shaped form posts to the same paths, read the same way, but signed by
// nothing — the HTTP face puts these routes behind the admin token instead (src/http/server.ts).
import type { ProviderWebhooks } from "../../core/ports.js";
import { inboundSchema, readTwilioInbound, readTwilioStatus, statusSchema, TWIML_ANSWER } from "../twilio/webhooks.js";

export function createSandboxWebhooks(): ProviderWebhooks {
  return {
    paths: { inbound: "/twilio/sms", status: "/twilio/status" },
    schemas: { inbound: inboundSchema, status: statusSchema },
    authenticate: async () => ({}),
    readInbound: (body) => readTwilioInbound(body, undefined),
    readStatus: readTwilioStatus,
    answer: TWIML_ANSWER,
  };
}
