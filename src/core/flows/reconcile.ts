// Reconciliation with the provider (docs/developers/design.md "Reconciliation"): what its webhooks never
// brought is read back from its message log. Inbound texts that reached the provider while no gateway
// could take them are taken in through the webhook's own accept path (the repeat check on the provider id
// makes a text already received a duplicate, so a run can be repeated at will); messages sent long
// enough ago whose final status never came get it fetched and applied through the status path, so the
// sender still gets the receipt or the error.
import { createHash } from "node:crypto";
import { GatewayError } from "../../errors.js";
import { toE164 } from "../model/addresses.js";
import { isFinal, isMessageStatus, type MessageStatus } from "../model/message.js";
import { ProviderError, type LinkStore, type MessageStore, type ProviderMessageLog, type ReconcileState } from "../ports.js";
import type { InboundOutcome, InboundSms } from "./sms-in.js";

/** The fixed timings of a run; tests may shorten them. */
export const RECONCILE_TIMING = {
  /** Each account's window opens this long before its cursor: the provider's clock and its list may lag ours. */
  overlapMs: 10 * 60_000,
  /** A status callback normally comes within this long after the send: only older messages are asked about. */
  settleMs: 5 * 60_000,
  /** A message still without a final status this long after it was created is given up on (some carriers never report). */
  giveUpMs: 48 * 3_600_000,
  /** Status fetches per run at most; the rest wait for the next run. */
  maxStatusChecks: 1000,
  /** The lock's lifetime; its holder renews it while the run goes on. */
  lockTtlMs: 60_000,
  /** Kept inside the horizon, for the time a run takes. */
  horizonMarginMs: 5 * 60_000,
  /** Fetches failing in a row that end the status checks of a run (the provider is away). */
  maxFailuresInARow: 5,
  /**
   * Allowed between the provider's times and ours when a text is compared with a link's time: the
   * provider's dates have whole seconds (Twilio's are RFC 2822), and two clocks never agree exactly.
   */
  clockMarginMs: 60_000,
};

/** Whether a run may go on: its lock is held and the gateway is not stopping; else why not. */
interface Going {
  stopped(): string | undefined;
}

export interface ReconcileSettings {
  /** RECONCILE_LOOKBACK (ms): how far back an account's first run looks. */
  lookbackMs: number;
  /**
   * How old a text may be and still be taken in safely (ms): the shorter of DEDUPE_TTL (an older one's
   * repeat key may be gone: it could be delivered twice) and XMPP_DELIVERY_DEADLINE_MS (an older one
   * would be given up on at once).
   */
  horizonMs: number;
  /** RECONCILE_INTERVAL (ms): a periodic run this soon after the last one (by any instance) is skipped. */
  intervalMs: number;
}

export interface ReconcileDeps {
  provider: ProviderMessageLog;
  state: ReconcileState;
  links: Pick<LinkStore, "list">;
  /** The user's own provider account (REGISTRATION=byo); absent: every number is on the main account. */
  accountOf?: (jid: string) => Promise<string | undefined>;
  messages: Pick<MessageStore, "get" | "dueStatusChecks" | "scheduleStatusCheck">;
  /** The inbound webhook's accept path (core/flows/sms-in.ts): resolves once the text is stored durably. */
  accept(sms: InboundSms): Promise<InboundOutcome>;
  /** The status path (core/flows/sms-in.ts applyStatus): a receipt or an error as for a callback. */
  applyStatus(u: { id: string; providerId: string; status: MessageStatus; errorCode?: number }): Promise<"applied" | "stale" | "unknown">;
  settings: ReconcileSettings;
  timing?: Partial<typeof RECONCILE_TIMING>;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  now?: () => number;
}

/** `start`: the gateway just started; `periodic`: RECONCILE_INTERVAL; `manual`: an operator asked (`since`: from then). */
export interface ReconcileRequest {
  kind: "start" | "periodic" | "manual";
  since?: number;
  /** Aborted when the gateway stops: the run ends between two messages. */
  signal?: AbortSignal;
}

export interface AccountReport {
  account: string;
  /** The window's start (ms since epoch). */
  since: number;
  listed: number;
  /** Taken in: the gateway had never received them. */
  ingested: number;
  /** Received before (by webhook or an earlier run). */
  duplicate: number;
  /** To a number no user is linked to (for this account), or from before its link to its user: skipped. */
  unrouted: number;
  /** Still being received by the provider: left for a later run. */
  incomplete: number;
  error?: string;
}

export interface ReconcileReport {
  kind: ReconcileRequest["kind"];
  startedAt: number;
  finishedAt: number;
  accounts: AccountReport[];
  outbound: {
    /** Statuses fetched. */
    checked: number;
    /** A final status applied: the receipt or error went to the sender. */
    applied: number;
    /** Final already (the callback came meanwhile), or a status that moves nothing. */
    unchanged: number;
    /** Not final yet at the provider: asked again later. */
    pending: number;
    /** The provider has no such message (deleted). */
    notFound: number;
    /** Without a final status since RECONCILE_TIMING.giveUpMs: not asked again. */
    gaveUp: number;
    failed: number;
  };
  /** Why parts of the run did not complete; empty when everything did. */
  errors: string[];
}

/** The inbound counts of every account of a report, added up. */
export function inboundTotals(r: Pick<ReconcileReport, "accounts">): Record<"listed" | "ingested" | "duplicate" | "unrouted" | "incomplete", number> {
  const t = { listed: 0, ingested: 0, duplicate: 0, unrouted: 0, incomplete: 0 };
  for (const a of r.accounts) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] += a[k];
  return t;
}

export type ReconcileOutcome = { outcome: "done"; report: ReconcileReport } | { outcome: "busy" } | { outcome: "skipped"; lastRun: number };

export function createReconcile(deps: ReconcileDeps) {
  const t = { ...RECONCILE_TIMING, ...deps.timing };
  const now = deps.now ?? Date.now;
  const main = deps.provider.mainAccount;

  /** The oldest moment a run may look back to now. */
  const floor = (at: number): number => at - deps.settings.horizonMs + t.horizonMarginMs;

  /** Refuses a `since` the repeat check could not keep safe, or one in the future. */
  function checkSince(since: number, at: number): void {
    if (!Number.isFinite(since)) throw new GatewayError("bad_request", "since must be a date and time.", { field: "since" });
    if (since > at) throw new GatewayError("bad_request", "since is in the future.", { field: "since" });
    if (since < floor(at)) {
      const hours = Math.floor((at - floor(at)) / 3_600_000);
      throw new GatewayError(
        "bad_request",
        `since may be at most ${hours} h ago: older texts could be delivered twice (their repeat keys live DEDUPE_TTL) or would be given up on at once (XMPP_DELIVERY_DEADLINE_MS).`,
        { field: "since" },
      );
    }
  }

  /** The linked numbers and their owners, grouped by the provider account they receive on. */
  async function numbersByAccount(): Promise<Map<string, Map<string, string>>> {
    const groups = new Map<string, Map<string, string>>();
    for (const { jid, phone } of await deps.links.list()) {
      const own = deps.accountOf ? await deps.accountOf(jid) : undefined;
      const account = own ?? main;
      const numbers = groups.get(account) ?? new Map<string, string>();
      numbers.set(phone, jid);
      groups.set(account, numbers);
    }
    return groups;
  }

  /** An opaque key of a user: reconciliation's state keeps no address. */
  const ownerKey = (jid: string): string => createHash("sha256").update(jid).digest("base64url").slice(0, 22);

  /**
   * `lastRun`: when the previous run on this deployment started. A link it did not see was made after
   * it, so a link first seen now counts from then; before any run (a first start, or the upgrade that
   * brought reconciliation) the links found are trusted over RECONCILE_LOOKBACK.
   */
  async function inboundOf(account: string, owners: Map<string, string>, req: ReconcileRequest, startedAt: number, lastRun: number | undefined, going: Going): Promise<AccountReport> {
    // A text from before its number was linked to its owner was not theirs (the number may have been
    // someone else's, or its webhook pointed at another system), so it is not taken in. Texts the
    // previous owner received are repeats anyway; what is left is a text nobody received in the minutes
    // between the previous run and the link.
    const linkedSince = await deps.state.linkedSince(
      account,
      [...owners].map(([number, jid]) => ({ number, owner: ownerKey(jid) })),
      lastRun ?? startedAt - deps.settings.lookbackMs,
    );
    // Without a cursor (no run of this account completed), from its earliest link. An operator's `since`
    // reaches further back, never less far: the cursor moves past everything the window covered.
    const cursor = (await deps.state.cursor(account)) ?? Math.min(...linkedSince.values());
    const since = Math.max(floor(startedAt), Math.min(req.since ?? Infinity, cursor - t.overlapMs));
    const r: AccountReport = { account, since, listed: 0, ingested: 0, duplicate: 0, unrouted: 0, incomplete: 0 };
    // The cursor may move to the run's start, unless a text still being received holds it back.
    let reached = startedAt;
    try {
      const stop = going.stopped();
      if (stop) throw new Error(stop);
      for await (const sms of deps.provider.listInbound({ ...(account === main ? {} : { account }), since })) {
        const stop = going.stopped();
        if (stop) throw new Error(stop);
        r.listed++;
        // Only numbers linked to a user, and (a user's own account) registered under that account: as a
        // webhook would be; and only texts since the link.
        const from = linkedSince.get(toE164(sms.to) ?? sms.to);
        if (from === undefined || sms.sentAt < from - t.clockMarginMs) {
          r.unrouted++;
          continue;
        }
        if (!sms.complete) {
          r.incomplete++;
          reached = Math.min(reached, sms.sentAt);
          continue;
        }
        const { sentAt, complete: _complete, ...text } = sms;
        // The time it reached the provider: the user's client shows when it was sent (XEP-0203).
        const res = await deps.accept({ ...text, receivedAt: sentAt });
        if (res.outcome === "duplicate") r.duplicate++;
        else if (res.outcome === "unrouted") r.unrouted++;
        else {
          r.ingested++;
          deps.log.info({ msgId: res.id, account, sentAt: new Date(sentAt).toISOString() }, "inbound SMS the gateway never received taken in from the provider's message list");
        }
      }
      // Every text up to `reached` is stored durably now (accept resolved for each).
      await deps.state.advanceCursor(account, reached);
    } catch (err) {
      r.error = err instanceof Error ? err.message : String(err);
      deps.log.warn({ account, err: r.error }, "reconciliation of inbound texts failed for this account; its cursor stays, the next run tries again");
    }
    return r;
  }

  async function outbound(req: ReconcileRequest, startedAt: number, going: Going): Promise<ReconcileReport["outbound"] & { error?: string }> {
    const o: ReconcileReport["outbound"] & { error?: string } = { checked: 0, applied: 0, unchanged: 0, pending: 0, notFound: 0, gaveUp: 0, failed: 0 };
    const manual = req.kind === "manual";
    // An operator's run asks about every message awaiting a status (since `since`), not only those due.
    const ids = await deps.messages.dueStatusChecks(manual ? Infinity : startedAt, t.maxStatusChecks);
    let failuresInARow = 0;
    for (const id of ids) {
      const stop = going.stopped();
      if (stop) {
        o.error = stop;
        break;
      }
      const rec = await deps.messages.get(id);
      if (!rec || rec.providerId === undefined || isFinal(rec.status)) {
        await deps.messages.scheduleStatusCheck(id, undefined);
        continue;
      }
      if (manual && req.since !== undefined && rec.createdAt < req.since) continue;
      const at = now();
      const age = at - rec.createdAt;
      if (!manual && age < t.settleMs) {
        await deps.messages.scheduleStatusCheck(id, rec.createdAt + t.settleMs);
        continue;
      }
      if (age > t.giveUpMs) {
        o.gaveUp++;
        deps.log.info({ msgId: id, status: rec.status }, "no final status from the provider after two days; not asked again");
        await deps.messages.scheduleStatusCheck(id, undefined);
        continue;
      }
      o.checked++;
      let found: Awaited<ReturnType<ProviderMessageLog["fetchStatus"]>>;
      try {
        found = await deps.provider.fetchStatus({ providerId: rec.providerId, ...(rec.account ? { account: rec.account } : {}) });
        failuresInARow = 0;
      } catch (err) {
        o.failed++;
        const message = err instanceof Error ? err.message : String(err);
        // Refused before any request (the user's own account is no longer registered): never answerable.
        if (err instanceof ProviderError && err.failure.kind === "permanent" && err.failure.httpStatus === undefined) {
          deps.log.warn({ msgId: id, err: message }, "the status of this message cannot be asked for; not asked again");
          await deps.messages.scheduleStatusCheck(id, undefined);
          continue;
        }
        deps.log.warn({ msgId: id, err: message }, "fetching a message's status from the provider failed; asked again later");
        await deps.messages.scheduleStatusCheck(id, at + Math.max(t.settleMs, age));
        if (++failuresInARow >= t.maxFailuresInARow) {
          o.error = `status checks stopped after ${failuresInARow} failures in a row: ${message}`;
          break;
        }
        continue;
      }
      if (!found) {
        o.notFound++;
        await deps.messages.scheduleStatusCheck(id, undefined);
        continue;
      }
      const status = found.status;
      if (isMessageStatus(status) && isFinal(status)) {
        const res = await deps.applyStatus({ id, providerId: rec.providerId, status, ...(found.errorCode !== undefined ? { errorCode: found.errorCode } : {}) });
        if (res === "applied") {
          o.applied++;
          deps.log.info({ msgId: id, status }, "final status the gateway never received taken from the provider");
        } else o.unchanged++;
        // A final status takes it off the list; unscheduling covers a record that moved no further.
        await deps.messages.scheduleStatusCheck(id, undefined);
        continue;
      }
      // Not final yet: what it says is applied (forward only), and it is asked again after as long again
      // as it has waited, so a message whose carrier never reports costs about ten fetches in all.
      if (isMessageStatus(status)) await deps.applyStatus({ id, providerId: rec.providerId, status });
      o.pending++;
      await deps.messages.scheduleStatusCheck(id, at + Math.max(t.settleMs, age));
    }
    return o;
  }

  /**
   * One run. A periodic run is skipped when any instance finished one less than most of an interval ago;
   * any run gives way to one in progress elsewhere (`busy`). Throws a GatewayError for a bad `since`.
   */
  async function run(req: ReconcileRequest): Promise<ReconcileOutcome> {
    const startedAt = now();
    if (req.since !== undefined) checkSince(req.since, startedAt);
    const last = await deps.state.lastRun();
    if (req.kind === "periodic" && last !== undefined && startedAt - last < deps.settings.intervalMs * 0.8) return { outcome: "skipped", lastRun: last };
    const lock = await deps.state.lock(t.lockTtlMs);
    if (!lock) return { outcome: "busy" };
    const going: Going = {
      stopped: () => (req.signal?.aborted ? "the gateway is stopping" : lock.held() ? undefined : "the reconciliation lock was lost (another instance may be running)"),
    };
    try {
      const accounts: AccountReport[] = [];
      for (const [account, owners] of await numbersByAccount()) accounts.push(await inboundOf(account, owners, req, startedAt, last, going));
      const { error: outboundError, ...out } = await outbound(req, startedAt, going);
      const errors = [...accounts.filter((a) => a.error).map((a) => `${a.account}: ${a.error}`), ...(outboundError ? [`status checks: ${outboundError}`] : [])];
      const finishedAt = now();
      await deps.state.markRun(startedAt);
      return { outcome: "done", report: { kind: req.kind, startedAt, finishedAt, accounts, outbound: out, errors } };
    } finally {
      await lock.release();
    }
  }

  return { run };
}

export type Reconcile = ReturnType<typeof createReconcile>;
