// An SmsProvider (core/ports.ts) that answers from a script and counts its calls, for unit tests of
// the send policy (core/flows/sms-send.ts): each send takes the next step (a provider id, or a
// classified failure thrown as ProviderError, as adapters/twilio/provider.ts throws them), each lookup
// the next answer. A call the script did not expect fails the test.
import { ProviderError, type ProviderFailure, type SmsLookupRequest, type SmsLookupResult, type SmsProvider, type SmsSendRequest } from "../../core/ports.js";
import type { MessageStatus } from "../../core/model/message.js";

export type SendStep = { ok: string; status?: MessageStatus } | { fail: ProviderFailure };

export type ScriptedSmsProvider = SmsProvider & {
  readonly calls: { send: number; lookup: number };
  /** Every request sent and looked up, in order. */
  readonly sent: SmsSendRequest[];
  readonly lookedUp: SmsLookupRequest[];
  /** Steps still to come (a test may add to them). */
  readonly sends: SendStep[];
  readonly lookups: SmsLookupResult[];
};

export function createScriptedSmsProvider(sends: SendStep[] = [], lookups: SmsLookupResult[] = [], opts: { name?: SmsProvider["name"] } = {}): ScriptedSmsProvider {
  const calls = { send: 0, lookup: 0 };
  const sent: SmsSendRequest[] = [];
  const lookedUp: SmsLookupRequest[] = [];
  const steps = [...sends];
  const answers = [...lookups];
  return {
    name: opts.name ?? "sandbox",
    calls,
    sent,
    lookedUp,
    sends: steps,
    lookups: answers,
    async send(req) {
      calls.send++;
      sent.push(req);
      const step = steps.shift();
      if (!step) throw new Error(`unexpected send of ${req.id}`);
      if ("fail" in step) throw new ProviderError(step.fail);
      return { providerId: step.ok, status: step.status ?? "queued" };
    },
    async lookup(req) {
      calls.lookup++;
      lookedUp.push(req);
      const r = answers.shift();
      if (!r) throw new Error(`unexpected lookup of ${req.id}`);
      return r;
    },
  };
}
