// Which message at the provider is the one an ambiguous create may have made (docs/developers/design.md
// "Delivery guarantees": resolve by looking it up, never by a blind resend). The provider's API takes no
// idempotency key, so the match is by content and time: same sender, recipient, body and media count,
// created after our first request started — and not already owned by another of our records, since a
// user may legitimately send the same text twice.
import type { MessageStatus } from "../model/message.js";
import type { SmsLookupRequest, SmsLookupResult } from "../ports.js";

/** One message as the provider lists it. */
export interface ProviderMessageSummary {
  providerId: string;
  status: MessageStatus;
  body: string;
  mediaCount: number;
  /** ms since epoch; the provider's clock, to the second. */
  createdAt: number;
  errorCode?: number;
}

/** Tolerance for the provider's clock being behind ours, and for its one-second date resolution. */
export const LOOKUP_SKEW_MS = 60_000;

// Twilio trial accounts prepend this to every body they send.
const TRIAL_PREFIX = "Sent from your Twilio trial account - ";

export function sameContent(m: Pick<ProviderMessageSummary, "body" | "mediaCount">, req: Pick<SmsLookupRequest, "body" | "mediaUrls">): boolean {
  if (m.mediaCount !== req.mediaUrls.length) return false;
  return m.body === req.body || m.body === TRIAL_PREFIX + req.body;
}

/**
 * The messages that may be this request's, best first: created at or after `since` (oldest first: the
 * first request is the one that can have gone out), then those only inside the clock-skew margin
 * (nearest first).
 */
export function rankCandidates(list: readonly ProviderMessageSummary[], req: Pick<SmsLookupRequest, "body" | "mediaUrls" | "since">, skewMs = LOOKUP_SKEW_MS): ProviderMessageSummary[] {
  const same = list.filter((m) => Number.isFinite(m.createdAt) && m.createdAt >= req.since - skewMs && sameContent(m, req));
  const inWindow = same.filter((m) => m.createdAt >= req.since).sort((a, b) => a.createdAt - b.createdAt);
  const inMargin = same.filter((m) => m.createdAt < req.since).sort((a, b) => b.createdAt - a.createdAt);
  return [...inWindow, ...inMargin];
}

/**
 * Decides a lookup from one listing of the conversation. `truncated`: the provider returned as many
 * messages as were asked for, so older ones may be missing; when all of them are inside the window,
 * "not found" cannot be concluded.
 */
export async function pickOwnMessage(list: readonly ProviderMessageSummary[], req: SmsLookupRequest, opts: { truncated: boolean; skewMs?: number }): Promise<SmsLookupResult> {
  const skewMs = opts.skewMs ?? LOOKUP_SKEW_MS;
  for (const m of rankCandidates(list, req, skewMs)) {
    if (await req.isClaimed(m.providerId)) continue;
    const found = { providerId: m.providerId, status: m.status, ...(m.errorCode !== undefined ? { errorCode: m.errorCode } : {}) };
    return { found };
  }
  const reachesPastWindow = list.some((m) => Number.isFinite(m.createdAt) && m.createdAt < req.since - skewMs);
  if (opts.truncated && !reachesPastWindow) return { unknown: `more messages in this conversation than one lookup returns (${list.length})` };
  return { notFound: true };
}
