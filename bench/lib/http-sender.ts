// HTTP senders for the benchmark's flows, each request timed from the moment it is handed to the
// pool (so waiting for a free connection counts) to the end of its answer.
import { signTwilioRequest } from "../../test/fakes/fake-twilio.js";
import type { Sender } from "./flow.js";
import { RawHttpPool } from "./raw-http.js";

export interface HttpTarget {
  pool: RawHttpPool;
  close(): Promise<void>;
}

export function httpTarget(origin: string, connections = 64): HttpTarget {
  const pool = new RawHttpPool(origin, connections);
  return { pool, close: async () => pool.close() };
}

/** A sender POSTing what `request(seq, text)` builds; 2xx counts as accepted. */
export function httpSender(target: HttpTarget, request: (seq: number, text: string) => { path: string; headers: Record<string, string>; body: string }): Sender {
  return async (seq, text) => {
    const r = request(seq, text);
    const t0 = performance.now();
    try {
      const res = await target.pool.post(r.path, r.headers, r.body);
      const ackMs = performance.now() - t0;
      if (res.status >= 200 && res.status < 300) return { accepted: true, ackMs };
      const retryAfter = /\r\nretry-after:/i.test(res.headers);
      return { accepted: false, error: `HTTP ${res.status}${retryAfter ? " (Retry-After)" : ""}` };
    } catch (err) {
      return { accepted: false, error: (err as { code?: string }).code ?? (err as Error).message.slice(0, 60) };
    }
  };
}

/** Twilio's inbound-SMS webhook for these parameters, signed for `publicUrl` as Twilio signs it. */
export function twilioSmsWebhook(authToken: string, publicUrl: string, params: Record<string, string>): { path: string; headers: Record<string, string>; body: string } {
  return {
    path: "/twilio/sms",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signTwilioRequest(authToken, `${publicUrl}/twilio/sms`, params) },
    body: new URLSearchParams(params).toString(),
  };
}
