// Hands one queued message to the provider: at most one SMS per message (docs/developers/design.md "Delivery
// guarantees"). Each request is recorded as `inflight` before it starts and `clear` once it certainly
// created nothing, so the job can be picked up again after a crash without guessing:
// - 429 / 503 / connection refused (certainly not processed): retried with backoff, honouring
//   Retry-After, until OUTBOUND_DEADLINE_MS after the first request; then an error reply.
// - permanent refusals (4xx): never retried.
// - ambiguous (no answer, 5xx other than 503, or `inflight` found after a restart): the message is
//   looked up at the provider first. Found → adopted, never resent; certainly not found → resent;
//   cannot tell → not resent, and the sender is told it may or may not have gone out.
import { abortableSleep, SendInterrupted } from "../util/sleep.js";
import type { MessageStatus, OutboundJob, XmppDelivery } from "../model/message.js";
import { ProviderError, type AttemptState, type DeliveryMeta, type MessageStore, type ProviderFailure, type SmsProvider, type SmsSendRequest } from "../ports.js";
import { mapProviderFailure } from "../policy/provider-errors.js";
import { backoff, retryDelay } from "../policy/retry-policy.js";

type ErrorType = Extract<XmppDelivery, { kind: "error" }>["type"];

export interface SendPolicy {
  /** First retry delay (doubles with jitter). */
  baseMs: number;
  /** No new request starts later than this after the first one (OUTBOUND_DEADLINE_MS). */
  deadlineMs: number;
  /** Lookups of one ambiguous outcome before giving up on telling; default 3. */
  lookupTries?: number;
}

export interface SenderDeps {
  messages: MessageStore;
  provider: SmsProvider;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  retry: SendPolicy;
  /** The status path (inbound.applyStatus): the create's answer, and an adopted message, get their receipt or error like any other. */
  applyStatus(u: { id: string; providerId: string; status: MessageStatus; errorCode?: number }): Promise<unknown>;
  reportError(id: string, type: ErrorType, condition: string, text: string): Promise<void>;
  /** Told when the provider says the recipient opted out (21610), to update the opt-out ledger. */
  onOptedOut?(from: string, to: string): Promise<unknown>;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

export { SendInterrupted };

const seconds = (ms: number): string => `${Math.max(1, Math.round(ms / 1000))} s`;

export function createSender(deps: SenderDeps) {
  const sleep = deps.sleep ?? abortableSleep;
  const now = deps.now ?? Date.now;
  const { baseMs, deadlineMs } = deps.retry;
  const lookupTries = deps.retry.lookupTries ?? 3;

  async function process(job: OutboundJob, meta?: Pick<DeliveryMeta, "signal">): Promise<void> {
    const signal = meta?.signal;
    // The usual case (pending, never tried, or the last try certainly created nothing) starts its
    // request in the same call that reads the record.
    const start = await deps.messages.startSending(job.id);
    if (!start) {
      deps.log.warn({ msgId: job.id }, "outbound job without a record; dropped");
      return;
    }
    const req: SmsSendRequest = { id: job.id, from: job.from, to: job.to, body: job.body, mediaUrls: job.mediaUrls, ...("account" in job && job.account ? { account: job.account } : {}) };
    let startedAlready: AttemptState | undefined;
    let state: AttemptState;
    if ("begun" in start) {
      startedAlready = start.begun;
      state = start.begun;
    } else {
      const { record, attempt } = start;
      // A SID means the provider has it (the create's answer, a lookup or an early status callback
      // recorded it); any status but pending means it was handed over or reported already.
      if (record.providerId !== undefined || record.status !== "pending") return;
      state = attempt;
      if (state.state === "inflight") {
        // The gateway stopped during a request: it may have reached the provider.
        deps.log.warn({ msgId: job.id, attempts: state.count }, "last request of this message has no recorded outcome; looking it up");
        const next = await resolveAmbiguous(req, state, "the gateway stopped while sending it", signal);
        if (!next) return;
        state = next;
      }
    }

    for (;;) {
      const begun = startedAlready ?? (await deps.messages.beginAttempt(job.id, state.count));
      startedAlready = undefined;
      if (!begun) {
        deps.log.warn({ msgId: job.id }, "another worker took this message over; leaving it to it");
        return;
      }
      state = begun;
      const deadline = (begun.firstAt ?? now()) + deadlineMs;
      let failure: ProviderFailure;
      try {
        const result = await deps.provider.send(req);
        // Through the status path: a status callback held because it came before this answer counts
        // now, with its receipt or error, if it named the same message (MessageStore.callback).
        await deps.applyStatus({ id: job.id, providerId: result.providerId, status: result.status });
        deps.log.info({ msgId: job.id, sid: result.providerId, status: result.status, attempts: begun.count }, "sent to provider");
        return;
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err; // stays inflight: the retry looks it up first
        failure = err.failure;
      }
      const ctx = { msgId: job.id, code: failure.code, httpStatus: failure.httpStatus, kind: failure.kind, attempt: begun.count };

      if (failure.kind === "permanent") {
        await deps.messages.clearAttempt(job.id);
        deps.log.warn(ctx, "provider refused message");
        // 21610: they replied STOP at some point we did not see; later sends are refused up front.
        if (failure.code === 21610 && deps.onOptedOut) await deps.onOptedOut(job.from, job.to);
        await fail(job, failure, mapProviderFailure(failure, { to: job.to }));
        return;
      }

      if (failure.kind === "ambiguous") {
        deps.log.warn(ctx, "provider outcome unknown; looking the message up before any resend");
        const next = await resolveAmbiguous(req, state, failure.message, signal);
        if (!next) return;
        state = next;
        if (now() >= deadline) {
          const text = `Twilio did not answer (${failure.message}) and the message was not sent; the gateway gave up after ${begun.count} tries in ${seconds(now() - (begun.firstAt ?? now()))}. Try again later.`;
          await fail(job, failure, { type: "wait", condition: "remote-server-timeout", text });
          return;
        }
        continue; // certainly not sent: resend at once (resolveAmbiguous already waited)
      }

      await deps.messages.clearAttempt(job.id);
      state = { ...begun, state: "clear" };
      const delay = retryDelay(failure, begun.count, baseMs);
      if (now() + delay > deadline) {
        // The next try would start past the deadline (or the provider asked for a longer wait).
        const mapped = mapProviderFailure(failure, { to: job.to });
        const text = `${mapped.text}. The message was not sent: the gateway gave up after ${begun.count} ${begun.count === 1 ? "try" : "tries"} in ${seconds(now() - (begun.firstAt ?? now()))}.`;
        deps.log.warn({ ...ctx, delay }, "provider still refusing at the deadline; giving up");
        await fail(job, failure, { ...mapped, text });
        return;
      }
      deps.log.warn({ ...ctx, delay, retryAfterMs: failure.retryAfterMs }, "provider busy; retrying");
      await sleep(delay, signal);
    }
  }

  /**
   * Looks an ambiguous request up. Returns the state to resend from when it certainly did not go out,
   * undefined when the message is settled (adopted, or reported as unknown).
   */
  async function resolveAmbiguous(req: SmsSendRequest, state: AttemptState, what: string, signal?: AbortSignal): Promise<AttemptState | undefined> {
    const since = state.firstAt ?? now();
    const isClaimed = async (sid: string): Promise<boolean> => {
      const owner = await deps.messages.idForProviderId(sid);
      return owner !== undefined && owner !== req.id;
    };
    let reason = "";
    for (let i = 1; i <= lookupTries; i++) {
      // Give a request the provider may still be processing time to show up in its list.
      await sleep(backoff(baseMs, i), signal);
      const r = await deps.provider.lookup({ ...req, since, isClaimed });
      if ("found" in r) {
        await deps.applyStatus({ id: req.id, providerId: r.found.providerId, status: r.found.status, ...(r.found.errorCode !== undefined ? { errorCode: r.found.errorCode } : {}) });
        deps.log.info({ msgId: req.id, sid: r.found.providerId, status: r.found.status }, "found at the provider; adopted, not resent");
        return undefined;
      }
      if ("notFound" in r) {
        await deps.messages.clearAttempt(req.id);
        deps.log.warn({ msgId: req.id }, "not found at the provider; safe to resend");
        return { ...state, state: "clear" };
      }
      reason = r.unknown;
      deps.log.warn({ msgId: req.id, lookup: i, reason }, "lookup failed");
    }
    await deps.messages.advance(req.id, "unknown");
    await deps.reportError(
      req.id,
      "cancel",
      "remote-server-timeout",
      `This message may or may not have been sent: Twilio did not confirm it (${what}) and the gateway could not check (${reason}), so it was not sent again.`,
    );
    return undefined;
  }

  async function fail(job: OutboundJob, failure: ProviderFailure, spec: { type: ErrorType; condition: string; text: string }): Promise<void> {
    await deps.messages.advance(job.id, "failed", failure.code !== undefined ? { errorCode: failure.code } : undefined);
    await deps.reportError(job.id, spec.type, spec.condition, spec.text);
  }

  return { process };
}
