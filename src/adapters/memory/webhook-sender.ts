// A WebhookSender (core/ports.ts) that records every POST and answers from a script, for unit tests of
// the webhook flows: no HTTP. The real one (adapters/webhook/sender.ts) classifies a receiver's answer
// into the same three kinds.
import type { WebhookPayload, WebhookResult, WebhookSender } from "../../core/ports.js";
import { GatewayError } from "../../errors.js";

export interface RecordedPost {
  url: string;
  secret: string;
  payload: WebhookPayload;
}

export type ScriptedWebhookSender = WebhookSender & {
  readonly posts: RecordedPost[];
  /** Answers for the next POSTs, in order; when none is left, `fallback` answers. */
  readonly answers: WebhookResult[];
};

export interface ScriptedWebhookSenderOptions {
  answers?: WebhookResult[];
  /** What a POST gets when the script is used up (default: 200 without a reply). */
  fallback?: WebhookResult;
  /** Why a URL may not be used (checkUrl throws bad_request on field "url"); undefined: allowed. */
  refuseUrl?: (url: string) => string | undefined;
}

export function createScriptedWebhookSender(opts: ScriptedWebhookSenderOptions = {}): ScriptedWebhookSender {
  const posts: RecordedPost[] = [];
  const answers = [...(opts.answers ?? [])];
  const fallback: WebhookResult = opts.fallback ?? { kind: "ok", status: 200 };
  return {
    posts,
    answers,
    async send(url, secret, payload) {
      posts.push({ url, secret, payload });
      return answers.shift() ?? fallback;
    },
    async checkUrl(url) {
      const why = opts.refuseUrl?.(url);
      if (why !== undefined) throw new GatewayError("bad_request", why, { field: "url" });
    },
    async close() {},
  };
}
